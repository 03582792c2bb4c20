"""Debian's own netboot installer, installing from pxed: the config, the preseed, the checks.

The profile boots the kernel and initrd of the debian-installer-12-netboot-amd64 package
(copied into tftp.root; QEMU's iPXE fetches them over pxed's HTTP). Its command line
points d-i at a preseed and answers the questions asked before the preseed is read
(`auto=true priority=critical`, hostname and domain, `interface=auto`). The preseed names
pxed as the mirror (the `mirror` HTTP tree, built by lab/debmirror.py), installs onto the
disk unattended, and its late_command posts pxed's done callback with the host's token in
an `X-Pxed-Token` header: d-i's busybox wget cannot POST, its busybox nc can.

pxed has no /preseed/<mac> answer-file family yet, so the preseed is a file in the
`preseed` tree, rendered here with the host's token. APPEND's `url=` and `preseed_path` name
where it lives: with /preseed/<mac> they become `/preseed/{mac}`, and the rendering (PRESEED
and late_command, with pxed's token) moves into pxed's template.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Literal

import yaml

from lab.bootlab import BootLab
from lab.debmirror import CODENAME, NETBOOT_INITRD, NETBOOT_KERNEL, SUITE
from lab.netns import Background
from lab.qemu import Boot, BootError
from lab.scenario import HTTP_PORT
from pxed.provisioning.tokens import host_token, load_secret

DhcpMode = Literal["full", "proxy"]
PROFILE = "debian12"
KERNEL = "linux"  # in tftp.root, as the netboot package names them
INITRD = "initrd.gz"
MIRROR_TREE = "mirror"
PRESEED_TREE = "preseed"
DOMAIN = "lab.pxed"
ROOT_PASSWORD = "pxed-lab"  # the lab VM's, shown on purpose: nothing outside the lab sees it
DISK = "/dev/sda"  # QEMU's ide-hd (lab/qemu.py)
# pxed fills {server}, {http_port} and {hostname} per host; url= is preseed_path's.
APPEND = (
    "console=ttyS0,115200 url=http://{{server}}:{{http_port}}/trees/{tree}/{{hostname}}.cfg"
    " auto=true priority=critical interface=auto hostname={{hostname}} domain={domain}"
)
# A login prompt from the installed system's getty on the serial console.
LOGIN_PROMPT = re.compile(r"^\S+ login: ", re.M)
# What d-i put on the console when it gave up (a dialog at priority critical).
INSTALLER_STOPPED = re.compile(
    r"\[!!\] .*|Load installer components from .*|Installation step failed|"
    r"Failed to (?:retrieve|load|download) .*",
    re.M,
)

PRESEED = """\
# pxed lab preseed for {hostname} ({mac})
d-i debian-installer/locale string en_US.UTF-8
d-i keyboard-configuration/xkb-keymap select us
d-i netcfg/choose_interface select auto
d-i netcfg/get_hostname string {hostname}
d-i netcfg/get_domain string {domain}
d-i hw-detect/load_firmware boolean false
# The lab mirror's Release is unsigned (lab/debmirror.py).
d-i debian-installer/allow_unauthenticated boolean true
d-i mirror/country string manual
d-i mirror/protocol string http
d-i mirror/http/hostname string {server}
d-i mirror/http/directory string /trees/{mirror_tree}
d-i mirror/http/proxy string
d-i mirror/suite string {suite}
d-i mirror/codename string {codename}
d-i passwd/root-login boolean true
d-i passwd/root-password password {root_password}
d-i passwd/root-password-again password {root_password}
d-i passwd/make-user boolean false
d-i clock-setup/utc boolean true
d-i time/zone string UTC
d-i clock-setup/ntp boolean false
d-i partman-auto/disk string {disk}
d-i partman-auto/method string regular
d-i partman-auto/choose_recipe select atomic
d-i partman-partitioning/confirm_write_new_label boolean true
d-i partman/choose_partition select finish
d-i partman/confirm boolean true
d-i partman/confirm_nooverwrite boolean true
d-i base-installer/install-recommends boolean false
d-i base-installer/kernel/image string linux-image-amd64
d-i apt-setup/services-select multiselect
d-i apt-setup/non-free-firmware boolean false
d-i apt-setup/non-free boolean false
d-i apt-setup/contrib boolean false
d-i apt-setup/cdrom/set-first boolean false
tasksel tasksel/first multiselect
d-i pkgsel/run_tasksel boolean false
d-i pkgsel/include string
d-i pkgsel/upgrade select none
d-i pkgsel/update-policy select none
popularity-contest popularity-contest/participate boolean false
d-i grub-installer/only_debian boolean true
d-i grub-installer/with_other_os boolean false
d-i grub-installer/bootdev string {disk}
d-i debian-installer/add-kernel-opts string console=ttyS0,115200
d-i finish-install/reboot_in_progress note
d-i preseed/late_command string {late_command}
"""


@dataclass(frozen=True)
class Installee:
    """The one machine the installer scenario installs."""

    mac: str
    hostname: str


def preseed_path(host: Installee) -> str:
    """The URL path d-i fetches its preseed from (APPEND's url= as pxed fills it in)."""
    return f"/trees/{PRESEED_TREE}/{host.hostname}.cfg"


def late_command(server: IPv4Address, host: Installee, token: str) -> str:
    """pxed's done callback from d-i's shell: an HTTP/1.0 POST through busybox nc.

    The token travels in a header, never in the URL; the reply's status line goes to the
    installer's syslog so a refused callback shows there.
    """
    request = (
        f"POST /api/hosts/{host.mac}/done HTTP/1.0\\r\\nHost: {server}\\r\\n"
        f"X-Pxed-Token: {token}\\r\\nContent-Length: 0\\r\\n\\r\\n"
    )
    return f"printf '{request}' | nc -w 30 {server} {HTTP_PORT} | head -n 1 | logger -t pxed-done"


def render_preseed(server: IPv4Address, host: Installee, token: str) -> str:
    return PRESEED.format(
        hostname=host.hostname,
        mac=host.mac,
        domain=DOMAIN,
        server=server,
        mirror_tree=MIRROR_TREE,
        suite=SUITE,
        codename=CODENAME,
        root_password=ROOT_PASSWORD,
        disk=DISK,
        late_command=late_command(server, host, token),
    )


def fill_tftp_root(root: Path) -> Path:
    """The netboot package's kernel and initrd, under the names the profile gives them."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(NETBOOT_KERNEL, root / KERNEL)
    shutil.copyfile(NETBOOT_INITRD, root / INITRD)
    return root


def write_config(
    lab: BootLab, host: Installee, mirror: Path, workdir: Path, mode: DhcpMode = "full"
) -> Path:
    """pxed's YAML (DHCP, the d-i profile, the trees) and the preseed file.

    Full mode: pxed leases from a subnet with router: and dns:. Proxy mode: another server
    leases (lab.bootlab.start_address_server, with dns) and pxed only says what to boot.
    The profile's kernel and initrd are looked up in workdir/tftp (fill_tftp_root).
    """
    state_dir = workdir / "state"
    # The token the host's done callback must carry: install generation 0 of a new state.
    token = host_token(load_secret(state_dir), host.mac)
    preseeds = workdir / "preseeds"
    preseeds.mkdir(parents=True, exist_ok=True)
    (preseeds / f"{host.hostname}.cfg").write_text(render_preseed(lab.server_ip, host, token))
    tftp_root = workdir / "tftp"
    server = str(lab.server_ip)
    append = APPEND.format(tree=PRESEED_TREE, domain=DOMAIN)
    config = {
        "server": {"address": server, "interfaces": [lab.bridge.name], "state_dir": str(state_dir)},
        "tftp": {"root": str(tftp_root), "listen": [server]},
        "dhcp": _dhcp(lab) if mode == "full" else {"mode": "proxy"},
        "http": {"listen": [server], "port": HTTP_PORT},
        "trees": {MIRROR_TREE: {"path": str(mirror)}, PRESEED_TREE: {"path": str(preseeds)}},
        "profiles": {PROFILE: {"kernel": KERNEL, "initrd": INITRD, "append": append}},
        "hosts": [{"mac": host.mac, "hostname": host.hostname, "profile": PROFILE}],
        "logging": {"level": "info"},
    }
    path = workdir / "pxed.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _dhcp(lab: BootLab) -> dict[str, object]:
    """Full mode: what d-i needs from DHCP to reach its preseed unasked."""
    server = str(lab.server_ip)
    subnet = {
        "network": str(lab.subnet),
        "range": [str(lab.address(100)), str(lab.address(200))],
        "lease_time": 3600,
        # d-i's udhcpc script (sh -e) dies adding a default route via an empty router,
        # before it writes resolv.conf: without option 3 d-i then stops at "Name server
        # addresses", as it does without dns:.
        "router": server,
        "dns": [server],
        "domain": DOMAIN,
    }
    return {"mode": "full", "subnets": [subnet]}


def served(pxed_log: str) -> list[str]:
    """What pxed answered over HTTP, in order: `"GET /path HTTP/1.x" status` per request."""
    return re.findall(r'"(?:GET|POST|HEAD) \S+ HTTP/1\.\d" \d+', pxed_log)


def wait_served(pxed: Background, boot: Boot, path: str, timeout: float) -> str:
    """Wait until pxed answered `path` (a regex) with 200; BootError with the progress if not.

    Fails early when QEMU exits or d-i shows an error dialog: waiting longer is pointless.
    """
    wanted = re.compile(rf'"(?:GET|POST) {path} HTTP/1\.\d" 200')
    deadline = time.monotonic() + timeout
    while True:
        found = wanted.search(pxed.output())
        if found is not None:
            return found.group(0)
        why = ""
        if not boot.proc.running():
            why = f"QEMU exited (status {boot.proc.returncode})"
        elif (stopped := INSTALLER_STOPPED.search(boot.console)) is not None:
            why = f"the installer stopped: {stopped.group(0).strip()!r}"
        elif time.monotonic() > deadline:
            why = f"gave up after {timeout:g} s"
        if why:
            boot.stop()
            raise BootError(f"{why} before pxed served {path}\n{progress(pxed, boot)}")
        time.sleep(1.0)


def progress(pxed: Background, boot: Boot) -> str:
    """How far the installer got: pxed's host state changes, what it served, the console."""
    log = pxed.output()
    states = re.findall(r"host \S+: \S+ -> \S+.*", log)
    lines = served(log)
    udebs = sum(".udeb HTTP" in line for line in lines)
    debs = sum(".deb HTTP" in line for line in lines)
    others = [line for line in lines if ".deb HTTP" not in line and ".udeb HTTP" not in line]
    return "\n".join(
        [
            f"pxed log {pxed.log}; console {boot.console_path}",
            "host states: " + ("; ".join(states) or "none"),
            f"pxed served {len(lines)} HTTP requests: {udebs} udebs, {debs} debs, and:",
            *(f"  {line}" for line in others[-40:]),
            "console (tail):",
            boot.console[-3000:],
        ]
    )
