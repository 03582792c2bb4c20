"""ISO 9660 trees: the index of real xorriso images, and HTTP answers straight from the image."""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import weakref
from pathlib import Path

import pytest
from twisted.internet.task import Clock

from pxed.files.iso9660 import IsoDirectory, IsoError, IsoFile, IsoImage
from pxed.web.trees import IsoTree, build_site
from tests.pxed.web.test_trees import fetch
from tests.support.isoimage import make_iso, xorriso

LONG = "a-rock-ridge-name-much-longer-than-joliet-allows-" + "x" * 70 + ".rpm"
KERNEL = os.urandom(300_000)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("isosrc")
    (root / "images" / "pxeboot").mkdir(parents=True)
    (root / "images" / "pxeboot" / "vmlinuz").write_bytes(KERNEL)
    (root / "Packages" / "a" / "b" / "c").mkdir(parents=True)
    (root / "Packages" / LONG).write_bytes(b"rpm bytes")
    (root / "Packages" / "a" / "b" / "c" / "deep.txt").write_text("deep\n")
    (root / "EFI" / "BOOT").mkdir(parents=True)
    (root / "EFI" / "BOOT" / "BOOTX64.EFI").write_bytes(b"MZ")
    (root / "empty").write_bytes(b"")
    (root / "MixedCase.TXT").write_text("case\n")
    (root / "debian").symlink_to(".")
    (root / "kernel").symlink_to("images/pxeboot/vmlinuz")
    (root / "escape").symlink_to("/../../../etc/passwd")
    (root / "loop").symlink_to("loop")
    return root


@pytest.fixture(scope="module")
def image(source: Path, tmp_path_factory: pytest.TempPathFactory) -> IsoImage:
    path = make_iso(source, tmp_path_factory.mktemp("iso") / "tree.iso")
    opened = IsoImage(path)
    yield opened
    opened.close()


def read(image: IsoImage, node: IsoFile | IsoDirectory | None) -> bytes:
    assert isinstance(node, IsoFile)
    return b"".join(os.pread(image.fd, length, offset) for offset, length in node.extents)


def test_rock_ridge_long_names_and_case_are_kept(image: IsoImage) -> None:
    assert read(image, image.lookup([b"Packages", LONG.encode()])) == b"rpm bytes"
    assert read(image, image.lookup([b"MixedCase.TXT"])) == b"case\n"


def test_file_extents_hold_the_file_bytes(image: IsoImage) -> None:
    node = image.lookup([b"images", b"pxeboot", b"vmlinuz"])
    assert read(image, node) == KERNEL


def test_nested_directories_and_empty_files(image: IsoImage) -> None:
    assert read(image, image.lookup(b"Packages/a/b/c/deep.txt".split(b"/"))) == b"deep\n"
    assert image.lookup([b"Packages", b"a"]) == IsoDirectory()
    empty = image.lookup([b"empty"])
    assert isinstance(empty, IsoFile) and empty.size == 0


def test_symlinks_resolve_inside_the_image(image: IsoImage) -> None:
    assert read(image, image.lookup([b"kernel"])) == KERNEL
    assert read(image, image.lookup([b"debian", b"debian", b"kernel"])) == KERNEL


def test_an_absolute_link_climbing_out_stays_in_the_image(image: IsoImage) -> None:
    assert image.lookup([b"escape"]) is None


def test_a_symlink_loop_is_not_found(image: IsoImage) -> None:
    assert image.lookup([b"loop"]) is None


def test_missing_names_and_files_used_as_directories_are_not_found(image: IsoImage) -> None:
    assert image.lookup([b"nope"]) is None
    assert image.lookup([b"empty", b"x"]) is None
    assert image.lookup([b"empty", b""]) is None


def test_joliet_only_images_use_joliet_names(source: Path, tmp_path: Path) -> None:
    path = make_iso(source / "Packages", tmp_path / "j.iso", rock_ridge=False)
    joliet = IsoImage(path)
    try:
        assert read(joliet, joliet.lookup([b"a", b"b", b"c", b"deep.txt"])) == b"deep\n"
    finally:
        joliet.close()


def test_plain_iso9660_images_use_names_without_version(source: Path, tmp_path: Path) -> None:
    path = make_iso(source / "Packages" / "a", tmp_path / "p.iso", rock_ridge=False, joliet=False)
    plain = IsoImage(path)
    try:
        assert read(plain, plain.lookup([b"B", b"C", b"DEEP.TXT"])) == b"deep\n"
    finally:
        plain.close()


def test_a_file_that_is_not_an_iso_is_an_iso_error_naming_it(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.iso"
    bogus.write_bytes(b"\0" * 40000)
    with pytest.raises(IsoError, match=r"bogus\.iso"):
        IsoImage(bogus)


@pytest.fixture
def iso_site(image: IsoImage):  # type: ignore[no-untyped-def]
    return build_site(Clock(), {"debian": image.path}, None)


def test_http_get_and_range_come_straight_from_the_image(iso_site) -> None:  # type: ignore[no-untyped-def]
    assert fetch(iso_site, "/trees/debian/images/pxeboot/vmlinuz").body == KERNEL
    response = fetch(iso_site, "/trees/debian/kernel", Range="bytes=1000-1999,-10")
    assert response.status == 206
    assert KERNEL[1000:2000] in response.body and KERNEL[-10:] in response.body
    single = fetch(iso_site, "/trees/debian/images/pxeboot/vmlinuz", Range="bytes=299990-")
    assert single.body == KERNEL[299990:]


def test_http_head_and_types_on_an_iso_tree(iso_site) -> None:  # type: ignore[no-untyped-def]
    response = fetch(iso_site, "/trees/debian/EFI/BOOT/BOOTX64.EFI", method="HEAD")
    assert response.headers[b"content-length"] == b"2"
    assert response.headers[b"content-type"] == b"application/efi"


def test_http_iso_directories_are_forbidden_and_escapes_not_found(iso_site) -> None:  # type: ignore[no-untyped-def]
    assert fetch(iso_site, "/trees/debian/Packages/").status == 403
    assert fetch(iso_site, "/trees/debian/escape").status == 404
    assert fetch(iso_site, "/trees/debian/%2e%2e/%2e%2e/etc/passwd").status == 404


def test_http_iso_conditional_get(iso_site) -> None:  # type: ignore[no-untyped-def]
    first = fetch(iso_site, "/trees/debian/empty")
    assert (first.status, first.body) == (200, b"")
    etag = first.headers[b"etag"].decode()
    assert fetch(iso_site, "/trees/debian/empty", If_None_Match=etag).status == 304


FOUR_GIB = 4 * 1024**3


@pytest.mark.slow
def test_a_multi_extent_file_over_4_gib_is_served_whole(tmp_path: Path) -> None:
    """ISO 9660 caps an extent below 4 GiB; bigger files (DVD images) span several.

    Takes about a minute: xorriso writes a 4 GiB image (the source is sparse).
    """
    if shutil.disk_usage(tmp_path).free < 3 * FOUR_GIB:
        pytest.skip("needs about 12 GiB free in the temp dir")
    size = FOUR_GIB + 3 * 1024 * 1024
    (tmp_path / "src").mkdir()
    with (tmp_path / "src" / "huge").open("wb") as huge:
        huge.truncate(size)
        for offset, mark in [(0, b"HEAD"), (FOUR_GIB - 2050, b"EDGE"), (size - 4, b"TAIL")]:
            huge.seek(offset)
            huge.write(mark)
    path = tmp_path / "huge.iso"
    subprocess.run(
        [xorriso(), "-as", "mkisofs", "-R", "-iso-level", "3", "-quiet", "-o", str(path),
         str(tmp_path / "src")],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    (tmp_path / "src" / "huge").unlink()
    site = build_site(Clock(), {"big": path}, None)
    head = fetch(site, "/trees/big/huge", method="HEAD")
    assert head.headers[b"content-length"] == b"%d" % size
    edge = fetch(site, "/trees/big/huge", Range=f"bytes={FOUR_GIB - 2050}-{FOUR_GIB - 2047}")
    assert edge.body == b"EDGE"
    assert fetch(site, "/trees/big/huge", Range="bytes=-4").body == b"TAIL"
    assert fetch(site, "/trees/big/huge", Range="bytes=0-3").body == b"HEAD"


def test_an_image_dropped_by_a_reload_stays_open_until_its_last_response_ends(
    image: IsoImage,
) -> None:
    tree = IsoTree(IsoImage(image.path))
    found = tree.locate([b"kernel"])
    file = weakref.ref(found.file)
    del tree
    gc.collect()
    assert file() is not None and not file().closed  # type: ignore[union-attr]
    found.release()
    del found
    gc.collect()
    assert file() is None
