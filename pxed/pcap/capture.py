"""Reading pcap and pcapng files into frames, in pure Python.

Only the container formats live here: which link layer a frame uses and what
is inside it is the dissector's business (``pxed.pcap.dissect``).  Files are read
as a stream so a capture larger than memory still works.  Every error names
the file and the byte offset where the format broke, because the person
reading it will open the file in a hex editor or ``tshark`` next.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

PCAP_MAGIC_USEC = 0xA1B2C3D4
PCAP_MAGIC_NSEC = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D
PCAPNG_IDB = 0x00000001
PCAPNG_OPB = 0x00000002  # obsolete Packet Block, still written by old tools
PCAPNG_SPB = 0x00000003
PCAPNG_EPB = 0x00000006
IF_TSRESOL = 9
IF_TSOFFSET = 14
OPT_ENDOFOPT = 0

# A record larger than this is a corrupt length field, not a packet: the
# largest link-layer frame any capture tool writes is 256 KiB (loopback TSO).
MAX_RECORD = 1 << 18


class CaptureError(Exception):
    """A capture file that cannot be read any further."""

    def __init__(self, path: Path, offset: int, reason: str) -> None:
        self.path = path
        self.offset = offset
        self.reason = reason
        super().__init__(f"{path}: {reason} (at byte offset {offset})")


class NotACapture(CaptureError):
    """A file that is not pcap or pcapng at all (a README, a hex dump)."""


@dataclass(frozen=True)
class Frame:
    """One captured link-layer frame.

    ``timestamp_ns`` is nanoseconds since the Unix epoch, or None for a
    pcapng Simple Packet Block, which carries no time.  ``original_length``
    is the length on the wire; ``data`` is shorter when the snap length cut
    the frame.
    """

    number: int
    timestamp_ns: int | None
    link_type: int
    data: bytes
    original_length: int

    @property
    def truncated(self) -> bool:
        return len(self.data) < self.original_length


def read_frames(path: Path) -> Iterator[Frame]:
    """Yield every frame of a pcap or pcapng file, in file order.

    Raises NotACapture if the magic number is unknown, and CaptureError when
    the file breaks part-way (frames before the break have been yielded).
    """
    try:
        stream = path.open("rb")
    except OSError as error:
        raise CaptureError(path, 0, error.strerror or str(error)) from error
    with stream:
        reader = _Reader(path, stream)
        head = reader.peek(4)
        kind = _format_of(head)
        if kind is None:
            raise NotACapture(path, 0, f"not a pcap or pcapng file (starts with {head.hex()})")
        yield from _pcap_frames(reader) if kind == "pcap" else _pcapng_frames(reader)


def _format_of(head: bytes) -> str | None:
    if len(head) < 4:
        return None
    if head == struct.pack("<I", PCAPNG_SHB):
        return "pcapng"
    magic = {struct.unpack("<I", head)[0], struct.unpack(">I", head)[0]}
    return "pcap" if magic & {PCAP_MAGIC_USEC, PCAP_MAGIC_NSEC} else None


class _Reader:
    """A byte stream that knows its offset and fails with it."""

    def __init__(self, path: Path, stream: BinaryIO) -> None:
        self.path = path
        self.stream = stream
        self.offset = 0

    def peek(self, size: int) -> bytes:
        data = self.stream.read(size)
        self.stream.seek(self.offset)
        return data

    def at_end(self) -> bool:
        return self.peek(1) == b""

    def read(self, size: int, what: str) -> bytes:
        data = self.stream.read(size)
        if len(data) < size:
            raise self.error(f"file ends inside {what}: {len(data)} of {size} bytes present")
        self.offset += size
        return data

    def error(self, reason: str, offset: int | None = None) -> CaptureError:
        return CaptureError(self.path, self.offset if offset is None else offset, reason)


# --- classic pcap -----------------------------------------------------------


def _pcap_frames(reader: _Reader) -> Iterator[Frame]:
    header = reader.read(24, "the pcap file header")
    endian = (
        "<" if struct.unpack("<I", header[:4])[0] in (PCAP_MAGIC_USEC, PCAP_MAGIC_NSEC) else ">"
    )
    magic, _major, _minor, _zone, _sigfigs, _snaplen, network = struct.unpack(
        endian + "IHHiIII", header
    )
    scale = 1 if magic == PCAP_MAGIC_NSEC else 1000
    link_type = network & 0xFFFF  # the upper bits carry FCS flags, not the link type
    number = 0
    while not reader.at_end():
        number += 1
        start = reader.offset
        record = reader.read(16, f"the record header of frame {number}")
        seconds, fraction, captured, original = struct.unpack(endian + "IIII", record)
        if captured > MAX_RECORD:
            raise reader.error(f"frame {number} claims {captured} captured bytes", start)
        data = reader.read(captured, f"frame {number}")
        stamp = seconds * 1_000_000_000 + fraction * scale
        yield Frame(number, stamp, link_type, data, max(original, captured))


# --- pcapng -----------------------------------------------------------------


@dataclass
class _Interface:
    link_type: int
    snaplen: int
    ticks_per_second: int = 1_000_000
    offset_seconds: int = 0

    def nanoseconds(self, ticks: int) -> int:
        return (ticks * 1_000_000_000) // self.ticks_per_second + self.offset_seconds * 10**9


@dataclass
class _Section:
    endian: str = "<"
    interfaces: list[_Interface] = field(default_factory=list)


def _pcapng_frames(reader: _Reader) -> Iterator[Frame]:
    section = _Section()
    number = 0
    while not reader.at_end():
        start = reader.offset
        block_type, body = _next_block(reader, section)
        if block_type == PCAPNG_SHB:
            section = _Section(endian=section.endian)
        elif block_type == PCAPNG_IDB:
            section.interfaces.append(_interface(reader, section.endian, body, start))
        elif block_type in (PCAPNG_EPB, PCAPNG_OPB, PCAPNG_SPB):
            number += 1
            yield _packet(reader, section, block_type, body, number, start)


def _next_block(reader: _Reader, section: _Section) -> tuple[int, bytes]:
    """Read one block; a Section Header Block also sets the byte order."""
    start = reader.offset
    head = reader.read(8, "a pcapng block header")
    if head[:4] == struct.pack("<I", PCAPNG_SHB):
        section.endian = _section_endian(reader, start)
    block_type, total = struct.unpack(section.endian + "II", head)
    if total < 12 or total % 4:
        raise reader.error(
            f"pcapng block length {total} is not a multiple of 4 of at least 12", start
        )
    if total > MAX_RECORD + 64:
        raise reader.error(f"pcapng block claims {total} bytes", start)
    body = reader.read(total - 12, f"a pcapng block of {total} bytes")
    (trailer,) = struct.unpack(section.endian + "I", reader.read(4, "a pcapng block trailer"))
    if trailer != total:
        raise reader.error(
            f"pcapng block length {total} at its start but {trailer} at its end", start
        )
    return block_type, body


def _section_endian(reader: _Reader, start: int) -> str:
    magic = reader.peek(4)
    if magic == struct.pack("<I", PCAPNG_BYTE_ORDER_MAGIC):
        return "<"
    if magic == struct.pack(">I", PCAPNG_BYTE_ORDER_MAGIC):
        return ">"
    raise reader.error(f"pcapng section header has byte-order magic {magic.hex()}", start + 8)


def _interface(reader: _Reader, endian: str, body: bytes, start: int) -> _Interface:
    if len(body) < 8:
        raise reader.error("pcapng interface block is too short", start)
    link_type, _reserved, snaplen = struct.unpack(endian + "HHI", body[:8])
    interface = _Interface(link_type, snaplen)
    for code, value in _options(body[8:], endian):
        if code == IF_TSRESOL and len(value) == 1:
            exponent = value[0] & 0x7F
            interface.ticks_per_second = 2**exponent if value[0] & 0x80 else 10**exponent
        elif code == IF_TSOFFSET and len(value) == 8:
            (interface.offset_seconds,) = struct.unpack(endian + "q", value)
    return interface


def _options(data: bytes, endian: str) -> Iterator[tuple[int, bytes]]:
    """Walk a pcapng option list; a malformed tail is ignored like Wireshark does."""
    position = 0
    while position + 4 <= len(data):
        code, length = struct.unpack(endian + "HH", data[position : position + 4])
        if code == OPT_ENDOFOPT:
            return
        yield code, data[position + 4 : position + 4 + length]
        position += 4 + (length + 3) // 4 * 4


def _packet(
    reader: _Reader, section: _Section, block_type: int, body: bytes, number: int, start: int
) -> Frame:
    if block_type == PCAPNG_SPB:
        return _simple_packet(reader, section, body, number, start)
    layout = section.endian + ("IIIII" if block_type == PCAPNG_EPB else "HHIIII")
    fixed = struct.calcsize(layout)
    if len(body) < fixed:
        raise reader.error(f"frame {number}: pcapng packet block is too short", start)
    fields = struct.unpack(layout, body[:fixed])
    interface_id = fields[0]
    high, low, captured, original = fields[-4:]
    interface = _interface_for(reader, section, interface_id, number, start)
    if fixed + captured > len(body):
        raise reader.error(f"frame {number}: {captured} captured bytes overrun the block", start)
    data = body[fixed : fixed + captured]
    stamp = interface.nanoseconds((high << 32) | low)
    return Frame(number, stamp, interface.link_type, data, max(original, captured))


def _simple_packet(
    reader: _Reader, section: _Section, body: bytes, number: int, start: int
) -> Frame:
    interface = _interface_for(reader, section, 0, number, start)
    if len(body) < 4:
        raise reader.error(f"frame {number}: pcapng simple packet block is too short", start)
    (original,) = struct.unpack(section.endian + "I", body[:4])
    captured = min(original, len(body) - 4)
    if interface.snaplen:
        captured = min(captured, interface.snaplen)
    return Frame(number, None, interface.link_type, body[4 : 4 + captured], original)


def _interface_for(
    reader: _Reader, section: _Section, interface_id: int, number: int, start: int
) -> _Interface:
    if interface_id >= len(section.interfaces):
        raise reader.error(
            f"frame {number} names interface {interface_id}, "
            f"but the section describes {len(section.interfaces)}",
            start,
        )
    return section.interfaces[interface_id]
