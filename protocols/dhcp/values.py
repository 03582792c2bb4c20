"""Value codecs and option framing: the Construct grammar of the options area, and
how the bytes of one option (or sub-option) map to a typed value.

A codec checks the length first in plain Python, so a bad option gets a message a
sysadmin can act on ("length 3, expected 4"), then hands the bytes to a small Construct
grammar.  Codecs raise ``MalformedPacket`` without an offset; the caller knows which
option and where, and adds both.

Speed: Construct costs microseconds per parsed element, which made a PXE DISCOVER
with option 175 take most of a millisecond (benchmarks/README.md). So two hot spots
read the bytes in plain Python, with exactly the meaning of the grammar next to them
(the property tests in tests/protocols/test_dhcp_grammar.py hold them to it):
``scan`` and ``build_item`` for the TLV framing (``OPTIONS_AREA``, ``OPTION``),
``FAST_READERS`` for fixed-size fields (addresses, integers) and arrays of them, and
``Grammar.fast`` for three small options every PXE request carries; the BOOTP header
is one ``struct`` call beside its grammar in wire.py (held to it the same way). Every
value with structure goes through Construct both ways.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv4Address
from typing import Any, NamedTuple

from construct import (
    Adapter,
    Bytes,
    Check,
    Const,
    ConstructError,
    GreedyBytes,
    GreedyRange,
    Int8sb,
    Int8ub,
    Int16ub,
    Int32sb,
    Int32ub,
    Optional,
    Pass,
    Prefixed,
    Struct,
    Switch,
    Terminated,
    this,
)

from protocols.errors import MalformedPacket


class _IPv4(Adapter):  # type: ignore[misc]
    """Four bytes on the wire, an ``IPv4Address`` in Python."""

    def _decode(self, obj: bytes, context: object, path: str) -> IPv4Address:
        return IPv4Address(obj)

    def _encode(self, obj: IPv4Address | str, context: object, path: str) -> bytes:
        return _write_ipv4(obj)


IPV4 = _IPv4(Bytes(4))
U8 = Int8ub
S8 = Int8sb
U16 = Int16ub
U32 = Int32ub
S32 = Int32sb
# One (length, bytes) item of a length-prefixed list (RFC 3004 user classes, V-I data).
PASCAL_BYTES = Prefixed(Int8ub, GreedyBytes)


def _unsigned(data: bytes) -> int:
    return int.from_bytes(data, "big")


def _signed(data: bytes) -> int:
    return int.from_bytes(data, "big", signed=True)


def _writer(size: int, signed: bool = False) -> Callable[[Any], bytes]:
    return lambda value: int(value).to_bytes(size, "big", signed=signed)


def _write_ipv4(value: Any) -> bytes:
    """``IPv4Address(address)`` formats an address as text and parses it back (CPython
    3.11): a quarter of a DHCP reply's encoding time went there, four addresses a header."""
    if isinstance(value, IPv4Address):
        return value.packed
    return IPv4Address(value).packed


# Every request carries the same few addresses (its relay's giaddr, our server
# identifier): a hit is a C-level lookup where ``IPv4Address(raw)`` is two Python calls
# (benchmarks/README.md).  Bounded, as a client picks what its requests hold.
read_ipv4: Callable[[bytes], IPv4Address] = lru_cache(maxsize=1024)(IPv4Address)

# Plain-Python readers and writers giving what parsing or building these fields with
# Construct gives (OverflowError stands in for Construct's range error).
FAST_READERS: dict[Any, Callable[[bytes], object]] = {
    IPV4: read_ipv4,
    U8: _unsigned,
    S8: _signed,
    U16: _unsigned,
    U32: _unsigned,
    S32: _signed,
}
FAST_WRITERS: dict[Any, Callable[[Any], bytes]] = {
    IPV4: _write_ipv4,
    U8: _writer(1),
    S8: _writer(1, signed=True),
    U16: _writer(2),
    U32: _writer(4),
    S32: _writer(4, signed=True),
}


def whole(construct: Any) -> Any:
    """``construct`` followed by end-of-data: a GreedyRange must not drop a truncated tail."""
    return Struct("value" / construct, Terminated)


def parse_whole(grammar: Any, data: bytes) -> Any:
    """Parse with a grammar built by ``whole``; Construct's errors become MalformedPacket."""
    try:
        return grammar.parse(data).value
    except ConstructError as exc:
        raise MalformedPacket(_construct_reason(exc)) from None


def _construct_reason(exc: ConstructError) -> str:
    """Construct's message without its '(parsing) -> path' preamble."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def decode_text(data: bytes) -> str:
    """UTF-8 when it is, else Latin-1: never fails, and every byte stays visible."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def show_text(text: str) -> str:
    """Printable text as is; control characters and NULs escaped so one packet stays one line."""
    return text if text.isprintable() else repr(text)[1:-1]


def show_bytes(data: bytes) -> str:
    """Colon hex, the way MACs and client identifiers are usually written."""
    return data.hex(":")


class Codec:
    """Bytes <-> typed value for one option or sub-option."""

    what = "bytes"

    def decode(self, data: bytes) -> object:
        return data

    def encode(self, value: Any) -> bytes:
        return bytes(value)


RAW = Codec()


class Fixed(Codec):
    """Exactly ``size`` bytes through one Construct field (an address, a 32-bit time)."""

    def __init__(
        self,
        construct: Any,
        size: int,
        what: str,
        load: Callable[[Any], object] = lambda v: v,
    ) -> None:
        self.grammar = whole(construct)
        self.construct = construct
        self.fast = FAST_READERS.get(construct)
        self.size = size
        self.what = what
        self.load = load

    def decode(self, data: bytes) -> object:
        if len(data) != self.size:
            raise MalformedPacket(f"length {len(data)}, expected {self.size} ({self.what})")
        if self.fast is not None:
            return self.load(self.fast(data))
        return self.load(parse_whole(self.grammar, data))

    def encode(self, value: Any) -> bytes:
        write = FAST_WRITERS.get(self.construct)
        return write(value) if write else bytes(self.construct.build(value))


# The fixed-size codecs options and sub-options of both families are mostly made of.
NUMBER8 = Fixed(U8, 1, "8-bit number")
NUMBER16 = Fixed(U16, 2, "16-bit number")
NUMBER32 = Fixed(U32, 4, "32-bit number")
ADDRESS4 = Fixed(IPV4, 4, "an IPv4 address")


class Array(Codec):
    """A run of ``unit``-sized items, at least ``minimum`` of them (routers, PRL, arch list)."""

    def __init__(
        self,
        construct: Any,
        unit: int,
        what: str,
        minimum: int = 1,
        load: Callable[[Any], object] = lambda v: v,
        dump: Callable[[Any], object] = lambda v: v,
    ) -> None:
        self.grammar = whole(GreedyRange(construct))
        self.dump = dump
        self.construct = construct
        self.fast = FAST_READERS.get(construct)
        self.unit = unit
        self.what = what
        self.minimum = minimum
        self.load = load

    def decode(self, data: bytes) -> tuple[object, ...]:
        size = len(data)
        if size % self.unit:
            raise MalformedPacket(
                f"length {size}, expected a multiple of {self.unit} ({self.what})"
            )
        if size < self.minimum * self.unit:
            raise MalformedPacket(
                f"length {size}, expected at least {self.minimum * self.unit} ({self.what})"
            )
        if self.construct is U8:
            items: Iterable[Any] = data
        elif self.fast is not None:
            fast, unit = self.fast, self.unit
            items = [fast(data[i : i + unit]) for i in range(0, size, unit)]
        else:
            items = parse_whole(self.grammar, data)
        return tuple(self.load(item) for item in items)

    def encode(self, value: Iterable[Any]) -> bytes:
        write = FAST_WRITERS.get(self.construct)
        if write is not None:
            return b"".join(map(write, value))
        return b"".join(bytes(self.construct.build(self.dump(item))) for item in value)


class Text(Codec):
    """A string (host name, vendor class, boot file name), kept exactly, NULs included."""

    what = "text"

    def decode(self, data: bytes) -> str:
        return decode_text(data)

    def encode(self, value: str) -> bytes:
        return value.encode("utf-8")


TEXT = Text()


class Grammar(Codec):
    """Any other shape: a whole-data Construct grammar plus conversion to a dataclass.

    ``fast``, for the few small options in every request (61, 94, 97), reads the
    length-checked bytes directly into what ``load`` would make of the parse.
    """

    def __init__(
        self,
        construct: Any,
        what: str,
        load: Callable[[Any], object],
        dump: Callable[[Any], object],
        minimum: int = 0,
        size: int | None = None,
        fast: Callable[[bytes], object] | None = None,
    ) -> None:
        self.fast = fast
        self.grammar = whole(construct)
        self.construct = construct
        self.what = what
        self.load = load
        self.dump = dump
        self.minimum = minimum
        self.size = size

    def decode(self, data: bytes) -> object:
        if self.size is not None and len(data) != self.size:
            raise MalformedPacket(f"length {len(data)}, expected {self.size} ({self.what})")
        if len(data) < self.minimum:
            raise MalformedPacket(
                f"length {len(data)}, expected at least {self.minimum} ({self.what})"
            )
        if self.fast is not None:
            return self.fast(data)
        return self.load(parse_whole(self.grammar, data))

    def encode(self, value: Any) -> bytes:
        return bytes(self.construct.build(self.dump(value)))


PAD = 0
END = 255

# One item of an options area (RFC 2132 section 2): Pad and End are a lone code byte,
# everything else is code, length, data.  Encapsulated spaces without Pad/End (relay
# agent sub-options, V-I vendor data) use SUBOPTION, where every code has a length.
OPTION = Struct(
    "code" / Int8ub,
    "data" / Switch(this.code, {PAD: Pass, END: Pass}, default=PASCAL_BYTES),
)
SUBOPTION = Struct("code" / Int8ub, "data" / PASCAL_BYTES)

# A whole options area: items up to End, then whatever follows End (padding, junk).
# GreedyRange stops quietly at a truncated item (pitfall 8), so an area that neither
# ends with End nor is fully consumed is rejected by the last Check.
OPTIONS_AREA = Struct(
    "items" / GreedyRange(Struct("code" / Int8ub, Check(this.code != END), *OPTION.subcons[1:])),
    "end" / Optional(Const(bytes([END]))),
    "trailing" / GreedyBytes,
    Check(lambda this: this.end is not None or not this.trailing),
)
SUBOPTIONS_AREA = whole(GreedyRange(SUBOPTION))


class Item(NamedTuple):
    """One thing found in an options area: an option (chunk), a run of Pads, or End.

    ``offset`` is absolute in the packet, so error messages match a hex dump.
    For a Pad run ``data`` is the Pad bytes themselves.
    """

    code: int
    offset: int
    data: bytes


@dataclass(frozen=True)
class Scan:
    items: tuple[Item, ...]
    end: bool
    trailing: bytes


def scan(area: bytes, base: int, where: str, pads: bool = True, kind: str = "option") -> Scan:
    """``OPTIONS_AREA`` (or ``SUBOPTIONS_AREA`` without ``pads``) in plain Python, with
    Pad runs kept together and error messages that name the item and its offset.

    A length running past the area is the one structural error: nothing after it can be
    framed, so it raises MalformedPacket pointing at the item that overruns.
    """
    items: list[Item] = []
    # Items made by tuple.__new__, not the Python-level __new__ NamedTuple gives Item: a
    # request's every option is one (benchmarks/README.md).
    new = tuple.__new__
    size = len(area)
    pos = 0
    while pos < size:
        code = area[pos]
        if pads and code == PAD:
            run = pos + 1
            while run < size and area[run] == PAD:
                run += 1
            items.append(new(Item, (PAD, base + pos, area[pos:run])))
            pos = run
            continue
        if pads and code == END:
            return Scan(tuple(items), True, area[pos + 1 :])
        if pos + 1 >= size:
            raise MalformedPacket(f"{where}: {kind} {code} has no length byte", base + pos)
        end = pos + 2 + area[pos + 1]
        if end > size:
            raise MalformedPacket(
                f"{where}: {kind} {code} length {area[pos + 1]} runs past the end"
                f" ({size - pos - 2} bytes left)",
                base + pos,
            )
        items.append(new(Item, (code, base + pos, area[pos + 2 : end])))
        pos = end
    return Scan(tuple(items), False, b"")


def build_item(code: int, data: bytes, pads: bool = True) -> bytes:
    """What building ``OPTION`` (or ``SUBOPTION`` without ``pads``) gives, without
    Construct's per-item cost; Pad and End (with ``pads``) are the lone code byte."""
    if pads and code in (PAD, END):
        return bytes([code])
    if len(data) > 255:
        raise ValueError(f"{len(data)} bytes do not fit one item (255 at most)")
    return bytes([code, len(data)]) + data
