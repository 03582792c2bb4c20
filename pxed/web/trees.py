"""pxed's HTTP file serving: install trees (``/trees/<name>/``) and the TFTP root (``/tftp/``).

Why not twisted.web.static.File: it lists directories, runs ``processors``
(``.rpy`` is Python code), sends ``.gz`` files with ``Content-Encoding: gzip``
(so curl and installers unpack ``initrd.gz`` and ``primary.xml.gz`` on the
fly), derives types from the host's ``/etc/mime.types``, has no ETag or
If-Range, and copies bytes through Python. An ISO-backed tree is not a
``FilePath`` at all. So both tree kinds reduce a request path to "a descriptor
and the extents of the file in it", and one function, :func:`serve`, does the
HTTP part for both: conditional requests, ranges, headers, the body producer.

Nothing outside a tree is ever readable: request path segments are checked
(no ``..``, no ``/`` smuggled in as ``%2f``, no NUL), a directory tree's path is
resolved with ``realpath`` and must stay under the tree's resolved root (so a
symlink inside the tree pointing inside it works, one pointing out does not),
and an ISO tree can only name files of its own index.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults, maybeDeferred
from twisted.internet.interfaces import IListeningPort, IReactorTCP, IReactorTime
from twisted.internet.protocol import ServerFactory
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from pxed.files.confine import OutsideRoot, confined, opened_inside
from pxed.files.iso9660 import IsoDirectory, IsoError, IsoImage
from pxed.web import byteranges
from pxed.web.guard import DEFAULT_LIMITS, GuardedSite, Limits
from pxed.web.sendfile import send_body

DEFAULT_TYPE = b"application/octet-stream"

# Fixed here rather than read from /etc/mime.types, so a response does not
# depend on the host. Compressed files are served as what they are, never with
# Content-Encoding: installers want the .gz bytes, not their contents.
CONTENT_TYPES: Mapping[str, bytes] = {
    ".efi": b"application/efi",  # UEFI HTTP Boot needs this or a .efi path
    ".cfg": b"text/plain; charset=utf-8",
    ".ks": b"text/plain; charset=utf-8",
    ".ipxe": b"text/plain; charset=utf-8",
    ".txt": b"text/plain; charset=utf-8",
    ".treeinfo": b"text/plain; charset=utf-8",
    ".xml": b"application/xml",
    ".json": b"application/json",
    ".html": b"text/html; charset=utf-8",
    # UEFI HTTP Boot RAM-disk images, spelled as EDK2's HttpBootDxe compares
    # them (IANA registered vnd.efi.iso/.img with a dot; EDK2 then falls back
    # to the extension, so the hyphen form works for both readings).
    ".iso": b"application/vnd.efi-iso",
    ".img": b"application/vnd.efi-img",
    ".rpm": b"application/x-rpm",
    ".deb": b"application/vnd.debian.binary-package",
    ".gz": b"application/gzip",
    ".xz": b"application/x-xz",
    ".bz2": b"application/x-bzip2",
    ".zst": b"application/zstd",
}

# Segments a path may never contain once percent-decoded.
_FORBIDDEN_SEGMENTS = (b"..", b".")
_FORBIDDEN_BYTES = (b"/", b"\0")


def content_type(name: bytes) -> bytes:
    """The Content-Type for a file name; ``.treeinfo`` counts as its own extension."""
    text = os.fsdecode(name).lower()
    base = text.rpartition("/")[2]
    extension = base if base.startswith(".") else os.path.splitext(base)[1]
    return CONTENT_TYPES.get(extension, DEFAULT_TYPE)


@dataclass(frozen=True)
class Found:
    """A file located by a tree: where its bytes are and what to call it."""

    file: BinaryIO
    extents: tuple[byteranges.Span, ...]
    size: int
    mtime: float
    etag: bytes
    name: bytes
    owns_file: bool

    def release(self) -> None:
        """Called once the response no longer needs the bytes."""
        if self.owns_file:
            self.file.close()


class _Tree(Resource):
    """A read-only file tree; subclasses say how a path becomes a :class:`Found`."""

    isLeaf = True

    def render_GET(self, request: Request) -> bytes | int:
        parts = request.postpath
        assert parts is not None  # None only before the site has looked up the resource
        if any(_bad_segment(part) for part in parts):
            return _error(request, http.NOT_FOUND)
        try:
            found = self.locate(parts)
        except IsADirectoryError:
            # No listings: an install tree is fetched by known names only.
            return _error(request, http.FORBIDDEN)
        except PermissionError:
            return _error(request, http.FORBIDDEN)
        except OSError:
            # Missing, a symlink loop (ELOOP), a name too long: all "no such file".
            return _error(request, http.NOT_FOUND)
        return serve(request, found)

    render_HEAD = render_GET

    def locate(self, parts: Sequence[bytes]) -> Found:
        """The file at ``parts``; raises FileNotFoundError, IsADirectoryError, PermissionError."""
        raise NotImplementedError


def _bad_segment(part: bytes) -> bool:
    return part in _FORBIDDEN_SEGMENTS or any(b in part for b in _FORBIDDEN_BYTES)


class DirectoryTree(_Tree):
    """Files under a directory; symlinks followed only while they stay under it."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = os.path.realpath(os.fsencode(root))

    def locate(self, parts: Sequence[bytes]) -> Found:
        wanted = os.path.join(b"", *parts)
        try:
            real = confined(self.root, wanted)
        except OutsideRoot:
            raise FileNotFoundError(wanted) from None
        if parts and parts[-1] == b"" and not os.path.isdir(real):
            raise NotADirectoryError(wanted)
        # O_NONBLOCK: opening a FIFO placed in the tree must not hang the reactor.
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
        if not opened_inside(self.root, fd):  # a symlink swapped in since the check
            os.close(fd)
            raise FileNotFoundError(wanted)
        file = os.fdopen(fd, "rb", buffering=0)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            file.close()
            if stat.S_ISDIR(info.st_mode):
                raise IsADirectoryError(wanted)
            raise FileNotFoundError(wanted)
        etag = b'"%x-%x-%x"' % (info.st_ino, info.st_size, info.st_mtime_ns)
        return Found(
            file=file,
            extents=((0, info.st_size),),
            size=info.st_size,
            mtime=info.st_mtime,
            etag=etag,
            name=real,
            owns_file=True,
        )


class IsoTree(_Tree):
    """Files inside an ISO 9660 image, served from the image file itself."""

    def __init__(self, image: IsoImage) -> None:
        super().__init__()
        self.image = image

    def locate(self, parts: Sequence[bytes]) -> Found:
        node = self.image.lookup(parts)
        if node is None:
            raise FileNotFoundError(b"/".join(parts))
        if isinstance(node, IsoDirectory):
            raise IsADirectoryError(b"/".join(parts))
        inode, image_mtime = self.image.identity
        first = node.extents[0][0] if node.extents else 0
        etag = b'"%x-%x-%x-%x"' % (inode, image_mtime, first, node.size)
        return Found(
            file=self.image.file,
            extents=node.extents,
            size=node.size,
            mtime=node.mtime,
            etag=etag,
            name=parts[-1] if parts else b"",
            owns_file=False,
        )


def serve(request: Request, found: Found) -> bytes | int:
    """Answer GET or HEAD for ``found``: 200, 206, 304, 412 or 416, then the body."""
    request.setHeader(b"accept-ranges", b"bytes")
    request.setHeader(b"etag", found.etag)
    request.setHeader(b"last-modified", http.datetimeToString(found.mtime))
    if _precondition_failed(request, found):
        found.release()
        request.setResponseCode(http.PRECONDITION_FAILED)
        return b""
    if _not_modified(request, found):
        found.release()
        request.setResponseCode(http.NOT_MODIFIED)
        # Finished here: returning b"" would make twisted add Content-Length: 0,
        # which RFC 9110 8.6 forbids on a 304 for a non-empty file.
        request.write(b"")
        request.finish()
        return NOT_DONE_YET
    kind = content_type(found.name)
    spans = _wanted_spans(request, found)
    pieces: list[byteranges.Piece]
    if spans is None:
        request.setHeader(b"content-type", kind)
        request.setHeader(b"content-length", b"%d" % found.size)
        pieces = [(0, found.size)]
    elif not spans:
        found.release()
        request.setResponseCode(http.REQUESTED_RANGE_NOT_SATISFIABLE)
        request.setHeader(b"content-range", b"bytes */%d" % found.size)
        return b""
    elif len(spans) == 1:
        request.setResponseCode(http.PARTIAL_CONTENT)
        request.setHeader(b"content-type", kind)
        request.setHeader(b"content-range", byteranges.content_range(spans[0], found.size))
        request.setHeader(b"content-length", b"%d" % spans[0][1])
        pieces = [spans[0]]
    else:
        boundary = b"pxed%x" % time.monotonic_ns()
        pieces, length = byteranges.multipart(spans, found.size, kind, boundary)
        request.setResponseCode(http.PARTIAL_CONTENT)
        request.setHeader(b"content-type", b"multipart/byteranges; boundary=" + boundary)
        request.setHeader(b"content-length", b"%d" % length)
    if request.method == b"HEAD":
        found.release()
        return b""  # twisted keeps our Content-Length for HEAD
    # found.release is the only reference the transfer keeps: it keeps the
    # file (and an ISO image dropped by a reload) open until the body is sent.
    send_body(request, found.file.fileno(), _backing(found, pieces), found.release)
    return NOT_DONE_YET


def _backing(found: Found, pieces: list[byteranges.Piece]) -> list[byteranges.Piece]:
    """The pieces with file spans turned into spans of the backing descriptor."""
    out: list[byteranges.Piece] = []
    for piece in pieces:
        if isinstance(piece, bytes):
            out.append(piece)
        else:
            out.extend(byteranges.to_segments(found.extents, piece))
    return out


def _precondition_failed(request: Request, found: Found) -> bool:
    """RFC 9110 13.2.2 steps 1-2: If-Match decides when present, else If-Unmodified-Since.

    If-Match compares strongly: a weak tag never matches (13.1.1).
    """
    match = request.getHeader(b"if-match")
    if match is not None:
        tags = [tag.strip() for tag in match.split(b",")]
        return b"*" not in tags and found.etag not in tags
    limit = _header_date(request, b"if-unmodified-since")
    return limit is not None and int(found.mtime) > limit


def _not_modified(request: Request, found: Found) -> bool:
    """RFC 9110 13.2.2: If-None-Match decides when present, else If-Modified-Since."""
    match = request.getHeader(b"if-none-match")
    if match is not None:
        tags = [tag.strip().removeprefix(b"W/") for tag in match.split(b",")]
        return b"*" in tags or found.etag in tags
    limit = _header_date(request, b"if-modified-since")
    return limit is not None and int(found.mtime) <= limit


def _header_date(request: Request, name: bytes) -> int | None:
    """An HTTP-date header as seconds; absent or unparsable means "no condition"
    (RFC 9110 13.1.3, 13.1.4)."""
    value = request.getHeader(name)
    if value is None:
        return None
    try:
        return int(http.stringToDatetime(value))
    except (ValueError, IndexError):
        return None


def _wanted_spans(request: Request, found: Found) -> list[byteranges.Span] | None:
    """The Range to honour, or None for the whole file (no Range, or If-Range failed)."""
    header = request.getHeader(b"range")
    if header is None:
        return None
    condition = request.getHeader(b"if-range")
    if condition is not None and condition.strip() not in (
        found.etag,
        http.datetimeToString(found.mtime),
    ):
        return None
    return byteranges.parse_range(header, found.size)


def _error(request: Request, code: int) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    return b"%d %s\n" % (code, http.RESPONSES[code])


class Trees(Resource):
    """``/trees/``: one child per configured tree, nothing listed; a reload swaps the set.

    A request picks its tree when it arrives and keeps that object, and the
    file it opened, to its end: a swap never cuts a download in flight.
    """

    def __init__(self, sources: Mapping[str, Path]) -> None:
        super().__init__()
        self.swap(self.load(sources))

    def load(self, sources: Mapping[str, Path]) -> dict[bytes, Resource]:
        """A resource per tree, ready for :meth:`swap`; raises IsoError naming the tree.

        An image unchanged on disk since it was indexed is not indexed again
        (a distro DVD takes a while, and the reactor waits for it).
        """
        loaded = {}
        for name, source in sources.items():
            key = name.encode()
            try:
                loaded[key] = self._unchanged(key, source) or tree_resource(source)
            except IsoError as error:
                raise IsoError(f"trees.{name}: {error}") from None
        return loaded

    def _unchanged(self, key: bytes, source: Path) -> IsoTree | None:
        current = self.children.get(key)
        if not isinstance(current, IsoTree) or current.image.path != source:
            return None
        try:
            info = os.stat(source)
        except OSError:
            return None
        return current if (info.st_ino, info.st_mtime_ns) == current.image.identity else None

    def swap(self, trees: dict[bytes, Resource]) -> None:
        self.children = trees

    def getChild(self, path: bytes, request: Request) -> Resource:
        return _NotFound()

    def render(self, request: Request) -> bytes:
        return _error(request, http.NOT_FOUND)


class _NotFound(Resource):
    isLeaf = True

    def render(self, request: Request) -> bytes:
        return _error(request, http.NOT_FOUND)


def tree_resource(source: Path) -> Resource:
    """A tree for an ISO image if ``source`` is a file, else for a directory.

    A directory not there yet (not mounted) answers 404 until it appears.
    """
    if source.is_file():
        return IsoTree(IsoImage(source))
    return DirectoryTree(source)


def build_site(
    reactor: IReactorTime,
    trees: Mapping[str, Path],
    tftp_root: Path | None,
    limits: Limits = DEFAULT_LIMITS,
) -> GuardedSite:
    """The whole HTTP site: ``/trees/<name>/...`` and, if given, ``/tftp/...``.

    ``trees`` maps a tree name to its directory or ISO image. Raises
    :class:`pxed.files.iso9660.IsoError` for an image that cannot be read.
    """
    root = Resource()
    root.putChild(b"trees", Trees(trees))
    if tftp_root is not None:
        root.putChild(b"tftp", DirectoryTree(tftp_root))
    site = GuardedSite(root, reactor, limits)
    site.displayTracebacks = False
    return site


def site_trees(site: Site) -> Trees:
    """The ``/trees/`` resource of a site made by :func:`build_site`."""
    trees = site.resource.getStaticEntity(b"trees")
    assert isinstance(trees, Trees)
    return trees


class HttpService(Service):
    """Listens for ``site`` on ``port`` at each address, one listener per address.

    IPv6 addresses (``http.listen6``) bind as IPv4 ones do: Twisted's TCP port resolves
    a link-local address's zone (``fe80::1%br0``) itself, unlike its UDP port.

    Binds in privilegedStartService because port 80 needs root and twistd
    drops privileges after that call.
    """

    def __init__(
        self, reactor: IReactorTCP, site: Site, port: int, addresses: Sequence[str]
    ) -> None:
        self.reactor = reactor
        self.site = site
        self.port = port
        self.addresses = tuple(addresses)
        self.listening: list[IListeningPort] = []

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        # listenTCP's factory is typed ServerFactory[_ProtoWithFactory], and ServerFactory is
        # invariant in its protocol: Twisted's annotation refuses its own Site.
        factory = cast(ServerFactory, self.site)
        for address in self.addresses:
            self.listening.append(self.reactor.listenTCP(self.port, factory, interface=address))

    def stopService(self) -> Deferred[list[None]]:
        super().stopService()
        ports, self.listening = self.listening, []
        # maybeDeferred waits for the Deferred stopListening may return; its overloads take
        # the "Deferred[None] | None" return for a plain value.
        return cast(
            "Deferred[list[None]]",
            gatherResults([maybeDeferred(port.stopListening) for port in ports]),
        )
