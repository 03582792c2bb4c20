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
from; docs/firmware.md what each stage asked for.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest

from lab.arm64 import INITRD_NAME, KERNEL_NAME, build_arm64_guest, fill_arm64_tftp_root
from lab.bootfiles import fill_tftp_root
from lab.bootlab import BootLab
from lab.guest import Guest, GuestBuildError
from lab.netns import require_binary
from lab.procs import ProcessError
from lab.qemu import Machine, missing_arm64_firmware
from lab.scenario import APPEND, HostSpec, Scenario, start_pxed, write_config
from pxed.provisioning.lifecycle import Lifecycle

pytestmark = [pytest.mark.e2e, pytest.mark.netns, pytest.mark.slow]

ARM64_MAC = "52:54:00:e2:e0:a6"
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


def test_arm64_vm_runs_signed_shim_grub_and_arm64_kernel_from_pxed_and_installs(
    tmp_path: Path, lab: BootLab, guest: Guest, arm64_guest: Guest
) -> None:
    """Option 93 = 11 -> shimaa64.efi -> grubaa64.efi -> cpus.arm64 kernel -> callback."""
    hostname = "e2e-arm64"
    # The x86 files too, as on a mixed fleet's server: the profile's own kernel is x86's.
    tftp_root = fill_arm64_tftp_root(fill_tftp_root(tmp_path / "tftp", guest), arm64_guest)
    scenario = Scenario(
        hosts=(HostSpec(ARM64_MAC, hostname),),
        loader={"arm64": "shimaa64.efi"},
        append=APPEND.replace("console=ttyS0,115200", "console=ttyAMA0"),
        cpus={"arm64": {"kernel": KERNEL_NAME, "initrd": INITRD_NAME}},
    )
    pxed = start_pxed(lab, write_config(lab, scenario, tftp_root, tmp_path))

    machine = Machine(
        hostname, ARM64_MAC, "arm64", tmp_path / "vm", ipxe=False, secure_boot=True
    ).create()
    boot = machine.boot(lab, "install")
    elapsed = boot.installed(ARM64_BOOT_TIMEOUT)
    boot.powered_off()
    print(f"arm64: power-on to done callback in {elapsed:.1f} s")

    assert re.search(r"Linux version \S+-arm64 ", boot.console), "no arm64 kernel ran"
    assert SECURE_BOOT_ON.search(boot.console), "the kernel did not run under Secure Boot"
    served = re.findall(r"tftp complete: \S+ /?(\S+) \d+ bytes", pxed.output())
    assert [name for name in served if name in CHAIN] == CHAIN, served
    assert served[-2:] == [KERNEL_NAME, INITRD_NAME], served
    assert f"--hostname={hostname}" in boot.kickstart()
    with contextlib.closing(Lifecycle.open(tmp_path / "state")) as states:
        assert states.get(ARM64_MAC).state == "installed"
