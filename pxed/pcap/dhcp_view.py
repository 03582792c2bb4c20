"""How a decoded DHCP/BOOTP packet reads in `pxed pcap`: one summary line, every field with -v.

The summary carries what decides a PXE boot: who asks (chaddr, vendor class,
architecture, user class), what it asks for (requested IP, parameter list),
what it is told (addresses, server id, lease, boot file in the header or
option 67, TFTP server) and why a server refused (option 56 on a NAK).
An option whose bytes do not fit its type is flagged on the line, because
that is usually why a client ignores an offer.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from protocols.dhcp.options import (
    ARCH_LABELS,
    BOOTFILE,
    CLIENT_ARCH,
    LEASE_TIME,
    MESSAGE,
    MESSAGE_TYPE,
    PARAMETER_REQUEST_LIST,
    RELAY_AGENT_INFO,
    REQUESTED_IP,
    SERVER_ID,
    TFTP_SERVER,
    USER_CLASS,
    VENDOR_CLASS,
    MessageType,
    Option,
    Overload,
    option_name,
)
from protocols.dhcp.suboptions import SubOptions
from protocols.dhcp.wire import BOOTREPLY, BOOTREQUEST, DhcpPacket
from protocols.option import InvalidValue, show_value
from pxed.pcap.textview import hex_lines
from pxed.text import quoted

OP_NAMES = {BOOTREQUEST: "BOOTREQUEST", BOOTREPLY: "BOOTREPLY"}
ADDRESS_FIELDS = ("ciaddr", "yiaddr", "siaddr", "giaddr")
WRAP_WIDTH = 90
HEX_INLINE = 16
# The options worth a place on the one-line summary, in the order they appear there.
SUMMARY_OPTIONS = (
    REQUESTED_IP,
    SERVER_ID,
    LEASE_TIME,
    VENDOR_CLASS,
    CLIENT_ARCH,
    USER_CLASS,
    TFTP_SERVER,
    BOOTFILE,
    MESSAGE,
    RELAY_AGENT_INFO,
    PARAMETER_REQUEST_LIST,
)


def kind(packet: DhcpPacket) -> str:
    """The DHCP message type, or BOOTREQUEST/BOOTREPLY for plain BOOTP."""
    found = packet.get(MESSAGE_TYPE)
    if found is not None and isinstance(found.value, MessageType):
        return found.value.name
    if found is not None and isinstance(found.value, int):
        return f"TYPE-{found.value}"
    return OP_NAMES.get(packet.op, f"OP-{packet.op}")


def summary(packet: DhcpPacket) -> str:
    """The fields that matter for a boot, after the message type."""
    parts = [f"xid=0x{packet.xid:08x}", f"chaddr={_chaddr(packet)}"]
    parts += [
        f"{name}={getattr(packet, name)}"
        for name in ADDRESS_FIELDS
        if getattr(packet, name) != IPv4Address(0)
    ]
    parts += ["broadcast"] if packet.broadcast else []
    parts += [f"sname={quoted(packet.server_name)}"] if packet.server_name else []
    parts += [f"file={quoted(packet.boot_file)}"] if packet.boot_file else []
    parts += [
        _brief(option)
        for code in SUMMARY_OPTIONS
        if (option := packet.get(code)) is not None and not option.error
    ]
    parts += [f"[{option.error}]" for option in packet.options if option.error]
    return " ".join(parts)


def _chaddr(packet: DhcpPacket) -> str:
    return packet.mac or "(empty)"


def _brief(option: Option) -> str:
    value = option.value
    if option.code == RELAY_AGENT_INFO:
        return "relay-agent-info"
    if option.code == CLIENT_ARCH and isinstance(value, tuple):
        return f"{option.name}=" + ",".join(_arch(code) for code in value)
    if option.code == PARAMETER_REQUEST_LIST and isinstance(value, tuple):
        return "prl=" + ",".join(str(code) for code in value)
    return f"{option.name}={_value(value)}"


def _arch(code: int) -> str:
    label = ARCH_LABELS.get(int(code))
    return f"{int(code)}({label})" if label else str(int(code))


def _value(value: object) -> str:
    """Text quoted so spaces and empties are visible; everything else as the grammar shows it."""
    if isinstance(value, str):
        return quoted(value)
    if isinstance(value, tuple):
        return ", ".join(show_value(item) for item in value)
    return show_value(value)


def detail(packet: DhcpPacket) -> list[str]:
    """Every header field and every option (name, code, length, typed value), for -v."""
    lines = [
        f"op: {packet.op} ({OP_NAMES.get(packet.op, 'unknown')})",
        f"htype: {packet.htype}{' (Ethernet)' if packet.htype == 1 else ''}",
        f"hlen: {packet.hlen}",
        f"hops: {packet.hops}",
        f"xid: 0x{packet.xid:08x}",
        f"secs: {packet.secs}",
        f"flags: 0x{packet.flags:04x}{' (broadcast)' if packet.broadcast else ''}",
        *(f"{name}: {getattr(packet, name)}" for name in ADDRESS_FIELDS),
        f"chaddr: {packet.chaddr.hex(':')}",
        f"sname: {_header_field(packet.sname, packet.server_name, _overloads(packet, 'sname'))}",
        f"file: {_header_field(packet.file, packet.boot_file, _overloads(packet, 'file'))}",
    ]
    if packet.vend is not None:
        return lines + _vendor_area(packet.vend)
    lines.append("magic cookie: 63 82 53 63 (DHCP)")
    for option in packet.options:
        lines += _option_lines(option)
    return lines


def _header_field(raw: bytes, text: str, overloaded: bool) -> str:
    """sname/file as text; what follows the first NUL is shown only when it is not zeros."""
    if overloaded:
        return "(carries options, see option 52)"
    if not any(raw):
        return "(empty)"
    after = raw.split(b"\0", 1)[1] if b"\0" in raw else b""
    rest = after.rstrip(b"\0")
    return quoted(text) + (f", then bytes after the NUL: {rest.hex(' ')}" if rest else "")


def _overloads(packet: DhcpPacket, name: str) -> bool:
    flag = Overload.SNAME if name == "sname" else Overload.FILE
    return packet.overload is not None and bool(packet.overload & flag)


def _vendor_area(vend: bytes) -> list[str]:
    head = f"no magic cookie: plain BOOTP, vendor area {len(vend)} bytes"
    if not any(vend):
        return [head + ", all zero"]
    return [head + ":"] + ["  " + line for line in hex_lines(vend)]


def _option_lines(option: Option) -> list[str]:
    size = len(option.data)
    head = f"option {option.code} {option.name} ({size} byte{'' if size == 1 else 's'})"
    value = option.value
    if isinstance(value, SubOptions):
        return [head + ":"] + [
            f"  sub-option {code} {value.SPACE.name(code)}: {_value(item)}"
            for code, item in value.items
        ]
    if option.code == PARAMETER_REQUEST_LIST and isinstance(value, tuple):
        names = [f"{code} {option_name(code)}" for code in value]
        return [head + ":"] + ["  " + line for line in _wrapped(names)]
    if isinstance(value, InvalidValue):
        return [f"{head}: INVALID: {value.problem}", *("  " + x for x in hex_lines(value.data))]
    if isinstance(value, bytes) and len(value) > HEX_INLINE:
        return [head + ":"] + ["  " + line for line in hex_lines(value)]
    if isinstance(value, bytes):
        return [head + ": " + (value.hex(" ") or "(empty)")]
    return [head + ": " + _value(value)]


def _wrapped(items: list[str]) -> list[str]:
    """Comma-separated items on lines of at most WRAP_WIDTH, never splitting an item."""
    lines = [""]
    for item in items:
        if lines[-1] and len(lines[-1]) + len(", ,") + len(item) > WRAP_WIDTH:
            lines.append("")
        lines[-1] += f"{', ' if lines[-1] else ''}{item}"
    return [line + ("," if index < len(lines) - 1 else "") for index, line in enumerate(lines)]
