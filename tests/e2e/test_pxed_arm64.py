"""ARM64, for real: an emulated ARM64 server installs from pxed with Debian's arm64 boot chain.

QEMU's `virt` board (Cortex-A57, TCG) runs AAVMF with Microsoft's keys enrolled and Secure
Boot on; its own PXE client on a virtio NIC asks DHCP with option 93 = 11 (ARM64 UEFI).
pxed answers with the profile's `loader.arm64`, Debian's signed `shimaa64.efi`, which the
firmware checks; shim loads `grubaa64.efi` beside it (Debian's signed GRUB netboot image for
arm64) and checks it, GRUB reads pxed's `grub/grub.cfg` and the host's `grub.cfg-01-<mac>`,
whose `$grub_cpu` branch picks the profile's `cpus.arm64` kernel and initrd: Debian's signed
arm64 cloud kernel (checked through shim; its `secureboot: Secure boot enabled` shows the
chain ran under enforcement) and lab/guest.py's initrd with arm64 busybox. The guest fetches
its Kickstart from pxed over HTTP and calls back. lab/arm64.py says where the files come
from; docs/firmware.md what each stage asked for. An x86 UEFI and an x86 BIOS machine boot
from the same pxed at the same time, each getting its own loader.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest

from lab.arm64 import INITRD_NAME, KERNEL_NAME, build_arm64_guest, fill_arm64_tftp_root
from lab.bootfiles import fill_tftp_root, missing_loaders
from lab.bootlab import BootLab
from lab.guest import Guest, GuestBuildError
from lab.netns import require_binary
from lab.procs import ProcessError
from lab.qemu import Machine, missing_arm64_firmware, missing_firmware
from lab.scenario import APPEND, HostSpec, Scenario, start_pxed, write_config
from pxed.provisioning.lifecycle import Lifecycle

pytestmark = [pytest.mark.e2e, pytest.mark.netns, pytest.mark.slow]

ARM64_MAC = "52:54:00:e2:e0:a6"
UEFI_MAC = "52:54:00:e2:e0:a7"
BIOS_MAC = "52:54:00:e2:e0:a8"
# TCG emulating an ARM64 CPU on a loaded x86 host: the boot is several times an x86 one's.
ARM64_BOOT_TIMEOUT = 600.0
# GRUB asks for the kernel only after GRUB itself runs, so this pins "an arm64 GRUB ran".
SECURE_BOOT_ON = re.compile(r"secureboot: Secure boot enabled")
CHAIN = ["shimaa64.efi", "grubaa64.efi", "grub/grub.cfg", f"grub.cfg-01-{ARM64_MAC}"]


@pytest.fixture(scope="session")
def arm64_guest() -> Guest:
    """Debian's arm64 kernel and our initrd with arm64 busybox, fetched once (cached)."""
    reason = missing_arm64_firmware()
    if reason:
        pytest.skip(reason)
    require_binary("apt-get")
    try:
        return build_arm64_guest()
    except (GuestBuildError, ProcessError) as exc:
        pytest.skip(f"cannot build the arm64 e2e guest: {exc}")


def test_a_mixed_fleet_x86_bios_x86_uefi_and_arm64_each_gets_its_loader_from_one_pxed(
    tmp_path: Path, lab: BootLab, guest: Guest, arm64_guest: Guest
) -> None:
    """One pxed, three machines powered on together, each handed the loader it can run.

    ARM64 (AAVMF, Secure Boot): option 93 = 11 -> shimaa64.efi -> grubaa64.efi -> the
    cpus.arm64 kernel. x86 UEFI (OVMF's own PXE): grubx64.efi -> the profile's x86 kernel,
    the same grub.cfg's other branch. x86 BIOS (QEMU's iPXE ROM): pxelinux.0. All three
    fetch their own Kickstart and call back.
    """
    for reason in (missing_firmware("bios"), missing_firmware("uefi"), missing_loaders("uefi")):
        if reason:
            pytest.skip(reason)
    # The x86 files too, as on a mixed fleet's server: the profile's own kernel is x86's.
    tftp_root = fill_arm64_tftp_root(fill_tftp_root(tmp_path / "tftp", guest), arm64_guest)
    fleet = {
        "arm64": Machine("e2e-arm64", ARM64_MAC, "arm64", tmp_path / "vm", False, True),
        "uefi": Machine("e2e-x86-uefi", UEFI_MAC, "uefi", tmp_path / "vm", ipxe=False),
        "bios": Machine("e2e-x86-bios", BIOS_MAC, "bios", tmp_path / "vm"),
    }
    scenario = Scenario(
        hosts=tuple(HostSpec(vm.mac, vm.name) for vm in fleet.values()),
        loader={"arm64": "shimaa64.efi", "uefi": "grubx64.efi", "ipxe": "pxelinux.0"},
        # Each kernel writes to the console its board has; the other one is ignored.
        append=APPEND.replace("console=ttyS0,115200", "console=ttyS0,115200 console=ttyAMA0"),
        cpus={"arm64": {"kernel": KERNEL_NAME, "initrd": INITRD_NAME}},
    )
    pxed = start_pxed(lab, write_config(lab, scenario, tftp_root, tmp_path))

    boots = {
        kind: vm.create().boot(lab, "install", lab.another_tap(n))
        for n, (kind, vm) in enumerate(fleet.items())
    }
    for kind, boot in boots.items():
        elapsed = boot.installed(ARM64_BOOT_TIMEOUT)
        boot.powered_off()
        print(f"{kind}: power-on to done callback in {elapsed:.1f} s")

    arm64 = boots["arm64"].console
    assert re.search(r"Linux version \S+-arm64 ", arm64), "no arm64 kernel ran"
    assert SECURE_BOOT_ON.search(arm64), "the arm64 kernel did not run under Secure Boot"
    assert "-arm64 " not in boots["uefi"].console.split("Linux version", 1)[1][:80]
    log = pxed.output()
    for loader, config in (
        ("shimaa64.efi", f"grub.cfg-01-{ARM64_MAC}"),
        ("grubx64.efi", f"grub.cfg-01-{UEFI_MAC}"),
        ("pxelinux.0", f"pxelinux.cfg/01-{BIOS_MAC.replace(':', '-')}"),
    ):
        client = _tftp_client(log, config)
        assert re.search(rf"tftp complete: {re.escape(client)}:\d+ /?{re.escape(loader)} ", log)
    arm64_client = re.escape(_tftp_client(log, f"grub.cfg-01-{ARM64_MAC}"))
    served = re.findall(rf"tftp complete: {arm64_client}:\d+ /?(\S+) \d+ bytes", log)
    assert [name for name in served if name in CHAIN] == CHAIN, served
    assert served[-2:] == [KERNEL_NAME, INITRD_NAME], served
    with contextlib.closing(Lifecycle.open(tmp_path / "state")) as states:
        for kind, vm in fleet.items():
            assert f"--hostname={vm.name}" in boots[kind].kickstart()
            assert states.get(vm.mac).state == "installed"


def _tftp_client(log: str, name: str) -> str:
    """The address that fetched ``name`` over TFTP, from pxed's log."""
    found = re.search(rf"tftp complete: (\S+):\d+ /?{re.escape(name)} ", log)
    assert found is not None, f"nobody fetched {name}"
    return found.group(1)
