"""DHCP options: names, typed values, and the codec for each option code.

An ``Option`` always keeps the bytes it came with (so a packet re-encodes exactly) next to
its typed ``value`` (protocols/option.py, shared with DHCPv6).  When the bytes do not fit
the option's type (option 51 with three bytes, option 3 with seven) the option still
decodes: its value is an ``InvalidValue`` holding the reason and offset, the pcap printer
can show it, the packet round-trips, and ``Option.typed()`` (the strict accessor the DHCP
engine uses) raises ``MalformedPacket``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import IntEnum
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from construct import Bytes, Check, GreedyBytes, GreedyRange, Struct, this

from protocols.dhcp.suboptions import (
    IpxeOptions,
    PxeOptions,
    RelayAgentInfo,
    SubOptions,
    SubOptionsCodec,
    VendorIdentifyingCodec,
)
from protocols.dhcp.values import (
    ADDRESS4,
    IPV4,
    NUMBER16,
    NUMBER32,
    PASCAL_BYTES,
    RAW,
    S32,
    TEXT,
    U8,
    U16,
    U32,
    Array,
    Codec,
    Fixed,
    Grammar,
    build_item,
    decode_text,
    show_bytes,
    show_text,
    whole,
)
from protocols.errors import MalformedPacket
from protocols.once import once
from protocols.option import ENCODE_ERRORS, BadOptionValue, TypedOption, cannot_encode, known

PAD = 0
SUBNET_MASK = 1
ROUTER = 3
DNS_SERVERS = 6
HOSTNAME = 12
DOMAIN_NAME = 15
BROADCAST_ADDRESS = 28
NTP_SERVERS = 42
VENDOR_SPECIFIC = 43
REQUESTED_IP = 50
LEASE_TIME = 51
OVERLOAD = 52
MESSAGE_TYPE = 53
SERVER_ID = 54
PARAMETER_REQUEST_LIST = 55
MESSAGE = 56
MAX_MESSAGE_SIZE = 57
RENEWAL_TIME = 58
REBINDING_TIME = 59
VENDOR_CLASS = 60
CLIENT_ID = 61
TFTP_SERVER = 66
BOOTFILE = 67
USER_CLASS = 77
CLIENT_FQDN = 81
RELAY_AGENT_INFO = 82
CLIENT_ARCH = 93
CLIENT_NDI = 94
CLIENT_UUID = 97
DOMAIN_SEARCH = 119
CLASSLESS_ROUTES = 121
VENDOR_SPECIFIC_VI = 125
TFTP_SERVER_ADDRESSES = 150
IPXE_ENCAP = 175
PXELINUX_MAGIC = 208
PXELINUX_CONFIG_FILE = 209
PXELINUX_PATH_PREFIX = 210
PXELINUX_REBOOT_TIME = 211
WPAD = 252
END = 255


class MessageType(IntEnum):
    """Option 53.  Codes the enum does not know decode as plain ints."""

    DISCOVER = 1
    OFFER = 2
    REQUEST = 3
    DECLINE = 4
    ACK = 5
    NAK = 6
    RELEASE = 7
    INFORM = 8
    FORCERENEW = 9
    LEASEQUERY = 10
    LEASEUNASSIGNED = 11
    LEASEUNKNOWN = 12
    LEASEACTIVE = 13
    BULKLEASEQUERY = 14
    LEASEQUERYDONE = 15
    ACTIVELEASEQUERY = 16
    LEASEQUERYSTATUS = 17
    TLS = 18

    def __str__(self) -> str:
        return self.name


class Overload(IntEnum):
    """Option 52: which header fields carry more options (RFC 2132 section 9.3)."""

    FILE = 1
    SNAME = 2
    BOTH = 3

    def __str__(self) -> str:
        return self.name.lower()


class ClientArch(IntEnum):
    """Option 93 (RFC 4578 and the IANA Processor Architecture Types registry)."""

    BIOS = 0
    NEC_PC98 = 1
    ITANIUM = 2
    DEC_ALPHA = 3
    ARC_X86 = 4
    INTEL_LEAN_CLIENT = 5
    EFI_IA32 = 6
    EFI_BC = 7
    EFI_XSCALE = 8
    EFI_X86_64 = 9
    EFI_ARM32 = 10
    EFI_ARM64 = 11
    POWERPC_OPEN_FIRMWARE = 12
    POWERPC_EPAPR = 13
    POWER_OPAL_V3 = 14
    HTTP_IA32 = 15
    HTTP_X64 = 16
    HTTP_EBC = 17
    HTTP_ARM32 = 18
    HTTP_ARM64 = 19
    HTTP_BIOS = 20
    UBOOT_ARM32 = 21
    UBOOT_ARM64 = 22
    HTTP_UBOOT_ARM32 = 23
    HTTP_UBOOT_ARM64 = 24
    EFI_RISCV32 = 25
    HTTP_RISCV32 = 26
    EFI_RISCV64 = 27
    HTTP_RISCV64 = 28
    EFI_RISCV128 = 29
    HTTP_RISCV128 = 30
    S390_BASIC = 31
    S390_EXTENDED = 32
    EFI_MIPS32 = 33
    EFI_MIPS64 = 34
    EFI_SUNWAY32 = 35
    EFI_SUNWAY64 = 36
    EFI_LOONGARCH32 = 37
    HTTP_LOONGARCH32 = 38
    EFI_LOONGARCH64 = 39
    HTTP_LOONGARCH64 = 40
    ARM_RPIBOOT = 41

    def __str__(self) -> str:
        return f"{self.value} ({ARCH_LABELS[self.value]})"


ARCH_LABELS: dict[int, str] = {
    0: "BIOS",
    1: "NEC/PC98",
    2: "Itanium",
    3: "DEC Alpha",
    4: "Arc x86",
    5: "Intel Lean Client",
    6: "EFI IA32",
    7: "EFI BC",
    8: "EFI Xscale",
    9: "EFI x86-64",
    10: "ARM32 UEFI",
    11: "ARM64 UEFI",
    12: "PowerPC Open Firmware",
    13: "PowerPC ePAPR",
    14: "POWER OPAL v3",
    15: "HTTP IA32",
    16: "HTTP x64",
    17: "HTTP EBC",
    18: "HTTP ARM32",
    19: "HTTP ARM64",
    20: "HTTP BIOS",
    21: "ARM32 U-Boot",
    22: "ARM64 U-Boot",
    23: "HTTP ARM32 U-Boot",
    24: "HTTP ARM64 U-Boot",
    25: "RISC-V 32 UEFI",
    26: "HTTP RISC-V 32",
    27: "RISC-V 64 UEFI",
    28: "HTTP RISC-V 64",
    29: "RISC-V 128 UEFI",
    30: "HTTP RISC-V 128",
    31: "s390 Basic",
    32: "s390 Extended",
    33: "MIPS32 UEFI",
    34: "MIPS64 UEFI",
    35: "Sunway32 UEFI",
    36: "Sunway64 UEFI",
    37: "LoongArch32 UEFI",
    38: "HTTP LoongArch32",
    39: "LoongArch64 UEFI",
    40: "HTTP LoongArch64",
    41: "ARM rpiboot",
}


def _overload(number: int) -> Overload:
    if number not in (1, 2, 3):
        raise MalformedPacket(f"value {number}, expected 1 (file), 2 (sname) or 3 (both)")
    return Overload(number)


@dataclass(frozen=True)
class ClientId:
    """Option 61: a type byte (1 = Ethernet MAC) and the identifier."""

    type: int
    identifier: bytes

    def __str__(self) -> str:
        return show_bytes(bytes([self.type]) + self.identifier)


@dataclass(frozen=True)
class ClientUuid:
    """Option 97: type 0 and the 16 SMBIOS UUID bytes as sent.

    SMBIOS stores the first three UUID fields little-endian, so ``uuid`` (what dmidecode
    and QEMU's ``-uuid`` show) reads them that way; ``guid.hex()`` is what pxelinux probes.
    """

    type: int
    guid: bytes

    @property
    def uuid(self) -> uuid.UUID:
        return uuid.UUID(bytes_le=self.guid)

    def __str__(self) -> str:
        return str(self.uuid) if self.type == 0 else f"type {self.type} {self.guid.hex()}"


@dataclass(frozen=True)
class NetworkInterfaceId:
    """Option 94: interface type (1 = UNDI) and its version."""

    type: int
    major: int
    minor: int

    def __str__(self) -> str:
        kind = "UNDI" if self.type == 1 else f"type {self.type}"
        return f"{kind} {self.major}.{self.minor}"


@dataclass(frozen=True)
class UserClass:
    """Option 77.  RFC 3004 sends length-prefixed classes; iPXE sends the bare bytes
    ``iPXE`` (``bare=True``).  Bytes that do not parse as RFC 3004 are read as bare."""

    classes: tuple[bytes, ...]
    bare: bool = False

    def __str__(self) -> str:
        return ",".join(show_text(decode_text(item)) for item in self.classes)


@dataclass(frozen=True)
class ClientFqdn:
    """Option 81 (RFC 4702): flags, two obsolete rcodes, and the name as sent
    (DNS wire format when flag E, 0x04, is set; ASCII otherwise)."""

    flags: int
    rcode1: int
    rcode2: int
    name: bytes

    @property
    def domain(self) -> str:
        if self.flags & 0x04:
            try:
                return _read_name(self.name, 0)[0] if self.name else ""
            except MalformedPacket:
                return show_bytes(self.name)
        return decode_text(self.name)

    def __str__(self) -> str:
        return f"flags 0x{self.flags:02x} {show_text(self.domain)}"


@dataclass(frozen=True)
class StaticRoute:
    """One option 33 entry: a classful destination and its router."""

    destination: IPv4Address
    router: IPv4Address

    def __str__(self) -> str:
        return f"{self.destination} via {self.router}"


@dataclass(frozen=True)
class ClasslessRoute:
    """One option 121 entry (RFC 3442)."""

    network: IPv4Network
    router: IPv4Address

    def __str__(self) -> str:
        return f"{self.network} via {self.router}"


def _read_name(data: bytes, pos: int) -> tuple[str, int]:
    """One DNS name with RFC 1035 compression pointers; returns it and where it ends."""
    labels: list[str] = []
    end = None
    for _ in range(256):
        if pos >= len(data):
            raise MalformedPacket("domain name runs past the end of the option")
        size = data[pos]
        if size == 0:
            return ".".join(labels), pos + 1 if end is None else end
        if size & 0xC0 == 0xC0:
            if pos + 1 >= len(data):
                raise MalformedPacket("compression pointer cut short")
            target = ((size & 0x3F) << 8) | data[pos + 1]
            if target >= pos:
                raise MalformedPacket(f"compression pointer to {target} does not point back")
            end = pos + 2 if end is None else end
            pos = target
            continue
        if size & 0xC0:
            raise MalformedPacket(f"bad label length byte 0x{size:02x}")
        if pos + 1 + size > len(data):
            raise MalformedPacket("domain label runs past the end of the option")
        labels.append(decode_text(data[pos + 1 : pos + 1 + size]))
        pos += 1 + size
    raise MalformedPacket("domain name compression loops")


class DomainSearchCodec(Codec):
    """Option 119 (RFC 3397): DNS names, compressed against earlier ones in the option."""

    what = "domain search list"

    def decode(self, data: bytes) -> tuple[str, ...]:
        names = []
        pos = 0
        while pos < len(data):
            name, pos = _read_name(data, pos)
            names.append(name)
        return tuple(names)

    def encode(self, value: Any) -> bytes:
        out = bytearray()
        for name in value:
            for label in name.split(".") if name else ():
                raw = label.encode("utf-8")
                if not 0 < len(raw) < 64:
                    raise BadOptionValue(f"domain label {label!r} must be 1-63 bytes")
                out += bytes([len(raw)]) + raw
            out.append(0)
        return bytes(out)


class UserClassCodec(Codec):
    """RFC 3004 classes when the bytes are exactly that, else one bare class (iPXE)."""

    what = "user class"
    grammar = whole(GreedyRange(PASCAL_BYTES))

    def decode(self, data: bytes) -> UserClass:
        classes = self.rfc3004_classes(data)
        return UserClass((data,), bare=True) if classes is None else UserClass(classes)

    @staticmethod
    def rfc3004_classes(data: bytes) -> tuple[bytes, ...] | None:
        """``grammar`` in plain Python (iPXE's bare form made Construct raise, slowly),
        also refusing empty classes, which RFC 3004 does not allow."""
        classes = []
        pos = 0
        while pos < len(data):
            end = pos + 1 + data[pos]
            if end == pos + 1 or end > len(data):
                return None
            classes.append(data[pos + 1 : end])
            pos = end
        return tuple(classes)

    def encode(self, value: UserClass) -> bytes:
        if value.bare:
            return b"".join(value.classes)
        return b"".join(bytes(PASCAL_BYTES.build(item)) for item in value.classes)


def _classless_route(entry: Any) -> ClasslessRoute:
    network = IPv4Network((IPv4Address(entry.destination.ljust(4, b"\0")), entry.width), False)
    return ClasslessRoute(network, entry.router)


def _classless_entry(route: ClasslessRoute) -> dict[str, object]:
    width = route.network.prefixlen
    return {
        "width": width,
        "destination": route.network.network_address.packed[: (width + 7) // 8],
        "router": route.router,
    }


_IPS = Array(IPV4, 4, "IPv4 addresses")
_SECONDS = Fixed(U32, 4, "32-bit seconds")

CODECS: dict[int, Codec] = {
    SUBNET_MASK: ADDRESS4,
    2: Fixed(S32, 4, "signed 32-bit seconds"),
    ROUTER: _IPS,
    4: _IPS,
    5: _IPS,
    DNS_SERVERS: _IPS,
    7: _IPS,
    HOSTNAME: TEXT,
    13: NUMBER16,
    DOMAIN_NAME: TEXT,
    17: TEXT,
    26: NUMBER16,
    BROADCAST_ADDRESS: ADDRESS4,
    33: Array(
        Struct("destination" / IPV4, "router" / IPV4),
        8,
        "destination/router pairs",
        load=lambda e: StaticRoute(e.destination, e.router),
        dump=lambda route: {"destination": route.destination, "router": route.router},
    ),
    NTP_SERVERS: _IPS,
    44: _IPS,
    REQUESTED_IP: ADDRESS4,
    LEASE_TIME: _SECONDS,
    OVERLOAD: Fixed(U8, 1, "overload 1-3", load=_overload),
    MESSAGE_TYPE: Fixed(U8, 1, "message type", load=known(MessageType)),
    SERVER_ID: ADDRESS4,
    # Empty is allowed: real clients send 55 with length 0, meaning "nothing in particular".
    PARAMETER_REQUEST_LIST: Array(U8, 1, "option codes", minimum=0),
    MESSAGE: TEXT,
    MAX_MESSAGE_SIZE: NUMBER16,
    RENEWAL_TIME: _SECONDS,
    REBINDING_TIME: _SECONDS,
    VENDOR_CLASS: TEXT,
    CLIENT_ID: Grammar(
        Struct("type" / U8, "identifier" / GreedyBytes),
        "client identifier",
        lambda v: ClientId(v.type, v.identifier),
        lambda v: {"type": v.type, "identifier": v.identifier},
        minimum=2,
        fast=lambda data: ClientId(data[0], data[1:]),
    ),
    TFTP_SERVER: TEXT,
    BOOTFILE: TEXT,
    USER_CLASS: UserClassCodec(),
    CLIENT_FQDN: Grammar(
        Struct("flags" / U8, "rcode1" / U8, "rcode2" / U8, "name" / GreedyBytes),
        "client FQDN",
        lambda v: ClientFqdn(v.flags, v.rcode1, v.rcode2, v.name),
        lambda v: {"flags": v.flags, "rcode1": v.rcode1, "rcode2": v.rcode2, "name": v.name},
        minimum=3,
    ),
    RELAY_AGENT_INFO: SubOptionsCodec(RelayAgentInfo, "relay agent sub-options"),
    CLIENT_ARCH: Array(U16, 2, "16-bit architecture types", load=known(ClientArch)),
    CLIENT_NDI: Grammar(
        Struct("type" / U8, "major" / U8, "minor" / U8),
        "network interface identifier",
        lambda v: NetworkInterfaceId(v.type, v.major, v.minor),
        lambda v: {"type": v.type, "major": v.major, "minor": v.minor},
        size=3,
        fast=lambda data: NetworkInterfaceId(data[0], data[1], data[2]),
    ),
    CLIENT_UUID: Grammar(
        Struct("type" / U8, "guid" / Bytes(16)),
        "type byte and 16-byte UUID",
        lambda v: ClientUuid(v.type, v.guid),
        lambda v: {"type": v.type, "guid": v.guid},
        size=17,
        fast=lambda data: ClientUuid(data[0], data[1:]),
    ),
    108: NUMBER32,
    114: TEXT,
    DOMAIN_SEARCH: DomainSearchCodec(),
    CLASSLESS_ROUTES: Grammar(
        GreedyRange(
            Struct(
                "width" / U8,
                Check(this.width <= 32),
                "destination" / Bytes((this.width + 7) // 8),
                "router" / IPV4,
            )
        ),
        "classless routes",
        lambda v: tuple(_classless_route(entry) for entry in v),
        lambda v: [_classless_entry(route) for route in v],
    ),
    VENDOR_SPECIFIC_VI: VendorIdentifyingCodec(),
    TFTP_SERVER_ADDRESSES: _IPS,
    IPXE_ENCAP: SubOptionsCodec(IpxeOptions, "iPXE sub-options"),
    PXELINUX_MAGIC: Fixed(Bytes(4), 4, "4 magic bytes"),
    PXELINUX_CONFIG_FILE: TEXT,
    PXELINUX_PATH_PREFIX: TEXT,
    PXELINUX_REBOOT_TIME: _SECONDS,
    WPAD: TEXT,
}
_PXE_VENDOR = SubOptionsCodec(PxeOptions, "PXE vendor options")

NAMES: dict[int, str] = {
    0: "pad",
    1: "subnet-mask",
    2: "time-offset",
    3: "router",
    4: "time-server",
    5: "name-server",
    6: "dns-server",
    7: "log-server",
    8: "cookie-server",
    9: "lpr-server",
    10: "impress-server",
    11: "resource-location-server",
    12: "hostname",
    13: "boot-file-size",
    14: "merit-dump",
    15: "domain-name",
    16: "swap-server",
    17: "root-path",
    18: "extensions-path",
    19: "ip-forwarding",
    20: "non-local-source-routing",
    21: "policy-filter",
    22: "max-datagram-reassembly",
    23: "default-ip-ttl",
    24: "path-mtu-aging-timeout",
    25: "path-mtu-plateau-table",
    26: "interface-mtu",
    27: "all-subnets-local",
    28: "broadcast-address",
    29: "perform-mask-discovery",
    30: "mask-supplier",
    31: "router-discovery",
    32: "router-solicitation-address",
    33: "static-routes",
    34: "trailer-encapsulation",
    35: "arp-cache-timeout",
    36: "ethernet-encapsulation",
    37: "tcp-default-ttl",
    38: "tcp-keepalive-interval",
    39: "tcp-keepalive-garbage",
    40: "nis-domain",
    41: "nis-servers",
    42: "ntp-servers",
    43: "vendor-specific",
    44: "netbios-name-servers",
    45: "netbios-dd-server",
    46: "netbios-node-type",
    47: "netbios-scope",
    48: "x-font-servers",
    49: "x-display-managers",
    50: "requested-ip",
    51: "lease-time",
    52: "overload",
    53: "message-type",
    54: "server-id",
    55: "parameter-request-list",
    56: "message",
    57: "max-message-size",
    58: "renewal-time",
    59: "rebinding-time",
    60: "vendor-class",
    61: "client-id",
    62: "netware-domain",
    63: "netware-option",
    64: "nisplus-domain",
    65: "nisplus-servers",
    66: "tftp-server",
    67: "bootfile",
    68: "mobile-ip-home-agent",
    69: "smtp-server",
    70: "pop3-server",
    71: "nntp-server",
    72: "www-server",
    73: "finger-server",
    74: "irc-server",
    75: "streettalk-server",
    76: "stda-server",
    77: "user-class",
    78: "directory-agent",
    79: "service-scope",
    80: "rapid-commit",
    81: "client-fqdn",
    82: "relay-agent-info",
    83: "isns",
    85: "nds-servers",
    86: "nds-tree-name",
    87: "nds-context",
    88: "bcmcs-domain-list",
    89: "bcmcs-address",
    90: "authentication",
    91: "client-last-transaction-time",
    92: "associated-ip",
    93: "client-arch",
    94: "client-ndi",
    95: "ldap",
    97: "client-uuid",
    98: "user-auth",
    99: "geoconf-civic",
    100: "pcode",
    101: "tcode",
    108: "ipv6-only-preferred",
    112: "netinfo-address",
    113: "netinfo-tag",
    114: "captive-portal",
    116: "auto-config",
    117: "name-service-search",
    118: "subnet-selection",
    119: "domain-search",
    120: "sip-servers",
    121: "classless-static-routes",
    122: "cablelabs-client-config",
    123: "geoconf",
    124: "vendor-class-vi",
    125: "vendor-specific-vi",
    145: "forcerenew-nonce-capable",
    150: "tftp-server-addresses",
    161: "mud-url",
    175: "ipxe-encap",
    208: "pxelinux-magic",
    209: "pxelinux-config-file",
    210: "pxelinux-path-prefix",
    211: "pxelinux-reboot-time",
    212: "6rd",
    213: "access-network-domain",
    252: "wpad",
    255: "end",
}


def option_name(code: int) -> str:
    """Short name for the pcap printer ("router", "client-arch"); "option-N" if unnamed."""
    return NAMES.get(code, f"option-{code}")


def _codec(code: int, pxe: bool) -> Codec:
    if code == VENDOR_SPECIFIC:
        return _PXE_VENDOR if pxe else RAW
    return CODECS.get(code, RAW)


def decode_value(code: int, data: bytes, pxe: bool = False) -> object:
    """Typed value of an option; raises MalformedPacket (no offset) when the bytes don't fit.

    ``pxe``: the packet's vendor class starts with PXEClient, so option 43 holds PXE
    sub-options; otherwise option 43 stays raw bytes.
    """
    return _codec(code, pxe).decode(data)


def encode_value(code: int, value: object) -> bytes:
    """Wire bytes for a typed value; ``bytes`` are taken as the raw option data."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    try:
        return _codec(code, pxe=isinstance(value, SubOptions)).encode(value)
    except ENCODE_ERRORS as exc:
        raise cannot_encode(code, option_name(code), value, exc) from None


@dataclass(frozen=True)
class Option(TypedOption):
    """One option as a whole (long options already joined, RFC 3396).

    ``data`` is what goes on the wire; ``value`` is its typed reading (or an
    ``InvalidValue``), decoded on first use so a packet costs only what is read of it.
    ``pxe`` says option 43 holds PXE sub-options (the packet's vendor class starts with
    PXEClient); ``offset`` is where the option starts in the packet, for messages.
    Equality compares code and data only.
    """

    code: int
    data: bytes
    pxe: bool = field(default=False, compare=False, repr=False)
    offset: int | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, code: int, value: object) -> Option:
        """An option from a typed value (or raw ``bytes``), for building replies."""
        return cls(code, encode_value(code, value), pxe=isinstance(value, PxeOptions))

    @classmethod
    def found(cls, code: int, data: bytes, pxe: bool, offset: int) -> Option:
        """An option as the decoder found it, without the dataclass ``__init__``: a frozen
        dataclass sets each field by ``object.__setattr__``, and a PXE request carries a
        dozen options (benchmarks/README.md)."""
        option = object.__new__(cls)
        option.__dict__.update(code=code, data=data, pxe=pxe, offset=offset)
        return option

    def codec(self) -> Codec:
        return _codec(self.code, self.pxe)

    @once
    def framed(self) -> bytes:
        """The option laid out afresh: items of at most 255 data bytes (RFC 3396), in order.

        A reply's options are mostly the same objects from reply to reply (the engine
        caches them), so each is framed once."""
        data = self.data
        if not data:
            return build_item(self.code, b"")
        return b"".join(build_item(self.code, data[i : i + 255]) for i in range(0, len(data), 255))

    @property
    def name(self) -> str:
        return option_name(self.code)
