"""DHCPv6 messages on the wire (RFC 8415 sections 8 and 9): decode, encode, build.

Public API (Construct containers never leave this package)::

    decode_dhcpv6(data: bytes) -> Dhcpv6Message | Dhcpv6Relay   # raises only MalformedPacket
    encode_dhcpv6(message) -> bytes                    # EncodeError for a field out of range
    Dhcpv6Message(msg_type=..., transaction_id=..., options=(...))   # frozen, keyword-only
    Dhcpv6Relay.around(relayed, msg_type=..., hop_count=..., link_address=...,
                       peer_address=..., options=(...))    # option 9 added last
    message.get(code) / get_all(code) -> Option(s)  (lenient: .value may be an InvalidValue)
    message.option(code) / options_of(code) -> typed value(s); MalformedPacket if bad
    Dhcpv6Message: client_id, server_id, ia_na, ia_ta, ia_pd, oro, elapsed_time,
        rapid_commit, user_class, vendor_class, client_arch, nii, boot_file_url
    Dhcpv6Relay: relayed (the message inside option 9, decoded), client_message (the
        innermost one), interface_id, remote_id, subscriber_id, client_link_layer
    options.py: option codes, names, Option, make_options, typed values;
        duid.py: DuidLlt, DuidEn, DuidLl, DuidUuid, DuidOther.

Two header shapes: client/server messages have a type and a 24-bit transaction id;
RELAY-FORW and RELAY-REPL have a hop count and two addresses, and carry the message
they relay whole in option 9, which is decoded too (a relay in a relay, down to
``MAX_RELAY_DEPTH``).  Any other type byte, known or not, is read with the
client/server header, as RFC 8415 section 8 says every non-relay message is.

Round trip: options keep their bytes, order and repeats (DHCPv6 repeats codes: an
IA_NA per interface, a vendor class per enterprise), so
``encode_dhcpv6(decode_dhcpv6(x)) == x`` for every message that decodes.  Only framing
errors raise (a header cut short, an option running past its message, a relay without
option 9 or nested too deep); an option whose bytes do not fit its type decodes to
an ``InvalidValue`` and raises only from the strict accessors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from ipaddress import IPv6Address
from typing import Any

from construct import ConstructError, Int8ub, Int24ub, Struct

from protocols.dhcp.options import ClientArch, NetworkInterfaceId
from protocols.dhcpv6.duid import Duid
from protocols.dhcpv6.framing import EncodeError, scan
from protocols.dhcpv6.options import (
    BOOTFILE_URL,
    CLIENT_ARCH_TYPE,
    CLIENT_LINKLAYER_ADDR,
    CLIENTID,
    ELAPSED_TIME,
    IA_NA,
    IA_PD,
    IA_TA,
    INTERFACE_ID,
    IPV6,
    NII,
    ORO,
    RAPID_COMMIT,
    RELAY_MSG,
    REMOTE_ID,
    SERVERID,
    SUBSCRIBER_ID,
    USER_CLASS,
    VENDOR_CLASS,
    IaNa,
    IaPd,
    IaTa,
    LinkLayerAddress,
    Option,
    RemoteId,
    VendorClass,
    encode_options,
    make_options,
)
from protocols.errors import MalformedPacket
from protocols.once import once
from protocols.option import known

CLIENT_HEADER_SIZE = 4
RELAY_HEADER_SIZE = 34
# RFC 8415 7.6: a relay drops a message whose hop count has reached 8, so a message can
# pass at most 9 relays (hop counts 0 to 8).  Deeper nesting is not a real message.
HOP_COUNT_LIMIT = 8
MAX_RELAY_DEPTH = HOP_COUNT_LIMIT + 1

_CLIENT_HEADER = Struct("msg_type" / Int8ub, "transaction_id" / Int24ub)
_RELAY_HEADER = Struct(
    "msg_type" / Int8ub, "hop_count" / Int8ub, "link_address" / IPV6, "peer_address" / IPV6
)
_UNSPECIFIED = IPv6Address(0)


class MessageType(IntEnum):
    """The first byte of every message (RFC 8415 7.3 and the IANA registry)."""

    SOLICIT = 1
    ADVERTISE = 2
    REQUEST = 3
    CONFIRM = 4
    RENEW = 5
    REBIND = 6
    REPLY = 7
    RELEASE = 8
    DECLINE = 9
    RECONFIGURE = 10
    INFORMATION_REQUEST = 11
    RELAY_FORW = 12
    RELAY_REPL = 13
    LEASEQUERY = 14
    LEASEQUERY_REPLY = 15
    LEASEQUERY_DONE = 16
    LEASEQUERY_DATA = 17
    RECONFIGURE_REQUEST = 18
    RECONFIGURE_REPLY = 19
    DHCPV4_QUERY = 20
    DHCPV4_RESPONSE = 21
    ACTIVELEASEQUERY = 22
    STARTTLS = 23
    BNDUPD = 24
    BNDREPLY = 25
    POOLREQ = 26
    POOLRESP = 27
    UPDREQ = 28
    UPDREQALL = 29
    UPDDONE = 30
    CONNECT = 31
    CONNECTREPLY = 32
    DISCONNECT = 33
    STATE = 34
    CONTACT = 35
    ADDR_REG_INFORM = 36
    ADDR_REG_REPLY = 37

    def __str__(self) -> str:
        return self.name.replace("_", "-")


RELAY_TYPES = frozenset({MessageType.RELAY_FORW, MessageType.RELAY_REPL})
# The enum member for a known type byte, the plain int otherwise.
message_type: Callable[[int], MessageType | int] = known(MessageType)


class _Options:
    """Lookups shared by both message shapes: the first option of a code, or all of them."""

    options: tuple[Option, ...]

    @once
    def _by_code(self) -> dict[int, tuple[Option, ...]]:
        found: dict[int, list[Option]] = {}
        for option in self.options:
            found.setdefault(option.code, []).append(option)
        return {code: tuple(items) for code, items in found.items()}

    def get(self, code: int) -> Option | None:
        """The first option with this code (lenient: its value may be an InvalidValue)."""
        return self._by_code.get(code, (None,))[0]

    def get_all(self, code: int) -> tuple[Option, ...]:
        return self._by_code.get(code, ())

    def option(self, code: int) -> Any:
        """Typed value of the first option ``code``, None if absent; MalformedPacket if
        its bytes don't fit its type (an engine drops such a message)."""
        found = self.get(code)
        return None if found is None else found.typed()

    def options_of(self, code: int) -> tuple[Any, ...]:
        """Typed values of every option ``code``, in wire order (strict like ``option``)."""
        return tuple(option.typed() for option in self.get_all(code))


@dataclass(frozen=True, kw_only=True)
class Dhcpv6Message(_Options):
    """A client/server message: SOLICIT to INFORMATION-REQUEST, and unknown types."""

    msg_type: MessageType | int
    transaction_id: int = 0
    options: tuple[Option, ...] = ()

    @property
    def client_id(self) -> Duid | None:
        return self.option(CLIENTID)  # type: ignore[no-any-return]

    @property
    def server_id(self) -> Duid | None:
        return self.option(SERVERID)  # type: ignore[no-any-return]

    @property
    def ia_na(self) -> tuple[IaNa, ...]:
        """Every IA_NA (a client asks one per interface it configures)."""
        return self.options_of(IA_NA)

    @property
    def ia_ta(self) -> tuple[IaTa, ...]:
        return self.options_of(IA_TA)

    @property
    def ia_pd(self) -> tuple[IaPd, ...]:
        return self.options_of(IA_PD)

    @property
    def oro(self) -> tuple[int, ...]:
        """Option 6, the codes the client asks for; () when absent."""
        return self.option(ORO) or ()

    @property
    def elapsed_time(self) -> int | None:
        """Option 8 in hundredths of a second."""
        return self.option(ELAPSED_TIME)  # type: ignore[no-any-return]

    @property
    def rapid_commit(self) -> bool:
        return self.option(RAPID_COMMIT) is not None

    @property
    def user_class(self) -> tuple[bytes, ...]:
        return self.option(USER_CLASS) or ()

    @property
    def vendor_class(self) -> tuple[VendorClass, ...]:
        """Every option 16 (one per enterprise)."""
        return self.options_of(VENDOR_CLASS)

    @property
    def client_arch(self) -> tuple[ClientArch | int, ...]:
        """Option 61 (ClientArch members where known); () when absent."""
        return self.option(CLIENT_ARCH_TYPE) or ()

    @property
    def nii(self) -> NetworkInterfaceId | None:
        return self.option(NII)  # type: ignore[no-any-return]

    @property
    def boot_file_url(self) -> str | None:
        return self.option(BOOTFILE_URL)  # type: ignore[no-any-return]


@dataclass(frozen=True, kw_only=True)
class Dhcpv6Relay(_Options):
    """RELAY-FORW or RELAY-REPL: the relay's header, its options, and ``relayed``, the
    message its option 9 carries, decoded (equality goes by the options' bytes)."""

    msg_type: MessageType | int
    hop_count: int = 0
    link_address: IPv6Address = _UNSPECIFIED
    peer_address: IPv6Address = _UNSPECIFIED
    options: tuple[Option, ...] = ()
    relayed: Dhcpv6Message | Dhcpv6Relay = field(compare=False, repr=False)

    @classmethod
    def around(
        cls,
        relayed: Dhcpv6Message | Dhcpv6Relay,
        *,
        options: Iterable[Option | tuple[int, object]] = (),
        **fields: Any,
    ) -> Dhcpv6Relay:
        """A relay message carrying ``relayed`` in option 9, after ``options``."""
        carried = Option(RELAY_MSG, encode_dhcpv6(relayed))
        return cls(options=(*make_options(options), carried), relayed=relayed, **fields)

    @property
    def client_message(self) -> Dhcpv6Message:
        """The client's (or server's) own message, under every relay header."""
        inner = self.relayed
        while isinstance(inner, Dhcpv6Relay):
            inner = inner.relayed
        return inner

    @property
    def interface_id(self) -> bytes | None:
        """Option 18: a RELAY-REPL must echo it to the relay that sent it."""
        return self.option(INTERFACE_ID)  # type: ignore[no-any-return]

    @property
    def remote_id(self) -> RemoteId | None:
        return self.option(REMOTE_ID)  # type: ignore[no-any-return]

    @property
    def subscriber_id(self) -> bytes | None:
        return self.option(SUBSCRIBER_ID)  # type: ignore[no-any-return]

    @property
    def client_link_layer(self) -> LinkLayerAddress | None:
        """Option 79: the client's MAC as the first relay saw it."""
        return self.option(CLIENT_LINKLAYER_ADDR)  # type: ignore[no-any-return]


Dhcpv6Packet = Dhcpv6Message | Dhcpv6Relay


def decode_dhcpv6(data: bytes) -> Dhcpv6Packet:
    """Decode one UDP payload; MalformedPacket is the only exception it raises."""
    return _decode(data, 0, 0)


def _decode(data: bytes, depth: int, base: int) -> Dhcpv6Packet:
    if not data:
        raise MalformedPacket("empty DHCPv6 message", base)
    if data[0] in RELAY_TYPES:
        return _decode_relay(data, depth, base)
    if len(data) < CLIENT_HEADER_SIZE:
        raise MalformedPacket(
            f"truncated DHCPv6 header: {len(data)} bytes, need {CLIENT_HEADER_SIZE}", base
        )
    # The header by hand, not through _CLIENT_HEADER: 4 bytes always parse (every field
    # takes any value), and Construct's parse of this and the relay header was about
    # half of a relayed SOLICIT's decode (benchmarks/README.md, DHCPv6).
    return Dhcpv6Message(
        msg_type=message_type(data[0]),
        transaction_id=int.from_bytes(data[1:4], "big"),
        options=_options(data, CLIENT_HEADER_SIZE, base),
    )


def _decode_relay(data: bytes, depth: int, base: int) -> Dhcpv6Relay:
    kind = message_type(data[0])
    if depth >= MAX_RELAY_DEPTH:
        raise MalformedPacket(
            f"{kind} nested {depth + 1} relays deep, more than {MAX_RELAY_DEPTH} can be", base
        )
    if len(data) < RELAY_HEADER_SIZE:
        raise MalformedPacket(
            f"truncated {kind} header: {len(data)} bytes, need {RELAY_HEADER_SIZE}", base
        )
    options = _options(data, RELAY_HEADER_SIZE, base)
    carried = next((option for option in options if option.code == RELAY_MSG), None)
    if carried is None:
        raise MalformedPacket(f"{kind} without a relay message option (9)", base)
    assert carried.offset is not None
    return Dhcpv6Relay(
        msg_type=kind,
        hop_count=data[1],
        link_address=IPv6Address(data[2:18]),
        peer_address=IPv6Address(data[18:34]),
        options=options,
        relayed=_decode(carried.data, depth + 1, carried.offset + 4),
    )


def _options(data: bytes, start: int, base: int) -> tuple[Option, ...]:
    items = scan(data[start:], base + start, "options")
    return tuple(Option(item.code, item.data, offset=item.offset) for item in items)


def encode_dhcpv6(message: Dhcpv6Packet) -> bytes:
    """Wire bytes for ``message``; a decoded, unchanged message gives back its exact bytes."""
    try:
        head = _header(message)
    except ConstructError as exc:
        reason = "; ".join(line for line in str(exc).splitlines() if line.strip())
        raise EncodeError(f"{message.msg_type} header: {reason}") from None
    return head + encode_options(message.options)


def _header(message: Dhcpv6Packet) -> bytes:
    """The header ``_RELAY_HEADER`` or ``_CLIENT_HEADER`` builds, by hand where its fields
    are in range (they are in every reply the engine builds; Construct's build was
    nearly all of an encode); the grammar builds the rest, so a builder bug is named as
    before."""
    kind = message.msg_type
    if isinstance(message, Dhcpv6Relay):
        link, peer = message.link_address, message.peer_address
        hops = message.hop_count
        if _fits(kind, 0xFF) and _fits(hops, 0xFF) and _is_address(link) and _is_address(peer):
            return bytes((kind, hops)) + link.packed + peer.packed
        fields = {
            "msg_type": message.msg_type,
            "hop_count": message.hop_count,
            "link_address": message.link_address,
            "peer_address": message.peer_address,
        }
        return bytes(_RELAY_HEADER.build(fields))
    xid = message.transaction_id
    if _fits(kind, 0xFF) and _fits(xid, 0xFFFFFF):
        return bytes((kind,)) + xid.to_bytes(3, "big")
    fields = {"msg_type": kind, "transaction_id": xid}
    return bytes(_CLIENT_HEADER.build(fields))


def _fits(value: object, top: int) -> bool:
    return isinstance(value, int) and 0 <= value <= top


def _is_address(value: object) -> bool:
    return type(value) is IPv6Address


__all__ = [
    "MAX_RELAY_DEPTH",
    "Dhcpv6Message",
    "Dhcpv6Packet",
    "Dhcpv6Relay",
    "EncodeError",
    "MessageType",
    "decode_dhcpv6",
    "encode_dhcpv6",
    "make_options",
]
