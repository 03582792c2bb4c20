"""DHCP Unique Identifiers (RFC 8415 section 11, RFC 6355): options 1 and 2.

A DUID is how DHCPv6 knows a client (there is no chaddr), so the engine keys
leases and reservations on it, and a reservation by MAC can only work through
the link-layer address that DUID-LLT and DUID-LL carry.  Each type decodes to
its own frozen value; a type this module does not know keeps its bytes, so any
DUID still round-trips and compares.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from construct import Bytes, GreedyBytes, Int16ub, Int32ub, Struct, Switch, this

from protocols.dhcp.values import Codec, show_bytes, whole
from protocols.errors import MalformedPacket

DUID_LLT = 1
DUID_EN = 2
DUID_LL = 3
DUID_UUID = 4
HWTYPE_ETHERNET = 1
# RFC 8415 11.1: the identifier after the type is 1 to 128 bytes.
MAX_DUID_BODY = 128
# The shortest body each known type can have: one byte of identifier past its fields.
_MINIMUM = {DUID_LLT: 7, DUID_EN: 5, DUID_LL: 3, DUID_UUID: 16}

_DUID = Struct(
    "type" / Int16ub,
    "body"
    / Switch(
        this.type,
        {
            DUID_LLT: Struct("hw_type" / Int16ub, "time" / Int32ub, "link_layer" / GreedyBytes),
            DUID_EN: Struct("enterprise" / Int32ub, "identifier" / GreedyBytes),
            DUID_LL: Struct("hw_type" / Int16ub, "link_layer" / GreedyBytes),
            DUID_UUID: Struct("uuid" / Bytes(16)),
        },
        default=GreedyBytes,
    ),
)
_GRAMMAR = whole(_DUID)


def _mac(hw_type: int, link_layer: bytes) -> str | None:
    if hw_type == HWTYPE_ETHERNET and len(link_layer) == 6:
        return link_layer.hex(":")
    return None


@dataclass(frozen=True)
class DuidLlt:
    """Type 1: link-layer address plus the time (seconds since 2000) it was made."""

    hw_type: int
    time: int
    link_layer: bytes

    @property
    def mac(self) -> str | None:
        """The Ethernet MAC, for reservations by MAC; None for other hardware."""
        return _mac(self.hw_type, self.link_layer)

    def __str__(self) -> str:
        return f"LLT hw {self.hw_type} time {self.time} {show_bytes(self.link_layer)}"


@dataclass(frozen=True)
class DuidEn:
    """Type 2: an enterprise number and an identifier the vendor assigned."""

    enterprise: int
    identifier: bytes

    @property
    def mac(self) -> None:
        return None

    def __str__(self) -> str:
        return f"EN enterprise {self.enterprise} {show_bytes(self.identifier)}"


@dataclass(frozen=True)
class DuidLl:
    """Type 3: the link-layer address alone."""

    hw_type: int
    link_layer: bytes

    @property
    def mac(self) -> str | None:
        return _mac(self.hw_type, self.link_layer)

    def __str__(self) -> str:
        return f"LL hw {self.hw_type} {show_bytes(self.link_layer)}"


@dataclass(frozen=True)
class DuidUuid:
    """Type 4 (RFC 6355): the machine UUID, what UEFI PXE firmware sends.

    RFC 6355 sends the 16 bytes in network order (unlike DHCPv4 option 97,
    which carries the SMBIOS little-endian form), so ``uuid`` reads them as is.
    """

    uuid: uuid.UUID

    @property
    def mac(self) -> None:
        return None

    def __str__(self) -> str:
        return f"UUID {self.uuid}"


@dataclass(frozen=True)
class DuidOther:
    """A DUID type not defined when this was written, kept as its bytes."""

    type: int
    data: bytes

    @property
    def mac(self) -> None:
        return None

    def __str__(self) -> str:
        return f"type {self.type} {show_bytes(self.data)}"


Duid = DuidLlt | DuidEn | DuidLl | DuidUuid | DuidOther


def _load(parsed: Any) -> Duid:
    body = parsed.body
    match parsed.type:
        case 1:
            return DuidLlt(body.hw_type, body.time, body.link_layer)
        case 2:
            return DuidEn(body.enterprise, body.identifier)
        case 3:
            return DuidLl(body.hw_type, body.link_layer)
        case 4:
            return DuidUuid(uuid.UUID(bytes=body.uuid))
    return DuidOther(parsed.type, body)


def _read(kind: int, body: bytes) -> Duid:
    """What ``_load(parse_whole(_GRAMMAR, data))`` gives, read directly: a client id is
    in every message, and Construct's Switch cost more than the rest of its decode.
    Lengths are checked by the caller; tests/protocols/test_dhcpv6_fuzz.py holds this
    to the grammar."""
    match kind:
        case 1:
            return DuidLlt(
                int.from_bytes(body[:2], "big"), int.from_bytes(body[2:6], "big"), body[6:]
            )
        case 2:
            return DuidEn(int.from_bytes(body[:4], "big"), body[4:])
        case 3:
            return DuidLl(int.from_bytes(body[:2], "big"), body[2:])
        case 4:
            return DuidUuid(uuid.UUID(bytes=body))
    return DuidOther(kind, body)


def _dump(duid: Duid) -> dict[str, object]:
    match duid:
        case DuidLlt():
            body: object = {
                "hw_type": duid.hw_type,
                "time": duid.time,
                "link_layer": duid.link_layer,
            }
            return {"type": DUID_LLT, "body": body}
        case DuidEn():
            return {
                "type": DUID_EN,
                "body": {"enterprise": duid.enterprise, "identifier": duid.identifier},
            }
        case DuidLl():
            return {
                "type": DUID_LL,
                "body": {"hw_type": duid.hw_type, "link_layer": duid.link_layer},
            }
        case DuidUuid():
            return {"type": DUID_UUID, "body": {"uuid": duid.uuid.bytes}}
        case DuidOther():
            return {"type": duid.type, "body": duid.data}


class DuidCodec(Codec):
    """Options 1 and 2: lengths checked first so the reason names the DUID type."""

    what = "DUID"

    def decode(self, data: bytes) -> Duid:
        body = len(data) - 2
        if body < 1 or body > MAX_DUID_BODY:
            raise MalformedPacket(f"length {len(data)}, expected 3 to {MAX_DUID_BODY + 2} (a DUID)")
        kind = int.from_bytes(data[:2], "big")
        minimum = _MINIMUM.get(kind, 1)
        if body < minimum or (kind == DUID_UUID and body != 16):
            exact = "exactly" if kind == DUID_UUID else "at least"
            raise MalformedPacket(
                f"DUID type {kind} with {body} bytes after the type, expected {exact} {minimum}"
            )
        return _read(kind, data[2:])

    def encode(self, value: Duid) -> bytes:
        return bytes(_DUID.build(_dump(value)))
