"""QEMU machines that boot from the network: BIOS (SeaBIOS + iPXE ROM), UEFI (OVMF + iPXE,
or OVMF's own PXE), or ARM64 (AAVMF, the ARM64 build of the same EDK II firmware).

A `Machine` is the hardware that outlives one power cycle: MAC, SMBIOS UUID, a blank disk
and (UEFI) its own copy of OVMF's variable store. `Machine.boot()` powers it on inside the
lab namespace and returns a `Boot` whose console (SeaBIOS, iPXE, pxelinux, the kernel and
our initrd, all on the serial port thanks to `-nographic`) is the QEMU process's output log.

The disk is tiny and blank by default so that a local boot fails fast ("No bootable device"
or the UEFI boot manager giving up) instead of hanging: a second boot that gets the
local-boot config is recognised from the console, and the test bounds the wait. A machine
that a real installer installs asks for more memory and a disk of some gigabytes (sparse).

The ARM64 machine is QEMU's `virt` board with a Cortex-A57, always under TCG (the host is
x86): AAVMF's own PXE client on a virtio NIC, the console on the board's PL011 (ttyAMA0).

KVM only when kvm_intel or kvm_amd is loaded: on these machines /dev/kvm belongs to
kvm_pvm, under which SeaBIOS resets and OVMF stops with an emulation failure.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NoReturn

from lab.bootlab import BootLab
from lab.guest import KS_BEGIN, KS_END, MARK_FAIL, MARK_OK
from lab.netns import Background

Firmware = Literal["bios", "uefi", "arm64"]

IPXE_ROMS = Path("/usr/lib/ipxe/qemu")
ROMS: dict[Firmware, Path] = {
    "bios": IPXE_ROMS / "pxe-e1000.rom",
    "uefi": IPXE_ROMS / "efi-e1000.rom",
}
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
# Secure Boot: the build that enforces it (and needs SMM to guard its variables, hence q35),
# with a variable store that has Microsoft's KEK and db enrolled: the UEFI CA in db is what
# signs shim, as on a stock server.
OVMF_SECBOOT_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd")
OVMF_MS_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.ms.fd")
SECURE_BOOT_MACHINE = [
    "-machine", "q35,smm=on", "-global", "driver=cfi.pflash01,property=secure,value=on",
]  # fmt: skip
QEMU = "qemu-system-x86_64"
# OVMF tries PXEv4, PXEv6, HTTPv4, HTTPv6 on a NIC, and bootindex cannot order entries of
# one NIC. So for HTTP Boot over IPv6 first: PXE off, and the whole IPv4 stack (which takes
# the HTTPv4 entry with it); then 3 s in the boot manager, without which HTTPv6 failed at
# once with no DHCPv6 sent, presumably before its link-local address was ready
# (docs/firmware.md).
OVMF_HTTPV6_FIRST = [
    "-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=n",
    "-fw_cfg", "name=opt/org.tianocore/IPv6PXESupport,string=n",
    "-fw_cfg", "name=opt/org.tianocore/IPv4Support,string=n",
    "-boot", "menu=on,splash-time=3000",
]  # fmt: skip
QEMU_ARM64 = "qemu-system-aarch64"
# One code image for both; Secure Boot is the variable store's: AAVMF_VARS.fd has no keys,
# AAVMF_VARS.ms.fd Debian's PK and Microsoft's KEK and db with Secure Boot on (no SMM
# needed on ARM64, so nothing else changes).
AAVMF_CODE = Path("/usr/share/AAVMF/AAVMF_CODE.fd")
AAVMF_VARS = Path("/usr/share/AAVMF/AAVMF_VARS.fd")
AAVMF_MS_VARS = Path("/usr/share/AAVMF/AAVMF_VARS.ms.fd")
# cortex-a57 rather than max: max adds pointer authentication, slow under TCG per QEMU docs.
ARM64_MACHINE = ["-machine", "virt", "-cpu", "cortex-a57"]
# A boot under TCG on a shared 2-core machine: 20-35 s measured, so this is generous.
BOOT_TIMEOUT = 240.0
# What a console shows when the firmware fell through to the (blank) local disk.
# SeaBIOS names the disk it tries; pxelinux says it leaves for the local disk; iPXE, or
# OVMF's own PXE ("failed to start": loaded and run), says a loader it ran (syslinux.efi
# told to LOCALBOOT) handed control back, after which OVMF would spend minutes on its
# other network boot options before the disk; OVMF's boot manager reports the blank
# disk's failure.
LOCAL_BOOT = re.compile(
    r"Booting from Hard Disk|No bootable device|Boot failed|Booting from local disk"
    r"|Could not boot image"
    r'|BdsDxe: failed to start Boot\d+ "UEFI PXEv4'
    r'|BdsDxe: failed to load Boot\d+ "UEFI QEMU HARDDISK'
)
# The firmware tried every device (SeaBIOS gives up, OVMF starts its shell): waiting
# longer for anything else is pointless.
NO_BOOT_DEVICE = re.compile(r"No bootable device|UEFI Interactive Shell")
# Our kernel started: the installer path was taken.
KERNEL_STARTED = re.compile(r"Linux version \d")


class BootError(AssertionError):
    """The VM did not reach the expected point; the message carries the console's tail."""


def missing_firmware(firmware: Firmware) -> str:
    """Why this firmware cannot run here ("" when it can): a skip reason naming the package."""
    if firmware == "arm64":
        return missing_arm64_firmware()
    needed = [(ROMS[firmware], "ipxe-qemu")]
    if firmware == "uefi":
        needed += [(OVMF_CODE, "ovmf"), (OVMF_VARS, "ovmf")]
    for path, package in needed:
        if not path.exists():
            return f"needs {path} (Debian package {package})"
    return ""


def missing_arm64_firmware() -> str:
    """Why an ARM64 VM cannot run here ("" when it can): a skip reason naming the package."""
    if shutil.which(QEMU_ARM64) is None:
        return f"needs {QEMU_ARM64} (Debian package qemu-system-arm)"
    for path in (AAVMF_CODE, AAVMF_VARS, AAVMF_MS_VARS):
        if not path.exists():
            return f"needs {path} (Debian package qemu-efi-aarch64)"
    return ""


def missing_secure_boot_firmware() -> str:
    """Why OVMF cannot enforce Secure Boot here ("" when it can): a skip reason."""
    for path in (OVMF_SECBOOT_CODE, OVMF_MS_VARS):
        if not path.exists():
            return f"needs {path} (Debian package ovmf)"
    return ""


def accelerator() -> str:
    """kvm where a real KVM module is loaded, else tcg (see the module docstring)."""
    real_kvm = any(Path("/sys/module", m).exists() for m in ("kvm_intel", "kvm_amd"))
    return "kvm" if real_kvm else "tcg"


@dataclass(frozen=True)
class Machine:
    """One virtual machine's persistent identity and disks; boot it as often as needed."""

    name: str
    mac: str
    firmware: Firmware
    workdir: Path
    # False: a virtio NIC without option ROM, so OVMF's own PXE client boots (UEFI only).
    ipxe: bool = True
    # True: OVMF (or AAVMF) enforcing Secure Boot with Microsoft's keys (not BIOS).
    secure_boot: bool = False
    # True: OVMF boots its "UEFI HTTPv6" entry first (UEFI only; see OVMF_HTTPV6_FIRST).
    http_boot_v6: bool = False
    # A real installer needs room: RAM for d-i, a disk it can install onto.
    memory_mb: int = 512
    disk_bytes: int = 1024 * 1024

    @property
    def uuid(self) -> str:
        """A stable SMBIOS UUID from the MAC: option 97 is then non-zero and repeatable."""
        return str(uuid.UUID(bytes=hashlib.sha256(self.mac.encode()).digest()[:16], version=4))

    @property
    def disk(self) -> Path:
        return self.workdir / f"{self.name}-disk.img"

    @property
    def efivars(self) -> Path:
        return self.workdir / f"{self.name}-OVMF_VARS.fd"

    def create(self) -> Machine:
        """Write the blank disk and the variable store (once; later boots keep them)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.disk.exists():
            with self.disk.open("wb") as disk:
                disk.truncate(self.disk_bytes)
        if self.firmware != "bios" and not self.efivars.exists():
            shutil.copyfile(self._vars_template, self.efivars)
        return self

    @property
    def _vars_template(self) -> Path:
        if self.firmware == "arm64":
            return AAVMF_MS_VARS if self.secure_boot else AAVMF_VARS
        return OVMF_MS_VARS if self.secure_boot else OVMF_VARS

    def argv(self, tap: str) -> list[str]:
        """The QEMU command line: network first (bootindex 1), the blank disk second."""
        if self.firmware == "arm64":
            return self._arm64_argv(tap)
        model, rom = ("e1000", ROMS[self.firmware]) if self.ipxe else ("virtio-net-pci", "")
        nic = f"{model},netdev=net0,mac={self.mac},romfile={rom},bootindex=1"
        argv = [
            QEMU, "-name", self.name, "-accel", accelerator(),
            "-m", str(self.memory_mb), "-smp", "1",
            "-nographic", "-no-reboot", "-nic", "none", "-uuid", self.uuid,
            "-netdev", f"tap,id=net0,ifname={tap},script=no,downscript=no",
            "-device", nic,
            "-drive", f"file={self.disk},format=raw,if=none,id=disk0",
            "-device", "ide-hd,drive=disk0,bootindex=2",
        ]  # fmt: skip
        if self.firmware == "uefi":
            code = OVMF_SECBOOT_CODE if self.secure_boot else OVMF_CODE
            argv += SECURE_BOOT_MACHINE if self.secure_boot else []
            argv += [
                "-drive", f"if=pflash,format=raw,readonly=on,file={code}",
                "-drive", f"if=pflash,format=raw,file={self.efivars}",
            ]  # fmt: skip
            argv += OVMF_HTTPV6_FIRST if self.http_boot_v6 else []
        return argv

    def _arm64_argv(self, tap: str) -> list[str]:
        """virt board, AAVMF in its two flash banks, virtio NIC (no ROM) and virtio disk."""
        return [
            QEMU_ARM64, "-name", self.name, "-accel", "tcg", *ARM64_MACHINE,
            "-m", str(self.memory_mb), "-smp", "1",
            "-nographic", "-no-reboot", "-nic", "none", "-uuid", self.uuid,
            "-netdev", f"tap,id=net0,ifname={tap},script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=net0,mac={self.mac},romfile=,bootindex=1",
            "-drive", f"file={self.disk},format=raw,if=none,id=disk0",
            "-device", "virtio-blk-pci,drive=disk0,bootindex=2",
            "-drive", f"if=pflash,format=raw,readonly=on,file={AAVMF_CODE}",
            "-drive", f"if=pflash,format=raw,file={self.efivars}",
        ]  # fmt: skip

    def boot(self, lab: BootLab, label: str = "boot", tap: str | None = None) -> Boot:
        """Power the machine on in the lab namespace, plugged into the lab's tap (or `tap`,
        from lab.another_tap, when several machines run at once)."""
        console = self.workdir / f"{self.name}-{label}.console.log"
        started = time.monotonic()
        return Boot(lab.spawn(self.argv(tap or lab.tap), console), started, self.mac)


@dataclass
class Boot:
    """A running (or finished) power cycle of a Machine; its console is the QEMU log."""

    proc: Background
    started: float
    mac: str

    @property
    def console(self) -> str:
        return self.proc.output()

    @property
    def console_path(self) -> Path:
        return self.proc.log

    def wait_for(self, pattern: re.Pattern[str], timeout: float = BOOT_TIMEOUT) -> re.Match[str]:
        """Wait until the console matches `pattern`; BootError (with the console) otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            console = self.console
            found = pattern.search(console)
            if found is not None:
                return found
            if NO_BOOT_DEVICE.search(console):
                self.stop()
                self._fail(f"the firmware found nothing to boot before {pattern.pattern!r}")
            if not self.proc.running():
                status = self.proc.returncode
                self._fail(f"QEMU exited (status {status}) before {pattern.pattern!r}")
            if time.monotonic() > deadline:
                self.stop()
                self._fail(f"no {pattern.pattern!r} on the console after {timeout:g} s")
            time.sleep(0.2)

    def installed(self, timeout: float = BOOT_TIMEOUT) -> float:
        """Wait for the guest's OK marker; return the wall time from power-on to it."""
        found = self.wait_for(
            re.compile(rf"^({MARK_OK}|{MARK_FAIL}) {re.escape(self.mac)}(.*)$", re.M), timeout
        )
        elapsed = time.monotonic() - self.started
        if found.group(1) != MARK_OK:
            self._fail(f"the guest reported failure:{found.group(2)}")
        return elapsed

    def kickstart(self) -> str:
        """The Kickstart text the guest fetched, as it printed it between its markers."""
        found = re.search(rf"^{KS_BEGIN}\r?\n(.*?)^{KS_END}", self.console, re.M | re.S)
        if found is None:
            self._fail("the guest printed no Kickstart")
        return found.group(1).replace("\r\n", "\n")

    def local_boot(self, timeout: float = BOOT_TIMEOUT) -> str:
        """Wait until the firmware falls through to the local disk; fail if our kernel ran."""
        found = self.wait_for(re.compile(f"{LOCAL_BOOT.pattern}|{KERNEL_STARTED.pattern}"), timeout)
        if KERNEL_STARTED.search(found.group(0)):
            self._fail("the installer kernel booted; expected the local-boot config")
        return found.group(0)

    def powered_off(self, timeout: float = 30.0) -> int:
        """Wait for QEMU to exit by itself (the guest powered off)."""
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """Stop QEMU by the PID we started (no-op once it has exited)."""
        self.proc.stop(grace=2.0)

    def _fail(self, why: str) -> NoReturn:
        tail = self.console[-4000:]
        raise BootError(f"{why}\nconsole {self.console_path} (tail):\n{tail}")
