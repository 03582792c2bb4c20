"""How a decoded DHCPv6 message reads in `pxed pcap`: one summary line, every option with -v.

The summary carries what decides a netboot over IPv6: who asks (the client's DUID,
architecture, vendor and user class), what it asks for (the option request list,
the IAs), what it is told (addresses and prefixes, status codes, the boot file URL
and its parameters), and, for a relayed message, each relay's header and
interface-id in front of the message it carries.  An option whose bytes do not fit
its type is flagged on the line, as in the DHCPv4 view.
"""

from __future__ import annotations

from ipaddress import IPv6Address

from protocols.dhcp.options import ARCH_LABELS
from protocols.dhcp.values import decode_text
from protocols.dhcpv6.duid import Duid, DuidEn, DuidLl, DuidLlt, DuidOther, DuidUuid
from protocols.dhcpv6.options import (
    BOOTFILE_PARAM,
    BOOTFILE_URL,
    CLIENT_ARCH_TYPE,
    CLIENTID,
    IA_NA,
    IA_PD,
    IA_TA,
    INTERFACE_ID,
    ORO,
    RAPID_COMMIT,
    RELAY_MSG,
    SERVERID,
    STATUS_CODE,
    USER_CLASS,
    VENDOR_CLASS,
    IaAddress,
    IaNa,
    IaPd,
    IaPrefix,
    IaTa,
    Option,
    Status,
    VendorClass,
)
from protocols.dhcpv6.wire import Dhcpv6Packet, Dhcpv6Relay, MessageType
from protocols.option import InvalidValue, show_value
from pxed.pcap.textview import hex_lines
from pxed.text import quoted

HEX_INLINE = 16
INDENT = "  "
# The options worth a place on the one-line summary, in the order they appear there.
SUMMARY_OPTIONS = (
    CLIENTID,
    SERVERID,
    IA_NA,
    IA_TA,
    IA_PD,
    STATUS_CODE,
    RAPID_COMMIT,
    VENDOR_CLASS,
    USER_CLASS,
    CLIENT_ARCH_TYPE,
    BOOTFILE_URL,
    BOOTFILE_PARAM,
    ORO,
)


def kind(message: Dhcpv6Packet) -> str:
    """The message type as RFC 8415 names it (RELAY-FORW, INFORMATION-REQUEST), or TYPE-N."""
    return _type_name(message.msg_type)


def _type_name(msg_type: MessageType | int) -> str:
    return str(msg_type) if isinstance(msg_type, MessageType) else f"TYPE-{msg_type}"


def summary(message: Dhcpv6Packet) -> str:
    """The fields that matter for a boot, after the message type; a relay's header and
    then, after ``>``, what it carries."""
    if isinstance(message, Dhcpv6Relay):
        inner = message.relayed
        return f"{_relay_brief(message)} > {kind(inner)} {summary(inner)}".rstrip()
    parts = [f"xid=0x{message.transaction_id:06x}"]
    parts += [
        _brief(option)
        for code in SUMMARY_OPTIONS
        for option in message.get_all(code)
        if not option.error
    ]
    return " ".join(parts + _errors(message))


def _relay_brief(relay: Dhcpv6Relay) -> str:
    parts = [
        f"hop={relay.hop_count}",
        f"link={relay.link_address}",
        f"peer={relay.peer_address}",
    ]
    found = relay.get(INTERFACE_ID)
    if found is not None:
        parts.append(f"interface-id={_opaque(found.data)}")
    return " ".join(parts + _errors(relay))


def _errors(message: Dhcpv6Packet) -> list[str]:
    return [f"[{option.error}]" for option in message.options if option.error]


def _brief(option: Option) -> str:
    value = option.value
    if option.code == RAPID_COMMIT:
        return option.name
    match value:
        case DuidLlt() | DuidEn() | DuidLl() | DuidUuid() | DuidOther():
            text = _duid(value)
        case IaNa() | IaTa() | IaPd():
            text = f"{value.iaid}{{{_ia_contents(value)}}}"
        case Status():
            text = str(value.code) + (f" {quoted(value.message)}" if value.message else "")
        case VendorClass():
            text = f"{value.enterprise}:" + ",".join(quoted(decode_text(d)) for d in value.data)
        case _ if option.code == CLIENT_ARCH_TYPE and isinstance(value, tuple):
            text = ",".join(_arch(code) for code in value)
        case _ if option.code == USER_CLASS and isinstance(value, tuple):
            text = ",".join(quoted(decode_text(item)) for item in value)
        case _:
            text = _value(value)
    return f"{option.name}={text}"


def _duid(duid: Duid) -> str:
    """Compact, with the part that identifies the machine: ll:MAC, uuid:UUID, en:N:bytes."""
    match duid:
        case DuidLlt() | DuidLl():
            kind = "llt" if isinstance(duid, DuidLlt) else "ll"
            return f"{kind}:{duid.link_layer.hex(':')}"
        case DuidUuid():
            return f"uuid:{duid.uuid}"
        case DuidEn():
            return f"en:{duid.enterprise}:{duid.identifier.hex(':')}"
        case DuidOther():
            return f"type{duid.type}:{duid.data.hex(':')}"


def _ia_contents(ia: IaNa | IaTa | IaPd) -> str:
    """The addresses or prefixes an IA holds, and its status code if any."""
    items = []
    for option in ia.options:
        value = option.value
        if isinstance(value, IaAddress):
            items.append(str(value.address))
        elif isinstance(value, IaPrefix):
            items.append(f"{value.prefix}/{value.prefix_length}")
        elif isinstance(value, Status):
            items.append(str(value.code))
    return ",".join(items)


def _arch(code: int) -> str:
    label = ARCH_LABELS.get(int(code))
    return f"{int(code)}({label})" if label else str(int(code))


def _value(value: object) -> str:
    if isinstance(value, str):
        return quoted(value)
    if isinstance(value, tuple) and value and isinstance(value[0], str):
        return ",".join(quoted(item) for item in value)
    return show_value(value)


def _opaque(data: bytes) -> str:
    """An identifier relays often make text (interface names) shown as text, else hex."""
    text = decode_text(data)
    return quoted(text) if data and text.isprintable() and text.isascii() else data.hex(":")


def detail(message: Dhcpv6Packet) -> list[str]:
    """Every header field and every option (code, name, length, typed value), nested
    options and relayed messages indented under what holds them, for -v."""
    lines = [f"msg-type: {int(message.msg_type)} ({kind(message)})"]
    if isinstance(message, Dhcpv6Relay):
        lines += [
            f"hop-count: {message.hop_count}",
            f"link-address: {_address(message.link_address)}",
            f"peer-address: {_address(message.peer_address)}",
        ]
        for option in message.options:
            lines += _option_lines(option)
            if option.code == RELAY_MSG and option is message.get(RELAY_MSG):
                lines += [INDENT + line for line in detail(message.relayed)]
        return lines
    lines.append(f"transaction-id: 0x{message.transaction_id:06x}")
    for option in message.options:
        lines += _option_lines(option)
    return lines


def _address(address: IPv6Address) -> str:
    return str(address) if address != IPv6Address(0) else ":: (unspecified)"


def _option_lines(option: Option) -> list[str]:
    size = len(option.data)
    head = f"option {option.code} {option.name} ({size} byte{'' if size == 1 else 's'})"
    value = option.value
    match value:
        case InvalidValue():
            return [f"{head}: INVALID: {value.problem}", *_hex(value.data)]
        case _ if option.code == RELAY_MSG:
            return [head + ", carrying:"]
        case IaNa() | IaTa() | IaPd() | IaAddress() | IaPrefix():
            nested = [INDENT + line for inner in value.options for line in _option_lines(inner)]
            return [f"{head}: {_fields(value)}", *nested]
        case bytes() if option.code == INTERFACE_ID:
            return [f"{head}: {_opaque(value)}"]
        case bytes() if len(value) > HEX_INLINE:
            return [head + ":", *_hex(value)]
        case bytes():
            return [f"{head}: {value.hex(' ') or '(empty)'}"]
    return [f"{head}: {_value(value)}"]


def _fields(value: IaNa | IaTa | IaPd | IaAddress | IaPrefix) -> str:
    """An IA's own fields; the options inside it get their own lines."""
    match value:
        case IaNa() | IaPd():
            return f"IAID {value.iaid} T1 {value.t1} T2 {value.t2}"
        case IaTa():
            return f"IAID {value.iaid}"
        case IaAddress():
            return f"{value.address} preferred {value.preferred} valid {value.valid}"
        case IaPrefix():
            return (
                f"{value.prefix}/{value.prefix_length}"
                f" preferred {value.preferred} valid {value.valid}"
            )


def _hex(data: bytes) -> list[str]:
    return [INDENT + line for line in hex_lines(data)]
