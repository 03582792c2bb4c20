"""From a captured frame to a UDP datagram over IPv4 or IPv6: link layers, VLAN tags, fragments.

Everything pxed speaks runs over UDP, so this module peels the link header
(Ethernet, Linux cooked v1/v2, raw IP, BSD loopback), any stack of
802.1Q/802.1ad tags and the IPv4 header, or the IPv6 header and its extension
headers, puts simple IP fragments back together, and hands out the UDP payload.
A frame it cannot use becomes a ``Skipped`` with a short reason, counted in the
summary instead of shouting.
A payload cut short by the snap length is still handed out, marked with how
many bytes are missing, so the caller can say "truncated" instead of
blaming the protocol.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from pxed.pcap.capture import Frame

LINK_NULL = 0
LINK_ETHERNET = 1
LINK_RAW_DLT12 = 12
LINK_RAW_DLT14 = 14
LINK_RAW = 101
LINK_LOOP = 108
LINK_LINUX_SLL = 113
LINK_IPV4 = 228
LINK_IPV6 = 229
LINK_LINUX_SLL2 = 276

LINK_NAMES = {
    LINK_NULL: "BSD loopback",
    LINK_ETHERNET: "Ethernet",
    LINK_RAW_DLT12: "raw IP",
    LINK_RAW_DLT14: "raw IP",
    LINK_RAW: "raw IP",
    LINK_LOOP: "OpenBSD loopback",
    LINK_LINUX_SLL: "Linux cooked v1",
    LINK_IPV4: "raw IPv4",
    LINK_IPV6: "raw IPv6",
    LINK_LINUX_SLL2: "Linux cooked v2",
}

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_ARP = 0x0806
VLAN_ETHERTYPES = (0x8100, 0x88A8, 0x9100)
ETHERTYPE_NAMES = {ETHERTYPE_ARP: "ARP", 0x88CC: "LLDP"}
AF_INET = 2
AF_INET6 = (10, 24, 28, 30)  # Linux, NetBSD/OpenBSD, FreeBSD, macOS
IPPROTO_UDP = 17
_PROTOCOL_NAMES = {1: "ICMP", 2: "IGMP", 6: "TCP", 58: "ICMPv6", 59: "IPv6 no next header"}
IPV6_HEADER = 40
IPV6_FRAGMENT = 44
# Hop-by-hop, routing and destination options: next header, then length in 8-byte units.
IPV6_SKIPPED_HEADERS = frozenset({0, 43, 60})
IPV6_OFFSET_MASK = 0xFFF8
IP_MORE_FRAGMENTS = 0x2000
IP_OFFSET_MASK = 0x1FFF
MAX_PENDING_FRAGMENTS = 64

IPAddress = IPv4Address | IPv6Address


@dataclass(frozen=True)
class Datagram:
    """A UDP datagram as captured.

    ``missing`` counts payload bytes the capture lacks (snap length, or an IP
    header claiming more than the frame holds); ``frames`` lists every frame
    it was reassembled from.
    """

    frame: Frame
    src: IPAddress
    sport: int
    dst: IPAddress
    dport: int
    payload: bytes
    missing: int = 0
    vlans: tuple[int, ...] = ()
    frames: tuple[int, ...] = ()


@dataclass(frozen=True)
class Skipped:
    """A frame that carries nothing pxed decodes, and why."""

    frame: Frame
    reason: str


class _NotUsable(Exception):
    """Internal: this frame carries nothing for us; the message says why."""


@dataclass
class _Packet:
    """An IP packet on its way up; a fragment until reassembled."""

    src: IPAddress
    dst: IPAddress
    ident: int
    protocol: int
    offset: int
    more: bool
    body: bytes
    missing: int

    @property
    def version(self) -> str:
        return "IPv4" if isinstance(self.src, IPv4Address) else "IPv6"


class Dissector:
    """Turns frames into datagrams, keeping IP fragments until they complete."""

    def __init__(self) -> None:
        self._pending: dict[tuple[IPAddress, IPAddress, int, int], list[_Fragment]] = {}

    def dissect(self, frame: Frame) -> Datagram | Skipped | None:
        """None means the frame was kept as a fragment of a later datagram."""
        try:
            ip_data, vlans = _network_layer(frame.link_type, frame.data)
            packet = _ipv6(ip_data) if ip_data[:1] and ip_data[0] >> 4 == 6 else _ipv4(ip_data)
        except _NotUsable as reason:
            return Skipped(frame, str(reason))
        frames: tuple[int, ...] = (frame.number,)
        if _is_fragment(packet):
            whole = self._reassemble(frame, packet)
            if whole is None:
                return None
            packet, frames = whole
        try:
            return _udp(frame, packet, vlans, frames)
        except _NotUsable as reason:
            return Skipped(frame, str(reason))

    def leftovers(self) -> list[Skipped]:
        """Fragments whose datagram never completed, one entry per frame."""
        left = [
            Skipped(
                piece.frame,
                f"{piece.packet.version} fragment whose other fragments were not captured",
            )
            for pieces in self._pending.values()
            for piece in pieces
        ]
        self._pending.clear()
        return sorted(left, key=lambda skipped: skipped.frame.number)

    def _reassemble(self, frame: Frame, packet: _Packet) -> tuple[_Packet, tuple[int, ...]] | None:
        key = (packet.src, packet.dst, packet.ident, packet.protocol)
        if key not in self._pending and len(self._pending) >= MAX_PENDING_FRAGMENTS:
            del self._pending[next(iter(self._pending))]
        pieces = self._pending.setdefault(key, [])
        pieces.append(_Fragment(frame, packet))
        body = _joined(pieces)
        if body is None:
            return None
        del self._pending[key]
        first = min(pieces, key=lambda piece: piece.packet.offset).packet
        whole = _Packet(first.src, first.dst, first.ident, first.protocol, 0, False, body, 0)
        return whole, tuple(sorted(piece.frame.number for piece in pieces))


@dataclass(frozen=True)
class _Fragment:
    frame: Frame
    packet: _Packet


def _is_fragment(packet: _Packet) -> bool:
    """A cut-short first fragment cannot be completed: decode what is there, like tshark."""
    first_and_cut = packet.offset == 0 and packet.missing > 0
    return (packet.more or packet.offset > 0) and not first_and_cut


def _joined(pieces: list[_Fragment]) -> bytes | None:
    """The reassembled IP payload, or None while a piece is still missing."""
    ordered = sorted(pieces, key=lambda piece: piece.packet.offset)
    if ordered[-1].packet.more or any(piece.packet.missing for piece in ordered):
        return None
    body = bytearray()
    for piece in ordered:
        if piece.packet.offset > len(body):
            return None
        body[piece.packet.offset :] = piece.packet.body
    return bytes(body)


def _network_layer(link_type: int, data: bytes) -> tuple[bytes, tuple[int, ...]]:
    """The IP packet inside a frame, and the VLAN IDs it was tagged with."""
    if link_type == LINK_ETHERNET:
        return _ethernet(data)
    if link_type == LINK_LINUX_SLL:
        return _ethertype_chain(_field(data, 14, "Linux cooked header"), data[16:])
    if link_type == LINK_LINUX_SLL2:
        return _ethertype_chain(_field(data, 0, "Linux cooked v2 header"), data[20:])
    if link_type in (LINK_RAW, LINK_RAW_DLT12, LINK_RAW_DLT14, LINK_IPV4, LINK_IPV6):
        return data, ()
    if link_type in (LINK_NULL, LINK_LOOP):
        return _loopback(link_type, data), ()
    raise _NotUsable(f"link type {link_type} is not supported")


def _field(data: bytes, offset: int, what: str) -> int:
    if len(data) < offset + 2:
        raise _NotUsable(f"{what} cut short")
    return int.from_bytes(data[offset : offset + 2], "big")


def _ethernet(data: bytes) -> tuple[bytes, tuple[int, ...]]:
    ethertype = _field(data, 12, "Ethernet header")
    if ethertype < 0x0600:
        raise _NotUsable("802.3/LLC frame")
    return _ethertype_chain(ethertype, data[14:])


def _ethertype_chain(ethertype: int, data: bytes) -> tuple[bytes, tuple[int, ...]]:
    """Follow stacked 802.1Q/802.1ad tags down to the payload's real type."""
    vlans: list[int] = []
    while ethertype in VLAN_ETHERTYPES:
        vlans.append(_field(data, 0, "VLAN tag") & 0x0FFF)
        ethertype = _field(data, 2, "VLAN tag")
        data = data[4:]
    if ethertype not in (ETHERTYPE_IPV4, ETHERTYPE_IPV6):
        raise _NotUsable(ETHERTYPE_NAMES.get(ethertype, f"ethertype 0x{ethertype:04x}"))
    return data, tuple(vlans)


def _loopback(link_type: int, data: bytes) -> bytes:
    """BSD NULL stores the address family in the capturing host's byte order; LOOP in big."""
    if len(data) < 4:
        raise _NotUsable("loopback header cut short")
    family = int.from_bytes(data[:4], "big")
    if link_type == LINK_NULL and family > 0xFFFF:
        family = int.from_bytes(data[:4], "little")
    if family != AF_INET and family not in AF_INET6:
        raise _NotUsable(f"address family {family}")
    return data[4:]


def _ipv4(data: bytes) -> _Packet:
    if len(data) < 20 or data[0] >> 4 != 4:
        raise _NotUsable("not an IP packet")
    header_length = (data[0] & 0x0F) * 4
    total, ident, flags, _ttl, protocol = struct.unpack("!HHHBB", data[2:10])
    if total == 0:  # captured before segmentation offload filled it in
        total = len(data)
    if header_length < 20 or total < header_length:
        raise _NotUsable("IPv4 header with impossible lengths")
    missing = max(0, total - len(data))
    return _Packet(
        src=IPv4Address(data[12:16]),
        dst=IPv4Address(data[16:20]),
        ident=ident,
        protocol=protocol,
        offset=(flags & IP_OFFSET_MASK) * 8,
        more=bool(flags & IP_MORE_FRAGMENTS),
        body=data[header_length:total],
        missing=missing,
    )


def _ipv6(data: bytes) -> _Packet:
    """The IPv6 header, then hop-by-hop, routing and destination options skipped and a
    fragment header read, down to the upper-layer protocol."""
    if len(data) < IPV6_HEADER:
        raise _NotUsable("IPv6 header cut short")
    length, protocol = struct.unpack("!HB", data[4:7])
    if length == 0:  # a jumbogram or offloaded: trust the frame
        length = len(data) - IPV6_HEADER
    body = data[IPV6_HEADER : IPV6_HEADER + length]
    missing = max(0, length - len(body))
    ident, offset, more = 0, 0, False
    while protocol in IPV6_SKIPPED_HEADERS or protocol == IPV6_FRAGMENT:
        size = 8 if protocol == IPV6_FRAGMENT or len(body) < 2 else (body[1] + 1) * 8
        if len(body) < size:
            raise _NotUsable("IPv6 extension header cut short")
        if protocol == IPV6_FRAGMENT:
            field, ident = struct.unpack("!HI", body[2:8])
            offset, more = field & IPV6_OFFSET_MASK, bool(field & 1)
        protocol, body = body[0], body[size:]
    return _Packet(
        src=IPv6Address(data[8:24]),
        dst=IPv6Address(data[24:40]),
        ident=ident,
        protocol=protocol,
        offset=offset,
        more=more,
        body=body,
        missing=missing,
    )


def _udp(
    frame: Frame, packet: _Packet, vlans: tuple[int, ...], frames: tuple[int, ...]
) -> Datagram:
    if packet.protocol != IPPROTO_UDP:
        raise _NotUsable(_PROTOCOL_NAMES.get(packet.protocol, f"IP protocol {packet.protocol}"))
    if len(packet.body) < 8:
        raise _NotUsable("UDP header cut short")
    sport, dport, length = struct.unpack("!HHH", packet.body[:6])
    if length == 0:  # offloaded or jumbo: trust the IP length
        length = len(packet.body) + packet.missing
    if length < 8:
        raise _NotUsable(f"UDP length {length} is shorter than its header")
    payload = packet.body[8:length]
    missing = length - 8 - len(payload)
    return Datagram(frame, packet.src, sport, packet.dst, dport, payload, missing, vlans, frames)
