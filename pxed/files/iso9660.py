"""An ISO 9660 image as a read-only file tree, without mounting or extracting it.

The image is indexed once when the tree is loaded (pycdlib parses the volume
descriptors and directory records, with Rock Ridge and Joliet names); after that
a lookup is a dict access and a file is a list of byte extents in the image,
which the HTTP layer sends straight from one shared descriptor with
``os.sendfile``/``os.pread``. Loop mounts need root and leak mounts when a tree
is reloaded; extracting doubles the disk space of every distro image.

Names come from Rock Ridge when the image has it (distro images do: long,
case-preserving names), else from Joliet, else plain ISO 9660 with the ``;1``
version suffix removed. Paths are bytes, like the names on the image and in
request paths, so no name is lost to a decoding error.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pycdlib
from pycdlib.pycdlibexception import PyCdlibException

Extent = tuple[int, int]
"""(byte offset in the image, length)."""
Record = Any  # pycdlib's DirectoryRecord: pycdlib ships no type information

# Like the kernel's MAXSYMLINKS: a lookup that follows more links is a loop.
MAX_SYMLINKS = 40


class IsoError(Exception):
    """The image cannot be read as ISO 9660; the message names the file."""


@dataclass(frozen=True)
class IsoFile:
    extents: tuple[Extent, ...]
    size: int
    mtime: float


@dataclass(frozen=True)
class IsoDirectory:
    pass


@dataclass(frozen=True)
class _Symlink:
    target: bytes


_Node = IsoFile | IsoDirectory | _Symlink
_DIRECTORY = IsoDirectory()


class IsoImage:
    """The index of one image and the descriptor its bytes are served from."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._nodes = _index(path)
        # Opened after indexing succeeded so a bad image leaks nothing. A file
        # object, not a bare descriptor: responses in flight hold a reference,
        # so an image dropped by a config reload closes after its last download.
        self.file = open(path, "rb", buffering=0)  # noqa: SIM115
        self.fd = self.file.fileno()
        stat = os.fstat(self.fd)
        self.identity = (stat.st_ino, stat.st_mtime_ns)

    def lookup(self, parts: Sequence[bytes]) -> IsoFile | IsoDirectory | None:
        """The node at ``parts`` (path segments without ``.`` or ``..``), links followed.

        Symbolic links resolve inside the image only: an absolute target means
        the image's root, and ``..`` stops at the root, as in a chroot. That is
        what makes a Debian image's ``debian -> .`` link work and keeps every
        answer inside the image.
        """
        pending = list(reversed(parts))
        resolved: list[bytes] = []
        hops = 0
        while pending:
            part = pending.pop()
            if part in (b"", b"."):
                continue
            if part == b"..":
                if resolved:
                    resolved.pop()
                continue
            node = self._nodes.get(b"/".join([*resolved, part]))
            if isinstance(node, _Symlink):
                hops += 1
                if hops > MAX_SYMLINKS:
                    return None
                if node.target.startswith(b"/"):
                    resolved = []
                pending.extend(reversed(node.target.split(b"/")))
                continue
            if node is None or (pending and not isinstance(node, IsoDirectory)):
                return None
            resolved.append(part)
        if not resolved:
            return _DIRECTORY
        node = self._nodes[b"/".join(resolved)]
        assert not isinstance(node, _Symlink)
        return node

    def close(self) -> None:
        self.file.close()


def _index(path: Path) -> dict[bytes, _Node]:
    iso = pycdlib.PyCdlib()
    try:
        iso.open(str(path))
    except (PyCdlibException, OSError) as error:
        raise IsoError(f"{path}: not a readable ISO 9660 image ({error})") from None
    try:
        if iso.has_rock_ridge():
            root = iso.get_record(rr_path="/")
            name_of = _rock_ridge_name
        elif iso.has_joliet():
            root = iso.get_record(joliet_path="/")
            name_of = _joliet_name
        else:
            root = iso.get_record(iso_path="/")
            name_of = _iso_name
        block = iso.logical_block_size
        return dict(_walk(root, b"", name_of, block))
    except PyCdlibException as error:
        raise IsoError(f"{path}: damaged ISO 9660 directory ({error})") from None
    finally:
        iso.close()


def _walk(
    directory: Record, prefix: bytes, name_of: Callable[[Record], bytes], block: int
) -> Iterator[tuple[bytes, _Node]]:
    continuations: set[int] = set()
    for record in directory.children:
        if record.is_dot() or record.is_dotdot() or id(record) in continuations:
            continue
        if record.is_associated_file():
            continue
        rock = record.rock_ridge
        if rock is not None and rock.relocated_record():
            # A deep directory moved to RR_MOVED; it is walked from its
            # child-link (CL) entry at its real place instead.
            continue
        path = prefix + name_of(record)
        if rock is not None and rock.child_link_record_exists():
            yield path, _DIRECTORY
            yield from _walk(rock.cl_to_moved_dr, path + b"/", name_of, block)
        elif rock is not None and rock.is_symlink():
            yield path, _Symlink(rock.symlink_path())
        elif record.is_dir():
            yield path, _DIRECTORY
            yield from _walk(record, path + b"/", name_of, block)
        else:
            extents = []
            part = record
            while part is not None:
                extents.append((part.extent_location() * block, part.get_data_length()))
                if part.data_continuation is not None:
                    continuations.add(id(part.data_continuation))
                part = part.data_continuation
            yield path, IsoFile(_merge(extents), sum(n for _, n in extents), _mtime(record))


def _merge(extents: list[Extent]) -> tuple[Extent, ...]:
    """Adjacent extents as one, so the common multi-extent layout is one sendfile."""
    merged: list[Extent] = []
    for offset, length in extents:
        if merged and merged[-1][0] + merged[-1][1] == offset:
            merged[-1] = (merged[-1][0], merged[-1][1] + length)
        else:
            merged.append((offset, length))
    return tuple(merged)


def _rock_ridge_name(record: Record) -> bytes:
    name: bytes = record.rock_ridge.name()
    return name or _iso_name(record)


def _joliet_name(record: Record) -> bytes:
    text: str = record.file_identifier().decode("utf-16-be", "replace")
    return text.partition(";")[0].encode()


def _iso_name(record: Record) -> bytes:
    name: bytes = record.file_identifier().partition(b";")[0]
    return name[:-1] if name.endswith(b".") else name


def _mtime(record: Record) -> float:
    date = record.date
    try:
        zone = datetime.timezone(datetime.timedelta(minutes=15 * date.gmtoffset))
        moment = datetime.datetime(
            1900 + date.years_since_1900,
            date.month,
            date.day_of_month,
            date.hour,
            date.minute,
            date.second,
            tzinfo=zone,
        )
    except ValueError:
        # A zeroed or garbage date; the epoch still yields valid headers.
        return 0.0
    return moment.timestamp()
