"""Scenarios a-c: a VM installs from `twistd pxed`, then its next boot skips the installer.

Each VM knows nothing but its MAC. pxed's DHCP points its firmware at a loader, pxed
generates the per-MAC boot config, the guest kernel fetches /ks/<mac>, checks it names the
host and runs the done callback of its %post (lab/guest.py); pxed then has the host
`installed` (netboot: once), so the second power-on gets the local-boot config and falls
through to the blank disk.

QEMU's NIC ROMs are iPXE, which pxed rightly answers with its iPXE script (scenario c).
Scenarios a and b send the ROM to pxelinux.0 / syslinux.efi instead with the profile's
`loader.ipxe`, the way a site with plain PXE firmware would see it. b-uefi-ovmf-pxe is
that plain firmware: OVMF's own PXE client (virtio NIC, no ROM), which pxed sends to
syslinux.efi by its architecture (option 93 = 7) with no override.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.bootfiles import KERNEL_NAME, fill_tftp_root, missing_loaders
from lab.bootlab import BootLab
from lab.guest import Guest
from lab.qemu import Firmware, Machine, missing_firmware
from lab.scenario import HostSpec, Scenario, start_pxed, write_config
from pxed.provisioning.lifecycle import Lifecycle

pytestmark = [pytest.mark.e2e, pytest.mark.netns, pytest.mark.slow]


@dataclass(frozen=True)
class Case:
    firmware: Firmware
    mac: str
    loader: dict[str, str]
    boot_file: str  # what iPXE must print as "Filename:" (the path pxed chose)
    kernel_request: str  # how pxed's log shows the kernel being fetched
    ipxe: bool = True  # False: OVMF's own PXE client on a virtio NIC, no iPXE at all


CASES = {
    "a-bios-pxelinux": Case(
        "bios", "52:54:00:e2:e0:0a", {"ipxe": "pxelinux.0"}, "pxelinux.0",
        rf"tftp complete: \S+ /?{KERNEL_NAME} ",
    ),
    "b-uefi-syslinux": Case(
        "uefi", "52:54:00:e2:e0:0b", {"ipxe": "syslinux.efi"}, "syslinux.efi",
        rf"tftp complete: \S+ /?{KERNEL_NAME} ",
    ),
    "b-uefi-ovmf-pxe": Case(
        "uefi", "52:54:00:e2:e0:1b", {}, "syslinux.efi",
        rf"tftp complete: \S+ /?{KERNEL_NAME} ", ipxe=False,
    ),
    "c-ipxe-http": Case(
        "bios", "52:54:00:e2:e0:0c", {}, "http://",
        rf'"GET /\S*{KERNEL_NAME} HTTP/1.1" 200',
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_vm_installs_from_pxed_then_boots_its_local_disk(
    name: str, tmp_path: Path, lab: BootLab, guest: Guest
) -> None:
    """Marker, this host's Kickstart, the chosen boot path, state installed; then local boot."""
    case = CASES[name]
    for reason in (missing_firmware(case.firmware), missing_loaders(case.firmware)):
        if reason:
            pytest.skip(reason)
    hostname = f"e2e-{name}"
    tftp_root = fill_tftp_root(tmp_path / "tftp", guest)
    scenario = Scenario(hosts=(HostSpec(case.mac, hostname),), loader=case.loader)
    pxed = start_pxed(lab, write_config(lab, scenario, tftp_root, tmp_path))
    machine = Machine(hostname, case.mac, case.firmware, tmp_path / "vm", case.ipxe).create()

    first = machine.boot(lab, "install")
    first.installed()
    first.powered_off()
    assert re.search(rf"(?:Filename:|NBP filename is) {case.boot_file}", first.console)
    assert re.search(case.kernel_request, pxed.output()), f"kernel not fetched as {name} says"
    kickstart = first.kickstart()
    assert f"--hostname={hostname}" in kickstart
    assert f"/api/hosts/{case.mac}/done" in kickstart
    with contextlib.closing(Lifecycle.open(tmp_path / "state")) as states:
        assert states.get(case.mac).state == "installed"

    second = machine.boot(lab, "local")
    second.local_boot()
    second.stop()
    with contextlib.closing(Lifecycle.open(tmp_path / "state")) as states:
        assert states.get(case.mac).state == "installed", "the local boot fetched a Kickstart"
