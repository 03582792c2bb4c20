"""Property tests for the DHCPv6 grammar: random bytes never crash the decoder, generated
well-formed messages (relays nested in relays too) round-trip byte for byte, typed
options built through the builder API decode back to equal values, and the framing
walk means exactly what its Construct grammar says."""

from __future__ import annotations

import uuid
from ipaddress import IPv6Address

from construct import ConstructError
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.dhcp.options import ClientArch, NetworkInterfaceId
from protocols.dhcp.values import Grammar, parse_whole
from protocols.dhcpv6.duid import (
    _GRAMMAR,
    DuidCodec,
    DuidEn,
    DuidLl,
    DuidLlt,
    DuidOther,
    DuidUuid,
    _load,
)
from protocols.dhcpv6.framing import OPTIONS_AREA, scan
from protocols.dhcpv6.options import (
    CODECS,
    IA_NA,
    IA_PD,
    IA_TA,
    IAADDR,
    IAPREFIX,
    STATUS_CODE,
    IaAddress,
    IaNa,
    IaPd,
    IaPrefix,
    IaTa,
    LinkLayerAddress,
    Option,
    RemoteId,
    Status,
    StatusCode,
    VendorClass,
    VendorOptions,
    encode_value,
    make_options,
)
from protocols.dhcpv6.wire import (
    _CLIENT_HEADER,
    _RELAY_HEADER,
    Dhcpv6Message,
    Dhcpv6Packet,
    Dhcpv6Relay,
    MessageType,
    decode_dhcpv6,
    encode_dhcpv6,
)
from protocols.errors import MalformedPacket
from protocols.option import BadOptionValue
from tests.support.fuzz import FUZZ_EXAMPLES, fuzz_settings

# Generating typed messages costs ~100x a random byte string: a tenth of the examples.
structured_settings = settings(fuzz_settings, max_examples=max(100, FUZZ_EXAMPLES // 10))


def _walk(message: Dhcpv6Packet) -> list[Option]:
    """Every option of a message and of the messages its relays carry."""
    options = list(message.options)
    if isinstance(message, Dhcpv6Relay):
        options += _walk(message.relayed)
    return options


def _decodes_or_is_malformed(data: bytes) -> None:
    """The fuzz contract, plus: whatever decodes re-encodes exactly and prints."""
    try:
        message = decode_dhcpv6(data)
    except MalformedPacket:
        return
    assert encode_dhcpv6(message) == data
    for option in _walk(message):
        assert str(option)


@fuzz_settings
@given(st.binary(max_size=600))
def test_random_bytes_decode_or_raise_malformed_packet(data: bytes) -> None:
    """Arbitrary datagrams: decoded, or MalformedPacket, never any other exception."""
    _decodes_or_is_malformed(data)


_KNOWN_CODES = st.sampled_from(sorted({*CODECS, 9, 18, 38, 9999}))
_RANDOM_OPTION = st.tuples(_KNOWN_CODES, st.binary(max_size=60)).map(
    lambda item: item[0].to_bytes(2, "big") + len(item[1]).to_bytes(2, "big") + item[1]
)


@fuzz_settings
@given(
    st.sampled_from([b"\x01\x00\x00\x01", b"\x0c\x00" + bytes(32), b"\x0d\x03" + bytes(32)]),
    st.lists(st.one_of(_RANDOM_OPTION, st.binary(max_size=8)), max_size=6).map(b"".join),
)
def test_random_options_behind_a_valid_header_decode_or_raise_malformed_packet(
    header: bytes, options: bytes
) -> None:
    """Mostly well-framed options with known codes and random data, so every codec (and
    the relay's option 9) sees hostile bytes: typed, InvalidValue, or MalformedPacket."""
    _decodes_or_is_malformed(header + options)


# Well-formed messages assembled independently of the encoder.

_CODES = st.integers(0, 0xFFFF).filter(lambda code: code != 9)
_OPTIONS = st.lists(st.tuples(_CODES, st.binary(max_size=40)), max_size=6)


def _frame(options: list[tuple[int, bytes]]) -> bytes:
    return b"".join(code.to_bytes(2, "big") + len(d).to_bytes(2, "big") + d for code, d in options)


@st.composite
def well_formed(draw: st.DrawFn, depth: int = 0) -> tuple[bytes, list[list[tuple[int, bytes]]]]:
    """A message, relayed up to three times, and each level's (code, data) list,
    outermost first."""
    if depth < 3 and draw(st.booleans()):
        inner, levels = draw(well_formed(depth + 1))
        options = draw(_OPTIONS)
        options.insert(draw(st.integers(0, len(options))), (9, inner))
        head = draw(st.sampled_from([b"\x0c", b"\x0d"])) + draw(st.binary(min_size=33, max_size=33))
        return head + _frame(options), [options, *levels]
    type_byte = draw(st.integers(0, 255).filter(lambda kind: kind not in (12, 13)))
    options = draw(_OPTIONS)
    head = bytes([type_byte]) + draw(st.binary(min_size=3, max_size=3))
    return head + _frame(options), [options]


@structured_settings
@given(well_formed())
def test_well_formed_messages_round_trip_byte_for_byte(
    case: tuple[bytes, list[list[tuple[int, bytes]]]],
) -> None:
    """Any codes, repeats and sizes, relays around relays: every level's options come
    back in order and the bytes come back exactly."""
    wire, levels = case
    message: Dhcpv6Packet = decode_dhcpv6(wire)
    assert encode_dhcpv6(message) == wire
    for options in levels:
        assert [(option.code, option.data) for option in message.options] == options
        if isinstance(message, Dhcpv6Relay):
            message = message.relayed


# Typed values through the builder API.

_IP = st.ip_addresses(v=6).map(lambda ip: IPv6Address(int(ip)))
_U8 = st.integers(0, 0xFF)
_U16 = st.integers(0, 0xFFFF)
_U32 = st.integers(0, 0xFFFFFFFF)
_TEXT = st.text(max_size=60)
_BLOBS = st.lists(st.binary(max_size=20), max_size=4).map(tuple)
_LABEL = st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True)
_DOMAIN = st.lists(_LABEL, min_size=1, max_size=4).map(".".join)
_DUID = st.one_of(
    st.builds(DuidLlt, _U16, _U32, st.binary(min_size=1, max_size=120)),
    st.builds(DuidEn, _U32, st.binary(min_size=1, max_size=120)),
    st.builds(DuidLl, _U16, st.binary(min_size=1, max_size=124)),
    st.builds(DuidUuid, st.uuids().map(lambda u: uuid.UUID(int=u.int))),
    st.builds(DuidOther, st.integers(5, 0xFFFF), st.binary(min_size=1, max_size=128)),
)
_STATUS = st.builds(Status, st.one_of(st.sampled_from(StatusCode), st.integers(7, 0xFFFF)), _TEXT)
_STATUS_OPTION = _STATUS.map(lambda status: Option.of(13, status))
_IAADDR = st.builds(IaAddress, _IP, _U32, _U32, st.lists(_STATUS_OPTION, max_size=1).map(tuple))
_IA_OPTIONS = st.lists(
    st.one_of(_IAADDR.map(lambda address: Option.of(5, address)), _STATUS_OPTION), max_size=3
).map(tuple)
_IAPREFIX = st.builds(IaPrefix, _U32, _U32, st.integers(0, 128), _IP, st.just(()))
TYPED: dict[int, st.SearchStrategy[object]] = {
    1: _DUID,
    2: _DUID,
    3: st.builds(IaNa, _U32, _U32, _U32, _IA_OPTIONS),
    4: st.builds(IaTa, _U32, _IA_OPTIONS),
    5: _IAADDR,
    6: st.lists(_U16, max_size=10).map(tuple),
    7: _U8,
    8: _U16,
    12: _IP,
    13: _STATUS,
    14: st.just(True),
    15: _BLOBS,
    16: st.builds(VendorClass, _U32, _BLOBS),
    17: st.builds(
        VendorOptions,
        _U32,
        st.lists(st.tuples(_U16, st.binary(max_size=10)), max_size=4).map(tuple),
    ),
    18: st.binary(max_size=20),
    23: st.lists(_IP, min_size=1, max_size=4).map(tuple),
    24: st.lists(_DOMAIN, max_size=4).map(tuple),
    25: st.builds(
        IaPd,
        _U32,
        _U32,
        _U32,
        st.lists(_IAPREFIX.map(lambda prefix: Option.of(26, prefix)), max_size=2).map(tuple),
    ),
    26: _IAPREFIX,
    37: st.builds(RemoteId, _U32, st.binary(max_size=20)),
    38: st.binary(max_size=20),
    59: _TEXT,
    60: st.lists(_TEXT, max_size=4).map(tuple),
    61: st.lists(st.one_of(st.sampled_from(ClientArch), _U16), min_size=1, max_size=4).map(tuple),
    62: st.builds(NetworkInterfaceId, _U8, _U8, _U8),
    79: st.builds(LinkLayerAddress, _U16, st.binary(max_size=16)),
}


@st.composite
def typed_options(draw: st.DrawFn) -> list[tuple[int, object]]:
    codes = draw(st.lists(st.sampled_from(sorted(TYPED)), unique=True, max_size=10))
    return [(code, draw(TYPED[code])) for code in codes]


@structured_settings
@given(
    typed_options(), st.sampled_from(MessageType), _U32.map(lambda n: n & 0xFFFFFF), st.booleans()
)
def test_built_messages_decode_back_to_equal_typed_values(
    options: list[tuple[int, object]], kind: MessageType, xid: int, relayed: bool
) -> None:
    """Every typed value the builder accepts comes back equal after encode and decode,
    directly or inside a RELAY-FORW."""
    message = Dhcpv6Message(
        msg_type=MessageType.SOLICIT if kind in (12, 13) else kind,
        transaction_id=xid,
        options=make_options(options),
    )
    sent: Dhcpv6Packet = message
    if relayed:
        sent = Dhcpv6Relay.around(message, msg_type=MessageType.RELAY_FORW, options=[(18, b"i")])
    back = decode_dhcpv6(encode_dhcpv6(sent))
    assert back == sent
    inner = back.client_message if isinstance(back, Dhcpv6Relay) else back
    assert inner == message
    for code, value in options:
        assert inner.option(code) == value


# The framing walk and its grammar.

_ITEM = st.one_of(
    st.tuples(_U16, st.binary(max_size=12)).map(
        lambda item: item[0].to_bytes(2, "big") + len(item[1]).to_bytes(2, "big") + item[1]
    ),
    st.binary(min_size=1, max_size=5),
)


@structured_settings
@given(st.lists(_ITEM, max_size=8).map(b"".join))
def test_scan_agrees_with_the_options_area_grammar(area: bytes) -> None:
    """scan accepts exactly what OPTIONS_AREA accepts, with the same items."""
    try:
        expected = [(item.code, item.data) for item in OPTIONS_AREA.parse(area).value]
    except ConstructError:
        expected = None
    try:
        found = [(item.code, item.data) for item in scan(area, 0, "options")]
    except MalformedPacket:
        found = None
    assert found == expected


_DIRECT = (IA_NA, IA_TA, IAADDR, IA_PD, IAPREFIX, STATUS_CODE)


@structured_settings
@given(st.sampled_from(_DIRECT), st.binary(max_size=60))
def test_direct_codecs_read_and_write_what_their_grammar_does(code: int, data: bytes) -> None:
    """The IA options and status codes skip Construct (options._Direct): each reads any
    bytes as its grammar parses them and writes the value back as the grammar builds it."""
    codec = CODECS[code]
    assert isinstance(codec, Grammar)
    try:
        found: object = codec.decode(data)
    except MalformedPacket as refused:
        found = refused.reason
    try:
        if len(data) < codec.minimum:
            raise MalformedPacket("short")
        expected: object = codec.load(parse_whole(codec.grammar, data))
    except MalformedPacket as refused:
        assert found == refused.reason or len(data) < codec.minimum
        return
    assert found == expected
    assert codec.encode(found) == bytes(codec.construct.build(codec.dump(found)))


@structured_settings
@given(
    st.sampled_from([(IA_NA, IaNa), (IA_PD, IaPd)]),
    st.tuples(*[st.integers(-1, 1 << 33)] * 3),
)
def test_direct_codecs_refuse_what_their_grammar_cannot_build(
    shape: tuple[int, type], fields: tuple[int, int, int]
) -> None:
    code, kind = shape
    value = kind(*fields)
    try:
        expected: bytes | None = bytes(CODECS[code].construct.build(CODECS[code].dump(value)))
    except ConstructError:
        expected = None
    try:
        found: bytes | None = encode_value(code, value)
    except BadOptionValue:
        found = None
    assert found == expected


@structured_settings
@given(st.binary(min_size=3, max_size=40))
def test_duid_reads_what_its_grammar_parses(data: bytes) -> None:
    try:
        found = DuidCodec().decode(data)
    except MalformedPacket:
        return  # the length checks, ahead of both readers
    assert found == _load(parse_whole(_GRAMMAR, data))


@structured_settings
@given(st.integers(0, 255), st.integers(0, 255), st.binary(min_size=32, max_size=32))
def test_headers_are_what_their_grammar_builds(kind: int, other: int, addresses: bytes) -> None:
    """Client/server header (``other`` in the transaction id) and relay header, both ways."""
    xid = other << 16 | kind << 8 | other
    link, peer = IPv6Address(addresses[:16]), IPv6Address(addresses[16:])
    if kind not in (12, 13):
        message = Dhcpv6Message(msg_type=kind, transaction_id=xid)
        wire = bytes(_CLIENT_HEADER.build({"msg_type": kind, "transaction_id": xid}))
        assert encode_dhcpv6(message) == wire
        assert decode_dhcpv6(wire) == message
    fields = {"msg_type": kind, "hop_count": other, "link_address": link, "peer_address": peer}
    relay = Dhcpv6Relay.around(Dhcpv6Message(msg_type=1), **fields)
    assert encode_dhcpv6(relay)[:34] == bytes(_RELAY_HEADER.build(fields))
