"""Secure Boot kept working: OVMF enforcing it with Microsoft's keys installs from pxed.

The firmware's own PXE client (virtio NIC, no iPXE ROM) gets `shimx64.efi` from pxed (the
profile's `loader.uefi`): Debian's shim, signed by Microsoft's UEFI CA, which the firmware
checks against db. Shim loads `grubx64.efi` from beside itself (Debian's signed GRUB netboot
image), GRUB reads pxed's `grub/grub.cfg` and the host's `grub.cfg-01-<mac>`, and loads
Debian's signed kernel through shim, which checks it against Debian's key. The kernel saying
`secureboot: Secure boot enabled` shows the chain ran under enforcement, not around it; the
Kickstart fetch and the done callback show pxed's part of it (docs/firmware.md has the
layout and what each stage asked for).

The negative case hands the same firmware an unsigned loader (syslinux.efi, which the plain
UEFI scenario boots): the firmware refuses to run it, and pxed's timeline for the host ends
with that loader's transfer.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from lab.bootfiles import (
    INITRD_NAME,
    KERNEL_NAME,
    fill_tftp_root,
    missing_loaders,
    missing_signed_loaders,
)
from lab.bootlab import BootLab
from lab.guest import Guest
from lab.netns import Background
from lab.qemu import Machine, missing_firmware, missing_secure_boot_firmware
from lab.scenario import HTTP_PORT, PROFILE, HostSpec, Scenario, start_pxed, write_config
from pxed.provisioning.lifecycle import Lifecycle

pytestmark = [pytest.mark.e2e, pytest.mark.netns, pytest.mark.slow]

SIGNED_MAC = "52:54:00:e2:e0:5b"
UNSIGNED_MAC = "52:54:00:e2:e0:5c"
# The kernel's own report, from the firmware's SecureBoot variable as the EFI stub saw it.
SECURE_BOOT_ON = re.compile(r"secureboot: Secure boot enabled")
# OVMF's boot manager when LoadImage fails the signature check.
REFUSED = re.compile(r"BdsDxe: failed to load Boot\d+ .*(Access Denied|Security Violation)")


def _skip_without_secure_boot(*more: str) -> None:
    for reason in (missing_firmware("uefi"), missing_secure_boot_firmware(), *more):
        if reason:
            pytest.skip(reason)


def _completed(pxed: Background) -> list[str]:
    """The files pxed finished sending over TFTP, in order (size probes left out)."""
    return re.findall(r"tftp complete: \S+ (\S+) \d+ bytes", pxed.output())


def _secure_boot_machine(tmp_path: Path, name: str, mac: str) -> Machine:
    return Machine(name, mac, "uefi", tmp_path / "vm", ipxe=False, secure_boot=True).create()


def test_secure_boot_vm_runs_signed_shim_grub_and_kernel_from_pxed_and_installs(
    tmp_path: Path, lab: BootLab, guest: Guest
) -> None:
    """Enforcing firmware -> shim -> GRUB -> pxed's grub.cfg -> signed kernel -> callback.

    The profile has an install tree: Debian's signed GRUB has no http module, so the
    grub.cfg's `insmod http` fails and its kernel and initrd come from the tree over TFTP.
    """
    _skip_without_secure_boot(missing_signed_loaders())
    hostname = "e2e-secure-boot"
    tftp_root = fill_tftp_root(tmp_path / "tftp", guest)
    scenario = Scenario(
        hosts=(HostSpec(SIGNED_MAC, hostname),), loader={"uefi": "shimx64.efi"}, tree=True
    )
    pxed = start_pxed(lab, write_config(lab, scenario, tftp_root, tmp_path))

    boot = _secure_boot_machine(tmp_path, hostname, SIGNED_MAC).boot(lab, "install")
    elapsed = boot.installed()
    boot.powered_off()
    print(f"secure boot: power-on to done callback in {elapsed:.1f} s")

    assert SECURE_BOOT_ON.search(boot.console), "the kernel did not run under Secure Boot"
    chain = ["shimx64.efi", "grubx64.efi", "grub/grub.cfg", f"grub.cfg-01-{SIGNED_MAC}"]
    served = [name.lstrip("/") for name in _completed(pxed)]
    assert [name for name in served if name in chain] == chain, served
    assert served[-2:] == [f"trees/{PROFILE}/{KERNEL_NAME}", f"trees/{PROFILE}/{INITRD_NAME}"]
    assert f"--hostname={hostname}" in boot.kickstart()
    with contextlib.closing(Lifecycle.open(tmp_path / "state")) as states:
        assert states.get(SIGNED_MAC).state == "installed"


def test_secure_boot_firmware_refuses_an_unsigned_loader_and_the_timeline_ends_at_it(
    tmp_path: Path, lab: BootLab, guest: Guest
) -> None:
    """syslinux.efi is fetched, then refused: no file after it, no kernel, no Kickstart."""
    _skip_without_secure_boot(missing_loaders("uefi"))
    hostname = "e2e-unsigned"
    tftp_root = fill_tftp_root(tmp_path / "tftp", guest)
    scenario = Scenario(hosts=(HostSpec(UNSIGNED_MAC, hostname),), loader={"uefi": "syslinux.efi"})
    pxed = start_pxed(lab, write_config(lab, scenario, tftp_root, tmp_path))

    boot = _secure_boot_machine(tmp_path, hostname, UNSIGNED_MAC).boot(lab, "refused")
    refusal = boot.wait_for(REFUSED)
    refused_after = time.monotonic() - boot.started
    boot.stop()
    print(f"secure boot: unsigned loader refused {refused_after:.1f} s after power-on")

    assert "UEFI PXEv4" in refusal.group(0)
    events = _timeline(lab, UNSIGNED_MAC)
    last = events[-1]
    assert (last["kind"], last["fields"].get("file"), last["fields"].get("outcome")) == (
        "tftp",
        "syslinux.efi",
        "complete",
    ), events
    assert {e["fields"]["file"] for e in events if e["kind"] == "tftp"} == {"syslinux.efi"}
    assert _completed(pxed) == ["syslinux.efi"]
    assert "Linux version" not in boot.console


def _timeline(lab: BootLab, mac: str) -> list[dict[str, Any]]:
    """The host's events, oldest first, from pxed's own `/api/hosts/<mac>/timeline`."""
    url = f"http://{lab.server_ip}:{HTTP_PORT}/api/hosts/{mac}/timeline"
    events: list[dict[str, Any]] = json.loads(lab.ns.run(["curl", "-sf", url]).stdout)["events"]
    return events
