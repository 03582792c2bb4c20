"""What a DHCPv4 and a DHCPv6 option have in common: the bytes it came with, kept so a
packet re-encodes exactly, beside a typed reading made on first use.

Bytes that do not fit the option's type still decode: the value is an ``InvalidValue``
holding the problem and the offset, so the pcap printer can show it and the packet
round-trips, while the strict ``typed()`` (what the engines use) raises
MalformedPacket.  Each family says how its codes are named and which codec reads one
(``name``, ``codec``); protocols/dhcp/options.py and protocols/dhcpv6/options.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from construct import ConstructError

from protocols.dhcp.values import Codec, show_bytes, show_text
from protocols.errors import MalformedPacket
from protocols.once import once


class BadOptionValue(ValueError):
    """A value handed to the encoder that its option code cannot carry (a builder bug)."""


@dataclass(frozen=True)
class InvalidValue:
    """An option whose bytes do not fit its type; the bytes are kept so the packet
    still re-encodes exactly."""

    code: int
    name: str
    data: bytes
    problem: str
    offset: int | None = None

    @property
    def reason(self) -> str:
        """The whole story, as MalformedPacket carries it: "option 51 (lease-time): ..."."""
        return f"option {self.code} ({self.name}): {self.problem}"

    def __str__(self) -> str:
        return f"INVALID ({self.problem}) {show_bytes(self.data)}"


def show_value(value: object) -> str:
    """The readable form the pcap printer shows for any decoded value."""
    if isinstance(value, str):
        return show_text(value)
    if isinstance(value, bytes):
        return show_bytes(value)
    if isinstance(value, tuple):
        return ",".join(show_value(item) for item in value)
    return str(value)


def known(kind: type[IntEnum]) -> Callable[[int], Any]:
    """A reader giving the enum member for a known number, the plain int otherwise (never
    raises: a registry grows faster than pxed's enums)."""
    members = {member.value: member for member in kind}
    return lambda number: members.get(number, number)


# What a codec raises for a value its option cannot carry (Construct's range errors, a
# wrong type, a missing attribute); the encoders turn it into ``cannot_encode``.
ENCODE_ERRORS = (ConstructError, TypeError, ValueError, AttributeError, OverflowError)


def cannot_encode(code: int, name: str, value: object, exc: Exception) -> BadOptionValue:
    """The error for a value option ``code`` cannot carry, naming the option (built only
    on failure: encoding a reply's options is on the per-packet path)."""
    return BadOptionValue(f"option {code} ({name}): cannot encode {value!r}: {exc}")


class TypedOption:
    """The shared half of a family's frozen ``Option`` dataclass, which declares ``code``,
    ``data`` and ``offset`` (where the option starts, for messages) and says how its code
    is named (``name``) and read (``codec``)."""

    code: int
    data: bytes
    offset: int | None

    @property
    def name(self) -> str:
        raise NotImplementedError

    def codec(self) -> Codec:
        raise NotImplementedError

    @once
    def value(self) -> object:
        """The typed reading, or an ``InvalidValue`` when the bytes don't fit the type;
        read on first use, so a packet costs only what is read of it."""
        try:
            return self.codec().decode(self.data)
        except MalformedPacket as exc:
            return InvalidValue(self.code, self.name, self.data, exc.reason, self.offset)

    @property
    def error(self) -> str | None:
        """Why the bytes don't fit the option's type, or None."""
        value = self.value
        return value.reason if isinstance(value, InvalidValue) else None

    def typed(self) -> object:
        """The typed value, raising MalformedPacket when the bytes don't fit its type."""
        value = self.value
        if isinstance(value, InvalidValue):
            raise MalformedPacket(value.reason, value.offset)
        return value

    def __str__(self) -> str:
        return f"{self.name}={show_value(self.value)}"
