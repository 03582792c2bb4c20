"""pxed/files/confine.py: the walk under the root says what realpath says, cheaper."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from pxed.files import confine
from pxed.files.confine import OutsideRoot, confined

NAMES = [b"d", b"e", b"f", b"in", b"out", b"up", b"loop", b"link", b"missing", b"", b".", b".."]


def _by_realpath(root: bytes, relative: bytes) -> bytes | str:
    """The rule as it was written before the walk: realpath of the whole path."""
    real = os.path.realpath(os.path.join(root, relative.lstrip(b"/")))
    if real != root and not real.startswith(root.rstrip(b"/") + b"/"):
        return "outside"
    return real


def _confined(root: bytes, relative: bytes) -> bytes | str:
    try:
        return confined(root, relative)
    except OutsideRoot:
        return "outside"


@pytest.fixture
def root(tmp_path: Path) -> bytes:
    tree = tmp_path / "root"
    (tree / "d" / "e").mkdir(parents=True)
    (tree / "f").write_bytes(b"x")
    (tmp_path / "root-private").mkdir()
    (tree / "in").symlink_to("d")
    (tree / "out").symlink_to(tmp_path / "root-private")
    (tree / "up").symlink_to("..")
    (tree / "loop").symlink_to("loop")
    (tree / "link").symlink_to("f")
    return os.path.realpath(os.fsencode(tree))


def test_every_path_of_up_to_three_parts_resolves_as_realpath_says(root: bytes) -> None:
    for count in range(4):
        for parts in itertools.product(NAMES, repeat=count):
            for relative in (b"/".join(parts), b"/" + b"/".join(parts) + b"/"):
                assert _confined(root, relative) == _by_realpath(root, relative), relative


def test_symlinks_out_of_the_root_stay_outside(root: bytes) -> None:
    for relative in (b"out", b"out/x", b"up/root-private", b"d/../../root-private", b"in/../.."):
        with pytest.raises(OutsideRoot):
            confined(root, relative)


def test_a_missing_name_costs_one_lookup_not_one_per_directory_above_the_root(
    root: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked: list[bytes] = []
    real_lstat = os.lstat

    def lstat(path: bytes) -> os.stat_result:
        looked.append(path)
        return real_lstat(path)

    monkeypatch.setattr(confine.os, "lstat", lstat)
    assert confined(root, b"missing.bin") == root + b"/missing.bin"
    assert looked == [root + b"/missing.bin"]


def test_a_file_that_appears_later_is_found(root: bytes) -> None:
    assert not os.path.exists(confined(root, b"d/late.bin"))
    Path(os.fsdecode(root), "d", "late.bin").write_bytes(b"x")
    assert os.path.isfile(confined(root, b"d/late.bin"))
