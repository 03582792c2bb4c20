"""Debian's own netboot installer, installing from pxed: the config and the checks.

The profile boots the kernel and initrd of the debian-installer-12-netboot-amd64 package
(copied into tftp.root; QEMU's iPXE fetches them over pxed's HTTP) and names a preseed
template, so pxed serves the host its preseed at /preseed/<mac> (the signed per-install
URL in the boot config) and adds what d-i needs before it reads it to the command line
(`auto=true priority=critical url=... interface=auto hostname=...`). The preseed names pxed
as the mirror (the `mirror` HTTP tree, built by lab/debmirror.py), installs onto the disk
unattended, and its late_command is pxed's `pxed_done`, which posts the done callback with
the install's token through d-i's busybox nc.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from lab.bootlab import BootLab
from lab.debmirror import CODENAME, NETBOOT_INITRD, NETBOOT_KERNEL, SUITE
from lab.netns import Background
from lab.qemu import Boot, BootError
from lab.scenario import HTTP_PORT

DhcpMode = Literal["full", "proxy"]
PROFILE = "debian12"
KERNEL = "linux"  # in tftp.root, as the netboot package names them
INITRD = "initrd.gz"
MIRROR_TREE = "mirror"
DOMAIN = "lab.pxed"
ROOT_PASSWORD = "pxed-lab"  # the lab VM's, shown on purpose: nothing outside the lab sees it
DISK = "/dev/sda"  # QEMU's ide-hd (lab/qemu.py)
# pxed adds auto=true priority=critical url= interface=auto hostname= (docs/configuration.md);
# the domain is given here because in proxy mode pxed has no subnet to take it from.
APPEND = f"console=ttyS0,115200 domain={DOMAIN}"
# A login prompt from the installed system's getty on the serial console.
LOGIN_PROMPT = re.compile(r"^\S+ login: ", re.M)
# What d-i put on the console when it gave up (a dialog at priority critical).
INSTALLER_STOPPED = re.compile(
    r"\[!!\] .*|Load installer components from .*|Installation step failed|"
    r"Failed to (?:retrieve|load|download) .*",
    re.M,
)

# pxed renders it per host (Jinja2; docs/configuration.md has the names it sees).
PRESEED = """\
# pxed lab preseed for {{ host.hostname }} ({{ mac }})
d-i debian-installer/locale string en_US.UTF-8
d-i keyboard-configuration/xkb-keymap select us
d-i netcfg/choose_interface select auto
d-i netcfg/get_hostname string {{ host.hostname }}
d-i netcfg/get_domain string {{ vars.domain }}
d-i hw-detect/load_firmware boolean false
# The lab mirror's Release is unsigned (lab/debmirror.py).
d-i debian-installer/allow_unauthenticated boolean true
d-i mirror/country string manual
d-i mirror/protocol string http
d-i mirror/http/hostname string {{ server }}:{{ http_port }}
d-i mirror/http/directory string /trees/{{ vars.mirror_tree }}
d-i mirror/http/proxy string
d-i mirror/suite string {{ vars.suite }}
d-i mirror/codename string {{ vars.codename }}
d-i passwd/root-login boolean true
d-i passwd/root-password password {{ vars.root_password }}
d-i passwd/root-password-again password {{ vars.root_password }}
d-i passwd/make-user boolean false
d-i clock-setup/utc boolean true
d-i time/zone string UTC
d-i clock-setup/ntp boolean false
d-i partman-auto/disk string {{ vars.disk }}
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
d-i grub-installer/bootdev string {{ vars.disk }}
d-i debian-installer/add-kernel-opts string console=ttyS0,115200
d-i finish-install/reboot_in_progress note
d-i preseed/late_command string {{ pxed_done }}
"""


@dataclass(frozen=True)
class Installee:
    """The one machine the installer scenario installs."""

    mac: str
    hostname: str


def preseed_pattern(host: Installee) -> str:
    """What pxed's access log shows when d-i fetches its preseed (signature redacted)."""
    return rf"/preseed/{re.escape(host.mac)}/\S+"


def fill_tftp_root(root: Path) -> Path:
    """The netboot package's kernel and initrd, under the names the profile gives them."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(NETBOOT_KERNEL, root / KERNEL)
    shutil.copyfile(NETBOOT_INITRD, root / INITRD)
    return root


def write_config(
    lab: BootLab, host: Installee, mirror: Path, workdir: Path, mode: DhcpMode = "full"
) -> Path:
    """pxed's YAML (DHCP, the d-i profile with its preseed template, the mirror tree).

    Full mode: pxed leases from a subnet with router: and dns:. Proxy mode: another server
    leases (lab.bootlab.start_address_server, with dns) and pxed only says what to boot.
    The profile's kernel and initrd are looked up in workdir/tftp (fill_tftp_root).
    """
    template = workdir / "debian12.preseed.j2"
    template.write_text(PRESEED)
    server = str(lab.server_ip)
    profile = {
        "kernel": KERNEL,
        "initrd": INITRD,
        "append": APPEND,
        "preseed": str(template),
        "vars": {
            "domain": DOMAIN,
            "mirror_tree": MIRROR_TREE,
            "suite": SUITE,
            "codename": CODENAME,
            "root_password": ROOT_PASSWORD,
            "disk": DISK,
        },
    }
    config = {
        "server": {
            "address": server,
            "interfaces": [lab.bridge.name],
            "state_dir": str(workdir / "state"),
        },
        "tftp": {"root": str(workdir / "tftp"), "listen": [server]},
        "dhcp": _dhcp(lab) if mode == "full" else {"mode": "proxy"},
        "http": {"listen": [server], "port": HTTP_PORT},
        "trees": {MIRROR_TREE: {"path": str(mirror)}},
        "profiles": {PROFILE: profile},
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
