"""What one machine on the install LAN may take from the others: the engine's limits.

Each test is an attack from issue 18 against the sans-I/O engine: a RELEASE or
DECLINE in another client's name, a DECLINE loop, a DISCOVER flood, giaddr from
anyone, BOOTP leases that never end.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from protocols.dhcp.leases import MemoryLeaseStore
from protocols.dhcp.limits import RateLimit
from protocols.dhcp.options import MessageType
from protocols.dhcp.server import NoReply, Received, Reply
from tests.protocols.dhcp_engine_support import (
    LAB,
    MAC,
    ON_LAB,
    RELAY,
    SERVER,
    ZERO,
    dora,
    request,
    server,
)

NOW = 1_000_000.0
ATTACKER = IPv4Address("10.213.7.66")
D = MessageType.DISCOVER


def test_a_release_from_another_address_than_the_lease_is_ignored():
    store = MemoryLeaseStore()
    engine = server(store)
    _, ack = dora(engine, now=NOW)
    forged = request(MessageType.RELEASE, ciaddr=ack.yiaddr, options=((54, SERVER),))
    action = engine.handle_datagram(forged, Received(SERVER, (ATTACKER, 68)), NOW)
    assert isinstance(action, NoReply) and "not from the address itself" in action.reason
    assert store.lease_for(MAC, NOW) is not None


def test_a_decline_from_another_address_is_ignored_from_zero_it_counts():
    store = MemoryLeaseStore()
    engine = server(store)
    _, ack = dora(engine, now=NOW)
    decline = request(MessageType.DECLINE, options=((54, SERVER), (50, ack.yiaddr)))
    engine.handle_datagram(decline, Received(SERVER, (ATTACKER, 68)), NOW)
    assert not store.quarantined(ack.yiaddr, NOW)
    engine.handle_datagram(decline, ON_LAB, NOW)  # from 0.0.0.0, as RFC 2131 has it
    assert store.quarantined(ack.yiaddr, NOW)


def decline_loop(engine, mac: str, now: float) -> NoReply:
    """DISCOVER -> REQUEST -> DECLINE, as a looping or hostile client does."""
    _, ack = dora(engine, mac=mac, now=now)
    decline = request(MessageType.DECLINE, mac, options=((54, SERVER), (50, ack.yiaddr)))
    action = engine.handle_datagram(decline, ON_LAB, now)
    assert isinstance(action, NoReply)
    return action


def test_a_mac_that_declines_past_decline_limit_is_ignored():
    store = MemoryLeaseStore()
    engine = server(store, decline_limit=2, decline_time=600.0, discover_burst=100)
    reasons = [decline_loop(engine, MAC, NOW + n).reason for n in range(4)]
    assert ["quarantined" in reason for reason in reasons] == [True, True, False, False]
    assert "decline_limit" in reasons[2]


def test_declines_never_quarantine_more_than_max_quarantined_of_the_pool():
    """One DECLINE loop took every address of the pool out of service for 600 s."""
    store = MemoryLeaseStore()
    engine = server(store, max_quarantined=0.3)  # LAB's pool has 10 addresses: 3 at most
    for n in range(8):
        decline_loop(engine, f"52:54:00:66:00:{n:02x}", NOW)
    quarantined = [ip for ip, until in store.quarantines().items() if until > NOW]
    assert len(quarantined) == 3
    _, ack = dora(engine, mac="52:54:00:77:00:01", now=NOW + 1)
    assert LAB.in_pool(ack.yiaddr)


def test_discovers_past_the_per_mac_burst_are_ignored_until_the_rate_refills():
    engine = server(discover_burst=3, discover_rate=0.5)
    answered = [
        isinstance(engine.handle_datagram(request(D, xid=n), ON_LAB, NOW), Reply) for n in range(5)
    ]
    assert answered == [True, True, True, False, False]
    assert isinstance(engine.handle_datagram(request(D, xid=9), ON_LAB, NOW + 2.0), Reply)
    other = request(D, "52:54:00:12:34:99")
    assert isinstance(engine.handle_datagram(other, ON_LAB, NOW), Reply)  # others unaffected


def test_giaddr_outside_every_subnet_gets_no_reply_anywhere():
    """Replies went to any giaddr:67 (a reflector), and any subnet's pool was chosen."""
    elsewhere = IPv4Address("192.0.2.9")
    selecting = request(
        MessageType.REQUEST, giaddr=elsewhere, options=((54, SERVER), (50, IPv4Address("10.0.0.5")))
    )
    for datagram in (request(D, giaddr=elsewhere), selecting):
        action = server().handle_datagram(datagram, Received(SERVER, (ATTACKER, 67)), NOW)
        assert isinstance(action, NoReply) and "relay 192.0.2.9" in action.reason


def test_with_relays_set_giaddr_from_anyone_else_is_ignored():
    engine = server(relays=frozenset({RELAY}))
    relayed = request(D, giaddr=RELAY)
    spoofed = engine.handle_datagram(relayed, Received(SERVER, (ATTACKER, 67)), NOW)
    assert isinstance(spoofed, NoReply) and "not a relay" in spoofed.reason
    real = engine.handle_datagram(relayed, Received(SERVER, (RELAY, 67)), NOW)
    assert isinstance(real, Reply) and real.destination == (RELAY, 67)


def test_a_rate_limit_keeps_a_bounded_number_of_clients():
    limit = RateLimit(rate=1.0, burst=2.0, max_keys=100)
    for n in range(10_000):
        limit.allow(f"52:54:00:{n >> 8:02x}:{n & 255:02x}:00", 0.0)
    assert len(limit) == 100
    assert IPv4Address(0) == ZERO
