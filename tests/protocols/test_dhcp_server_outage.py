"""The DHCP engine while its lease store cannot write (the database is down, docs/ha.md):
only a renewal or INIT-REBOOT of a committed, unexpired lease is ACKed, for the time
that lease has left, and nothing is bound."""

from __future__ import annotations

from ipaddress import IPv4Address

from protocols.dhcp.leases import Lease, LeaseState, MemoryLeaseStore
from protocols.dhcp.options import MessageType
from protocols.dhcp.server import NoReply, Reply
from tests.protocols.dhcp_engine_support import (
    MAC,
    MAC2,
    ON_LAB,
    RESERVED_IP,
    RESERVED_MAC,
    SERVER,
    dora,
    reply_packet,
    request,
    server,
)

R = MessageType.REQUEST
NOW = 1000.0
STORED_UNTIL = NOW + 600.0  # a lease bound at NOW - 3000 for an hour


class Down(MemoryLeaseStore):
    """Memory holds what the engine wrote; only the leases in ``stored`` were committed
    before the database went away, and nothing can be written now."""

    writable = False

    def __init__(self) -> None:
        super().__init__()
        self.stored: dict[str, Lease] = {}

    def committed(self, mac: str, now: float) -> Lease | None:
        lease = self.stored.get(mac)
        return lease if lease is not None and lease.active(now) else None

    def store(self, lease: Lease) -> None:
        """A lease bound and committed while the database was up."""
        self.bind(lease, lease.expires or 0.0)
        self.stored[lease.mac] = lease


def down_with(ip: IPv4Address, expires: float = STORED_UNTIL, mac: str = MAC) -> Down:
    store = Down()
    store.store(Lease(mac, ip, expires, LeaseState.BOUND))
    return store


IP = IPv4Address("10.213.7.104")


def test_a_renewal_of_a_committed_lease_is_acked_for_the_time_it_has_left_and_nothing_written():
    store = down_with(IP)
    action = server(store).handle_datagram(request(R, ciaddr=IP), ON_LAB, NOW)
    assert isinstance(action, Reply) and action.committed
    ack = reply_packet(action)
    assert (ack.message_type, ack.yiaddr, action.destination) == (MessageType.ACK, IP, (IP, 68))
    assert (ack.option(51), ack.option(58), ack.option(59)) == (600, 300, 525)  # T1, T2 scaled
    assert store.lease_for(MAC, NOW) == Lease(MAC, IP, STORED_UNTIL)  # expiry unchanged
    assert "database is down" in action.reason


def test_a_rebinding_broadcast_of_a_committed_lease_is_acked_the_same_way():
    action = server(down_with(IP)).handle_datagram(
        request(R, ciaddr=IP, broadcast=True), ON_LAB, NOW + 100
    )
    assert isinstance(action, Reply) and reply_packet(action).option(51) == 500


def test_an_init_reboot_for_the_committed_address_is_acked_and_for_another_is_not():
    engine = server(down_with(IP))
    same = engine.handle_datagram(request(R, options=((50, IP),)), ON_LAB, NOW)
    assert isinstance(same, Reply) and reply_packet(same).option(51) == 600
    other = IPv4Address("10.213.7.105")
    assert isinstance(
        engine.handle_datagram(request(R, options=((50, other),)), ON_LAB, NOW), NoReply
    )


def test_a_lease_in_memory_whose_commit_failed_or_is_pending_gets_no_answer():
    """The store's memory holds the bind (the engine made it); the database never did."""
    store = Down()
    store.bind(Lease(MAC, IP, STORED_UNTIL, LeaseState.BOUND), NOW - 10)
    assert store.lease_for(MAC, NOW) is not None
    engine = server(store)
    for asked in (request(R, ciaddr=IP), request(R, options=((50, IP),))):
        action = engine.handle_datagram(asked, ON_LAB, NOW)
        assert isinstance(action, NoReply) and "no stored lease" in action.reason


def test_a_committed_lease_older_than_memorys_newer_one_is_what_the_ack_promises():
    """A renewal bound in memory whose commit failed extended nothing: the ACK gives the
    committed expiry, not memory's."""
    store = down_with(IP)
    store.bind(Lease(MAC, IP, NOW + 3600, LeaseState.BOUND), NOW)  # the failed renewal
    action = server(store).handle_datagram(request(R, ciaddr=IP), ON_LAB, NOW)
    assert reply_packet(action).option(51) == 600


def test_an_expired_committed_lease_gets_no_answer():
    engine = server(down_with(IP, expires=NOW))
    action = engine.handle_datagram(request(R, ciaddr=IP), ON_LAB, NOW)
    assert isinstance(action, NoReply)
    soon = server(down_with(IP, expires=NOW + 0.5))  # less than a second: nothing to give
    assert isinstance(soon.handle_datagram(request(R, ciaddr=IP), ON_LAB, NOW), NoReply)


def test_a_request_for_another_clients_committed_lease_gets_no_answer():
    engine = server(down_with(IP, mac=MAC2))
    for asked in (request(R, ciaddr=IP), request(R, options=((50, IP),))):
        assert isinstance(engine.handle_datagram(asked, ON_LAB, NOW), NoReply)


def test_selecting_discover_and_new_clients_get_no_ack_and_nothing_is_bound():
    store = down_with(IP)
    engine = server(store)
    selecting = request(R, options=((54, SERVER), (50, IP)))
    assert isinstance(engine.handle_datagram(selecting, ON_LAB, NOW), NoReply)
    fresh = IPv4Address("10.213.7.106")
    new = engine.handle_datagram(request(R, MAC2, options=((50, fresh),)), ON_LAB, NOW)
    assert isinstance(new, NoReply)
    assert store.lease_for(MAC2, NOW) is None and store.holder_of(fresh, NOW) is None


def test_a_committed_lease_the_configuration_no_longer_gives_gets_no_answer():
    """A reservation for another host now covers the address (a reload changed it)."""
    engine = server(down_with(RESERVED_IP))
    assert isinstance(engine.handle_datagram(request(R, ciaddr=RESERVED_IP), ON_LAB, NOW), NoReply)
    reserved = server(down_with(RESERVED_IP, mac=RESERVED_MAC))
    action = reserved.handle_datagram(request(R, RESERVED_MAC, ciaddr=RESERVED_IP), ON_LAB, NOW)
    assert isinstance(action, Reply) and action.committed


def test_an_ack_made_while_the_store_writes_waits_for_its_commit():
    engine = server()
    _, ack = dora(engine)
    action = engine.handle_datagram(request(R, ciaddr=ack.yiaddr), ON_LAB, NOW + 60)
    assert isinstance(action, Reply) and not action.committed
    assert reply_packet(action).option(51) == 3600
