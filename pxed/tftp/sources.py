"""What a TFTP transfer reads: safe files under the root, generated files, netascii.

A transfer reads from a ``BlockSource`` (``size()``, ``read(offset, n)``,
``close()``) whether the bytes come from a file under ``tftp.root`` or from a
generator (pxelinux/GRUB configs rendered per host). ``ProviderChain`` asks
each ``FileProvider`` in turn; generators answer ``None`` for paths they do not
know, and the chain ends at ``StaticRoot``.

Safety is the first job here: a request path is normalised once, ``..`` and
NUL are refused before any provider sees the path, and ``StaticRoot`` serves
only regular files whose real path (after symlinks) lies inside the root. It
stats before it opens, so a device file or FIFO is never even opened, and it
checks after opening that the descriptor is still the file it stat'ed.

Open files are shared: 200 clients fetching the same kernel hold one file
descriptor and read it with ``os.pread``, a few blocks at a time, so memory per
client is the session state and a 32 KiB read-ahead, never a copy of the file.
"""

from __future__ import annotations

import bisect
import errno
import os
import stat
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from protocols.tftp.server import BUSY
from protocols.tftp.wire import ErrorCode
from pxed.files.confine import OutsideRoot, confined, opened_inside

Client = tuple[str, int]


class BlockSource(Protocol):
    """The bytes of one transfer, readable at any offset (retransmits and windows rewind)."""

    def size(self) -> int:
        """Bytes the transfer sends, after any netascii conversion."""

    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset``; fewer only at the end of the data."""

    def close(self) -> None:
        """Release what the source holds; called once when the transfer ends."""


class FileProvider(Protocol):
    """Something that can answer a read request for a normalised path.

    Return ``None`` for a path you do not serve (the chain goes on to the next
    provider) or raise ``FileRefused`` to answer the client with an error.
    ``client`` is the requester's (IP, port): generated files depend on who asks.
    """

    def open(self, path: str, client: Client) -> BlockSource | None: ...


class FileRefused(Exception):
    """A read request that gets a TFTP ERROR instead of data.

    ``code`` is the TFTP error code sent (1 file not found, 2 access
    violation); ``message`` is sent to the client and logged.
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def normalise(path: str) -> str:
    """The canonical relative form of a request path, or ``FileRefused``.

    PXE firmware and Windows-built configs send ``\\`` separators and leading
    slashes (``/pxelinux.0``); both are folded so every client sees one tree.
    ``..`` is refused outright rather than resolved: no legitimate boot path
    needs it, and refusing is the rule every TFTP traversal bug broke.
    """
    if "\0" in path:
        raise FileRefused(ErrorCode.ACCESS_VIOLATION, "NUL in file name")
    parts = [part for part in path.replace("\\", "/").split("/") if part not in ("", ".")]
    if ".." in parts:
        raise FileRefused(ErrorCode.ACCESS_VIOLATION, "'..' in file name")
    if not parts:
        raise FileRefused(ErrorCode.FILE_NOT_FOUND, "no file name")
    return "/".join(parts)


class ProviderChain:
    """Asks each provider in order; the first that does not answer ``None`` serves the path."""

    def __init__(self, providers: Iterable[FileProvider]) -> None:
        self.providers = tuple(providers)

    def open(self, path: str, client: Client) -> BlockSource:
        """Normalise ``path`` once, then let the providers answer; nobody -> file not found."""
        name = normalise(path)
        for provider in self.providers:
            source = provider.open(name, client)
            if source is not None:
                return source
        raise FileRefused(ErrorCode.FILE_NOT_FOUND, "file not found")


class BytesSource:
    """Generated content (a rendered config) as a transfer source."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def size(self) -> int:
        return len(self._data)

    def read(self, offset: int, length: int) -> bytes:
        return self._data[offset : offset + length]

    def close(self) -> None:
        """Nothing to release: the bytes go with the object."""


FileKey = tuple[int, int, int, int]  # st_dev, st_ino, st_mtime_ns, st_size


def _key(info: os.stat_result) -> FileKey:
    return (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size)


class _SharedFile:
    """One open descriptor for every transfer of the same file version."""

    def __init__(self, fd: int, key: FileKey) -> None:
        self.fd = fd
        self.key = key
        self.users = 0


READ_AHEAD = 32768  # bytes one pread fetches for the blocks after it


class StaticFile:
    """A regular file under the root, read with ``pread`` on a shared descriptor.

    Each ``pread`` fetches ``READ_AHEAD`` bytes and the blocks inside them are sliced from
    that buffer: a syscall per 1468-byte block was the largest single cost of a lockstep
    transfer. The buffer is per transfer and bounded (32 KiB per client, not a copy of the
    file), and serves only the read that continues the previous one: a retransmit, a
    go-back or a netascii rewind after its scan reads the file again, so a file changed
    under the transfer is noticed as soon as pread alone would. Not ``mmap``: a file
    truncated under a mapping raises SIGBUS on the next read, which kills the whole daemon
    instead of reading short.
    """

    def __init__(self, files: StaticRoot, shared: _SharedFile) -> None:
        self._files = files
        self._shared: _SharedFile | None = shared
        self._size = shared.key[3]
        self.identity: Hashable = shared.key  # this version of this file, for netascii's cache
        self._buffer = b""
        self._buffered = 0  # bytes of self._buffer inside the size the transfer began with
        self._buffer_at = 0  # file offset of self._buffer[0]
        self._next = -1  # where the last read ended: only a read starting there uses the buffer

    def size(self) -> int:
        return self._size

    def read(self, offset: int, length: int) -> bytes:
        at = self._buffer_at
        end = offset + length
        if offset == self._next and end - at <= self._buffered:  # per block: kept short
            self._next = end
            return self._buffer[offset - at : end - at]
        end = min(end, self._size)  # the last block: the buffer stops at the end of the file
        if self._shared is None:
            raise ValueError("read from a closed StaticFile")
        # A file truncated under the transfer reads short here; the engine notices the short
        # block and ends the transfer with ERROR 0 rather than sending a truncated file.
        wanted = max(0, end - offset)
        self._buffer = os.pread(self._shared.fd, max(wanted, READ_AHEAD), offset)
        self._buffered = min(len(self._buffer), self._size - offset)  # never past the old end
        self._buffer_at = offset
        self._next = offset + wanted
        return self._buffer[:wanted]

    def close(self) -> None:
        if self._shared is not None:
            self._files.release(self._shared)
            self._shared = None
            self._buffer, self._buffered, self._next = b"", 0, -1


class StaticRoot:
    """Regular files under ``root``, and nothing else on the machine."""

    OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY

    def __init__(self, root: str | Path) -> None:
        self.root = os.path.realpath(os.fsencode(root))
        self._open: dict[FileKey, _SharedFile] = {}

    @property
    def open_files(self) -> int:
        """Descriptors held now: one per file version in transfer, whatever the client count."""
        return len(self._open)

    def open(self, path: str, client: Client) -> StaticFile:
        """Serve ``path`` (already normalised) if it is a regular file inside the root."""
        real = self._resolve(path)
        info = self._stat(real)
        shared = self._open.get(_key(info))
        if shared is None:
            shared = self._open_shared(real, info)
            self._open[shared.key] = shared
        shared.users += 1
        return StaticFile(self, shared)

    def release(self, shared: _SharedFile) -> None:
        """One transfer is done with ``shared``; close it when it was the last."""
        shared.users -= 1
        if shared.users <= 0 and self._open.get(shared.key) is shared:
            del self._open[shared.key]
            os.close(shared.fd)

    def _resolve(self, path: str) -> bytes:
        try:
            return confined(self.root, os.fsencode(path))
        except OutsideRoot:
            raise FileRefused(ErrorCode.ACCESS_VIOLATION, "outside the TFTP root") from None

    def _stat(self, real: bytes) -> os.stat_result:
        try:
            info = os.stat(real)
        except OSError as err:
            raise _refusal(err) from None
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused(ErrorCode.ACCESS_VIOLATION, "not a regular file")
        return info

    def _open_shared(self, real: bytes, info: os.stat_result) -> _SharedFile:
        try:
            fd = os.open(real, self.OPEN_FLAGS)
        except OSError as err:
            raise _refusal(err) from None
        opened = os.fstat(fd)
        if _key(opened) != _key(info) or not opened_inside(self.root, fd):
            # The file was swapped between stat and open: refuse rather than guess.
            os.close(fd)
            raise FileRefused(ErrorCode.ACCESS_VIOLATION, "changed while opening")
        return _SharedFile(fd, _key(opened))


def _refusal(err: OSError) -> FileRefused:
    if err.errno in (errno.EMFILE, errno.ENFILE, errno.ENOMEM):
        return FileRefused(ErrorCode.NOT_DEFINED, BUSY)  # a retry later can succeed
    if err.errno in (errno.EACCES, errno.EPERM, errno.ELOOP):
        return FileRefused(ErrorCode.ACCESS_VIOLATION, "permission denied")
    if err.errno == errno.ENAMETOOLONG:
        return FileRefused(ErrorCode.FILE_NOT_FOUND, "file name too long")
    return FileRefused(ErrorCode.FILE_NOT_FOUND, "file not found")


NetasciiLayout = tuple[tuple[int, ...], int]  # output offset of each input chunk, total size


_layouts: OrderedDict[tuple[Hashable, int], NetasciiLayout] = OrderedDict()


def _layout(inner: BlockSource, chunk: int) -> NetasciiLayout:
    """The netascii layout of ``inner``, scanned once per file version it names."""
    identity = getattr(inner, "identity", None)
    if identity is None:
        return _scan(inner, chunk)  # generated text: small, and no version to name
    key = (identity, chunk)
    layout = _layouts.pop(key, None) or _scan(inner, chunk)
    _layouts[key] = layout
    if len(_layouts) > LAYOUTS_KEPT:
        _layouts.popitem(last=False)
    return layout


def _scan(inner: BlockSource, chunk: int) -> NetasciiLayout:
    """Where each input chunk starts once converted, and the converted size."""
    starts = [0]
    for offset in range(0, inner.size(), chunk):
        raw = inner.read(offset, chunk)
        starts.append(starts[-1] + len(raw) + raw.count(b"\n") + raw.count(b"\r"))
    size = starts.pop()
    return tuple(starts), size


@dataclass
class _Chunk:
    index: int
    data: bytes


NETASCII_MAX = 4 * 1024 * 1024  # bytes: netascii is for text files, and its scan is bounded
LAYOUTS_KEPT = 64  # scanned file versions remembered


class Netascii:
    """A source seen through netascii (RFC 764): LF -> CR LF, CR -> CR NUL.

    ``size()`` is the converted size, so the tsize a client is told is the
    number of bytes that travel, not the size on disk. Each input byte becomes
    one or two output bytes independently of its neighbours, so the file is
    converted in fixed input chunks: opening scans the file once to record
    where each chunk starts in the output (16 bytes per 64 KiB), and a read
    converts only the chunks it touches, keeping the last one for the next
    block of a sequential transfer.

    The scan runs in the reactor thread, so what it may cost is bounded: files
    over ``NETASCII_MAX`` are refused in netascii (octet serves them; no boot
    loader asks for a kernel in netascii), and layouts are remembered by file
    version (ISO files included), so asking again for the same file scans
    nothing. 66 netascii requests in 10 s for a 150 MB file in an ISO tree held
    DHCP and HTTP for up to 1.5 s before.
    """

    def __init__(self, inner: BlockSource, chunk: int = 65536) -> None:
        if inner.size() > NETASCII_MAX:
            raise FileRefused(
                ErrorCode.ACCESS_VIOLATION,
                f"netascii is served for files up to {NETASCII_MAX // 2**20} MiB; ask in octet",
            )
        self._inner = inner
        self._chunk_size = chunk
        self._starts, self._size = _layout(inner, chunk)
        self._last = _Chunk(-1, b"")

    def size(self) -> int:
        return self._size

    def read(self, offset: int, length: int) -> bytes:
        out = bytearray()
        while length > 0 and offset < self._size:
            index = bisect.bisect_right(self._starts, offset) - 1
            chunk = self._chunk(index)
            start = offset - self._starts[index]
            piece = chunk[start : start + length]
            if not piece:
                break  # the file shrank under us: read short, and the engine ends the transfer
            out += piece
            offset += len(piece)
            length -= len(piece)
        return bytes(out)

    def close(self) -> None:
        self._inner.close()

    def _chunk(self, index: int) -> bytes:
        if self._last.index != index:
            raw = self._inner.read(index * self._chunk_size, self._chunk_size)
            self._last = _Chunk(index, raw.replace(b"\r", b"\r\0").replace(b"\n", b"\r\n"))
        return self._last.data
