"""Which address a client gets: reservation, its lease, its wish, then a stable pool probe."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from protocols.dhcp.allocation import Allocator, Host, Subnet, subnet_for
from protocols.dhcp.leases import Lease, LeaseState, MemoryLeaseStore
from protocols.share import Share

NET = Subnet(
    IPv4Network("10.213.7.0/24"),
    pool=(IPv4Address("10.213.7.100"), IPv4Address("10.213.7.103")),
)
OTHER = Subnet(IPv4Network("10.213.8.0/24"), pool=(IPv4Address("10.213.8.10"),) * 2)
MAC_A = "52:54:00:00:00:0a"
MAC_B = "52:54:00:00:00:0b"
RESERVED = "52:54:00:00:00:0c"


def ip(last: int) -> IPv4Address:
    return IPv4Address(f"10.213.7.{last}")


def allocator(store=None, hosts=None) -> Allocator:
    return Allocator.build(store or MemoryLeaseStore(), hosts or {})


def test_reservation_wins_even_outside_the_pool():
    hosts = {RESERVED: Host(RESERVED, ip=ip(21))}
    assert allocator(hosts=hosts).choose(RESERVED, NET, ip(100), now=0) == ip(21)


def test_reservation_on_another_subnet_gets_nothing_here():
    hosts = {RESERVED: Host(RESERVED, ip=IPv4Address("10.213.8.10"))}
    assert allocator(hosts=hosts).choose(RESERVED, NET, None, now=0) is None


def test_reserved_address_in_the_pool_is_never_given_to_another_client():
    hosts = {RESERVED: Host(RESERVED, ip=ip(101))}
    alloc = allocator(hosts=hosts)
    given = {alloc.choose(f"52:54:00:00:01:{n:02x}", NET, ip(101), 0) for n in range(20)}
    assert ip(101) not in given


def test_current_lease_is_offered_again():
    store = MemoryLeaseStore()
    store.bind(Lease(MAC_A, ip(102), 100.0), 0)
    assert allocator(store).choose(MAC_A, NET, ip(100), now=1) == ip(102)


def test_requested_free_address_is_granted():
    assert allocator().choose(MAC_A, NET, ip(103), now=0) == ip(103)


@pytest.mark.parametrize("requested", [ip(50), ip(255), IPv4Address("10.213.8.10")])
def test_requested_address_outside_the_pool_is_ignored(requested):
    assert allocator().choose(MAC_A, NET, requested, now=0) in {ip(n) for n in range(100, 104)}


def test_requested_address_held_by_another_client_is_not_granted():
    store = MemoryLeaseStore()
    store.offer(Lease(MAC_B, ip(103), 50.0, LeaseState.OFFERED), 0)
    assert allocator(store).choose(MAC_A, NET, ip(103), now=1) != ip(103)


def test_quarantined_address_is_skipped():
    store = MemoryLeaseStore()
    store.quarantine(ip(103), until=50)
    assert allocator(store).choose(MAC_A, NET, ip(103), now=1) != ip(103)
    assert allocator(store).choose(MAC_A, NET, ip(103), now=50) == ip(103)


def test_pool_address_is_stable_per_mac():
    """Without any lease left, the same MAC probes from the same start point."""
    assert allocator().choose(MAC_A, NET, None, 0) == allocator().choose(MAC_A, NET, None, 9)


def test_exhausted_pool_gives_none():
    store = MemoryLeaseStore()
    for n in range(100, 104):
        store.bind(Lease(f"52:54:00:00:02:{n:02x}", ip(n), 100.0), 0)
    assert allocator(store).choose(MAC_A, NET, None, now=1) is None


class CountingStore(MemoryLeaseStore):
    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0

    def holder_of(self, ip: IPv4Address, now: float) -> str | None:
        self.lookups += 1
        return super().holder_of(ip, now)


def test_a_full_pool_is_not_probed_again_for_a_second():
    """Each probe of a full pool visits every address; a DISCOVER storm must not repeat it."""
    store = CountingStore()
    for n in range(100, 104):
        store.bind(Lease(f"52:54:00:00:02:{n:02x}", ip(n), 100.0), 0)
    engine = allocator(store)
    assert engine.choose(MAC_A, NET, None, now=10) is None
    probed = store.lookups
    assert probed >= 4
    assert engine.choose(MAC_B, NET, None, now=10.5) is None
    assert store.lookups == probed
    store.release("52:54:00:00:02:65")
    assert engine.choose(MAC_B, NET, None, now=11) == ip(101)


WIDE = Subnet(
    IPv4Network("10.213.7.0/24"),
    pool=(IPv4Address("10.213.7.10"), IPv4Address("10.213.7.249")),
)


def macs(count: int, tag: int) -> list[str]:
    return [f"52:54:00:{tag:02x}:{n >> 8:02x}:{n & 0xFF:02x}" for n in range(count)]


def test_a_share_probes_only_its_own_positions_of_the_pool_while_they_last():
    store = MemoryLeaseStore()
    alloc = allocator(store)
    for mac in macs(120, 1):  # the share of 1 of 2 holds 120 of the 240 addresses
        given = alloc.choose(mac, WIDE, None, now=0, share=Share(1, 2))
        assert given is not None and (int(given) - int(WIDE.pool[0])) % 2 == 1, given
        store.bind(Lease(mac, given, 100.0), 0)


def test_two_live_servers_memories_never_pick_one_address_for_two_clients():
    """Each server's memory knows only its own leases, as two servers between polls."""
    picked: list[set[IPv4Address]] = []
    for index, tag in ((0, 1), (1, 2)):
        store = MemoryLeaseStore()
        alloc = allocator(store)
        for mac in macs(100, tag):
            given = alloc.choose(mac, WIDE, None, now=0, share=Share(index, 2))
            assert given is not None
            store.bind(Lease(mac, given, 100.0), 0)
        picked.append({lease.ip for lease in store.leases()})
    assert len(picked[0]) == len(picked[1]) == 100 and not picked[0] & picked[1]


def test_a_full_share_falls_back_to_the_rest_of_the_pool():
    store = MemoryLeaseStore()
    for n in (101, 103):  # the share of 1 of 2 in a pool of 100-103
        store.bind(Lease(f"52:54:00:00:02:{n:02x}", ip(n), 100.0), 0)
    assert allocator(store).choose(MAC_A, NET, None, now=1, share=Share(1, 2)) in {
        ip(100),
        ip(102),
    }


def test_reservations_and_current_leases_ignore_the_share():
    store = MemoryLeaseStore()
    store.bind(Lease(MAC_A, ip(101), 100.0), 0)
    hosts = {RESERVED: Host(RESERVED, ip=ip(103))}
    alloc = allocator(store, hosts)
    assert alloc.choose(MAC_A, NET, None, now=1, share=Share(0, 2)) == ip(101)
    assert alloc.choose(RESERVED, NET, None, now=1, share=Share(0, 2)) == ip(103)


def test_subnet_without_pool_serves_only_reservations():
    bare = Subnet(IPv4Network("10.213.7.0/24"))
    hosts = {RESERVED: Host(RESERVED, ip=ip(21))}
    assert allocator(hosts=hosts).choose(MAC_A, bare, None, 0) is None
    assert allocator(hosts=hosts).choose(RESERVED, bare, None, 0) == ip(21)


def test_subnet_for_picks_the_network_containing_the_address():
    assert subnet_for((NET, OTHER), IPv4Address("10.213.8.1")) is OTHER
    assert subnet_for((NET, OTHER), IPv4Address("192.0.2.1")) is None


def test_range_outside_the_network_is_refused():
    with pytest.raises(ValueError, match="not an ascending range inside the network"):
        Subnet(IPv4Network("10.213.7.0/24"), pool=(ip(200), ip(100)))
