"""The plain-Python fast paths of protocols/dhcp/values.py mean exactly what the
Construct grammar next to them says (they exist only for speed)."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

import pytest
from construct import ConstructError
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.dhcp.options import CODECS, UserClassCodec
from protocols.dhcp.values import (
    FAST_READERS,
    FAST_WRITERS,
    OPTION,
    OPTIONS_AREA,
    PAD,
    SUBOPTION,
    SUBOPTIONS_AREA,
    Grammar,
    build_item,
    parse_whole,
    scan,
)
from protocols.dhcp.wire import (
    HEADER_GRAMMAR,
    HEADER_SIZE,
    EncodeError,
    build_header,
    parse_header,
)
from protocols.errors import MalformedPacket
from tests.support.fuzz import FUZZ_EXAMPLES, fuzz_settings

# Each example runs Construct too, ~10x slower than the byte-level fuzz of the decoder.
grammar_settings = settings(fuzz_settings, max_examples=max(200, FUZZ_EXAMPLES // 10))

# Areas made mostly of plausible items, so both the accepting and rejecting paths run.
_ITEM = st.one_of(
    st.just(b"\0"),
    st.just(b"\xff"),
    st.tuples(st.integers(1, 254), st.binary(max_size=12)).map(
        lambda item: bytes([item[0], len(item[1])]) + item[1]
    ),
    st.binary(min_size=1, max_size=3),
)
_AREA = st.lists(_ITEM, max_size=10).map(b"".join)


def _grammar_items(area: bytes) -> tuple[list[tuple[int, bytes]], bool, bytes] | None:
    try:
        parsed = OPTIONS_AREA.parse(area)
    except ConstructError:
        return None
    items = [(item.code, item.data or b"") for item in parsed["items"] if item.code != PAD]
    return items, parsed.end is not None, parsed.trailing


@grammar_settings
@given(_AREA)
def test_scan_agrees_with_the_options_area_grammar(area: bytes) -> None:
    """scan accepts exactly what OPTIONS_AREA accepts, with the same items, End and tail."""
    expected = _grammar_items(area)
    try:
        found = scan(area, 0, "options")
    except MalformedPacket:
        assert expected is None
        return
    assert expected is not None
    items = [(item.code, item.data) for item in found.items if item.code != PAD]
    assert (items, found.end, found.trailing) == expected
    pads = sum(len(item.data) for item in found.items if item.code == PAD)
    assert pads == sum(1 for item in OPTIONS_AREA.parse(area)["items"] if item.code == PAD)


@grammar_settings
@given(_AREA)
def test_sub_option_scan_agrees_with_the_sub_options_grammar(area: bytes) -> None:
    """Without Pad/End (relay agent, V-I data) every code, 0 and 255 too, has a length."""
    try:
        expected = [(i.code, i.data) for i in SUBOPTIONS_AREA.parse(area).value]
    except ConstructError:
        expected = None
    try:
        found = scan(area, 0, "sub-options", pads=False)
    except MalformedPacket:
        assert expected is None
        return
    assert [(item.code, item.data) for item in found.items] == expected
    assert not found.end


@grammar_settings
@given(st.integers(0, 255), st.binary(max_size=255), st.booleans())
def test_build_item_gives_what_the_item_grammar_builds(code: int, data: bytes, pads: bool) -> None:
    grammar = OPTION if pads else SUBOPTION
    assert build_item(code, data, pads) == grammar.build({"code": code, "data": data})


def test_build_item_refuses_more_than_255_bytes() -> None:
    with pytest.raises(ValueError, match="255 at most"):
        build_item(3, bytes(256))


@grammar_settings
@given(st.sampled_from(list(FAST_READERS)), st.binary(min_size=4, max_size=4))
def test_fast_readers_and_writers_match_construct(field: Any, data: bytes) -> None:
    """Addresses and integers read and written in Python equal Construct's parse/build."""
    size = field.sizeof()
    value = field.parse(data[:size])
    assert FAST_READERS[field](data[:size]) == value
    assert FAST_WRITERS[field](value) == field.build(value)


FAST_GRAMMARS = {
    code: codec for code, codec in CODECS.items() if isinstance(codec, Grammar) and codec.fast
}


def test_the_request_options_have_fast_readers() -> None:
    assert sorted(FAST_GRAMMARS) == [61, 94, 97]


@grammar_settings
@given(st.sampled_from(sorted(FAST_GRAMMARS)), st.binary(min_size=2, max_size=40))
def test_fast_grammar_readers_give_what_the_construct_grammar_gives(code: int, data: bytes) -> None:
    """Client id, NII and UUID read directly equal their Construct parse and load."""
    codec = FAST_GRAMMARS[code]
    if codec.size is not None:
        data = data.ljust(codec.size, b"\0")[: codec.size]
    assert codec.fast is not None
    assert codec.fast(data) == codec.load(parse_whole(codec.grammar, data))


@grammar_settings
@given(
    st.lists(st.binary(max_size=6).map(lambda b: bytes([len(b)]) + b)).map(b"".join) | st.binary()
)
def test_user_class_reader_gives_what_the_rfc3004_grammar_gives(data: bytes) -> None:
    """Option 77 splits into classes exactly when the Construct grammar parses it and no
    class is empty; anything else is iPXE's bare form."""
    try:
        parsed: tuple[bytes, ...] | None = tuple(parse_whole(UserClassCodec.grammar, data))
    except MalformedPacket:
        parsed = None
    if parsed is not None and not all(parsed):
        parsed = None
    assert UserClassCodec.rfc3004_classes(data) == parsed


_HEADER_NUMBERS = {"op": 1, "htype": 1, "hlen": 1, "hops": 1, "xid": 4, "secs": 2, "flags": 2}


@grammar_settings
@given(st.binary(min_size=HEADER_SIZE, max_size=HEADER_SIZE + 8))
def test_header_struct_reads_what_the_header_grammar_parses(data: bytes) -> None:
    parsed = HEADER_GRAMMAR.parse(data)
    assert parse_header(data) == {name: parsed[name] for name in parse_header(data)}


@grammar_settings
@given(
    st.fixed_dictionaries(
        {
            **{name: st.integers(-1, 2 ** (8 * size)) for name, size in _HEADER_NUMBERS.items()},
            **{
                name: st.integers(0, 2**32 - 1).map(IPv4Address)
                for name in ("ciaddr", "yiaddr", "siaddr", "giaddr")
            },
            "chaddr": st.binary(min_size=16, max_size=16),
            "sname": st.binary(min_size=64, max_size=64),
            "file": st.binary(min_size=128, max_size=128),
        }
    )
)
def test_header_struct_builds_what_the_header_grammar_builds(fields: dict[str, Any]) -> None:
    """The same bytes, and an EncodeError exactly where Construct refuses a number."""
    try:
        expected = HEADER_GRAMMAR.build(fields)
    except ConstructError:
        with pytest.raises(EncodeError, match="BOOTP header"):
            build_header(fields)
        return
    assert build_header(fields) == expected
