"""Encapsulated option spaces: PXE (43), relay agent information (82), iPXE (175), V-I (125).

Each space decodes to a small frozen value holding ``(code, typed value)`` pairs in wire
order.  A sub-option whose bytes do not fit its type makes the whole option fail to
decode (the option then keeps its raw bytes; see options.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any, ClassVar, Self

from construct import GreedyBytes, GreedyRange, PrefixedArray, Struct

from protocols.dhcp.values import (
    ADDRESS4,
    IPV4,
    NUMBER8,
    NUMBER16,
    PASCAL_BYTES,
    RAW,
    S8,
    SUBOPTION,
    TEXT,
    U8,
    U16,
    U32,
    Codec,
    Fixed,
    Grammar,
    build_item,
    decode_text,
    parse_whole,
    scan,
    show_bytes,
    show_text,
    whole,
)
from protocols.errors import MalformedPacket
from protocols.option import show_value


@dataclass(frozen=True)
class _Space:
    names: dict[int, str]
    codecs: dict[int, Codec]
    pads: bool

    def name(self, code: int) -> str:
        return self.names.get(code, f"sub-{code}")


@dataclass(frozen=True)
class SubOptions:
    """Sub-options of one encapsulating option, in wire order.

    ``end`` records whether an End (255) closed the list, in spaces that have one.
    """

    items: tuple[tuple[int, object], ...] = ()
    end: bool = False

    SPACE: ClassVar[_Space]

    def get(self, code: int) -> object | None:
        for item_code, value in self.items:
            if item_code == code:
                return value
        return None

    def __str__(self) -> str:
        return " ".join(
            f"{self.SPACE.name(code)}={show_value(value)}" for code, value in self.items
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        try:
            found = scan(data, 0, "sub-options", pads=cls.SPACE.pads, kind="sub-option")
        except MalformedPacket as exc:
            raise MalformedPacket(f"{exc.reason} at byte {exc.offset} of the option") from None
        items = []
        for item in found.items:
            if item.code == 0 and cls.SPACE.pads:
                continue
            codec = cls.SPACE.codecs.get(item.code, RAW)
            try:
                value = codec.decode(item.data)
            except MalformedPacket as exc:
                name = cls.SPACE.name(item.code)
                raise MalformedPacket(
                    f"sub-option {item.code} ({name}) at byte {item.offset} of the option:"
                    f" {exc.reason}"
                ) from None
            items.append((item.code, value))
        return cls(tuple(items), found.end)

    def encode(self) -> bytes:
        pads = self.SPACE.pads
        parts = [
            build_item(code, self.SPACE.codecs.get(code, RAW).encode(value), pads)
            for code, value in self.items
        ]
        if self.end and pads:
            parts.append(b"\xff")
        return b"".join(parts)


# PXE 2.1 vendor options (option 43 when the vendor class starts with PXEClient).


@dataclass(frozen=True)
class BootServer:
    """PXE sub-option 8 entry: a boot server type and the addresses that serve it."""

    type: int
    addresses: tuple[IPv4Address, ...]

    def __str__(self) -> str:
        return f"{self.type}:{'/'.join(str(a) for a in self.addresses)}"


@dataclass(frozen=True)
class MenuItem:
    """PXE sub-option 9 entry: a boot server type and the text shown for it."""

    type: int
    description: str

    def __str__(self) -> str:
        return f'{self.type}:"{show_text(self.description)}"'


@dataclass(frozen=True)
class MenuPrompt:
    """PXE sub-option 10: seconds to wait (255 = forever, 0 = boot the first item) and text."""

    timeout: int
    prompt: str

    def __str__(self) -> str:
        return f'{self.timeout}s "{show_text(self.prompt)}"'


@dataclass(frozen=True)
class BootItem:
    """PXE sub-option 71: which boot server type and layer the client asks (4011) for."""

    type: int
    layer: int

    def __str__(self) -> str:
        return f"type {self.type} layer {self.layer}"


_BOOT_SERVERS = Grammar(
    GreedyRange(Struct("type" / U16, "addresses" / PrefixedArray(U8, IPV4))),
    "boot server list",
    lambda v: tuple(BootServer(e.type, tuple(e.addresses)) for e in v),
    lambda v: [{"type": e.type, "addresses": list(e.addresses)} for e in v],
)
_BOOT_MENU = Grammar(
    GreedyRange(Struct("type" / U16, "description" / PASCAL_BYTES)),
    "boot menu",
    lambda v: tuple(MenuItem(e.type, decode_text(e.description)) for e in v),
    lambda v: [{"type": e.type, "description": e.description.encode()} for e in v],
)
_MENU_PROMPT = Grammar(
    Struct("timeout" / U8, "prompt" / GreedyBytes),
    "menu prompt",
    lambda v: MenuPrompt(v.timeout, decode_text(v.prompt)),
    lambda v: {"timeout": v.timeout, "prompt": v.prompt.encode()},
    minimum=1,
)
_BOOT_ITEM = Grammar(
    Struct("type" / U16, "layer" / U16),
    "boot item",
    lambda v: BootItem(v.type, v.layer),
    lambda v: {"type": v.type, "layer": v.layer},
    size=4,
)


class PxeOptions(SubOptions):
    """Option 43 for PXE clients.  Sub-option 6 = 8 tells a client to take the boot file
    from this offer instead of asking a boot server on 4011 (see docs/firmware.md)."""

    SPACE = _Space(
        names={
            1: "mtftp-ip",
            2: "mtftp-cport",
            3: "mtftp-sport",
            4: "mtftp-tmout",
            5: "mtftp-delay",
            6: "discovery-control",
            7: "discovery-mcast-addr",
            8: "boot-servers",
            9: "boot-menu",
            10: "menu-prompt",
            71: "boot-item",
        },
        codecs={
            1: ADDRESS4,
            2: NUMBER16,
            3: NUMBER16,
            4: NUMBER8,
            5: NUMBER8,
            6: NUMBER8,
            7: ADDRESS4,
            8: _BOOT_SERVERS,
            9: _BOOT_MENU,
            10: _MENU_PROMPT,
            71: _BOOT_ITEM,
        },
        pads=True,
    )

    @property
    def discovery_control(self) -> int | None:
        value = self.get(6)
        return value if isinstance(value, int) else None

    @property
    def boot_item(self) -> BootItem | None:
        value = self.get(71)
        return value if isinstance(value, BootItem) else None


class RelayAgentInfo(SubOptions):
    """Option 82 (RFC 3046): added by a relay, echoed back unchanged by the server."""

    SPACE = _Space(
        names={
            1: "circuit-id",
            2: "remote-id",
            4: "docsis-device-class",
            5: "link-selection",
            6: "subscriber-id",
            7: "radius-attributes",
            8: "authentication",
            9: "vendor-specific",
            10: "relay-flags",
            11: "server-id-override",
            12: "relay-id",
            151: "vss",
            152: "vss-control",
        },
        codecs={5: ADDRESS4, 6: TEXT, 11: ADDRESS4},
        pads=False,
    )


_IPXE_FEATURES = {
    16: "pxeext",
    17: "iscsi",
    18: "aoe",
    19: "http",
    20: "https",
    21: "tftp",
    22: "ftp",
    23: "dns",
    24: "bzimage",
    25: "multiboot",
    26: "slam",
    27: "srp",
    32: "nbi",
    33: "pxe",
    34: "elf",
    35: "comboot",
    36: "efi",
    37: "fcoe",
    38: "vlan",
    39: "menu",
    40: "sdi",
    41: "nfs",
}


class IpxeOptions(SubOptions):
    """Option 175: iPXE's own settings and the features this build supports."""

    SPACE = _Space(
        names={
            1: "priority",
            8: "keep-san",
            9: "skip-san-boot",
            **_IPXE_FEATURES,
            176: "no-pxedhcp",
            177: "bus-id",
            188: "san-filename",
            189: "bios-drive",
            190: "username",
            191: "password",
            192: "reverse-username",
            193: "reverse-password",
            235: "version",
        },
        codecs={
            1: Fixed(S8, 1, "signed 8-bit number"),
            8: NUMBER8,
            9: NUMBER8,
            **dict.fromkeys(_IPXE_FEATURES, NUMBER8),
            176: NUMBER8,
            188: TEXT,
            189: NUMBER8,
            190: TEXT,
            191: TEXT,
            192: TEXT,
            193: TEXT,
        },
        pads=True,
    )


# Option 125 (RFC 3925): per-enterprise blocks of plain sub-options.


@dataclass(frozen=True)
class VendorBlock:
    enterprise: int
    items: tuple[tuple[int, bytes], ...]

    def __str__(self) -> str:
        inner = " ".join(f"{code}={show_bytes(data)}" for code, data in self.items)
        return f"enterprise {self.enterprise}: {inner}"


_VENDOR_BLOCKS = whole(GreedyRange(Struct("enterprise" / U32, "data" / PASCAL_BYTES)))
_VENDOR_ITEMS = whole(GreedyRange(SUBOPTION))


class VendorIdentifyingCodec(Codec):
    what = "vendor-identifying vendor options"

    def decode(self, data: bytes) -> tuple[VendorBlock, ...]:
        blocks = parse_whole(_VENDOR_BLOCKS, data)
        return tuple(
            VendorBlock(
                block.enterprise,
                tuple((item.code, item.data) for item in parse_whole(_VENDOR_ITEMS, block.data)),
            )
            for block in blocks
        )

    def encode(self, value: Any) -> bytes:
        blocks = [
            {
                "enterprise": block.enterprise,
                "data": b"".join(build_item(code, data, pads=False) for code, data in block.items),
            }
            for block in value
        ]
        return bytes(_VENDOR_BLOCKS.build({"value": blocks}))


class SubOptionsCodec(Codec):
    def __init__(self, kind: type[SubOptions], what: str) -> None:
        self.kind = kind
        self.what = what

    def decode(self, data: bytes) -> SubOptions:
        return self.kind.decode(data)

    def encode(self, value: SubOptions) -> bytes:
        return value.encode()
