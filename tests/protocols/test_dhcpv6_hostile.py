"""What a hostile client on the link may take from the others, DHCPv6 engine.

A SOLICIT costs nothing to send and its DUID is whatever the sender writes, so
the attacks here vary the DUID on every message: from one source (caught by the
per-source SOLICIT limit) and from many sources (caught by the cap on what
offers may hold of a pool).
"""

from __future__ import annotations

from ipaddress import IPv6Address

from protocols.dhcpv6.duid import DuidLl
from protocols.dhcpv6.leases import LeaseState, MemoryLeaseStore
from protocols.dhcpv6.options import StatusCode
from protocols.dhcpv6.server import Dhcpv6Server, NoReply, Received, Reply, Settings
from tests.protocols.dhcpv6_engine_support import (
    DUID_HOST,
    DUID_RESERVED,
    FROM_RELAY,
    LAB,
    REMOTE,
    SERVER,
    SERVER_DUID,
    M,
    addresses,
    client_reply,
    ia,
    lease,
    message,
    relayed,
    send,
    server,
    settings,
    status,
)

NOW = 1000.0
# Floods go to Dhcpv6Server.handle, past the wire codec (pinned elsewhere), to keep the
# test cheap; many sources each get a full ADVERTISE, so that flood is the smaller.
FLOOD = 10_000
SOURCES = 1_000
ATTACKER = Received(SERVER, (IPv6Address("fe80::66"), 546))


def random_duid(n: int) -> DuidLl:
    return DuidLl(1, (0x0200_0000_0000 | n).to_bytes(6, "big"))


def flood_from(source: int) -> Received:
    return Received(SERVER, (IPv6Address(f"fe80::1:0:0:{source:x}"), 546))


def offers_held(store: MemoryLeaseStore, pool: tuple[IPv6Address, IPv6Address], now: float) -> int:
    first, last = (int(a) for a in pool)
    held = (store.holder_of(IPv6Address(a), now) for a in range(first, last + 1))
    return sum(1 for h in held if h is not None and h.state is LeaseState.OFFERED)


def test_solicits_past_the_per_source_burst_are_ignored_whatever_the_duid():
    engine = server(solicit_burst=3, solicit_rate=0.5)
    answered = [
        isinstance(send(engine, message(M.SOLICIT, ia(), client=random_duid(n)), ATTACKER), Reply)
        for n in range(5)
    ]
    assert answered == [True, True, True, False, False]
    refilled = send(engine, message(M.SOLICIT, ia(), client=random_duid(9)), ATTACKER, NOW + 2)
    assert isinstance(refilled, Reply)
    assert isinstance(send(engine, message(M.SOLICIT, ia())), Reply)  # other sources unaffected


def test_relayed_solicits_are_limited_by_the_peer_address_not_the_relay():
    engine = server(solicit_burst=2)

    def solicit(n: int, peer: str) -> object:
        inner = message(M.SOLICIT, ia(), client=random_duid(n))
        return send(engine, relayed(inner, peer=IPv6Address(peer)), FROM_RELAY)

    same_peer = [isinstance(solicit(n, "fe80::66"), Reply) for n in range(3)]
    assert same_peer == [True, True, False]
    assert all(isinstance(solicit(n, f"fe80::{n + 1:x}"), Reply) for n in range(10))


def test_a_flood_of_solicits_from_random_duids_from_one_source_leaves_a_real_client_served():
    store = MemoryLeaseStore()
    engine = server(store, solicit_burst=8, solicit_rate=1.0)
    answered = 0
    for n in range(FLOOD):  # over 10 seconds
        solicit = message(M.SOLICIT, ia(), client=random_duid(n))
        answered += isinstance(engine.handle(solicit, ATTACKER, NOW + n / 1000), Reply)
    assert answered <= 8 + 10
    assert offers_held(store, LAB.pool, NOW + 10) <= 2  # max_offered 25% of 10
    assert LAB.pool[0] <= lease(engine, now=NOW + 10) <= LAB.pool[1]


def test_a_flood_from_many_sources_never_holds_more_than_max_offered_of_the_pool():
    store = MemoryLeaseStore()
    engine = server(store, solicit_burst=8, max_offered=0.5)
    last = None
    for n in range(SOURCES):
        solicit = message(M.SOLICIT, ia(), client=random_duid(n))
        last = engine.handle(solicit, flood_from(n), NOW)
        assert offers_held(store, LAB.pool, NOW) <= 5
    # Past the cap an ADVERTISE still names a free address; it only holds none.
    assert len(addresses(client_reply(last))) == 1
    for n in range(5):  # the addresses offers do not hold are all there for REQUESTs
        real = lease(engine, client=DuidLl(1, bytes([0x52, 0x54, 0, 0, 9, n])))
        assert LAB.pool[0] <= real <= LAB.pool[1]


def test_a_request_after_an_unheld_advertise_gets_a_free_address_even_if_that_one_went():
    engine = server(max_offered=0.0)
    first = client_reply(send(engine, message(M.SOLICIT, ia(), client=random_duid(1))))
    (offered,) = addresses(first)
    taken = message(M.REQUEST, ia(1, offered), server_id=SERVER_DUID, client=random_duid(2))
    assert addresses(client_reply(send(engine, taken))) == {offered: LAB.lease_time}
    late = message(M.REQUEST, ia(1, offered), server_id=SERVER_DUID, client=random_duid(1))
    got = addresses(client_reply(send(engine, late)))
    assert offered not in got and len(got) == 1


def test_offers_past_their_offer_time_make_room_again():
    store = MemoryLeaseStore()
    engine = server(store, max_offered=0.2)  # 2 of LAB's 10
    for n in range(5):
        send(engine, message(M.SOLICIT, ia(), client=random_duid(n)), flood_from(n))
    assert offers_held(store, LAB.pool, NOW) == 2
    later = NOW + 61
    send(engine, message(M.SOLICIT, ia(), client=random_duid(99)), flood_from(99), later)
    assert offers_held(store, LAB.pool, later) == 1


def test_a_reserved_address_is_held_for_its_host_even_when_offers_are_full():
    store = MemoryLeaseStore()
    engine = server(store, max_offered=0.0)
    advertise = client_reply(send(engine, message(M.SOLICIT, ia(), client=DUID_HOST)))
    assert addresses(advertise) == {DUID_RESERVED: LAB.lease_time}
    assert store.holder_of(DUID_RESERVED, NOW) is not None
    assert status(advertise) != StatusCode.NO_ADDRS_AVAIL


def test_the_default_solicit_burst_is_eight_per_source():
    defaults = Settings(server_duid=SERVER_DUID, boot=settings().boot, links=(LAB, REMOTE))
    engine = Dhcpv6Server(defaults, MemoryLeaseStore())
    answered = sum(
        isinstance(send(engine, message(M.SOLICIT, ia(), client=random_duid(n)), ATTACKER), Reply)
        for n in range(20)
    )
    assert answered == 8
    assert isinstance(send(engine, message(M.SOLICIT, ia()), ATTACKER), NoReply)
