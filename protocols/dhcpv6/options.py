"""DHCPv6 options: codes, names, typed values, and the codec for each code.

As in DHCPv4 (the shared half is protocols/option.py), an ``Option`` keeps the bytes it
came with, so a message re-encodes exactly, and reads its typed ``value`` on first use:
bytes that do not fit the type give an ``InvalidValue`` (the message still prints and
round-trips) and the strict ``Option.typed()`` raises MalformedPacket.

Options nest: IA_NA, IA_TA and IA_PD carry addresses or prefixes, and those carry
status codes, each as a tuple of ``Option``.  A nested list is read in its own
option space (``SPACES``), which types only what RFC 8415 puts there, so a
hostile packet cannot make the printer recurse more than three levels deep.
Relay messages (option 9) are decoded by wire.py, which bounds their depth.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from ipaddress import IPv6Address, IPv6Network
from typing import Any

from construct import (
    Adapter,
    Bytes,
    GreedyBytes,
    GreedyRange,
    Int8ub,
    Int16ub,
    Int32ub,
    Prefixed,
    Struct,
)

from protocols.dhcp.options import ClientArch, DomainSearchCodec, NetworkInterfaceId
from protocols.dhcp.values import (
    NUMBER8,
    NUMBER16,
    NUMBER32,
    RAW,
    TEXT,
    Array,
    Codec,
    Fixed,
    Grammar,
    decode_text,
    show_bytes,
    show_text,
)
from protocols.dhcpv6.duid import DuidCodec
from protocols.dhcpv6.framing import build_option, scan
from protocols.errors import MalformedPacket
from protocols.option import ENCODE_ERRORS, TypedOption, cannot_encode, known

CLIENTID = 1
SERVERID = 2
IA_NA = 3
IA_TA = 4
IAADDR = 5
ORO = 6
PREFERENCE = 7
ELAPSED_TIME = 8
RELAY_MSG = 9
AUTH = 11
UNICAST = 12
STATUS_CODE = 13
RAPID_COMMIT = 14
USER_CLASS = 15
VENDOR_CLASS = 16
VENDOR_OPTS = 17
INTERFACE_ID = 18
RECONF_MSG = 19
RECONF_ACCEPT = 20
DNS_SERVERS = 23
DOMAIN_LIST = 24
IA_PD = 25
IAPREFIX = 26
REMOTE_ID = 37
SUBSCRIBER_ID = 38
BOOTFILE_URL = 59
BOOTFILE_PARAM = 60
CLIENT_ARCH_TYPE = 61
NII = 62
CLIENT_LINKLAYER_ADDR = 79

# The enterprise number PXE and UEFI firmware put in their vendor class (Intel).
ENTERPRISE_INTEL = 343


class StatusCode(IntEnum):
    """Option 13's code (RFC 8415 21.13 and the IANA registry).  Others stay plain ints."""

    SUCCESS = 0
    UNSPEC_FAIL = 1
    NO_ADDRS_AVAIL = 2
    NO_BINDING = 3
    NOT_ON_LINK = 4
    USE_MULTICAST = 5
    NO_PREFIX_AVAIL = 6

    def __str__(self) -> str:
        return self.name


class _IPv6(Adapter):  # type: ignore[misc]
    """Sixteen bytes on the wire, an ``IPv6Address`` in Python."""

    def _decode(self, obj: bytes, context: object, path: str) -> IPv6Address:
        return IPv6Address(obj)

    def _encode(self, obj: IPv6Address | str, context: object, path: str) -> bytes:
        return _packed(obj)


def _packed(address: IPv6Address | str) -> bytes:
    """Sixteen bytes; ``IPv6Address(an IPv6Address)`` would format and re-parse it."""
    return address.packed if isinstance(address, IPv6Address) else IPv6Address(address).packed


IPV6 = _IPv6(Bytes(16))
U8 = Int8ub
U16 = Int16ub
U32 = Int32ub
# One item of the 16-bit length-prefixed lists of options 15, 16 and 60.
OPAQUE = Prefixed(Int16ub, GreedyBytes)


@dataclass(frozen=True)
class Option(TypedOption):
    """One option: ``data`` is what goes on the wire, ``value`` its typed reading.

    ``space`` names the option space it was found in (see ``SPACES``); ``offset`` is
    where it starts in the packet (relative to the enclosing option when nested).
    Equality compares code and data only.
    """

    code: int
    data: bytes
    space: str = field(default="dhcpv6", compare=False, repr=False)
    offset: int | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, code: int, value: object) -> Option:
        """An option from a typed value (or raw ``bytes``), for building messages."""
        return cls(code, encode_value(code, value))

    def codec(self) -> Codec:
        return SPACES[self.space].get(self.code, RAW)

    @property
    def name(self) -> str:
        return option_name(self.code)


def make_options(options: Iterable[Option | tuple[int, object]]) -> tuple[Option, ...]:
    """Options in the given order from ``(code, typed value)`` pairs (or ready Options)."""
    return tuple(
        item if isinstance(item, Option) else Option.of(item[0], item[1]) for item in options
    )


def encode_options(options: Iterable[Option]) -> bytes:
    return b"".join(build_option(option.code, option.data) for option in options)


def _nested(data: bytes, space: str, start: int) -> tuple[Option, ...]:
    """The options inside an option's data (from byte ``start`` of it), read in ``space``."""
    try:
        items = scan(data, start, "options inside")
    except MalformedPacket as exc:
        raise MalformedPacket(f"{exc.reason} at byte {exc.offset} of the option") from None
    return tuple(Option(item.code, item.data, space, item.offset) for item in items)


def _show_nested(options: tuple[Option, ...]) -> str:
    return "".join(f" ({option})" for option in options)


@dataclass(frozen=True)
class _IaTimed:
    """An identity association with renew/rebind times (IA_NA, IA_PD) and its options."""

    iaid: int
    t1: int
    t2: int
    options: tuple[Option, ...] = ()

    def __str__(self) -> str:
        return f"IAID {self.iaid} T1 {self.t1} T2 {self.t2}{_show_nested(self.options)}"


@dataclass(frozen=True)
class IaNa(_IaTimed):
    """Option 3: a non-temporary address association, its renew/rebind times, and the
    IAADDR and status code options inside it."""


@dataclass(frozen=True)
class IaTa:
    """Option 4: temporary addresses (no T1/T2)."""

    iaid: int
    options: tuple[Option, ...] = ()

    def __str__(self) -> str:
        return f"IAID {self.iaid}{_show_nested(self.options)}"


@dataclass(frozen=True)
class IaAddress:
    """Option 5: one address of an IA_NA/IA_TA with its lifetimes."""

    address: IPv6Address
    preferred: int
    valid: int
    options: tuple[Option, ...] = ()

    def __str__(self) -> str:
        return (
            f"{self.address} preferred {self.preferred} valid {self.valid}"
            f"{_show_nested(self.options)}"
        )


@dataclass(frozen=True)
class IaPd(_IaTimed):
    """Option 25 (prefix delegation): parsed so a server can say it does not serve it."""


@dataclass(frozen=True)
class IaPrefix:
    """Option 26: one delegated prefix with its lifetimes."""

    preferred: int
    valid: int
    prefix_length: int
    prefix: IPv6Address
    options: tuple[Option, ...] = ()

    @property
    def network(self) -> IPv6Network:
        """The prefix as a network (host bits past the length dropped)."""
        return IPv6Network((self.prefix, min(self.prefix_length, 128)), strict=False)

    def __str__(self) -> str:
        return (
            f"{self.prefix}/{self.prefix_length} preferred {self.preferred} valid {self.valid}"
            f"{_show_nested(self.options)}"
        )


@dataclass(frozen=True)
class Status:
    """Option 13: a status code and the message a person reads."""

    code: StatusCode | int
    message: str = ""

    def __str__(self) -> str:
        return f"{self.code} {show_text(self.message)!r}" if self.message else str(self.code)


@dataclass(frozen=True)
class VendorClass:
    """Option 16: the vendor's enterprise number and its class strings; PXE firmware sends
    343 and ``PXEClient:Arch:00007:UNDI:003016``, UEFI HTTP boot ``HTTPClient:...``."""

    enterprise: int
    data: tuple[bytes, ...]

    def __str__(self) -> str:
        texts = ",".join(show_text(decode_text(item)) for item in self.data)
        return f"enterprise {self.enterprise} {texts}"


@dataclass(frozen=True)
class VendorOptions:
    """Option 17: one enterprise's sub-options, (code, bytes) in wire order."""

    enterprise: int
    items: tuple[tuple[int, bytes], ...]

    def __str__(self) -> str:
        inner = " ".join(f"{code}={show_bytes(data)}" for code, data in self.items)
        return f"enterprise {self.enterprise}" + (f": {inner}" if inner else "")


@dataclass(frozen=True)
class RemoteId:
    """Option 37 (RFC 4649): added by a relay, the enterprise and the remote identifier."""

    enterprise: int
    remote_id: bytes

    def __str__(self) -> str:
        return f"enterprise {self.enterprise} {show_bytes(self.remote_id)}"


@dataclass(frozen=True)
class LinkLayerAddress:
    """Option 79 (RFC 6939): the client's hardware type and address, added by a relay."""

    hw_type: int
    address: bytes

    def __str__(self) -> str:
        return f"hw {self.hw_type} {show_bytes(self.address)}"


class _Flag(Codec):
    """An option whose presence is the whole message (rapid commit): no data, value True."""

    what = "an empty option"

    def decode(self, data: bytes) -> bool:
        if data:
            raise MalformedPacket(f"length {len(data)}, expected 0 ({self.what})")
        return True

    def encode(self, value: Any) -> bytes:
        return b""


class _Direct(Grammar):
    """A Grammar read and written without Construct where its shape is fixed fields then
    bytes: ``fast`` reads what the grammar would parse, ``write`` gives the bytes it
    would build (tests/protocols/test_dhcpv6_fuzz.py holds both to the grammar).  The IA
    options and status codes are in every exchange; through Construct they and the
    client DUID were about a quarter of a relayed exchange's time under cProfile
    (benchmarks/README.md, DHCPv6)."""

    def __init__(self, *args: Any, write: Callable[[Any], bytes], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.write = write

    def encode(self, value: Any) -> bytes:
        return self.write(value)


def _ia_codec(
    construct: Any,
    what: str,
    kind: type,
    fields: tuple[str, ...],
    space: str,
    layout: str,
) -> Grammar:
    """An IA-shaped codec: fixed ``fields`` (packed as ``layout``, "16s" for an address),
    then options nested in ``space``."""
    shape = struct.Struct(layout)
    minimum = shape.size
    addresses = [i for i, part in enumerate(layout.lstrip("!").replace("16s", "A")) if part == "A"]

    def read(data: bytes) -> object:
        values: list[Any] = list(shape.unpack_from(data))
        for i in addresses:
            values[i] = IPv6Address(values[i])
        return kind(*values, _nested(data[minimum:], space, minimum))

    def write(value: Any) -> bytes:
        values = [getattr(value, name) for name in fields]
        for i in addresses:
            values[i] = _packed(values[i])
        try:
            head = shape.pack(*values)
        except struct.error as exc:
            raise ValueError(str(exc)) from None
        return head + encode_options(value.options)

    return _Direct(
        construct,
        what,
        lambda v: kind(*(v[name] for name in fields), _nested(v.options, space, minimum)),
        lambda v: {
            **{name: getattr(v, name) for name in fields},
            "options": encode_options(v.options),
        },
        minimum=minimum,
        fast=read,
        write=write,
    )


_status_code = known(StatusCode)
_IPS = Array(IPV6, 16, "IPv6 addresses")
# RFC 8415 section 10 forbids compressed names; the DHCPv4 codec reads them anyway, which
# costs nothing (the bytes round-trip either way), and writes them uncompressed.
_DOMAINS = DomainSearchCodec()
_OPAQUES = Grammar(GreedyRange(OPAQUE), "16-bit length-prefixed items", tuple, list)

_IA_NA = _ia_codec(
    Struct("iaid" / U32, "t1" / U32, "t2" / U32, "options" / GreedyBytes),
    "IA_NA",
    IaNa,
    ("iaid", "t1", "t2"),
    "ia",
    "!III",
)
_IA_TA = _ia_codec(
    Struct("iaid" / U32, "options" / GreedyBytes), "IA_TA", IaTa, ("iaid",), "ia", "!I"
)
_IAADDR = _ia_codec(
    Struct("address" / IPV6, "preferred" / U32, "valid" / U32, "options" / GreedyBytes),
    "IA address",
    IaAddress,
    ("address", "preferred", "valid"),
    "iaaddr",
    "!16sII",
)
_IA_PD = _ia_codec(
    Struct("iaid" / U32, "t1" / U32, "t2" / U32, "options" / GreedyBytes),
    "IA_PD",
    IaPd,
    ("iaid", "t1", "t2"),
    "ia_pd",
    "!III",
)
_IAPREFIX = _ia_codec(
    Struct(
        "preferred" / U32,
        "valid" / U32,
        "prefix_length" / U8,
        "prefix" / IPV6,
        "options" / GreedyBytes,
    ),
    "IA prefix",
    IaPrefix,
    ("preferred", "valid", "prefix_length", "prefix"),
    "iaprefix",
    "!IIB16s",
)
_STATUS = _Direct(
    Struct("code" / U16, "message" / GreedyBytes),
    "status code",
    lambda v: Status(_status_code(v.code), decode_text(v.message)),
    lambda v: {"code": int(v.code), "message": v.message.encode("utf-8")},
    minimum=2,
    fast=lambda data: Status(_status_code(int.from_bytes(data[:2], "big")), decode_text(data[2:])),
    write=lambda v: int(v.code).to_bytes(2, "big") + v.message.encode("utf-8"),
)

CODECS: dict[int, Codec] = {
    CLIENTID: DuidCodec(),
    SERVERID: DuidCodec(),
    IA_NA: _IA_NA,
    IA_TA: _IA_TA,
    IAADDR: _IAADDR,
    ORO: Array(U16, 2, "option codes", minimum=0),
    PREFERENCE: NUMBER8,
    ELAPSED_TIME: NUMBER16,
    UNICAST: Fixed(IPV6, 16, "an IPv6 address"),
    STATUS_CODE: _STATUS,
    RAPID_COMMIT: _Flag(),
    USER_CLASS: _OPAQUES,
    VENDOR_CLASS: Grammar(
        Struct("enterprise" / U32, "data" / GreedyRange(OPAQUE)),
        "vendor class",
        lambda v: VendorClass(v.enterprise, tuple(v.data)),
        lambda v: {"enterprise": v.enterprise, "data": list(v.data)},
        minimum=4,
    ),
    VENDOR_OPTS: Grammar(
        Struct(
            "enterprise" / U32,
            # Not "items": that is Container's dict method (docs/pitfalls.md #13).
            "entries" / GreedyRange(Struct("code" / U16, "data" / OPAQUE)),
        ),
        "vendor options",
        lambda v: VendorOptions(v.enterprise, tuple((item.code, item.data) for item in v.entries)),
        lambda v: {
            "enterprise": v.enterprise,
            "entries": [{"code": code, "data": data} for code, data in v.items],
        },
        minimum=4,
    ),
    RECONF_MSG: NUMBER8,
    RECONF_ACCEPT: _Flag(),
    21: _DOMAINS,
    22: _IPS,
    DNS_SERVERS: _IPS,
    DOMAIN_LIST: _DOMAINS,
    IA_PD: _IA_PD,
    IAPREFIX: _IAPREFIX,
    31: _IPS,
    32: NUMBER32,
    REMOTE_ID: Grammar(
        Struct("enterprise" / U32, "remote_id" / GreedyBytes),
        "remote id",
        lambda v: RemoteId(v.enterprise, v.remote_id),
        lambda v: {"enterprise": v.enterprise, "remote_id": v.remote_id},
        minimum=4,
    ),
    BOOTFILE_URL: TEXT,
    BOOTFILE_PARAM: Grammar(
        GreedyRange(OPAQUE),
        "boot file parameters",
        lambda v: tuple(decode_text(item) for item in v),
        lambda v: [item.encode("utf-8") for item in v],
    ),
    CLIENT_ARCH_TYPE: Array(U16, 2, "16-bit architecture types", load=known(ClientArch)),
    NII: Grammar(
        Struct("type" / U8, "major" / U8, "minor" / U8),
        "network interface identifier",
        lambda v: NetworkInterfaceId(v.type, v.major, v.minor),
        lambda v: {"type": v.type, "major": v.major, "minor": v.minor},
        size=3,
    ),
    CLIENT_LINKLAYER_ADDR: Grammar(
        Struct("hw_type" / U16, "address" / GreedyBytes),
        "client link-layer address",
        lambda v: LinkLayerAddress(v.hw_type, v.address),
        lambda v: {"hw_type": v.hw_type, "address": v.address},
        minimum=2,
    ),
    82: NUMBER32,
    83: NUMBER32,
}

# What each nested option list types (RFC 8415 21.4-21.6, 21.21-21.22); the rest raw.
SPACES: dict[str, dict[int, Codec]] = {
    "dhcpv6": CODECS,
    "ia": {IAADDR: _IAADDR, STATUS_CODE: _STATUS},
    "iaaddr": {STATUS_CODE: _STATUS},
    "ia_pd": {IAPREFIX: _IAPREFIX, STATUS_CODE: _STATUS},
    "iaprefix": {STATUS_CODE: _STATUS},
}

NAMES: dict[int, str] = {
    1: "client-id",
    2: "server-id",
    3: "ia-na",
    4: "ia-ta",
    5: "iaaddr",
    6: "oro",
    7: "preference",
    8: "elapsed-time",
    9: "relay-msg",
    11: "auth",
    12: "unicast",
    13: "status-code",
    14: "rapid-commit",
    15: "user-class",
    16: "vendor-class",
    17: "vendor-opts",
    18: "interface-id",
    19: "reconf-msg",
    20: "reconf-accept",
    21: "sip-server-domains",
    22: "sip-server-addresses",
    23: "dns-servers",
    24: "domain-list",
    25: "ia-pd",
    26: "iaprefix",
    27: "nis-servers",
    28: "nisp-servers",
    29: "nis-domain",
    30: "nisp-domain",
    31: "sntp-servers",
    32: "information-refresh-time",
    33: "bcmcs-domains",
    34: "bcmcs-addresses",
    36: "geoconf-civic",
    37: "remote-id",
    38: "subscriber-id",
    39: "client-fqdn",
    40: "pana-agent",
    41: "new-posix-timezone",
    42: "new-tzdb-timezone",
    43: "ero",
    44: "lq-query",
    45: "client-data",
    46: "clt-time",
    47: "lq-relay-data",
    48: "lq-client-link",
    56: "ntp-server",
    59: "bootfile-url",
    60: "bootfile-param",
    61: "client-arch-type",
    62: "nii",
    64: "aftr-name",
    65: "erp-local-domain-name",
    66: "rsoo",
    67: "pd-exclude",
    79: "client-linklayer-addr",
    82: "sol-max-rt",
    83: "inf-max-rt",
    88: "dhcp4o6-server-address",
    103: "captive-portal",
    136: "v6-prefix64",
    143: "ipv6-address-andsf",
}


def option_name(code: int) -> str:
    """Short name for the pcap printer ("ia-na", "bootfile-url"); "option-N" if unnamed."""
    return NAMES.get(code, f"option-{code}")


def encode_value(code: int, value: object) -> bytes:
    """Wire bytes for a typed value; ``bytes`` are taken as the raw option data."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    try:
        return CODECS.get(code, RAW).encode(value)
    except ENCODE_ERRORS as exc:
        raise cannot_encode(code, option_name(code), value, exc) from None
