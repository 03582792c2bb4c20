"""The DHCP engine against RFC 2131, RFC 1534 and the PXE behaviour docs/firmware.md records."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from protocols.dhcp.leases import LeaseState, MemoryLeaseStore
from protocols.dhcp.options import MessageType
from protocols.dhcp.server import BROADCAST, NoReply, Received, Reply, reply_destination
from protocols.dhcp.values import scan
from protocols.dhcp.wire import BROADCAST_FLAG, DhcpPacket, decode_dhcp
from tests.protocols.dhcp_engine_support import (
    LAB,
    MAC,
    MAC2,
    ON_LAB,
    OTHER_SERVER,
    RELAY,
    REMOTE,
    RESERVED_IP,
    RESERVED_MAC,
    SERVER,
    codes,
    dora,
    reply_packet,
    request,
    server,
)

D, R = MessageType.DISCOVER, MessageType.REQUEST
ZERO = IPv4Address(0)
NOW = 1000.0


# -- DISCOVER / OFFER ---------------------------------------------------------


def test_discover_gets_an_offer_from_the_pool_broadcast():
    action = server().handle_datagram(request(D), ON_LAB, NOW)
    offer = reply_packet(action)
    assert offer.message_type == MessageType.OFFER
    assert LAB.in_pool(offer.yiaddr)
    assert offer.server_id == SERVER
    assert offer.option(51) == 3600
    assert (offer.option(58), offer.option(59)) == (1800, 3150)
    assert action.destination == (BROADCAST, 68)


def test_offer_holds_the_address_but_writes_no_lease():
    store = MemoryLeaseStore()
    offer = reply_packet(server(store).handle_datagram(request(D), ON_LAB, NOW))
    assert store.holder_of(offer.yiaddr, NOW) == MAC
    assert store.lease_for(MAC, NOW).state is LeaseState.OFFERED
    assert store.leases() == []


def test_retransmitted_discover_gets_the_same_offer():
    engine = server()
    first = reply_packet(engine.handle_datagram(request(D), ON_LAB, NOW))
    again = reply_packet(engine.handle_datagram(request(D), ON_LAB, NOW + 1))
    assert first.yiaddr == again.yiaddr


def test_two_clients_get_different_addresses():
    engine = server()
    a = reply_packet(engine.handle_datagram(request(D, MAC), ON_LAB, NOW))
    b = reply_packet(engine.handle_datagram(request(D, MAC2), ON_LAB, NOW))
    assert a.yiaddr != b.yiaddr


def test_requested_address_is_offered_when_free():
    wish = IPv4Address("10.213.7.105")
    offer = reply_packet(server().handle_datagram(request(D, options=((50, wish),)), ON_LAB, NOW))
    assert offer.yiaddr == wish


def test_reserved_host_gets_its_reservation_and_hostname():
    offer = reply_packet(
        server().handle_datagram(request(D, RESERVED_MAC, options=((55, [1, 12]),)), ON_LAB, NOW)
    )
    assert offer.yiaddr == RESERVED_IP
    assert offer.option(12) == "web01"


def test_clients_sending_the_same_parameter_list_each_get_their_own_name_and_file():
    """The reply's option choice is cached per parameter request list: what differs
    from client to client (a host's name, a per-MAC boot URL) must still differ."""
    engine = server()
    options = ((55, [1, 12, 67]), (77, b"iPXE"))
    offers = {
        mac: reply_packet(engine.handle_datagram(request(D, mac, options=options), ON_LAB, NOW))
        for mac in (RESERVED_MAC, MAC, MAC2)
    }
    assert offers[RESERVED_MAC].option(12) == "web01"
    assert offers[MAC].option(12) is None
    assert offers[MAC].option(67) == f"http://{SERVER}:80/boot/{MAC}.ipxe"
    assert offers[MAC2].option(67) == f"http://{SERVER}:80/boot/{MAC2}.ipxe"


def test_exhausted_pool_gets_silence_with_a_reason():
    engine = server()
    for n in range(10):
        dora(engine, f"52:54:00:00:10:{n:02x}")
    action = engine.handle_datagram(request(D), ON_LAB, NOW)
    assert isinstance(action, NoReply) and "no address" in action.reason


def test_interface_without_subnet_is_not_served():
    stray = Received(IPv4Address("192.0.2.1"), (ZERO, 68))
    action = server().handle_datagram(request(D), stray, NOW)
    assert isinstance(action, NoReply) and "no subnet" in action.reason


# -- REQUEST ------------------------------------------------------------------


def test_selecting_request_for_our_offer_is_acked_and_bound():
    store = MemoryLeaseStore()
    offer, ack = dora(server(store))
    assert ack.message_type == MessageType.ACK
    assert ack.yiaddr == offer.yiaddr
    assert ack.ciaddr == ZERO
    lease = store.lease_for(MAC, NOW)
    assert (lease.state, lease.ip, lease.expires) == (LeaseState.BOUND, ack.yiaddr, NOW + 3600)


def test_selecting_another_server_forgets_our_offer_silently():
    store = MemoryLeaseStore()
    engine = server(store)
    offer = reply_packet(engine.handle_datagram(request(D), ON_LAB, NOW))
    options = ((54, OTHER_SERVER), (50, offer.yiaddr))
    action = engine.handle_datagram(request(R, options=options), ON_LAB, NOW)
    assert isinstance(action, NoReply)
    assert store.holder_of(offer.yiaddr, NOW) is None


def test_selecting_request_after_restart_without_offer_is_still_acked():
    """Offers are not durable; a client's REQUEST for a free address is granted anyway."""
    wish = IPv4Address("10.213.7.104")
    action = server().handle_datagram(request(R, options=((54, SERVER), (50, wish))), ON_LAB, NOW)
    assert reply_packet(action).yiaddr == wish


def test_selecting_request_for_an_address_held_by_another_client_is_naked():
    engine = server()
    _, ack = dora(engine, MAC2)
    options = ((54, SERVER), (50, ack.yiaddr))
    nak = reply_packet(engine.handle_datagram(request(R, options=options), ON_LAB, NOW))
    assert nak.message_type == MessageType.NAK
    assert nak.yiaddr == ZERO and nak.server_id == SERVER


def test_retransmitted_request_gets_the_same_ack():
    engine = server()
    offer, first = dora(engine)
    options = ((54, SERVER), (50, offer.yiaddr))
    again = reply_packet(engine.handle_datagram(request(R, options=options), ON_LAB, NOW + 2))
    assert (again.message_type, again.yiaddr) == (MessageType.ACK, first.yiaddr)


def test_init_reboot_with_own_lease_is_acked():
    engine = server()
    _, ack = dora(engine)
    again = engine.handle_datagram(request(R, options=((50, ack.yiaddr),)), ON_LAB, NOW + 60)
    assert reply_packet(again).message_type == MessageType.ACK


def test_init_reboot_on_the_wrong_subnet_is_naked_when_authoritative():
    wrong = IPv4Address("10.213.8.100")
    action = server().handle_datagram(request(R, options=((50, wrong),)), ON_LAB, NOW)
    assert reply_packet(action).message_type == MessageType.NAK
    assert action.destination == (BROADCAST, 68)


def test_init_reboot_unknown_client_is_silent_when_not_authoritative():
    """RFC 2131 4.3.2: no record of the client, so stay silent for peaceful coexistence."""
    engine = server(authoritative=False)
    for wish in (IPv4Address("10.213.8.100"), IPv4Address("10.213.7.103")):
        assert isinstance(
            engine.handle_datagram(request(R, options=((50, wish),)), ON_LAB, NOW), NoReply
        )


def test_init_reboot_known_client_with_wrong_address_is_naked_even_when_not_authoritative():
    engine = server(authoritative=False)
    dora(engine)
    wrong = IPv4Address("10.213.8.100")
    action = engine.handle_datagram(request(R, options=((50, wrong),)), ON_LAB, NOW)
    assert reply_packet(action).message_type == MessageType.NAK
    reserved = engine.handle_datagram(request(R, RESERVED_MAC, options=((50, wrong),)), ON_LAB, NOW)
    assert reply_packet(reserved).message_type == MessageType.NAK


def test_renewing_is_acked_by_unicast_to_ciaddr_with_extended_expiry():
    store = MemoryLeaseStore()
    engine = server(store)
    _, ack = dora(engine)
    action = engine.handle_datagram(request(R, ciaddr=ack.yiaddr), ON_LAB, NOW + 1800)
    renewed = reply_packet(action)
    assert (renewed.message_type, renewed.yiaddr, renewed.ciaddr) == (
        MessageType.ACK,
        ack.yiaddr,
        ack.yiaddr,
    )
    assert action.destination == (ack.yiaddr, 68)
    assert store.lease_for(MAC, NOW).expires == NOW + 1800 + 3600


def test_rebinding_with_an_expired_lease_taken_by_another_is_naked():
    engine = server()
    _, ack = dora(engine)
    later = NOW + 4000
    engine.handle_datagram(
        request(R, MAC2, options=((54, SERVER), (50, ack.yiaddr))), ON_LAB, later
    )
    action = engine.handle_datagram(request(R, ciaddr=ack.yiaddr, broadcast=True), ON_LAB, later)
    assert reply_packet(action).message_type == MessageType.NAK


def test_request_for_anothers_reservation_is_naked():
    options = ((54, SERVER), (50, RESERVED_IP))
    action = server().handle_datagram(request(R, options=options), ON_LAB, NOW)
    assert reply_packet(action).message_type == MessageType.NAK


def test_request_without_any_address_is_dropped():
    action = server().handle_datagram(request(R, options=((54, SERVER),)), ON_LAB, NOW)
    assert isinstance(action, NoReply) and "names no address" in action.reason


# -- DECLINE, RELEASE, INFORM -----------------------------------------------------


def test_decline_quarantines_the_address_and_the_next_offer_differs():
    store = MemoryLeaseStore()
    engine = server(store)
    _, ack = dora(engine)
    declined = engine.handle_datagram(
        request(MessageType.DECLINE, options=((54, SERVER), (50, ack.yiaddr))), ON_LAB, NOW
    )
    assert isinstance(declined, NoReply) and "quarantined" in declined.reason
    assert store.quarantined(ack.yiaddr, NOW + 599)
    offer = reply_packet(engine.handle_datagram(request(D, xid=9), ON_LAB, NOW + 1))
    assert offer.yiaddr != ack.yiaddr


def test_decline_of_an_address_the_client_does_not_hold_is_ignored():
    store = MemoryLeaseStore()
    wish = IPv4Address("10.213.7.101")
    server(store).handle_datagram(request(MessageType.DECLINE, options=((50, wish),)), ON_LAB, NOW)
    assert not store.quarantined(wish, NOW)


def test_release_frees_the_lease():
    store = MemoryLeaseStore()
    engine = server(store)
    _, ack = dora(engine)
    release = request(MessageType.RELEASE, ciaddr=ack.yiaddr, options=((54, SERVER),))
    from_client = Received(SERVER, (ack.yiaddr, 68))  # RELEASE comes from the address itself
    assert "released" in engine.handle_datagram(release, from_client, NOW).reason
    assert store.lease_for(MAC, NOW) is None


def test_release_of_someone_elses_address_is_ignored():
    store = MemoryLeaseStore()
    engine = server(store)
    _, ack = dora(engine)
    engine.handle_datagram(request(MessageType.RELEASE, MAC2, ciaddr=ack.yiaddr), ON_LAB, NOW)
    assert store.lease_for(MAC, NOW) is not None


def test_inform_gets_an_ack_without_lease_unicast_to_ciaddr():
    store = MemoryLeaseStore()
    here = IPv4Address("10.213.7.50")
    action = server(store).handle_datagram(
        request(MessageType.INFORM, ciaddr=here, options=((55, [1, 3, 6]),)), ON_LAB, NOW
    )
    ack = reply_packet(action)
    assert (ack.message_type, ack.yiaddr) == (MessageType.ACK, ZERO)
    assert ack.option(51) is None and ack.option(3) == (SERVER,)
    assert action.destination == (here, 68)
    assert store.leases() == []


def test_unsupported_message_types_are_dropped_with_a_reason():
    action = server().handle_datagram(request(MessageType.LEASEQUERY), ON_LAB, NOW)
    assert isinstance(action, NoReply) and "LEASEQUERY" in action.reason


# -- BOOTP --------------------------------------------------------------------


def test_bootp_request_gets_a_bootreply_and_a_lease_that_expires():
    """BOOTP clients never renew; a dynamic lease for ever would let a flood hold the pool."""
    store = MemoryLeaseStore()
    action = server(store, bootp_lease_time=900.0).handle_datagram(request(None), ON_LAB, NOW)
    reply = reply_packet(action)
    assert reply.message_type is None and LAB.in_pool(reply.yiaddr)
    assert reply.option(51) is None and reply.option(54) is None
    assert reply.option(1) == LAB.network.netmask
    assert store.lease_for(MAC, NOW + 899) is not None
    assert store.lease_for(MAC, NOW + 901) is None


def test_a_bootp_reservation_is_for_ever():
    store = MemoryLeaseStore()
    server(store).handle_datagram(request(None, RESERVED_MAC), ON_LAB, NOW)
    lease = store.lease_for(RESERVED_MAC, NOW + 10**9)
    assert lease is not None and lease.expires is None


def test_bootp_reserved_host_gets_its_reservation():
    reply = reply_packet(server().handle_datagram(request(None, RESERVED_MAC), ON_LAB, NOW))
    assert reply.yiaddr == RESERVED_IP


def test_bootp_client_that_knows_its_address_gets_boot_information_only():
    """RFC 951: ciaddr filled in means the client has its address; allocating another
    would bind it a second address that never expires."""
    store = MemoryLeaseStore()
    known = IPv4Address("10.213.7.50")
    reply = reply_packet(server(store).handle_datagram(request(None, ciaddr=known), ON_LAB, NOW))
    assert reply.yiaddr == ZERO and reply.ciaddr == known
    assert store.lease_for(MAC, NOW) is None


def test_bootp_without_magic_cookie_gets_a_plain_300_byte_reply():
    action = server().handle_datagram(request(None, cookie=False), ON_LAB, NOW)
    assert len(action.data) == 300
    assert reply_packet(action).vend == bytes(64)


# -- options ------------------------------------------------------------------


def test_options_follow_the_parameter_request_list_order():
    prl = (55, [15, 6, 3, 1])
    offer = reply_packet(server().handle_datagram(request(D, options=(prl,)), ON_LAB, NOW))
    assert codes(offer) == [53, 54, 51, 58, 59, 15, 6, 3, 1]


def test_without_a_parameter_request_list_every_option_is_sent():
    offer = reply_packet(server().handle_datagram(request(D), ON_LAB, NOW))
    assert set(codes(offer)) >= {1, 3, 6, 15, 28}


def test_discover_with_an_empty_prl_gets_a_normal_offer_with_every_option():
    """Option 55 with length 0 (seen from real clients) means no specific request, like
    no option 55 at all; it used to be dropped as a malformed option."""
    action = server().handle_datagram(request(D, options=((55, b""),)), ON_LAB, NOW)
    offer = reply_packet(action)
    plain = reply_packet(server().handle_datagram(request(D), ON_LAB, NOW))
    assert offer.message_type == MessageType.OFFER and LAB.in_pool(offer.yiaddr)
    assert codes(offer) == codes(plain)


def test_unknown_codes_in_the_prl_are_ignored():
    prl = (55, [235, 1, 0, 255])
    offer = reply_packet(server().handle_datagram(request(D, options=(prl,)), ON_LAB, NOW))
    assert 235 not in codes(offer) and 1 in codes(offer)


def test_reply_fits_the_minimum_message_size_by_overload_or_dropping_options():
    """576-byte clients: options move to file/sname (option 52), then trailing PRL items go."""
    dns = tuple(IPv4Address(f"10.213.7.{n}") for n in range(1, 70))
    big = LAB.__class__(LAB.network, LAB.pool, LAB.routers, dns, "x" * 200, LAB.lease_time)
    engine = server(subnets=(big,))
    prl = (55, [1, 3, 6, 15, 28])
    action = engine.handle_datagram(request(D, options=(prl, (57, 576))), ON_LAB, NOW)
    assert len(action.data) <= 576 - 28
    offer = reply_packet(action)
    assert offer.message_type == MessageType.OFFER and offer.server_id == SERVER


def test_large_max_message_size_is_capped_to_the_ethernet_mtu():
    dns = tuple(IPv4Address(f"10.213.7.{n}") for n in range(1, 250))
    big = LAB.__class__(LAB.network, LAB.pool, LAB.routers, dns, "d" * 250, LAB.lease_time)
    engine = server(subnets=(big,))
    action = engine.handle_datagram(request(D, options=((57, 65280),)), ON_LAB, NOW)
    assert len(action.data) <= 1500 - 28


def test_server_identifier_is_in_every_dhcp_reply():
    engine = server()
    offer, ack = dora(engine)
    nak = reply_packet(
        engine.handle_datagram(
            request(R, MAC2, options=((50, IPv4Address("10.213.8.100")),)), ON_LAB, NOW
        )
    )
    assert offer.server_id == ack.server_id == nak.server_id == SERVER


# -- relays -------------------------------------------------------------------


def test_relayed_request_gets_the_relay_subnet_and_goes_back_to_the_relay():
    agent = b"\x01\x04port\x02\x03abc"
    action = server().handle_datagram(request(D, giaddr=RELAY, options=((82, agent),)), ON_LAB, NOW)
    offer = reply_packet(action)
    assert str(offer.yiaddr).startswith("10.213.8.")
    assert action.destination == (RELAY, 67)
    assert offer.get(82).data == agent
    assert codes(offer)[-1] == 82


def test_relayed_reply_needing_overload_keeps_option_82_last_in_the_options_field():
    """RFC 3046 2.2: 82 is echoed as the last option of the options field even when the
    reply overflows into file/sname (option 52); a relay does not look for it there."""
    agent = b"\x01\x06port-7\x02\x06switch"
    dns = tuple(IPv4Address(f"10.213.8.{n}") for n in range(1, 41))
    roomy = REMOTE.__class__(REMOTE.network, REMOTE.pool, REMOTE.routers, dns, "x" * 100, 600)
    prl = (55, [1, 3, 6, 15, 28])
    action = server(subnets=(LAB, roomy)).handle_datagram(
        request(D, giaddr=RELAY, options=(prl, (57, 576), (82, agent))), ON_LAB, NOW
    )
    offer = reply_packet(action)
    assert len(action.data) <= 576 - 28
    assert offer.overload is not None
    main = [item.code for item in scan(action.data[240:], 240, "options").items if item.code]
    assert main[-1] == 82
    assert offer.get(82).data == agent


def test_relayed_nak_sets_the_broadcast_bit_and_goes_to_the_relay():
    wrong = IPv4Address("10.213.7.101")
    action = server().handle_datagram(request(R, giaddr=RELAY, options=((50, wrong),)), ON_LAB, NOW)
    nak = reply_packet(action)
    assert nak.message_type == MessageType.NAK
    assert nak.flags & BROADCAST_FLAG
    assert action.destination == (RELAY, 67)


def test_relay_from_an_unknown_network_is_not_served():
    action = server().handle_datagram(request(D, giaddr=IPv4Address("192.0.2.1")), ON_LAB, NOW)
    assert isinstance(action, NoReply) and "relay 192.0.2.1" in action.reason


@pytest.mark.parametrize(
    ("giaddr", "ciaddr", "flags", "kind", "expected"),
    [
        ("10.213.8.1", "10.213.8.5", BROADCAST_FLAG, MessageType.ACK, ("10.213.8.1", 67)),
        ("0.0.0.0", "10.213.7.5", 0, MessageType.ACK, ("10.213.7.5", 68)),
        ("0.0.0.0", "10.213.7.5", 0, MessageType.NAK, ("255.255.255.255", 68)),
        ("0.0.0.0", "0.0.0.0", BROADCAST_FLAG, MessageType.OFFER, ("255.255.255.255", 68)),
        ("0.0.0.0", "0.0.0.0", 0, MessageType.OFFER, ("255.255.255.255", 68)),
    ],
)
def test_reply_destination_follows_rfc2131_section_4_1(giaddr, ciaddr, flags, kind, expected):
    from protocols.dhcp.server import Ports
    from protocols.dhcp.wire import make_options

    req = DhcpPacket(giaddr=IPv4Address(giaddr), ciaddr=IPv4Address(ciaddr), flags=flags)
    reply = DhcpPacket.reply(req, make_options([(53, kind)]))
    address, port = reply_destination(req, reply, ON_LAB, Ports())
    assert (str(address), port) == expected


# -- MAC policy and modes -----------------------------------------------------


def test_unknown_mac_gets_nothing_when_allow_unknown_is_false():
    engine = server(allow_unknown=False)
    assert isinstance(engine.handle_datagram(request(D), ON_LAB, NOW), NoReply)
    assert isinstance(engine.handle_datagram(request(D, RESERVED_MAC), ON_LAB, NOW), Reply)


def test_denied_mac_gets_nothing_even_when_listed():
    engine = server(deny=frozenset({RESERVED_MAC}))
    action = engine.handle_datagram(request(D, RESERVED_MAC), ON_LAB, NOW)
    assert isinstance(action, NoReply) and "deny" in action.reason


def test_off_mode_answers_nothing():
    from protocols.dhcp.server import Mode

    assert isinstance(server(mode=Mode.OFF).handle_datagram(request(D), ON_LAB, NOW), NoReply)


def test_malformed_datagram_is_dropped_with_the_reason():
    action = server().handle_datagram(b"\x01\x01\x06", ON_LAB, NOW)
    assert isinstance(action, NoReply) and "truncated" in action.reason


def test_request_with_badly_typed_option_is_dropped():
    action = server().handle_datagram(request(R, options=((50, b"\x0a\x00"),)), ON_LAB, NOW)
    assert isinstance(action, NoReply) and "malformed option" in action.reason


def test_bootreply_received_is_ignored():
    data = bytearray(request(D))
    data[0] = 2
    assert isinstance(server().handle_datagram(bytes(data), ON_LAB, NOW), NoReply)


def test_zero_hardware_address_length_is_ignored():
    data = bytearray(request(D))
    data[2] = 0
    assert isinstance(server().handle_datagram(bytes(data), ON_LAB, NOW), NoReply)


def test_decoded_replies_round_trip():
    """Every reply the engine sends decodes with the same grammar."""
    action = server().handle_datagram(request(D), ON_LAB, NOW)
    assert decode_dhcp(action.data) == action.packet


STRAY = Received(IPv4Address("192.0.2.1"), (ZERO, 68))


@pytest.mark.parametrize(
    "data",
    [
        request(R, options=((50, IPv4Address("10.213.7.101")),)),
        request(MessageType.INFORM, ciaddr=IPv4Address("192.0.2.7")),
        request(None),
    ],
    ids=["init-reboot", "inform", "bootp"],
)
def test_requests_on_an_interface_without_subnet_are_not_answered(data):
    """No NAK either: another server may well serve that network."""
    action = server().handle_datagram(data, STRAY, NOW)
    assert isinstance(action, NoReply) and "no subnet" in action.reason


def test_bootp_with_an_exhausted_pool_gets_silence_with_a_reason():
    engine = server()
    for n in range(10):
        dora(engine, f"52:54:00:00:10:{n:02x}")
    action = engine.handle_datagram(request(None), ON_LAB, NOW)
    assert isinstance(action, NoReply) and "BOOTP" in action.reason


def test_subnet_without_routers_or_dns_sends_neither():
    from protocols.dhcp.allocation import Subnet

    bare = Subnet(LAB.network, pool=LAB.pool)
    offer = reply_packet(server(subnets=(bare,)).handle_datagram(request(D), ON_LAB, NOW))
    assert offer.option(3) is None and offer.option(6) is None and offer.option(1) is not None


def test_reply_that_cannot_fit_even_with_overload_is_dropped_not_raised():
    """Echoed PXE options are never trimmed; if they alone overflow, say so and send nothing."""
    huge = ((60, "PXEClient"), (97, bytes(400)), (94, bytes(250)))
    action = server().handle_datagram(request(D, options=huge), ON_LAB, NOW)
    assert isinstance(action, NoReply) and "does not fit" in action.reason


def test_options_overflowing_576_bytes_move_into_file_and_sname_with_option_52():
    dns = tuple(IPv4Address(f"10.213.7.{n}") for n in range(1, 41))
    roomy = LAB.__class__(LAB.network, LAB.pool, LAB.routers, dns, "x" * 100, LAB.lease_time)
    prl = (55, [1, 3, 6, 15, 28])
    action = server(subnets=(roomy,)).handle_datagram(
        request(D, options=(prl, (57, 576))), ON_LAB, NOW
    )
    offer = reply_packet(action)
    assert len(action.data) <= 576 - 28
    assert offer.overload is not None
    assert codes(offer)[-5:] == [1, 3, 6, 15, 28]


def test_relayed_request_with_a_garbled_option_82_is_dropped():
    """A relay that mangled its own option cannot use it echoed back; Kea drops these too."""
    bad_82 = (82, bytes.fromhex("0109"))  # sub-option 1 claims 9 bytes, has none
    action = server().handle_datagram(
        request(D, giaddr=RELAY, options=(bad_82,)), Received(SERVER, (RELAY, 67)), NOW
    )
    assert isinstance(action, NoReply) and "option 82" in action.reason


def test_relayed_client_renewing_by_unicast_without_giaddr_is_acked_in_its_own_subnet():
    """RFC 2131 4.3.2: a RENEWING client unicasts to us with no relay, so the request
    comes in on an interface of another subnet; the server trusts ciaddr."""
    store = MemoryLeaseStore()
    engine = server(store)
    offer = reply_packet(engine.handle_datagram(request(D, giaddr=RELAY), ON_LAB, NOW))
    engine.handle_datagram(
        request(R, giaddr=RELAY, options=((54, SERVER), (50, offer.yiaddr))), ON_LAB, NOW
    )
    action = engine.handle_datagram(request(R, ciaddr=offer.yiaddr), ON_LAB, NOW + 300)
    renewed = reply_packet(action)
    assert (renewed.message_type, renewed.yiaddr) == (MessageType.ACK, offer.yiaddr)
    assert renewed.option(51) == 600  # the relayed subnet's lease time, not the interface's
    assert action.destination == (offer.yiaddr, 68)
    assert store.lease_for(MAC, NOW).expires == NOW + 300 + 600


def test_inform_from_a_relayed_subnet_by_unicast_gets_that_subnets_options():
    here = IPv4Address("10.213.8.50")
    action = server().handle_datagram(
        request(MessageType.INFORM, ciaddr=here, options=((55, [1, 3]),)), ON_LAB, NOW
    )
    ack = reply_packet(action)
    assert ack.option(3) == (RELAY,)
    assert action.destination == (here, 68)


def test_stranger_with_a_ciaddr_of_another_subnet_is_naked_not_given_it():
    """Only a lease we gave makes ciaddr pick the subnet; a client on this link asking to
    keep another subnet's free address is on the wrong network (RFC 2131 4.3.2)."""
    stranger = IPv4Address("10.213.8.105")
    action = server().handle_datagram(request(R, ciaddr=stranger), ON_LAB, NOW)
    assert reply_packet(action).message_type == MessageType.NAK
