"""The guest builder's own pieces, without root, QEMU or apt: cpio layout and module order."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from lab.guest import GuestBuildError, cpio_newc, driver_modules


def _module(moddir: Path, relpath: str, depends: str) -> Path:
    path = moddir / "kernel" / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x7fELF...\0license=GPL\0depends=" + depends.encode() + b"\0name=x\0")
    return path


def test_modules_come_after_their_dependencies_and_builtins_are_left_out(tmp_path: Path) -> None:
    """insmod needs dependencies first; the package has no modules.dep, .modinfo is the source."""
    (tmp_path / "modules.builtin").write_text("kernel/drivers/virtio/virtio.ko\n")
    failover = _module(tmp_path, "net/core/failover.ko", "")
    net_failover = _module(tmp_path, "drivers/net/net_failover.ko", "failover")
    virtio_net = _module(tmp_path, "drivers/net/virtio_net.ko", "virtio,net_failover")
    e1000 = _module(tmp_path, "drivers/net/e1000/e1000.ko", "")

    got = driver_modules(tmp_path, ("e1000", "virtio_net", "net_failover"))

    assert got == [e1000, failover, net_failover, virtio_net]


def test_a_dependency_neither_shipped_nor_built_in_is_an_error(tmp_path: Path) -> None:
    """A kernel package whose driver needs a missing module must not give a silent initrd."""
    (tmp_path / "modules.builtin").write_text("")
    _module(tmp_path, "drivers/net/e1000/e1000.ko", "mystery")
    with pytest.raises(GuestBuildError, match="mystery"):
        driver_modules(tmp_path, ("e1000",))


def test_cpio_has_dev_console_and_the_files_with_their_modes() -> None:
    """busybox cpio reads our newc archive: /dev/console char 5,1, /init executable, data intact."""
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("needs busybox (Debian package busybox-static)")
    archive = cpio_newc({"init": (0o755, b"#!/bin/sh\n"), "modules/order": (0o644, b"e1000\n")})
    listing = subprocess.run(
        [busybox, "cpio", "-tv"], input=archive, capture_output=True, check=True, timeout=10
    ).stdout.decode()
    lines = {line.split()[-1]: line.split()[0] for line in listing.splitlines()}
    assert lines["dev/console"].startswith("crw")
    assert lines["dev"].startswith("d") and lines["modules"].startswith("d")
    assert lines["init"] == "-rwxr-xr-x"
    assert lines["modules/order"] == "-rw-r--r--"
    header = archive[archive.index(b"dev/console\0") - 110 :]
    rdev = (int(header[78:86], 16), int(header[86:94], 16))  # newc rdevmajor, rdevminor
    assert rdev == (5, 1)
