"""Hand-built capture files and frames, byte by byte, for the reader and dissector tests.

Written independently of pxed.pcap.capture so a shared misreading of the format
cannot make both sides agree.
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address

BIG = ">"
LITTLE = "<"


def pcap_file(
    frames: list[tuple[int, bytes, int | None]],
    link_type: int = 1,
    endian: str = LITTLE,
    nanoseconds: bool = False,
) -> bytes:
    """A classic pcap file; each frame is (timestamp in ns, captured bytes, length on the wire)."""
    magic = 0xA1B23C4D if nanoseconds else 0xA1B2C3D4
    out = struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 65535, link_type)
    for stamp, data, original in frames:
        seconds, rest = divmod(stamp, 1_000_000_000)
        fraction = rest if nanoseconds else rest // 1000
        length = len(data) if original is None else original
        out += struct.pack(endian + "IIII", seconds, fraction, len(data), length) + data
    return out


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def block(block_type: int, body: bytes, endian: str = LITTLE) -> bytes:
    """A pcapng block with both length fields."""
    body = _pad(body)
    total = len(body) + 12
    return struct.pack(endian + "II", block_type, total) + body + struct.pack(endian + "I", total)


def option(code: int, value: bytes, endian: str = LITTLE) -> bytes:
    return struct.pack(endian + "HH", code, len(value)) + _pad(value)


def end_of_options(endian: str = LITTLE) -> bytes:
    return struct.pack(endian + "HH", 0, 0)


def shb(endian: str = LITTLE) -> bytes:
    body = struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1)
    return block(0x0A0D0D0A, body, endian)


def idb(
    link_type: int = 1,
    snaplen: int = 0,
    tsresol: int | None = None,
    tsoffset: int | None = None,
    endian: str = LITTLE,
) -> bytes:
    body = struct.pack(endian + "HHI", link_type, 0, snaplen)
    options = b""
    if tsresol is not None:
        options += option(9, bytes([tsresol]), endian)
    if tsoffset is not None:
        options += option(14, struct.pack(endian + "q", tsoffset), endian)
    if options:
        body += options + end_of_options(endian)
    return block(1, body, endian)


def epb(
    data: bytes,
    ticks: int,
    interface: int = 0,
    original: int | None = None,
    endian: str = LITTLE,
) -> bytes:
    length = len(data) if original is None else original
    head = struct.pack(
        endian + "IIIII", interface, ticks >> 32, ticks & 0xFFFFFFFF, len(data), length
    )
    return block(
        6, head + _pad(data) + option(1, b"comment", endian) + end_of_options(endian), endian
    )


def opb(data: bytes, ticks: int, interface: int = 0, endian: str = LITTLE) -> bytes:
    head = struct.pack(
        endian + "HHIIII", interface, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data)
    )
    return block(2, head + data, endian)


def spb(data: bytes, original: int | None = None, endian: str = LITTLE) -> bytes:
    length = len(data) if original is None else original
    return block(3, struct.pack(endian + "I", length) + data, endian)


# --- frames -------------------------------------------------------------------

CLIENT_MAC = bytes.fromhex("525400123456")
SERVER_MAC = bytes.fromhex("525400abcdef")


def udp(sport: int, dport: int, payload: bytes, length: int | None = None) -> bytes:
    size = len(payload) + 8 if length is None else length
    return struct.pack("!HHHH", sport, dport, size, 0) + payload


def ipv4(
    src: str,
    dst: str,
    payload: bytes,
    protocol: int = 17,
    ident: int = 1,
    flags_offset: int = 0,
    total: int | None = None,
    options: bytes = b"",
) -> bytes:
    header_length = 20 + len(options)
    size = header_length + len(payload) if total is None else total
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x40 | header_length // 4,
        0,
        size,
        ident,
        flags_offset,
        64,
        protocol,
        0,
        IPv4Address(src).packed,
        IPv4Address(dst).packed,
    )
    return header + options + payload


def ipv6(
    src: str,
    dst: str,
    payload: bytes,
    next_header: int = 17,
    extensions: bytes = b"",
    length: int | None = None,
) -> bytes:
    """An IPv6 header; ``extensions`` (already chained to end in ``next_header``'s
    payload) go between it and the payload, and the first header type is then theirs."""
    size = len(extensions) + len(payload) if length is None else length
    header = struct.pack("!IHBB", 0x60000000, size, next_header, 64)
    return header + IPv6Address(src).packed + IPv6Address(dst).packed + extensions + payload


def ipv6_packet() -> bytes:
    """An ICMPv6 echo request: IPv6 that carries nothing pxed decodes."""
    return ipv6("fe80::1", "fe80::2", b"\x80\0\0\0\0\0\0\0", next_header=58)


def ethernet(
    payload: bytes, ethertype: int = 0x0800, vlans: tuple[tuple[int, int], ...] = ()
) -> bytes:
    """Ethernet II; vlans are (tag protocol id, VLAN id) pairs, outermost first."""
    tags = b"".join(struct.pack("!HH", tpid, vlan) for tpid, vlan in vlans)
    return SERVER_MAC + CLIENT_MAC + tags + struct.pack("!H", ethertype) + payload


def linux_sll(payload: bytes, protocol: int = 0x0800) -> bytes:
    return struct.pack("!HHH8sH", 0, 1, 6, CLIENT_MAC + b"\0\0", protocol) + payload


def linux_sll2(payload: bytes, protocol: int = 0x0800) -> bytes:
    return struct.pack("!HHIHBB8s", protocol, 0, 2, 1, 0, 6, CLIENT_MAC + b"\0\0") + payload


def bsd_null(payload: bytes, family: int = 2, endian: str = LITTLE) -> bytes:
    return struct.pack(endian + "I", family) + payload


def openbsd_loop(payload: bytes, family: int = 2) -> bytes:
    return struct.pack("!I", family) + payload


def dhcp_frame(payload: bytes = b"\x01" * 300) -> bytes:
    """A client's broadcast to the DHCP server port, on Ethernet."""
    return ethernet(ipv4("0.0.0.0", "255.255.255.255", udp(68, 67, payload)))
