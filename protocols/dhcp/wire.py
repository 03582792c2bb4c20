"""BOOTP/DHCPv4 messages on the wire (RFC 951, 2131, 2132, 3396): decode, encode, build.

Public API (Construct containers never leave this package)::

    decode_dhcp(data: bytes) -> DhcpPacket        # raises only MalformedPacket
    encode_dhcp(packet, *, max_size=None, min_size=0) -> bytes   # EncodeError if it can't fit
    DhcpPacket(op=..., xid=..., chaddr=..., ..., options=(...))  # frozen, keyword-only
    DhcpPacket.reply(request, options, *, file="", sname="", yiaddr=, siaddr=, ciaddr=, vend=)
    make_options([(53, MessageType.OFFER), (54, server_ip), (3, (gw,)), (43, b"...")])
    packet.option(code)  -> typed value or None; MalformedPacket if its bytes don't fit
    packet.carries(frozenset_of_codes) -> whether any of them is present
    packet.get(code)     -> Option | None (lenient: .value may be an InvalidValue)
    packet.message_type, vendor_class, client_arch, user_class, parameter_request_list,
        requested_ip, server_id, client_id, client_uuid, max_message_size, hostname,
        relay_agent_info, is_pxe, is_ipxe, mac, hardware_address, broadcast,
        boot_file, server_name (NUL-terminated text of file/sname), overload, is_dhcp

    Option(code, data): .value (typed, decoded on first use), .error, .typed(), .name,
        str() -> "router=10.0.0.1,10.0.0.2";  Option.of(code, typed value or bytes)
    options.py: option_name(code), MessageType, ClientArch (IANA names), Overload,
        ClientId, ClientUuid, NetworkInterfaceId, UserClass, ClientFqdn, ClasslessRoute,
        StaticRoute, InvalidValue;  suboptions.py: PxeOptions (43), RelayAgentInfo (82),
        IpxeOptions (175), VendorBlock (125), BootServer, MenuItem, MenuPrompt, BootItem.
    Plain values: IPv4Address, tuple[IPv4Address, ...], int, str (text options keep
    their bytes exactly, NULs included), tuple[int, ...], raw bytes for other codes.

Round trip: ``encode_dhcp(decode_dhcp(x)) == x`` for every packet that decodes.  The
decoder records how options were laid out (Pad runs, how a long option was split into
repeated codes, which of options/file/sname held each piece, End, bytes after End);
the encoder replays that layout while the options keep their codes, order and sizes
(sname/file holding options are rebuilt from it), and otherwise lays them out afresh:
in the given order, 255-byte chunks, End.  Equality of packets ignores the layout.

Bad values: an option whose bytes don't fit its type still decodes, as an
``InvalidValue`` keeping the bytes, the problem and the offset, so the packet prints
and round-trips; the strict accessors (``option()``, the properties, ``Option.typed()``)
raise MalformedPacket ("option 51 (lease-time): length 3, expected 4 ..., at offset 260").
Only framing errors (a header cut short, a length running past the packet or past
sname/file when option 52 says they hold options) make ``decode_dhcp`` raise.  Option 43
holds PXE sub-options only when option 60 starts with PXEClient; plain BOOTP (no magic
cookie) keeps its vendor area raw in ``vend``.

``max_size`` (the client's option 57 minus 28 for the IP and UDP headers) makes the
encoder move whole options that don't fit into ``file`` and then ``sname``, when those
fields are empty, adding option 52 first; option 82 stays behind, last in options (RFC
3046 2.2); ``min_size`` pads after End (BOOTP wants 300).

Speed: see values.py; benchmarks/codec.py measures decode and encode of real shapes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any

from construct import Bytes, Int8ub, Int16ub, Int32ub, Struct

from protocols.dhcp.options import (
    CLIENT_ARCH,
    CLIENT_ID,
    CLIENT_UUID,
    HOSTNAME,
    IPXE_ENCAP,
    MAX_MESSAGE_SIZE,
    MESSAGE_TYPE,
    OVERLOAD,
    PARAMETER_REQUEST_LIST,
    RELAY_AGENT_INFO,
    REQUESTED_IP,
    SERVER_ID,
    USER_CLASS,
    VENDOR_CLASS,
    VENDOR_SPECIFIC,
    ClientId,
    ClientUuid,
    MessageType,
    Option,
    Overload,
    UserClass,
)
from protocols.dhcp.suboptions import RelayAgentInfo
from protocols.dhcp.values import (
    END,
    FAST_WRITERS,
    IPV4,
    PAD,
    Scan,
    build_item,
    decode_text,
    read_ipv4,
    scan,
)
from protocols.errors import MalformedPacket
from protocols.once import once

BOOTREQUEST = 1
BOOTREPLY = 2
BROADCAST_FLAG = 0x8000
MAGIC_COOKIE = b"\x63\x82\x53\x63"
HEADER_SIZE = 236
SNAME_OFFSET = 44
FILE_OFFSET = 108
SNAME_SIZE = 64
FILE_SIZE = 128
_OPTIONS_OFFSET = HEADER_SIZE + len(MAGIC_COOKIE)
_ZERO = IPv4Address(0)
_ZERO_BYTES = bytes(4)
_EMPTY_FIELDS = {SNAME_SIZE: bytes(SNAME_SIZE), FILE_SIZE: bytes(FILE_SIZE)}

HEADER_GRAMMAR = Struct(
    "op" / Int8ub,
    "htype" / Int8ub,
    "hlen" / Int8ub,
    "hops" / Int8ub,
    "xid" / Int32ub,
    "secs" / Int16ub,
    "flags" / Int16ub,
    "ciaddr" / IPV4,
    "yiaddr" / IPV4,
    "siaddr" / IPV4,
    "giaddr" / IPV4,
    "chaddr" / Bytes(16),
    "sname" / Bytes(SNAME_SIZE),
    "file" / Bytes(FILE_SIZE),
)
# The header is most of a DHCP exchange's codec cost, and even Construct's compiled
# parser spent 45 µs a DISCOVER on it: ``HEADER_GRAMMAR`` stays the grammar, ``_FAST_HEADER``
# reads and writes the same 236 bytes with one struct call (the property tests in
# tests/protocols/test_dhcp_grammar.py hold the two to the same meaning).  struct
# packs bytes of the wrong length silently and raises struct.error for a number out of
# range, so _build_header checks those itself.
_FAST_HEADER = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")
assert _FAST_HEADER.size == HEADER_SIZE
_BYTES_FIELDS = (("chaddr", 16), ("sname", SNAME_SIZE), ("file", FILE_SIZE))
_HEADER_FIELDS = ("op", "htype", "hlen", "hops", "xid", "secs", "flags")
_ADDRESS_FIELDS = ("ciaddr", "yiaddr", "siaddr", "giaddr")
_FIELDS = (*_HEADER_FIELDS, *_ADDRESS_FIELDS, "chaddr", "sname", "file")
_WRITE_IPV4 = FAST_WRITERS[IPV4]


def parse_header(data: bytes) -> dict[str, Any]:
    """The header fields of at least HEADER_SIZE bytes, as ``HEADER_GRAMMAR`` parses them."""
    values = _FAST_HEADER.unpack_from(data)
    fields = dict(zip(_FIELDS, values, strict=True))
    for name in _ADDRESS_FIELDS:
        raw = fields[name]
        # Most requests leave three of the four at 0.0.0.0: share the one address object.
        fields[name] = _ZERO if raw == _ZERO_BYTES else read_ipv4(raw)
    return fields


class EncodeError(ValueError):
    """The options cannot fit in ``max_size`` even using file and sname."""


@dataclass(frozen=True)
class _Area:
    """How one options area looked: (code, length) per option chunk, (0, n) per Pad run."""

    items: tuple[tuple[int, int], ...]
    end: bool
    trailing: bytes


class _Layout:
    """Everything about a decoded packet's option bytes that the options themselves lose.

    Worked out from the decoder's scans on first use: only re-encoding a decoded packet
    reads it (a replay, the round trip), never the engine answering a request.
    ``order`` and ``sizes`` are those of the options as decoded.
    """

    def __init__(
        self, scans: tuple[Scan, Scan | None, Scan | None], options: tuple[Option, ...]
    ) -> None:
        self._scans = scans
        self._options = options

    @once
    def main(self) -> _Area:
        return _area_layout(self._scans[0])

    @once
    def file(self) -> _Area | None:
        area = self._scans[1]
        return _area_layout(area) if area is not None else None

    @once
    def sname(self) -> _Area | None:
        area = self._scans[2]
        return _area_layout(area) if area is not None else None

    @once
    def order(self) -> tuple[int, ...]:
        return tuple(option.code for option in self._options)

    @once
    def sizes(self) -> tuple[int, ...]:
        return tuple(len(option.data) for option in self._options)


def _pad_field(value: bytes, size: int, name: str) -> bytes:
    if len(value) > size:
        raise ValueError(f"{name} is {len(value)} bytes, the field holds {size}")
    return value.ljust(size, b"\0")


def _text_field(text: str, size: int, name: str) -> bytes:
    """``text`` as a NUL-padded header field (a reply's file or sname)."""
    return _EMPTY_FIELDS[size] if not text else _pad_field(text.encode(), size, name)


def _field_text(raw: bytes) -> str:
    """A NUL-terminated header string; whatever follows the first NUL is not text."""
    return decode_text(raw.split(b"\0", 1)[0])


@dataclass(frozen=True, kw_only=True)
class DhcpPacket:
    """One BOOTP/DHCP message.  ``chaddr``, ``sname`` and ``file`` are the raw fields
    (shorter values are NUL-padded); ``vend`` is not None only for plain BOOTP (no magic
    cookie), holding the vendor area as it came; such a packet is encoded with ``vend``
    and without ``options``, which a plain BOOTP client could not read.  Equality
    ignores wire layout."""

    op: int = BOOTREQUEST
    htype: int = 1
    hlen: int = 6
    hops: int = 0
    xid: int = 0
    secs: int = 0
    flags: int = 0
    ciaddr: IPv4Address = _ZERO
    yiaddr: IPv4Address = _ZERO
    siaddr: IPv4Address = _ZERO
    giaddr: IPv4Address = _ZERO
    chaddr: bytes = bytes(16)
    sname: bytes = bytes(SNAME_SIZE)
    file: bytes = bytes(FILE_SIZE)
    options: tuple[Option, ...] = ()
    vend: bytes | None = None
    layout: _Layout | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if (len(self.chaddr), len(self.sname), len(self.file)) == (16, SNAME_SIZE, FILE_SIZE):
            return  # every decoded packet, and most built ones
        for name, size in _BYTES_FIELDS:
            value = getattr(self, name)
            if len(value) != size:
                object.__setattr__(self, name, _pad_field(value, size, name))

    @classmethod
    def reply(
        cls,
        request: DhcpPacket,
        options: Iterable[Option | tuple[int, object]],
        *,
        file: str = "",
        sname: str = "",
        yiaddr: IPv4Address = _ZERO,
        siaddr: IPv4Address = _ZERO,
        ciaddr: IPv4Address = _ZERO,
        vend: bytes | None = None,
    ) -> DhcpPacket:
        """A BOOTREPLY to ``request`` (RFC 2131 table 3: xid, flags, giaddr, chaddr,
        htype and hlen copied; hops and secs 0)."""
        return cls._assemble(
            {
                "op": BOOTREPLY,
                "htype": request.htype,
                "hlen": request.hlen,
                "hops": 0,
                "xid": request.xid,
                "secs": 0,
                "flags": request.flags,
                "ciaddr": ciaddr,
                "yiaddr": yiaddr,
                "siaddr": siaddr,
                "giaddr": request.giaddr,
                "chaddr": request.chaddr,
                "sname": _text_field(sname, SNAME_SIZE, "sname"),
                "file": _text_field(file, FILE_SIZE, "file"),
                "options": make_options(options),
                "vend": vend,
                "layout": None,
            }
        )

    @classmethod
    def _assemble(cls, fields: dict[str, Any]) -> DhcpPacket:
        """A packet from every one of its fields, sizes already right, without the
        dataclass ``__init__``: a frozen dataclass sets its 17 fields one
        ``object.__setattr__`` at a time, and every request and reply is built once
        (about a tenth of a relayed DORA in the engine, benchmarks/README.md)."""
        packet = object.__new__(cls)
        packet.__dict__.update(fields)
        return packet

    @once
    def _by_code(self) -> dict[int, Option]:
        return {option.code: option for option in self.options}

    def get(self, code: int) -> Option | None:
        """The option with this code (lenient: its value may be an InvalidValue)."""
        return self._by_code.get(code)

    def carries(self, codes: frozenset[int]) -> bool:
        """Whether any of these options is present (one set operation, no loop)."""
        return not self._by_code.keys().isdisjoint(codes)

    def option(self, code: int) -> object:
        """Typed value of option ``code``, None if absent; MalformedPacket if its bytes
        don't fit its type (the engine drops such a request)."""
        found = self._by_code.get(code)
        return None if found is None else found.typed()

    @property
    def is_dhcp(self) -> bool:
        """False for plain BOOTP (no magic cookie)."""
        return self.vend is None

    @property
    def broadcast(self) -> bool:
        return bool(self.flags & BROADCAST_FLAG)

    @property
    def hardware_address(self) -> bytes:
        """The first ``hlen`` bytes of chaddr (the MAC for Ethernet)."""
        return self.chaddr[: min(self.hlen, 16)]

    @once
    def mac(self) -> str:
        """The engine, the log and the event each ask, several times a request."""
        return self.hardware_address.hex(":")

    @property
    def overload(self) -> Overload | None:
        value = self.get(OVERLOAD)
        return value.value if value is not None and isinstance(value.value, Overload) else None

    @property
    def server_name(self) -> str:
        """sname as text, "" when it carries options (option 52)."""
        if self.overload in (Overload.SNAME, Overload.BOTH):
            return ""
        return _field_text(self.sname)

    @property
    def boot_file(self) -> str:
        """file as text, "" when it carries options (option 52)."""
        if self.overload in (Overload.FILE, Overload.BOTH):
            return ""
        return _field_text(self.file)

    @property
    def message_type(self) -> MessageType | int | None:
        """Option 53; None for BOOTP."""
        return self.option(MESSAGE_TYPE)  # type: ignore[return-value]

    @property
    def vendor_class(self) -> str | None:
        return self.option(VENDOR_CLASS)  # type: ignore[return-value]

    @property
    def client_arch(self) -> tuple[int, ...]:
        """Option 93 (ClientArch members where known); () when absent."""
        return self.option(CLIENT_ARCH) or ()  # type: ignore[return-value]

    @property
    def user_class(self) -> UserClass | None:
        return self.option(USER_CLASS)  # type: ignore[return-value]

    @property
    def parameter_request_list(self) -> tuple[int, ...]:
        return self.option(PARAMETER_REQUEST_LIST) or ()  # type: ignore[return-value]

    @property
    def requested_ip(self) -> IPv4Address | None:
        return self.option(REQUESTED_IP)  # type: ignore[return-value]

    @property
    def server_id(self) -> IPv4Address | None:
        return self.option(SERVER_ID)  # type: ignore[return-value]

    @property
    def client_id(self) -> ClientId | None:
        return self.option(CLIENT_ID)  # type: ignore[return-value]

    @property
    def client_uuid(self) -> ClientUuid | None:
        return self.option(CLIENT_UUID)  # type: ignore[return-value]

    @property
    def max_message_size(self) -> int | None:
        return self.option(MAX_MESSAGE_SIZE)  # type: ignore[return-value]

    @property
    def hostname(self) -> str | None:
        return self.option(HOSTNAME)  # type: ignore[return-value]

    @property
    def relay_agent_info(self) -> RelayAgentInfo | None:
        return self.option(RELAY_AGENT_INFO)  # type: ignore[return-value]

    @property
    def is_pxe(self) -> bool:
        """Vendor class starts with PXEClient (the firmware's PXE client, or iPXE)."""
        return (self.vendor_class or "").startswith("PXEClient")

    @property
    def is_ipxe(self) -> bool:
        """iPXE announces itself with user class ``iPXE`` or its option 175."""
        user_class = self.user_class
        return IPXE_ENCAP in self._by_code or (
            user_class is not None and b"iPXE" in user_class.classes
        )


def make_options(options: Iterable[Option | tuple[int, object]]) -> tuple[Option, ...]:
    """Options in the given order from ``(code, typed value)`` pairs (or ready Options)."""
    # A list comprehension, not a generator: every reply comes here, and a generator
    # resumes once per option.
    return tuple(
        [item if isinstance(item, Option) else Option.of(item[0], item[1]) for item in options]
    )


# Decoding


def decode_dhcp(data: bytes) -> DhcpPacket:
    """Decode one UDP payload; MalformedPacket is the only exception it raises."""
    if len(data) < HEADER_SIZE:
        raise MalformedPacket(f"truncated BOOTP header: {len(data)} bytes, need {HEADER_SIZE}")
    fields = parse_header(data)  # 236 bytes always parse: any value fits
    if data[HEADER_SIZE:_OPTIONS_OFFSET] != MAGIC_COOKIE:
        fields.update(options=(), vend=data[HEADER_SIZE:], layout=None)
        return DhcpPacket._assemble(fields)
    main = scan(data[_OPTIONS_OFFSET:], _OPTIONS_OFFSET, "options")
    overload = _overload(main)
    file_area = sname_area = None
    if overload & Overload.FILE:
        file_area = scan(fields["file"], FILE_OFFSET, "options in file (option 52)")
    if overload & Overload.SNAME:
        sname_area = scan(fields["sname"], SNAME_OFFSET, "options in sname (option 52)")
    options, layout = _join(main, file_area, sname_area)
    fields.update(options=options, vend=None, layout=layout)
    return DhcpPacket._assemble(fields)


def _overload(main: Scan) -> int:
    """Option 52's value when it is well-formed, else 0 (no overload)."""
    chunks = [item.data for item in main.items if item.code == OVERLOAD]
    data = b"".join(chunks)
    return data[0] if chunks and len(data) == 1 and 1 <= data[0] <= 3 else 0


def _join(
    main: Scan, file_area: Scan | None, sname_area: Scan | None
) -> tuple[tuple[Option, ...], _Layout]:
    """RFC 3396: every piece of one code, in options/file/sname order, is one option."""
    joined: dict[int, bytes] = {}
    offsets: dict[int, int] = {}
    for area in (main, file_area, sname_area):
        if area is None:
            continue
        for code, offset, data in area.items:
            if code == PAD:
                continue
            if code in joined:
                joined[code] += data
            else:
                joined[code] = data
                offsets[code] = offset
    pxe = joined.get(VENDOR_CLASS, b"").startswith(b"PXEClient")
    options = tuple(
        [
            Option.found(code, data, pxe and code == VENDOR_SPECIFIC, offsets[code])
            for code, data in joined.items()
        ]
    )
    return options, _Layout((main, file_area, sname_area), options)


def _area_layout(area: Scan) -> _Area:
    return _Area(tuple((item.code, len(item.data)) for item in area.items), area.end, area.trailing)


# Encoding


def encode_dhcp(packet: DhcpPacket, *, max_size: int | None = None, min_size: int = 0) -> bytes:
    """Wire bytes for ``packet``; a decoded, unchanged packet gives back its exact bytes.

    ``max_size`` and ``min_size`` apply only when the options are laid out afresh (a
    built packet, or a decoded one whose options changed).
    """
    sname, file = packet.sname, packet.file
    if packet.vend is not None:
        tail = packet.vend
    elif _layout_fits(packet):
        assert packet.layout is not None
        tail, file, sname = _replay(packet, packet.layout)
    else:
        tail, file, sname = _lay_out(packet, max_size, min_size)
    p = packet
    fields = [p.op, p.htype, p.hlen, p.hops, p.xid, p.secs, p.flags, p.ciaddr, p.yiaddr]
    return _pack_header([*fields, p.siaddr, p.giaddr, p.chaddr, sname, file]) + tail


def build_header(fields: dict[str, Any]) -> bytes:
    """What building ``HEADER_GRAMMAR`` from ``fields`` gives; EncodeError where it would fail."""
    return _pack_header([fields[name] for name in _FIELDS])


def _pack_header(values: list[Any]) -> bytes:
    """``values`` in ``_FIELDS`` order; a list, not a dict, as every reply comes here."""
    for (name, size), value in zip(_BYTES_FIELDS, values[-3:], strict=True):
        if len(value) != size:
            raise EncodeError(f"BOOTP header: {name} is {len(value)} bytes, not {size}")
    try:
        # ``IPv4Address.packed`` is two Python calls, ``int()`` one: replies carry the
        # engine's own IPv4Address objects, anything else is written as the grammar would.
        values[7:11] = [
            _ZERO_BYTES
            if address is _ZERO
            else int(address).to_bytes(4, "big")
            if type(address) is IPv4Address
            else _WRITE_IPV4(address)
            for address in values[7:11]
        ]
        return _FAST_HEADER.pack(*values)
    except (struct.error, ValueError, TypeError) as exc:
        raise EncodeError(f"BOOTP header: {exc}") from None


def _layout_fits(packet: DhcpPacket) -> bool:
    layout = packet.layout
    return (
        layout is not None
        and layout.order == tuple(option.code for option in packet.options)
        and layout.sizes == tuple(len(option.data) for option in packet.options)
    )


def _replay(packet: DhcpPacket, layout: _Layout) -> tuple[bytes, bytes, bytes]:
    data = {option.code: option.data for option in packet.options}
    cursor = dict.fromkeys(data, 0)

    def area_bytes(area: _Area) -> bytes:
        parts = []
        for code, length in area.items:
            if code == PAD:
                parts.append(bytes(length))
                continue
            start = cursor[code]
            cursor[code] = start + length
            parts.append(build_item(code, data[code][start : start + length]))
        if area.end:
            parts.append(bytes([END]))
            parts.append(area.trailing)
        return b"".join(parts)

    main = MAGIC_COOKIE + area_bytes(layout.main)
    file = area_bytes(layout.file) if layout.file else packet.file
    sname = area_bytes(layout.sname) if layout.sname else packet.sname
    return main, file, sname


def _lay_out(packet: DhcpPacket, max_size: int | None, min_size: int) -> tuple[bytes, bytes, bytes]:
    items = [option.framed for option in packet.options]
    main = b"".join(items)
    limit = None if max_size is None else max_size - _OPTIONS_OFFSET - 1
    if limit is None or len(main) <= limit:
        tail = MAGIC_COOKIE + main + bytes([END])
        return tail.ljust(min_size - HEADER_SIZE, b"\0"), packet.file, packet.sname
    return _overflow(packet, items, limit, min_size)


def _overflow(
    packet: DhcpPacket, items: list[bytes], limit: int, min_size: int
) -> tuple[bytes, bytes, bytes]:
    """Fill options, then an empty file, then an empty sname (option 52 says which).

    Option 82 never moves: RFC 3046 2.2 has the server echo it as the last option of
    the options field, and relays strip it from there without looking into file/sname.
    """
    if limit < 3:
        raise EncodeError(f"max_size {limit + 241} leaves no room for option 52")
    relay: list[bytes] = []
    movable: list[bytes] = []
    for option, item in zip(packet.options, items, strict=True):
        (relay if option.code == RELAY_AGENT_INFO else movable).append(item)
    rooms = {"options": limit - 3 - sum(map(len, relay))}  # 3: option 52 itself
    if rooms["options"] < 0:
        raise EncodeError(_no_room(items, limit, "nothing: option 82 must stay in options"))
    if not any(packet.file):
        rooms["file"] = FILE_SIZE - 1
    if not any(packet.sname):
        rooms["sname"] = SNAME_SIZE - 1
    placed: dict[str, list[bytes]] = {name: [] for name in rooms}
    names = iter(rooms)
    current = next(names)
    for item in movable:
        while len(item) > rooms[current]:
            current = next(names, "")
            if not current:
                raise EncodeError(_no_room(items, limit, " and ".join(list(rooms)[1:])))
        placed[current].append(item)
        rooms[current] -= len(item)
    value = (Overload.FILE if placed.get("file") else 0) | (
        Overload.SNAME if placed.get("sname") else 0
    )
    options = b"".join(placed["options"] + relay)
    main = build_item(OVERLOAD, bytes([value])) + options + bytes([END])
    tail = (MAGIC_COOKIE + main).ljust(min_size - HEADER_SIZE, b"\0")
    return (
        tail,
        _field_area(placed.get("file"), packet.file),
        _field_area(placed.get("sname"), packet.sname),
    )


def _no_room(items: list[bytes], limit: int, spare: str) -> str:
    return (
        f"options need {sum(map(len, items))} bytes; max_size {limit + 241}"
        f" leaves {limit} in options, plus {spare or 'nothing'}"
    )


def _field_area(items: list[bytes] | None, original: bytes) -> bytes:
    if not items:
        return original
    return (b"".join(items) + bytes([END])).ljust(len(original), b"\0")


__all__ = [
    "BOOTREPLY",
    "BOOTREQUEST",
    "BROADCAST_FLAG",
    "DhcpPacket",
    "EncodeError",
    "decode_dhcp",
    "encode_dhcp",
    "make_options",
]
