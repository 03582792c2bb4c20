"""The lab's Debian mirror builder: its index and Release, and what it reads from d-i's initrd.

No network and no apt: tiny packages built here with dpkg-deb stand in for the downloads.
"""

from __future__ import annotations

import gzip
import hashlib
import subprocess
from pathlib import Path

from lab.debmirror import (
    INDEXES,
    Initrd,
    read_initrd,
    release_file,
    wanted_udebs,
    write_index,
)
from lab.guest import cpio_newc
from lab.netns import require_binary


def _package(pool: Path, name: str, suffix: str) -> None:
    """A minimal binary package `name` 1.0 in `pool`, as dpkg-deb builds it."""
    tree = pool.parent / f"build-{name}"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: 1.0\nArchitecture: amd64\nMaintainer: lab <lab@pxed>\n"
        f"Priority: standard\nSection: misc\nDescription: {name} for the index test\n"
    )
    pool.mkdir(parents=True, exist_ok=True)
    target = pool / f"{name}_1.0_amd64{suffix}"
    subprocess.run(
        ["dpkg-deb", "--build", "--root-owner-group", str(tree), str(target)],
        check=True,
        capture_output=True,
        timeout=60,
    )


def test_index_and_release_describe_every_deb_and_udeb_with_its_checksums(tmp_path: Path) -> None:
    """Packages (plain and .gz) name each file by its pool path; Release hashes each index."""
    require_binary("dpkg-deb")
    require_binary("dpkg-scanpackages")
    root = tmp_path / "mirror"
    _package(root / "pool" / "main", "hello-lab", ".deb")
    _package(root / "pool" / "udeb", "hello-lab-udeb", ".udeb")
    dists = root / "dists" / "bookworm"
    write_index(root, "pool/main", "deb", dists / "main" / "binary-amd64")
    write_index(root, "pool/udeb", "udeb", dists / "main" / "debian-installer" / "binary-amd64")

    debs = (dists / "main" / "binary-amd64" / "Packages").read_text()
    udebs = (dists / "main" / "debian-installer" / "binary-amd64" / "Packages").read_text()
    assert "Package: hello-lab\n" in debs
    assert "Filename: pool/main/hello-lab_1.0_amd64.deb\n" in debs
    assert "Filename: pool/udeb/hello-lab-udeb_1.0_amd64.udeb\n" in udebs
    assert "udeb" not in debs
    deb = (root / "pool" / "main" / "hello-lab_1.0_amd64.deb").read_bytes()
    assert f"SHA256: {hashlib.sha256(deb).hexdigest()}\n" in debs
    gz = dists / "main" / "binary-amd64" / "Packages.gz"
    assert gzip.decompress(gz.read_bytes()).decode() == debs

    release = release_file(dists, {"Suite": "oldstable", "Codename": "bookworm"})
    assert release.startswith("Suite: oldstable\nCodename: bookworm\n")
    for index in INDEXES:
        data = (dists / index).read_bytes()
        line = f" {hashlib.sha256(data).hexdigest()} {len(data):>16} {index}\n"
        assert line in release.partition("SHA256:\n")[2]
        assert f" {hashlib.md5(data).hexdigest()} " in release.partition("MD5Sum:\n")[2]


def test_udebs_built_for_another_kernel_or_already_in_the_initrd_are_left_out() -> None:
    initrd = Initrd("6.1.0-50-amd64", frozenset({"anna", "nic-modules-6.1.0-50-amd64-di"}))
    available = [
        "anna",
        "partman-ext3",
        "nic-modules-6.1.0-50-amd64-di",
        "ext4-modules-6.1.0-50-amd64-di",
        "ext4-modules-6.1.0-47-amd64-di",
        "kernel-image-6.1.0-47-amd64-di",
    ]
    assert wanted_udebs(available, initrd) == ["ext4-modules-6.1.0-50-amd64-di", "partman-ext3"]


def test_the_initrd_tells_its_kernel_abi_and_the_udebs_it_holds(tmp_path: Path) -> None:
    status = "Package: anna\nStatus: install ok installed\n\nPackage: netcfg\nVersion: 1\n"
    files = {
        "var/lib/dpkg/status": (0o644, status.encode()),
        "lib/modules/6.1.0-50-amd64/modules.dep": (0o644, b""),
        "init": (0o755, b"#!/bin/sh\n"),
    }
    initrd = tmp_path / "initrd.gz"
    initrd.write_bytes(gzip.compress(cpio_newc(files)))
    assert read_initrd(initrd) == Initrd("6.1.0-50-amd64", frozenset({"anna", "netcfg"}))
