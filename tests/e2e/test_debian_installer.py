"""Debian's own netboot installer installs Debian onto a VM's disk from pxed, unattended.

Not a stand-in: the kernel and initrd are the debian-installer-12-netboot-amd64 package's.
pxed (full DHCP mode with router: and dns:, or proxy mode beside dnsmasq) hands the VM
iPXE's script, the installer fetches its preseed and then every udeb and deb from pxed's
`mirror` tree (lab/debmirror.py), its late_command posts the done callback, it reboots,
pxed hands it local boot and the system boots from its own disk to a login prompt on the
serial console.

Under TCG this takes tens of minutes, so these tests carry the `install` marker, which
`make test` deselects (pyproject addopts); `make install-test` runs them. Each wait is
bounded; a failure says how far the installer got (pxed's state changes, what it served,
the console's tail).
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest

from lab.bootlab import BootLab, start_address_server
from lab.debinstall import (
    LOGIN_PROMPT,
    DhcpMode,
    Installee,
    fill_tftp_root,
    preseed_pattern,
    progress,
    served,
    wait_served,
    write_config,
)
from lab.debmirror import NETBOOT_INITRD, Mirror, MirrorBuildError, build_mirror
from lab.netns import require_binary, require_root
from lab.procs import ProcessError
from lab.qemu import Machine, missing_firmware
from lab.scenario import start_pxed
from pxed.provisioning.lifecycle import Lifecycle

pytestmark = [pytest.mark.install, pytest.mark.e2e, pytest.mark.netns, pytest.mark.slow]

HOST = Installee("52:54:00:d1:12:01", "debinst01")
MEMORY_MB = 1024
DISK_BYTES = 4 * 1024**3
# Under TCG on a busy 2-CPU machine: power-on to the preseed took 2.5-3 min, on to the
# first udeb 1-3 min more; the install itself is not measured yet (see the issue).
TO_PRESEED = 900.0
TO_MIRROR = 900.0
TO_INSTALLED = 5400.0
TO_LOGIN = 900.0
KERNEL_SERVED = '"GET /tftp/linux HTTP/1.1" 200'


@pytest.fixture(scope="module")
def mirror() -> Mirror:
    """The lab's bookworm mirror, built on the first run (minutes), then from its cache."""
    require_root()
    if not NETBOOT_INITRD.exists():
        pytest.skip(f"needs {NETBOOT_INITRD} (Debian package debian-installer-12-netboot-amd64)")
    for tool in ("apt-get", "dpkg-scanpackages"):
        require_binary(tool)
    try:
        return build_mirror()
    except (MirrorBuildError, ProcessError) as exc:
        pytest.fail(f"cannot build the lab's Debian mirror: {exc}")


def machine(tmp_path: Path) -> Machine:
    if reason := missing_firmware("bios"):
        pytest.skip(reason)
    vm = Machine(
        HOST.hostname, HOST.mac, "bios", tmp_path / "vm", memory_mb=MEMORY_MB, disk_bytes=DISK_BYTES
    )
    return vm.create()


@pytest.mark.parametrize("mode", ["full", "proxy"])
def test_debian_installer_fetches_its_preseed_and_installer_components_from_pxed(
    mode: DhcpMode, tmp_path: Path, lab: BootLab, mirror: Mirror
) -> None:
    """The installer's first steps: pxed's preseed, then the mirror's Release, index, udebs.

    Proxy mode: dnsmasq leases (naming a DNS server, which d-i needs), pxed says what to boot.
    """
    if mode == "proxy":
        start_address_server(lab, dns=lab.server_ip)
    fill_tftp_root(tmp_path / "tftp")
    pxed = start_pxed(lab, write_config(lab, HOST, mirror.root, tmp_path, mode))
    boot = machine(tmp_path).boot(lab, "install")
    wait_served(pxed, boot, preseed_pattern(HOST), TO_PRESEED)
    wait_served(pxed, boot, "/trees/mirror/dists/bookworm/Release", TO_MIRROR)
    wait_served(
        pxed, boot, r"/trees/mirror/dists/bookworm/main/debian-installer/\S+/Packages\S*", TO_MIRROR
    )
    wait_served(pxed, boot, r"/trees/mirror/pool/udeb/\S+\.udeb", TO_MIRROR)
    boot.stop()
    assert "debian-installer" in boot.console or "Debian" in boot.console, progress(pxed, boot)


def test_debian_installer_installs_then_the_vm_boots_its_disk_to_a_login_prompt(
    tmp_path: Path, lab: BootLab, mirror: Mirror
) -> None:
    """Done callback, then local boot from pxed, then the installed system's login prompt."""
    if mirror.missing:
        pytest.skip(
            f"the reachable Debian mirror would not give {len(mirror.missing)} udebs the"
            f" installer may need (404), e.g. {', '.join(mirror.missing[:8])}; listed in"
            f" {mirror.root}/missing-udebs.txt"
        )
    fill_tftp_root(tmp_path / "tftp")
    pxed = start_pxed(lab, write_config(lab, HOST, mirror.root, tmp_path))
    vm = machine(tmp_path)
    first = vm.boot(lab, "install")
    wait_served(pxed, first, rf"/api/hosts/{re.escape(HOST.mac)}/done", TO_INSTALLED)
    first.powered_off(timeout=600.0)  # d-i reboots; QEMU runs with -no-reboot
    with contextlib.closing(Lifecycle.open(tmp_path / "state")) as states:
        assert states.get(HOST.mac).state == "installed", progress(pxed, first)

    installers = served(pxed.output()).count(KERNEL_SERVED)
    second = vm.boot(lab, "disk")
    second.wait_for(LOGIN_PROMPT, TO_LOGIN)
    second.stop()
    assert served(pxed.output()).count(KERNEL_SERVED) == installers, "the installer booted again"
    with contextlib.closing(Lifecycle.open(tmp_path / "state")) as states:
        assert states.get(HOST.mac).state == "installed"
