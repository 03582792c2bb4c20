"""The DHCPv6 engine behind relay agents: RELAY-FORW in, RELAY-REPL out, nested relays
unwrapped and wrapped back in order, interface-id echoed, the link from the innermost
link-address, and the MAC from option 79."""

from __future__ import annotations

from ipaddress import IPv6Address

from protocols.dhcpv6.options import (
    CLIENT_LINKLAYER_ADDR,
    INTERFACE_ID,
    REMOTE_ID,
    LinkLayerAddress,
)
from protocols.dhcpv6.server import NoReply, Reply
from protocols.dhcpv6.wire import Dhcpv6Relay, MessageType
from tests.protocols.dhcpv6_engine_support import (
    FROM_RELAY,
    LAB,
    LINK_LOCAL,
    RELAY_LINK,
    RELAY_SOURCE,
    REMOTE,
    RESERVED,
    RESERVED_MAC,
    SERVER_DUID,
    UUID_CLIENT,
    M,
    addresses,
    client_reply,
    ia,
    message,
    relayed,
    reply_of,
    send,
    server,
)

UNSPECIFIED = IPv6Address(0)
PEER2 = IPv6Address("fd00:213:8::2")


def test_relayed_solicit_is_answered_from_the_relay_links_pool_to_the_relay():
    action = send(server(), relayed(message(M.SOLICIT, ia())), FROM_RELAY)
    assert isinstance(action, Reply) and action.destination == (RELAY_SOURCE, 547)
    outer = reply_of(action)
    assert isinstance(outer, Dhcpv6Relay) and outer.msg_type == MessageType.RELAY_REPL
    assert (outer.link_address, outer.peer_address) == (RELAY_LINK, LINK_LOCAL)
    assert outer.relayed.msg_type == M.ADVERTISE
    assert all(REMOTE.in_pool(address) for address in addresses(client_reply(action)))


def test_interface_id_is_echoed_and_other_relay_options_are_not():
    forward = relayed(
        message(M.SOLICIT, ia()),
        options=[(INTERFACE_ID, b"ge-0/0/7"), (REMOTE_ID, b"\x00\x00\x00\x09rid")],
    )
    outer = reply_of(send(server(), forward, FROM_RELAY))
    assert [option.code for option in outer.options] == [INTERFACE_ID, 9]
    assert outer.interface_id == b"ge-0/0/7"


def test_nested_relays_are_wrapped_back_in_the_same_order_with_their_own_headers():
    inner = relayed(message(M.SOLICIT, ia()), options=[(INTERFACE_ID, b"inner")], hop_count=0)
    outer = relayed(
        inner,
        link=IPv6Address("fd00:213:9::1"),
        peer=PEER2,
        options=[(INTERFACE_ID, b"outer")],
        hop_count=1,
    )
    reply = reply_of(send(server(), outer, FROM_RELAY))
    assert (reply.hop_count, reply.link_address, reply.peer_address) == (
        1,
        IPv6Address("fd00:213:9::1"),
        PEER2,
    )
    assert reply.interface_id == b"outer"
    second = reply.relayed
    assert isinstance(second, Dhcpv6Relay) and second.msg_type == MessageType.RELAY_REPL
    assert (second.hop_count, second.link_address, second.peer_address) == (
        0,
        RELAY_LINK,
        LINK_LOCAL,
    )
    assert second.interface_id == b"inner"
    assert second.relayed.msg_type == M.ADVERTISE


def test_the_innermost_link_address_picks_the_pool():
    """A relay in front of another on the lab link: the client is on the inner one's link."""
    lab_relay = relayed(message(M.SOLICIT, ia()), link=IPv6Address("fd00:213:7::2"))
    outer = relayed(lab_relay, link=RELAY_LINK, peer=PEER2)
    assert all(LAB.in_pool(a) for a in addresses(client_reply(send(server(), outer, FROM_RELAY))))


def test_a_lightweight_relay_with_unspecified_link_address_defers_to_the_next_relay():
    ldra = relayed(message(M.SOLICIT, ia()), link=UNSPECIFIED)
    outer = relayed(ldra, link=RELAY_LINK, peer=PEER2)
    assert all(
        REMOTE.in_pool(a) for a in addresses(client_reply(send(server(), outer, FROM_RELAY)))
    )


def test_lightweight_relay_alone_is_on_the_receiving_interfaces_link():
    ldra = relayed(message(M.SOLICIT, ia()), link=UNSPECIFIED)
    assert all(LAB.in_pool(a) for a in addresses(client_reply(send(server(), ldra, FROM_RELAY))))


def test_relayed_exchange_binds_renews_and_releases():
    engine = server()
    advertise = client_reply(send(engine, relayed(message(M.SOLICIT, ia())), FROM_RELAY))
    (address,) = addresses(advertise)
    for kind, lifetime in ((M.REQUEST, 600), (M.RENEW, 600)):
        request = relayed(message(kind, ia(1, address), server_id=SERVER_DUID))
        assert addresses(client_reply(send(engine, request, FROM_RELAY))) == {address: lifetime}
    release = relayed(message(M.RELEASE, ia(1, address), server_id=SERVER_DUID))
    assert client_reply(send(engine, release, FROM_RELAY)).msg_type == M.REPLY


def test_relay_link_without_a_subnet_is_not_served():
    forward = relayed(message(M.SOLICIT, ia()), link=IPv6Address("fd00:5555::1"))
    action = send(server(), forward, FROM_RELAY)
    assert isinstance(action, NoReply) and "fd00:5555::1" in action.reason


def test_relayed_messages_from_a_source_not_in_relays_are_dropped():
    engine = server(relays=frozenset({IPv6Address("fd00:213:8::fe")}))
    action = send(engine, relayed(message(M.SOLICIT, ia())), FROM_RELAY)
    assert isinstance(action, NoReply) and "not one of dhcp6.relays" in action.reason


def test_reservation_by_mac_from_the_first_relays_client_link_layer_option():
    mac = bytes.fromhex(RESERVED_MAC.replace(":", ""))
    forward = relayed(
        message(M.SOLICIT, ia(), client=UUID_CLIENT),
        link=IPv6Address("fd00:213:7::2"),
        peer=IPv6Address("fe80::1234"),
        options=[(CLIENT_LINKLAYER_ADDR, LinkLayerAddress(1, mac))],
    )
    assert list(addresses(client_reply(send(server(), forward, FROM_RELAY)))) == [RESERVED]


def test_a_relay_reply_or_a_relay_around_one_is_dropped():
    repl = Dhcpv6Relay.around(message(M.SOLICIT, ia()), msg_type=MessageType.RELAY_REPL)
    for packet in (repl, relayed(repl)):
        assert isinstance(send(server(), packet, FROM_RELAY), NoReply)
