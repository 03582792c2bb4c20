"""Byte-range arithmetic (pxed.web.byteranges), checked against a slicing model."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pxed.web.byteranges import MAX_RANGES, multipart, parse_range, to_segments
from tests.support.fuzz import FUZZ_EXAMPLES, fuzz_settings

# Arithmetic properties saturate long before the parser fuzz budget.
property_settings = settings(max_examples=min(FUZZ_EXAMPLES, 1000), deadline=None)


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (b"bytes=0-499", 1000, [(0, 500)]),
        (b"bytes=500-", 1000, [(500, 500)]),
        (b"bytes=-200", 1000, [(800, 200)]),
        (b"bytes=-5000", 1000, [(0, 1000)]),
        (b"bytes=900-5000", 1000, [(900, 100)]),
        (b"bytes=0-0,-1", 1000, [(0, 1), (999, 1)]),
        (b"BYTES = 1-2", 10, [(1, 2)]),
        (b"bytes=1000-", 1000, []),
        (b"bytes=-0", 1000, []),
        (b"bytes=0-", 0, []),
        (b"bytes=5-1", 10, None),
        (b"bytes=", 10, None),
        (b"bytes=-", 10, None),
        (b"bytes=+1-2", 10, None),
        (b"bytes=1-2x", 10, None),
        (b"items=0-1", 10, None),
        (b"0-1", 10, None),
        (b"bytes=" + b",".join([b"0-0"] * (MAX_RANGES + 1)), 10, None),
    ],
)
def test_parse_range_examples(header: bytes, size: int, expected: object) -> None:
    assert parse_range(header, size) == expected


_bound = st.one_of(st.none(), st.integers(0, 3000))


@st.composite
def _headers(draw: st.DrawFn) -> bytes:
    specs = draw(st.lists(st.tuples(_bound, _bound), min_size=1, max_size=5))
    text = ",".join(f"{'' if a is None else a}-{'' if b is None else b}" for a, b in specs)
    return b"bytes=" + text.encode()


@property_settings
@given(_headers(), st.integers(0, 2000))
def test_every_parsed_span_is_non_empty_and_inside_the_file(header: bytes, size: int) -> None:
    spans = parse_range(header, size)
    for start, length in spans or []:
        assert length > 0
        assert start >= 0
        assert start + length <= size


@fuzz_settings
@given(st.binary(max_size=40), st.integers(0, 2000))
def test_parse_range_never_raises(header: bytes, size: int) -> None:
    parse_range(header, size)


@property_settings
@given(
    st.lists(st.integers(0, 50), min_size=1, max_size=6),
    st.integers(0, 400),
    st.integers(0, 400),
)
def test_segments_of_a_span_are_the_same_bytes_as_slicing(
    runs: list[int], start: int, length: int
) -> None:
    # The backing "file" holds runs of the served file at scattered offsets.
    served = bytes(i % 251 for i in range(sum(runs)))
    backing = bytearray(b"#" * 2000)
    extents = []
    position = offset = 0
    for run in runs:
        offset += 7
        backing[offset : offset + run] = served[position : position + run]
        extents.append((offset, run))
        position += run
        offset += run
    start = min(start, len(served))
    length = min(length, len(served) - start)
    segments = to_segments(extents, (start, length))
    assert (
        b"".join(bytes(backing[o : o + n]) for o, n in segments) == served[start : start + length]
    )


def test_multipart_length_is_the_sum_of_its_pieces() -> None:
    pieces, total = multipart([(0, 10), (20, 5)], 100, b"application/efi", b"B")
    assert total == sum(len(p) if isinstance(p, bytes) else p[1] for p in pieces)
    assert pieces[1] == (0, 10) and pieces[3] == (20, 5)
    assert pieces[-1] == b"\r\n--B--\r\n"


@pytest.mark.parametrize(
    "header",
    [b"bytes=0-,0-,0-", b"bytes=" + b",".join([b"0-"] * MAX_RANGES), b"bytes=0-999,0-,500-"],
)
def test_ranges_asking_for_more_than_twice_the_file_get_the_whole_file(header: bytes) -> None:
    """Overlapping ranges would multiply a 1 GiB image up to MAX_RANGES times over (the
    "Apache Killer" pattern); a Range whose spans add up to more than two copies of the
    file is ignored and the file is sent once with 200 (RFC 9110 14.2 allows it)."""
    assert parse_range(header, 1000) is None


def test_a_small_files_head_and_tail_may_overlap() -> None:
    """curl --range 0-9,-9 on a 12-byte ks.cfg overlaps; two copies are still answered."""
    assert parse_range(b"bytes=0-9,-9", 12) == [(0, 10), (3, 9)]
