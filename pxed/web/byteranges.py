"""HTTP byte ranges (RFC 9110 section 14): parsing ``Range`` and laying out responses.

Kept apart from the resources so the arithmetic, where off-by-one bugs live, can
be tested on its own. Offsets here are relative to the served file; mapping them
onto the bytes of a backing file (a directory file or extents of an ISO image)
is :func:`to_segments`' job.
"""

from __future__ import annotations

from collections.abc import Sequence

# More ranges than this in one request is either a broken client or an attempt
# to make us do a lot of tiny reads; like Apache, answer with the whole file.
MAX_RANGES = 32

Span = tuple[int, int]
"""(start, length) of a part of the served file."""

Piece = bytes | Span
"""A response body is a sequence of literal bytes and spans of the file."""


def parse_range(header: bytes, size: int) -> list[Span] | None:
    """The spans a ``Range`` header asks for in a file of ``size`` bytes.

    Returns None when the header must be ignored (malformed, not ``bytes``, too
    many ranges, or ranges adding up to more than twice the file), which means
    "send the whole file with 200", as RFC 9110 requires for a header the server
    does not understand and allows for overlapping ranges (14.2): answered,
    ``0-,0-,...`` would send a 1 GiB image MAX_RANGES times over. Two copies stay
    allowed: a small file's head and tail asked for at once overlap. Returns an empty list
    when the header is valid but no range overlaps the file (416).
    """
    unit, sep, spec = header.partition(b"=")
    if not sep or unit.strip().lower() != b"bytes":
        return None
    parts = [part.strip() for part in spec.split(b",")]
    parts = [part for part in parts if part]
    if not parts or len(parts) > MAX_RANGES:
        return None
    spans: list[Span] = []
    for part in parts:
        bounds = _parse_one(part)
        if bounds is None:
            return None
        span = _clip(bounds, size)
        if span is not None:
            spans.append(span)
    if sum(length for _, length in spans) > 2 * size:
        return None
    return spans


def _parse_one(part: bytes) -> tuple[int | None, int | None] | None:
    first, sep, last = part.partition(b"-")
    if not sep or not (_is_digits(first) or not first) or not (_is_digits(last) or not last):
        return None
    start = int(first) if first else None
    end = int(last) if last else None
    if start is None and end is None:
        return None
    if start is not None and end is not None and end < start:
        return None
    return start, end


def _is_digits(text: bytes) -> bool:
    # int() would also accept "+5", " 5" and "5_0"; the grammar is 1*DIGIT.
    return text.isdigit() and text.isascii()


def _clip(bounds: tuple[int | None, int | None], size: int) -> Span | None:
    start, end = bounds
    if start is None:
        # Suffix range: the last `end` bytes.
        assert end is not None
        if end == 0 or size == 0:
            return None
        length = min(end, size)
        return size - length, length
    if start >= size:
        return None
    stop = size if end is None else min(end + 1, size)
    return start, stop - start


def content_range(span: Span, size: int) -> bytes:
    """The ``Content-Range`` value for one span."""
    start, length = span
    return b"bytes %d-%d/%d" % (start, start + length - 1, size)


def multipart(
    spans: Sequence[Span], size: int, content_type: bytes, boundary: bytes
) -> tuple[list[Piece], int]:
    """A ``multipart/byteranges`` body as pieces, and its total length.

    The length is known before any byte is read, so the response carries a
    Content-Length and needs no chunked encoding.
    """
    pieces: list[Piece] = []
    total = 0
    for span in spans:
        head = (
            b"\r\n--" + boundary + b"\r\n"
            b"Content-Type: " + content_type + b"\r\n"
            b"Content-Range: " + content_range(span, size) + b"\r\n\r\n"
        )
        pieces += [head, span]
        total += len(head) + span[1]
    tail = b"\r\n--" + boundary + b"--\r\n"
    pieces.append(tail)
    return pieces, total + len(tail)


def to_segments(extents: Sequence[Span], span: Span) -> list[Span]:
    """Where the file bytes of ``span`` lie in the backing file.

    ``extents`` are the (offset, length) runs of the backing file that make up
    the served file, in order: one run for a plain file, several for an ISO 9660
    multi-extent file.
    """
    start, length = span
    segments: list[Span] = []
    position = 0
    for offset, run in extents:
        if length == 0:
            break
        if start < position + run:
            skip = max(0, start - position)
            take = min(run - skip, length)
            segments.append((offset + skip, take))
            start += take
            length -= take
        position += run
    return segments
