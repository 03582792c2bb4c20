"""A DHCPv6 exchange as the typed event the operator's views read (pxed.events).

The timeline, the boot view and the status page key everything by MAC, and a DHCPv6
client has none in its messages as such: it is the first relay's option 79 (RFC 6939),
else the link-layer part of the client's DUID (types 1 and 3), else the EUI-64
interface identifier of the link-local address it sent from (OVMF's PXEv6 sends a
DUID-UUID, docs/firmware.md). The engine derives the MAC the same way for
reservations; a client known by none of them gets no MAC, and the event names its DUID.
"""

from __future__ import annotations

from functools import lru_cache
from ipaddress import IPv6Address

from protocols.dhcpv6.allocation import mac_from_link_local
from protocols.dhcpv6.duid import HWTYPE_ETHERNET
from protocols.dhcpv6.options import IAADDR, IaAddress
from protocols.dhcpv6.server import NoReply, Reply
from protocols.dhcpv6.wire import Dhcpv6Message, Dhcpv6Packet, Dhcpv6Relay
from pxed.events import Dhcp6Exchange


def client_mac(packet: Dhcpv6Packet, source: IPv6Address) -> str | None:
    """The client's MAC: option 79 of the relay nearest the client, the DUID's, or the
    EUI-64 of the client's own link-local source (never a relay's)."""
    if isinstance(packet, Dhcpv6Relay):
        nearest = _nearest_relay(packet)
        found = nearest.client_link_layer
        if found is not None and found.hw_type == HWTYPE_ETHERNET and len(found.address) == 6:
            return found.address.hex(":")
        source = nearest.peer_address
    duid = _message(packet).client_id
    if duid is not None and duid.mac is not None:
        return duid.mac
    return mac_from_link_local(source)


def exchange_event(
    packet: Dhcpv6Packet,
    action: Reply | NoReply,
    source: tuple[IPv6Address, int],
    interface: str,
    port: int,
    now: float,
) -> Dhcp6Exchange:
    """What the adapter publishes (and logs) for one decoded message and the engine's answer."""
    message = _message(packet)
    mac = client_mac(packet, source[0])
    if isinstance(action, Reply):
        answer = _message(action.message)
        outcome, address = str(answer.msg_type).lower(), _first_address(answer)
    else:
        outcome, address = "ignored", "-"
    return Dhcp6Exchange(
        time=now,
        mac=mac,
        who=mac or _duid_or_source(message, source[0]),
        kind=str(message.msg_type),
        xid=message.transaction_id,
        interface=interface,
        port=port,
        client=_endpoint(*source),
        relayed=isinstance(packet, Dhcpv6Relay),
        outcome=outcome,
        address=address,
        reason=action.reason,
    )


@lru_cache(maxsize=4096)
def _endpoint(address: IPv6Address, port: int) -> str:
    """``[address]:port``, cached: ipaddress formats an address in Python at every str(),
    and a relay (or a client retrying) sends from one; bounded, as senders are not."""
    return f"[{address}]:{port}"


def _message(packet: Dhcpv6Packet) -> Dhcpv6Message:
    return packet.client_message if isinstance(packet, Dhcpv6Relay) else packet


def _nearest_relay(packet: Dhcpv6Relay) -> Dhcpv6Relay:
    """The innermost RELAY-FORW: the relay on the client's own link."""
    while isinstance(packet.relayed, Dhcpv6Relay):
        packet = packet.relayed
    return packet


def _first_address(answer: Dhcpv6Message) -> str:
    for ia in answer.ia_na:
        for option in ia.options:
            if option.code == IAADDR and isinstance(option.value, IaAddress):
                return str(option.value.address)
    return "-"


def _duid_or_source(message: Dhcpv6Message, source: IPv6Address) -> str:
    client = message.get(1)
    return f"DUID {client.data.hex(':')}" if client is not None else str(source)
