"""The files a network boot fetches over TFTP, copied from Debian's packages into a root.

The same root serves the dnsmasq reference and pxed: the BIOS loader (pxelinux.0 and its
ldlinux.c32), the UEFI loader (syslinux.efi and ldlinux.e64), the Secure Boot chain (Debian's
signed shim and GRUB), and the guest's kernel and initrd under the names the per-MAC configs
use.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from lab.guest import Guest
from lab.qemu import Firmware

KERNEL_NAME = "vmlinuz"
INITRD_NAME = "initrd.gz"
PXELINUX = Path("/usr/lib/PXELINUX/pxelinux.0")
LDLINUX = Path("/usr/lib/syslinux/modules/bios/ldlinux.c32")
SYSLINUX_EFI = Path("/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi")
LDLINUX_E64 = Path("/usr/lib/syslinux/modules/efi64/ldlinux.e64")
LOADERS: dict[Firmware, tuple[tuple[Path, str], ...]] = {
    "bios": ((PXELINUX, "pxelinux"), (LDLINUX, "syslinux-common")),
    "uefi": ((SYSLINUX_EFI, "syslinux-efi"), (LDLINUX_E64, "syslinux-efi")),
}

# Secure Boot (docs/firmware.md): shim is what the firmware runs (signed by Microsoft's UEFI
# CA); it loads grubx64.efi from its own folder, so Debian's signed GRUB netboot image is
# served under that name. (path, name in the root, Debian package)
SIGNED_LOADERS = (
    (Path("/usr/lib/shim/shimx64.efi.signed"), "shimx64.efi", "shim-signed"),
    (
        Path("/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed"),
        "grubx64.efi",
        "grub-efi-amd64-signed",
    ),
)


def missing_loaders(firmware: Firmware) -> str:
    """Why this firmware's loader cannot be served here ("" when it can): a skip reason."""
    for path, package in LOADERS[firmware]:
        if not path.exists():
            return f"needs {path} (Debian package {package})"
    return ""


def missing_signed_loaders() -> str:
    """Why the Secure Boot chain cannot be served here ("" when it can): a skip reason."""
    for path, _, package in SIGNED_LOADERS:
        if not path.exists():
            return f"needs {path} (Debian package {package})"
    return ""


def fill_tftp_root(root: Path, guest: Guest) -> Path:
    """Every loader that is installed, the guest kernel and initrd; pxelinux.cfg/ empty."""
    (root / "pxelinux.cfg").mkdir(parents=True, exist_ok=True)
    files = [(path, path.name) for loaders in LOADERS.values() for path, _ in loaders]
    files += [(path, name) for path, name, _ in SIGNED_LOADERS]
    files += [(guest.kernel, KERNEL_NAME), (guest.initrd, INITRD_NAME)]
    for source, name in files:
        if source.exists():
            shutil.copyfile(source, root / name)
    return root
