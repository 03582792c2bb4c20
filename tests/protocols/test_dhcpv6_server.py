"""The DHCPv6 engine against RFC 8415: each exchange on the lab link, server identifiers,
rapid commit, reservations, and what it leaves in the lease store."""

from __future__ import annotations

from ipaddress import IPv6Address

from protocols.dhcpv6.duid import DuidLl, DuidLlt
from protocols.dhcpv6.leases import Lease, LeaseState, MemoryLeaseStore
from protocols.dhcpv6.options import IA_PD, IA_TA, RAPID_COMMIT, IaPd, IaTa, StatusCode
from protocols.dhcpv6.server import NoReply, Received, Reply
from protocols.share import Share
from tests.protocols.dhcpv6_engine_support import (
    CLIENT,
    CLIENT2,
    DUID_HOST,
    DUID_RESERVED,
    LAB,
    LINK_LOCAL,
    MAC,
    ON_LAB,
    OTHER_DUID,
    REMOTE,
    RESERVED,
    RESERVED_MAC,
    SERVER_DUID,
    UUID_CLIENT,
    M,
    addresses,
    client_reply,
    duid_bytes,
    ia,
    ia_status,
    lease,
    message,
    send,
    server,
    status,
)

NOW = 1000.0
KEY = (duid_bytes(CLIENT), 1)
OFF_LINK = IPv6Address("fd00:99::5")


# -- SOLICIT / ADVERTISE -------------------------------------------------------


def test_solicit_gets_an_advertise_from_the_pool_with_both_identifiers():
    action = send(server(), message(M.SOLICIT, ia()))
    assert isinstance(action, Reply) and action.destination == (LINK_LOCAL, 546)
    advertise = client_reply(action)
    assert advertise.msg_type == M.ADVERTISE and advertise.transaction_id == 0xA1B2C3
    assert advertise.client_id == CLIENT and advertise.server_id == SERVER_DUID
    ((address, valid),) = addresses(advertise).items()
    assert LAB.in_pool(address) and valid == 3600
    (answer,) = advertise.ia_na
    assert (answer.iaid, answer.t1, answer.t2) == (1, 1800, 2880)
    assert advertise.option(23) == (IPv6Address("fd00:213:7::1"),)


def test_the_free_address_comes_from_the_share_the_adapter_sets():
    """Two servers sharing a database: each advertises from its own positions of the pool."""
    assert LAB.pool is not None
    for index in (0, 1):
        engine = server()
        engine.share = Share(index, 2)
        (address,) = addresses(client_reply(send(engine, message(M.SOLICIT, ia()))))
        assert (int(address) - int(LAB.pool[0])) % 2 == index


def test_advertise_holds_the_address_but_binds_nothing():
    store = MemoryLeaseStore()
    (address,) = addresses(client_reply(send(server(store), message(M.SOLICIT, ia()))))
    assert store.holder_of(address, NOW).state is LeaseState.OFFERED
    assert store.leases() == []


def test_retransmitted_solicit_gets_the_same_address():
    engine = server()
    first = addresses(client_reply(send(engine, message(M.SOLICIT, ia()))))
    again = addresses(client_reply(send(engine, message(M.SOLICIT, ia()), now=NOW + 1)))
    assert first == again


def test_two_clients_and_two_ias_of_one_client_get_different_addresses():
    engine = server()
    one = addresses(client_reply(send(engine, message(M.SOLICIT, ia(1), ia(2)))))
    other = addresses(client_reply(send(engine, message(M.SOLICIT, ia(), client=CLIENT2))))
    assert len(one) == 2 and not set(one) & set(other)


def test_a_free_address_the_client_names_is_advertised():
    wish = IPv6Address("fd00:213:7::105")
    advertise = client_reply(send(server(), message(M.SOLICIT, ia(1, wish))))
    assert list(addresses(advertise)) == [wish]


def test_full_pool_gets_an_advertise_without_ia_and_with_no_addrs_avail():
    engine = server()
    for n in range(10):
        lease(engine, client=DuidLl(1, bytes([2, 0, 0, 0, 0, n])))
    advertise = client_reply(send(engine, message(M.SOLICIT, ia())))
    assert advertise.ia_na == () and status(advertise) == StatusCode.NO_ADDRS_AVAIL


def test_solicit_with_a_server_identifier_or_without_client_identifier_is_dropped():
    with_server = send(server(), message(M.SOLICIT, ia(), server_id=SERVER_DUID))
    anonymous = send(server(), message(M.SOLICIT, ia(), client=None))
    assert isinstance(with_server, NoReply) and isinstance(anonymous, NoReply)


def test_interface_without_a_subnet_is_not_served():
    stray = Received(IPv6Address("fd00:77::1"), (LINK_LOCAL, 546))
    action = send(server(), message(M.SOLICIT, ia()), stray)
    assert isinstance(action, NoReply) and "no dhcp6 subnet" in action.reason


def test_temporary_addresses_and_prefixes_are_refused_per_ia():
    extra = ((IA_TA, IaTa(7)), (IA_PD, IaPd(8, 0, 0)))
    advertise = client_reply(send(server(), message(M.SOLICIT, ia(), *extra)))
    assert advertise.ia_ta[0].options[0].value.code == StatusCode.NO_ADDRS_AVAIL
    assert advertise.ia_pd[0].options[0].value.code == StatusCode.NO_PREFIX_AVAIL
    assert len(addresses(advertise)) == 1


# -- REQUEST -------------------------------------------------------------------


def test_request_for_the_advertised_address_is_bound_for_the_lease_time():
    store = MemoryLeaseStore()
    address = lease(server(store))
    bound = store.lease_for(KEY, NOW)
    assert (bound.state, bound.address, bound.expires) == (LeaseState.BOUND, address, NOW + 3600)
    assert bound.mac == MAC


def test_request_after_a_restart_without_the_offer_is_still_granted():
    wish = IPv6Address("fd00:213:7::104")
    reply = client_reply(send(server(), message(M.REQUEST, ia(1, wish), server_id=SERVER_DUID)))
    assert reply.msg_type == M.REPLY and addresses(reply) == {wish: 3600}


def test_request_for_another_server_or_without_server_identifier_is_ignored():
    store = MemoryLeaseStore()
    engine = server(store)
    other = send(engine, message(M.REQUEST, ia(), server_id=OTHER_DUID))
    none = send(engine, message(M.REQUEST, ia()))
    assert isinstance(other, NoReply) and "another server" in other.reason
    assert isinstance(none, NoReply) and store.leases() == []


def test_request_naming_an_address_off_the_link_gets_not_on_link():
    reply = client_reply(send(server(), message(M.REQUEST, ia(1, OFF_LINK), server_id=SERVER_DUID)))
    assert ia_status(reply) == StatusCode.NOT_ON_LINK and addresses(reply) == {}


def test_request_for_an_address_held_by_another_client_gets_another_one():
    engine = server()
    taken = lease(engine, client=CLIENT2)
    request = message(M.REQUEST, ia(1, taken), server_id=SERVER_DUID)
    given = addresses(client_reply(send(engine, request)))
    assert taken not in given and len(given) == 1


def test_request_that_moves_an_ia_returns_the_old_address_with_lifetime_zero():
    """A reservation made after the host took a pool address: the IA moves to it."""
    store = MemoryLeaseStore()
    host = DuidLl(1, bytes.fromhex(RESERVED_MAC.replace(":", "")))
    old = IPv6Address("fd00:213:7::107")
    store.bind(Lease(duid_bytes(host), 1, old, NOW + 60), NOW)
    request = message(M.REQUEST, ia(1, old), server_id=SERVER_DUID, client=host)
    reply = client_reply(send(server(store), request))
    assert addresses(reply) == {RESERVED: 3600, old: 0}
    assert store.holder_of(old, NOW) is None


# -- reservations --------------------------------------------------------------


def test_reservation_by_mac_from_the_duid():
    client = DuidLlt(1, 1234, bytes.fromhex(RESERVED_MAC.replace(":", "")))
    assert list(
        addresses(client_reply(send(server(), message(M.SOLICIT, ia(), client=client))))
    ) == [RESERVED]


def test_reservation_by_duid():
    reply = client_reply(send(server(), message(M.SOLICIT, ia(), client=DUID_HOST)))
    assert list(addresses(reply)) == [DUID_RESERVED]


def test_reservation_by_mac_from_the_eui64_link_local_address_of_a_duid_uuid_client():
    eui64 = IPv6Address("fe80::5054:ff:fe00:21")
    received = Received(ON_LAB.address, (eui64, 546))
    reply = client_reply(send(server(), message(M.SOLICIT, ia(), client=UUID_CLIENT), received))
    assert list(addresses(reply)) == [RESERVED]


def test_reserved_address_is_never_given_to_another_client():
    engine = server()
    for n in range(9):
        lease(engine, client=DuidLl(1, bytes([2, 0, 0, 0, 1, n])))
    request = message(M.REQUEST, ia(1, RESERVED), server_id=SERVER_DUID)
    assert RESERVED not in addresses(client_reply(send(engine, request)))


def test_reserved_address_passes_from_the_firmware_duid_to_the_installer_duid():
    """UEFI asks with a DUID-UUID, the installer with a DUID-LL: one machine, one address."""
    store = MemoryLeaseStore()
    engine = server(store)
    eui64 = Received(ON_LAB.address, (IPv6Address("fe80::5054:ff:fe00:21"), 546))
    firmware = message(M.REQUEST, ia(9, RESERVED), server_id=SERVER_DUID, client=UUID_CLIENT)
    assert RESERVED in addresses(client_reply(send(engine, firmware, eui64)))
    installer = DuidLl(1, bytes.fromhex(RESERVED_MAC.replace(":", "")))
    request = message(M.REQUEST, ia(1, RESERVED), server_id=SERVER_DUID, client=installer)
    assert addresses(client_reply(send(engine, request, eui64))) == {RESERVED: 3600}
    assert store.holder_of(RESERVED, NOW).client == duid_bytes(installer)
    assert store.lease_for((duid_bytes(UUID_CLIENT), 9), NOW) is None


# -- RENEW / REBIND ------------------------------------------------------------


def test_renew_extends_the_binding():
    store = MemoryLeaseStore()
    engine = server(store)
    address = lease(engine)
    renew = message(M.RENEW, ia(1, address), server_id=SERVER_DUID)
    reply = client_reply(send(engine, renew, now=NOW + 1800))
    assert addresses(reply) == {address: 3600}
    assert store.lease_for(KEY, NOW).expires == NOW + 1800 + 3600


def test_renew_without_a_binding_gets_no_binding():
    renew = message(M.RENEW, ia(1, IPv6Address("fd00:213:7::101")), server_id=SERVER_DUID)
    assert ia_status(client_reply(send(server(), renew))) == StatusCode.NO_BINDING


def test_renew_for_another_server_is_ignored():
    engine = server()
    address = lease(engine)
    renew = message(M.RENEW, ia(1, address), server_id=OTHER_DUID)
    assert isinstance(send(engine, renew), NoReply)


def test_renew_from_another_link_returns_the_address_with_lifetime_zero():
    store = MemoryLeaseStore()
    engine = server(store)
    address = lease(engine)
    elsewhere = Received(IPv6Address("fd00:213:8::1"), (LINK_LOCAL, 546))
    reply = client_reply(
        send(engine, message(M.RENEW, ia(1, address), server_id=SERVER_DUID), elsewhere)
    )
    assert addresses(reply) == {address: 0}
    assert store.lease_for(KEY, NOW) is None


def test_rebind_without_a_binding_is_granted_the_free_address_it_names():
    wish = IPv6Address("fd00:213:7::106")
    store = MemoryLeaseStore()
    reply = client_reply(send(server(store), message(M.REBIND, ia(1, wish))))
    assert addresses(reply) == {wish: 3600} and store.lease_for(KEY, NOW).address == wish


def test_rebind_naming_an_address_off_the_link_gets_lifetime_zero():
    reply = client_reply(send(server(), message(M.REBIND, ia(1, OFF_LINK))))
    assert addresses(reply) == {OFF_LINK: 0}


def test_rebind_with_a_server_identifier_is_dropped():
    assert isinstance(send(server(), message(M.REBIND, ia(), server_id=SERVER_DUID)), NoReply)


# -- RELEASE / DECLINE -----------------------------------------------------------


def test_release_drops_the_binding_and_answers_success():
    store = MemoryLeaseStore()
    engine = server(store)
    address = lease(engine)
    reply = client_reply(send(engine, message(M.RELEASE, ia(1, address), server_id=SERVER_DUID)))
    assert status(reply) == StatusCode.SUCCESS and reply.ia_na == ()
    assert store.holder_of(address, NOW) is None and store.leases() == []


def test_release_of_an_ia_without_binding_answers_no_binding_in_the_ia():
    release = message(M.RELEASE, ia(4, IPv6Address("fd00:213:7::101")), server_id=SERVER_DUID)
    reply = client_reply(send(server(), release))
    assert ia_status(reply, 4) == StatusCode.NO_BINDING and status(reply) == StatusCode.SUCCESS


def test_release_to_another_server_is_ignored():
    store = MemoryLeaseStore()
    engine = server(store)
    address = lease(engine)
    assert isinstance(
        send(engine, message(M.RELEASE, ia(1, address), server_id=OTHER_DUID)), NoReply
    )
    assert store.lease_for(KEY, NOW).address == address


def test_decline_quarantines_the_address_and_answers_success():
    store = MemoryLeaseStore()
    engine = server(store)
    address = lease(engine)
    reply = client_reply(send(engine, message(M.DECLINE, ia(1, address), server_id=SERVER_DUID)))
    assert status(reply) == StatusCode.SUCCESS
    assert store.quarantined(address, NOW + 599) and store.lease_for(KEY, NOW) is None
    again = addresses(client_reply(send(engine, message(M.SOLICIT, ia()))))
    assert address not in again


def test_declines_never_quarantine_more_than_max_quarantined_of_the_pool():
    store = MemoryLeaseStore()
    engine = server(store, max_quarantined=0.2)
    for n in range(4):
        client = DuidLl(1, bytes([2, 0, 0, 0, 2, n]))
        address = lease(engine, client=client)
        decline = message(M.DECLINE, ia(1, address), server_id=SERVER_DUID, client=client)
        send(engine, decline)
    assert len(store.quarantines()) == 2


# -- CONFIRM / INFORMATION-REQUEST -------------------------------------------------


def test_confirm_of_on_link_addresses_answers_success():
    confirm = message(M.CONFIRM, ia(1, IPv6Address("fd00:213:7::1234")))
    assert status(client_reply(send(server(), confirm))) == StatusCode.SUCCESS


def test_confirm_of_an_address_off_the_link_answers_not_on_link():
    confirm = message(M.CONFIRM, ia(1, IPv6Address("fd00:213:7::5")), ia(2, OFF_LINK))
    assert status(client_reply(send(server(), confirm))) == StatusCode.NOT_ON_LINK


def test_confirm_without_addresses_gets_no_reply():
    assert isinstance(send(server(), message(M.CONFIRM, ia())), NoReply)


def test_information_request_gets_options_and_no_addresses():
    reply = client_reply(send(server(), message(M.INFORMATION_REQUEST, client=None)))
    assert reply.msg_type == M.REPLY and reply.ia_na == () and reply.client_id is None
    assert reply.option(24) == ("lab.internal",)


def test_information_request_with_an_ia_or_for_another_server_is_dropped():
    with_ia = send(server(), message(M.INFORMATION_REQUEST, ia()))
    other = send(server(), message(M.INFORMATION_REQUEST, server_id=OTHER_DUID))
    assert isinstance(with_ia, NoReply) and isinstance(other, NoReply)


# -- rapid commit --------------------------------------------------------------


def test_rapid_commit_solicit_gets_a_reply_and_a_durable_binding_when_allowed():
    store = MemoryLeaseStore()
    engine = server(store, rapid_commit=True)
    reply = client_reply(send(engine, message(M.SOLICIT, ia(), (RAPID_COMMIT, b""))))
    assert reply.msg_type == M.REPLY and reply.rapid_commit
    (address,) = addresses(reply)
    assert store.lease_for(KEY, NOW).state is LeaseState.BOUND
    assert store.leases()[0].address == address


def test_rapid_commit_is_ignored_unless_the_settings_allow_it():
    store = MemoryLeaseStore()
    reply = client_reply(send(server(store), message(M.SOLICIT, ia(), (RAPID_COMMIT, b""))))
    assert reply.msg_type == M.ADVERTISE and not reply.rapid_commit and store.leases() == []


# -- what is never answered ----------------------------------------------------


def test_server_messages_and_junk_are_dropped_with_a_reason():
    engine = server()
    for kind in (M.ADVERTISE, M.REPLY, M.RECONFIGURE, 99):
        action = send(engine, message(kind, ia()))
        assert isinstance(action, NoReply) and "not a client message" in action.reason
    assert "malformed packet" in engine.handle_datagram(b"\x01\x00", ON_LAB, NOW).reason


def test_a_malformed_client_identifier_drops_the_message():
    bad = message(M.SOLICIT, ia(), client=b"\x00\x01")
    action = send(server(), bad)
    assert isinstance(action, NoReply) and "malformed option" in action.reason


def test_mode_off_answers_nothing():
    from protocols.dhcp.server import Mode

    assert isinstance(send(server(mode=Mode.OFF), message(M.SOLICIT, ia())), NoReply)


def test_remote_link_is_served_from_its_own_pool_and_lease_time():
    received = Received(IPv6Address("fd00:213:8::1"), (LINK_LOCAL, 546))
    advertise = client_reply(send(server(), message(M.SOLICIT, ia()), received))
    ((address, valid),) = addresses(advertise).items()
    assert REMOTE.in_pool(address) and valid == 600


def test_information_request_is_answered_on_a_link_without_a_subnet():
    stray = Received(IPv6Address("fd00:77::1"), (LINK_LOCAL, 546))
    reply = client_reply(send(server(), message(M.INFORMATION_REQUEST), stray))
    assert reply.msg_type == M.REPLY and reply.get(23) is None
