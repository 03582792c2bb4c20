"""Property tests for the DHCP grammar: random bytes never crash the decoder, generated
well-formed packets round-trip byte for byte, and typed options built through the
builder API decode back to equal values."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.dhcp.options import (
    ClasslessRoute,
    ClientArch,
    ClientFqdn,
    ClientId,
    ClientUuid,
    MessageType,
    NetworkInterfaceId,
    Option,
    StaticRoute,
    UserClass,
)
from protocols.dhcp.suboptions import (
    BootItem,
    BootServer,
    IpxeOptions,
    MenuItem,
    MenuPrompt,
    PxeOptions,
    RelayAgentInfo,
    VendorBlock,
)
from protocols.dhcp.values import scan
from protocols.dhcp.wire import DhcpPacket, EncodeError, decode_dhcp, encode_dhcp, make_options
from protocols.errors import MalformedPacket
from tests.support.fuzz import FUZZ_EXAMPLES, fuzz_settings

# Generating whole typed packets costs ~100x a random byte string; the byte-level fuzz
# keeps the full count, these structure-aware ones a tenth of it.
structured_settings = settings(fuzz_settings, max_examples=max(100, FUZZ_EXAMPLES // 10))

COOKIE = b"\x63\x82\x53\x63"


def _decodes_or_is_malformed(data: bytes) -> None:
    """The fuzz contract, plus: whatever decodes re-encodes exactly and prints."""
    try:
        packet = decode_dhcp(data)
    except MalformedPacket:
        return
    assert encode_dhcp(packet) == data
    for option in packet.options:
        assert str(option)


@fuzz_settings
@given(st.binary(max_size=700))
def test_random_bytes_decode_or_raise_malformed_packet(data: bytes) -> None:
    """Arbitrary datagrams: decoded, or MalformedPacket, never any other exception."""
    _decodes_or_is_malformed(data)


@fuzz_settings
@given(
    st.binary(min_size=236, max_size=236),
    st.sampled_from([b"", b"\x34\x01\x01", b"\x34\x01\x02", b"\x34\x01\x03"]),
    st.binary(max_size=500),
)
def test_random_options_after_a_cookie_decode_or_raise_malformed_packet(
    header: bytes, overload: bytes, options: bytes
) -> None:
    """Random option bytes behind a valid cookie (and sometimes option 52, so random
    file/sname bytes are parsed as options too) obey the same contract."""
    _decodes_or_is_malformed(header + COOKIE + overload + options)


# Well-formed packets assembled independently of the encoder.

_CODES = st.integers(1, 254).filter(lambda code: code != 52)


@st.composite
def _area(draw: st.DrawFn, room: int | None) -> tuple[bytes, list[tuple[int, bytes]]]:
    """An options area: option chunks (repeated codes allowed), Pad runs, End, junk after."""
    tokens = draw(
        st.lists(st.tuples(_CODES, st.binary(max_size=255 if room is None else 20)), max_size=8)
    )
    out = bytearray()
    for code, chunk in tokens:
        out += bytes(draw(st.integers(0, 2))) + bytes([code, len(chunk)]) + chunk
    if room is None:
        if draw(st.booleans()):
            out += b"\xff" + draw(st.binary(max_size=60))
        return bytes(out), tokens
    while len(out) > room - 1:
        tokens.pop()
        out = bytearray(b"".join(bytes([c, len(d)]) + d for c, d in tokens))
    out += b"\xff"
    return bytes(out + draw(st.binary(min_size=room - len(out), max_size=room - len(out)))), tokens


@st.composite
def well_formed(draw: st.DrawFn) -> tuple[bytes, dict[int, bytes]]:
    """A DHCP message built by hand and the joined option data it must decode to."""
    overload = draw(st.integers(0, 3))
    main, tokens = draw(_area(None))
    file, file_tokens = (
        draw(_area(128)) if overload & 1 else (draw(st.binary(min_size=128, max_size=128)), [])
    )
    sname, sname_tokens = (
        draw(_area(64)) if overload & 2 else (draw(st.binary(min_size=64, max_size=64)), [])
    )
    if overload:
        main = bytes([52, 1, overload]) + main
        tokens = [(52, bytes([overload])), *tokens]
    header = draw(st.binary(min_size=44, max_size=44)) + sname + file
    joined: dict[int, bytes] = {}
    for code, chunk in tokens + file_tokens + sname_tokens:
        joined[code] = joined.get(code, b"") + chunk
    return header + COOKIE + main, joined


@structured_settings
@given(well_formed())
def test_well_formed_packets_round_trip_byte_for_byte(case: tuple[bytes, dict[int, bytes]]) -> None:
    """Long options split any way, Pads, overload into file/sname, junk after End: the
    options join in RFC 3396 order and the bytes come back exactly."""
    wire, joined = case
    packet = decode_dhcp(wire)
    assert {option.code: option.data for option in packet.options} == joined
    assert [option.code for option in packet.options] == list(joined)
    assert encode_dhcp(packet) == wire


# Typed values through the builder API.

_IP = st.ip_addresses(v=4).map(lambda ip: IPv4Address(int(ip)))
_IPS = st.lists(_IP, min_size=1, max_size=70).map(tuple)
_TEXT = st.text(max_size=300).filter(lambda t: len(t.encode()) <= 300)
_SHORT_TEXT = st.text(max_size=40).filter(lambda t: len(t.encode()) <= 200)
_U8 = st.integers(0, 255)
_U16 = st.integers(0, 0xFFFF)
_U32 = st.integers(0, 0xFFFFFFFF)
_LABEL = st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True)
_DOMAIN = st.lists(_LABEL, min_size=1, max_size=4).map(".".join)
_PXE = st.builds(
    PxeOptions,
    st.lists(
        st.one_of(
            st.tuples(st.just(6), _U8),
            st.tuples(
                st.just(8),
                st.lists(
                    st.builds(BootServer, _U16, st.lists(_IP, max_size=4).map(tuple)), max_size=3
                ).map(tuple),
            ),
            st.tuples(
                st.just(9), st.lists(st.builds(MenuItem, _U16, _SHORT_TEXT), max_size=3).map(tuple)
            ),
            st.tuples(st.just(10), st.builds(MenuPrompt, _U8, _SHORT_TEXT)),
            st.tuples(st.just(71), st.builds(BootItem, _U16, _U16)),
        ),
        max_size=5,
    ).map(tuple),
    st.booleans(),
)
_IPXE = st.builds(
    IpxeOptions,
    st.lists(
        st.one_of(
            st.tuples(st.just(1), st.integers(-128, 127)),
            st.tuples(st.sampled_from([16, 19, 20, 36]), _U8),
            st.tuples(st.just(188), _SHORT_TEXT),
            st.tuples(st.just(235), st.binary(max_size=3)),
        ),
        max_size=6,
    ).map(tuple),
    st.booleans(),
)
TYPED: dict[int, st.SearchStrategy[object]] = {
    1: _IP,
    3: _IPS,
    6: _IPS,
    12: _TEXT,
    15: _TEXT,
    28: _IP,
    33: st.lists(st.builds(StaticRoute, _IP, _IP), min_size=1, max_size=40).map(tuple),
    42: _IPS,
    43: _PXE,
    50: _IP,
    51: _U32,
    53: st.one_of(st.sampled_from(MessageType), st.integers(19, 255)),
    54: _IP,
    55: st.lists(_U8, min_size=0, max_size=300).map(tuple),
    57: _U16,
    58: _U32,
    59: _U32,
    61: st.builds(ClientId, _U8, st.binary(min_size=1, max_size=300)),
    66: _TEXT,
    67: _TEXT,
    77: st.one_of(
        st.builds(UserClass, st.lists(st.binary(min_size=1, max_size=30), max_size=4).map(tuple)),
        st.just(UserClass((b"iPXE",), bare=True)),
    ),
    81: st.builds(ClientFqdn, _U8, _U8, _U8, st.binary(max_size=60)),
    82: st.builds(
        RelayAgentInfo,
        st.lists(
            st.one_of(
                st.tuples(st.sampled_from([1, 2, 9, 151]), st.binary(max_size=30)),
                st.tuples(st.sampled_from([5, 11]), _IP),
            ),
            max_size=4,
        ).map(tuple),
    ),
    93: st.lists(st.one_of(st.sampled_from(ClientArch), _U16), min_size=1, max_size=4).map(tuple),
    94: st.builds(NetworkInterfaceId, _U8, _U8, _U8),
    97: st.builds(ClientUuid, _U8, st.binary(min_size=16, max_size=16)),
    119: st.lists(_DOMAIN, max_size=30).map(tuple),
    121: st.lists(
        st.builds(
            lambda ip, width, router: ClasslessRoute(
                IPv4Network((ip, width), strict=False), router
            ),
            _IP,
            st.integers(0, 32),
            _IP,
        ),
        max_size=30,
    ).map(tuple),
    125: st.lists(
        st.builds(
            VendorBlock,
            _U32,
            st.lists(st.tuples(_U8, st.binary(max_size=10)), max_size=4).map(tuple),
        ),
        max_size=3,
    ).map(tuple),
    150: _IPS,
    175: _IPXE,
    208: st.binary(min_size=4, max_size=4),
    209: _TEXT,
    210: _TEXT,
    211: _U32,
    252: _TEXT,
}


@st.composite
def typed_options(draw: st.DrawFn) -> list[tuple[int, object]]:
    codes = draw(st.lists(st.sampled_from(sorted(TYPED)), unique=True, max_size=12))
    options: list[tuple[int, object]] = [(code, draw(TYPED[code])) for code in codes]
    # Option 43 holds PXE sub-options only for a PXEClient vendor class.
    return [(60, "PXEClient:Arch:00000:UNDI:002001"), *options]


@structured_settings
@given(typed_options(), st.integers(0, 0xFFFFFFFF), st.booleans())
def test_built_packets_decode_back_to_equal_typed_values(
    options: list[tuple[int, object]], xid: int, broadcast: bool
) -> None:
    """Every typed value the builder accepts comes back equal after encode and decode."""
    packet = DhcpPacket(
        xid=xid,
        flags=0x8000 if broadcast else 0,
        chaddr=b"\x52\x54\0\0\0\1",
        options=make_options(options),
    )
    back = decode_dhcp(encode_dhcp(packet))
    assert back == packet
    for code, value in options:
        assert back.option(code) == value


@structured_settings
@given(typed_options(), st.integers(300, 1500))
def test_replies_fit_max_size_or_say_they_cannot(
    options: list[tuple[int, object]], max_size: int
) -> None:
    """With max_size the encoder overflows into file/sname (option 52) or raises
    EncodeError; what it emits fits and decodes to the same options, in the same order
    except that an overflowing reply keeps option 82 last in the options field."""
    packet = DhcpPacket(op=2, options=make_options(options))
    try:
        wire = encode_dhcp(packet, max_size=max_size)
    except EncodeError as error:
        assert str(error).startswith("options need")
        return
    assert len(wire) <= max_size
    back = decode_dhcp(wire)
    sent = [o for o in back.options if o.code != 52]
    assert sorted(sent, key=_code) == sorted(packet.options, key=_code)
    assert [o for o in sent if o.code != 82] == [o for o in packet.options if o.code != 82]
    if back.overload is not None and packet.get(82) is not None:
        main = [item.code for item in scan(wire[240:], 240, "options").items if item.code]
        assert main[-1] == 82
    assert encode_dhcp(back) == wire


def _code(option: Option) -> int:
    return option.code
