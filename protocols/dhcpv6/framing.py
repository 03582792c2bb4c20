"""How DHCPv6 options sit on the wire (RFC 8415 section 21.1): a 16-bit code, a 16-bit
length, the data; a message's options, and the options nested in IA_NA, IA_TA, IA_PD,
IAADDR and IAPREFIX, are such items back to back until the data ends.

``OPTION``/``OPTIONS_AREA`` are the grammar; ``scan`` is the same grammar in plain
Python (tests/protocols/test_dhcpv6_framing.py holds it to ``OPTIONS_AREA``), because
it names the item and the offset where framing broke, which a sysadmin can match
against a hex dump, and it costs a fraction of Construct's per-item price.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from construct import GreedyBytes, GreedyRange, Int16ub, Prefixed, Struct

from protocols.dhcp.values import whole
from protocols.errors import MalformedPacket

OPTION_HEADER = 4
_read_header = struct.Struct("!HH").unpack_from  # one call, not two slices and two ints
MAX_OPTION_DATA = 0xFFFF

OPTION = Struct("code" / Int16ub, "data" / Prefixed(Int16ub, GreedyBytes))
OPTIONS_AREA = whole(GreedyRange(OPTION))


class EncodeError(ValueError):
    """A message that cannot go on the wire: an option over 65535 bytes, a header field
    out of range (a builder bug, never a peer's)."""


class Item(NamedTuple):
    """One option as framed: its code, where it starts (for messages), its data."""

    code: int
    offset: int
    data: bytes


def scan(area: bytes, base: int, where: str) -> tuple[Item, ...]:
    """Every option in ``area``; ``base`` is the area's offset in the packet.

    A header cut short or a length running past the area is the one framing error:
    nothing after it can be read, so it raises MalformedPacket at that option.
    """
    items = []
    size = len(area)
    pos = 0
    while pos < size:
        if pos + OPTION_HEADER > size:
            raise MalformedPacket(
                f"{where}: {size - pos} byte(s) left, too few for an option header", base + pos
            )
        code, length = _read_header(area, pos)
        end = pos + OPTION_HEADER + length
        if end > size:
            raise MalformedPacket(
                f"{where}: option {code} length {length} runs past the end"
                f" ({size - pos - OPTION_HEADER} bytes left)",
                base + pos,
            )
        items.append(Item(code, base + pos, area[pos + OPTION_HEADER : end]))
        pos = end
    return tuple(items)


def build_option(code: int, data: bytes) -> bytes:
    """What building ``OPTION`` gives, without Construct's per-item cost."""
    if len(data) > MAX_OPTION_DATA:
        raise EncodeError(f"option {code}: {len(data)} bytes do not fit (65535 at most)")
    return code.to_bytes(2, "big") + len(data).to_bytes(2, "big") + data
