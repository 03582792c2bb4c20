"""What an ARM64 network boot fetches, from Debian's arm64 packages: loaders and the guest.

The test machine is amd64 and need not know the arm64 architecture (no `dpkg
--add-architecture`): apt here runs with arm64 as its only architecture and with package
lists, package cache and an empty dpkg status of its own under .cache/e2e/arm64/, so
`apt-get download` finds arm64 packages from the machine's own sources and nothing of the
system's apt or dpkg state changes. Only downloads: nothing arm64 is installed.

- Loaders: Debian's signed `shimaa64.efi` (shim-signed) and signed GRUB netboot image
  (grub-efi-arm64-signed), served as `grubaa64.efi`, the name shim loads from beside itself
  on ARM64.
- Guest: the cloud flavour's kernel (21 MB package against the generic one's 60 MB; it
  has virtio) and lab/guest.py's initrd built around the arm64 busybox-static.
"""

from __future__ import annotations

import time
from pathlib import Path

from lab.guest import CACHE, Guest, GuestBuildError, assemble_guest, candidate, extract_package
from lab.procs import ProcessError, run

ARM64_CACHE = CACHE / "arm64"
METAPACKAGE = "linux-image-cloud-arm64"
# virtio_pci is the transport virtio_net needs but does not declare (as on x86).
DRIVERS = ("virtio_pci", "virtio_net")
# (package, path inside it, name in the TFTP root)
LOADERS = (
    ("shim-signed", "usr/lib/shim/shimaa64.efi.signed", "shimaa64.efi"),
    ("grub-efi-arm64-signed", "usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed",
     "grubaa64.efi"),
)  # fmt: skip
KERNEL_NAME = "vmlinuz-arm64"
INITRD_NAME = "initrd-arm64.gz"
# Package lists older than this are fetched again: a superseded version is gone from the
# mirror, and `apt-get download` of it would fail.
LISTS_MAX_AGE = 24 * 3600.0


def apt_options(cache: Path = ARM64_CACHE) -> tuple[str, ...]:
    """apt options for an arm64-only apt whose state lives under `cache`."""
    return (
        "-o", "APT::Architecture=arm64",
        "-o", "APT::Architectures=arm64",
        "-o", f"Dir::State::Lists={cache / 'lists'}",
        "-o", f"Dir::Cache={cache / 'apt'}",
        "-o", "Dir::State::status=/dev/null",
    )  # fmt: skip


def update_lists(cache: Path = ARM64_CACHE) -> tuple[str, ...]:
    """Fetch the arm64 package lists unless fresh ones are there; return the apt options."""
    apt = apt_options(cache)
    lists = cache / "lists"
    stamp = lists / ".updated"
    if stamp.exists() and time.time() - stamp.stat().st_mtime < LISTS_MAX_AGE:
        return apt
    (lists / "partial").mkdir(parents=True, exist_ok=True)
    (cache / "apt" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    try:
        run(["apt-get", "-q", *apt, "update"], timeout=600.0)
    except ProcessError as exc:
        raise GuestBuildError(f"cannot fetch the arm64 package lists: {exc}") from exc
    stamp.touch()
    return apt


def fetch(package: str, cache: Path = ARM64_CACHE) -> Path:
    """The unpacked arm64 `package` (its candidate version), downloaded once."""
    apt = update_lists(cache)
    return extract_package(package, candidate(package, apt), cache, apt)


def build_arm64_guest(cache: Path = ARM64_CACHE) -> Guest:
    """Debian's arm64 cloud kernel and lab/guest.py's initrd with arm64 busybox."""
    busybox = fetch("busybox-static", cache) / "bin" / "busybox"
    if not busybox.exists():
        raise GuestBuildError(f"busybox-static (arm64) has no {busybox}")
    return assemble_guest(METAPACKAGE, busybox.read_bytes(), DRIVERS, cache, update_lists(cache))


def fill_arm64_tftp_root(root: Path, guest: Guest, cache: Path = ARM64_CACHE) -> Path:
    """Signed shim and GRUB for ARM64 and the arm64 guest, under the names above."""
    root.mkdir(parents=True, exist_ok=True)
    files = [(fetch(package, cache) / inside, name) for package, inside, name in LOADERS]
    files += [(guest.kernel, KERNEL_NAME), (guest.initrd, INITRD_NAME)]
    for source, name in files:
        if not source.exists():
            raise GuestBuildError(f"{source} missing: did the Debian package move it?")
        (root / name).write_bytes(source.read_bytes())
    return root
