"""DHCPv6 bindings, links and the address choice, below the engine."""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network

import pytest

from protocols.dhcpv6.allocation import FULL_POOL_RETRY, Allocator, Host, Link, link_for
from protocols.dhcpv6.allocation import mac_from_link_local as mac_of
from protocols.dhcpv6.leases import Lease, LeaseConflict, LeaseState, MemoryLeaseStore
from protocols.share import Share
from tests.protocols.dhcpv6_engine_support import LAB, REMOTE

A, B = (b"\x00\x03\x00\x01aaaaaa", 1), (b"\x00\x03\x00\x01bbbbbb", 1)
X, Y = IPv6Address("fd00:213:7::100"), IPv6Address("fd00:213:7::101")
TINY = Link(IPv6Network("fd00:1::/64"), pool=(IPv6Address("fd00:1::1"), IPv6Address("fd00:1::2")))


def _lease(key: tuple[bytes, int], address: IPv6Address, expires: float = 2000.0) -> Lease:
    return Lease(key[0], key[1], address, expires)


def test_binding_an_address_another_ia_holds_is_a_caller_bug():
    store = MemoryLeaseStore()
    store.bind(_lease(A, X), 1000)
    with pytest.raises(LeaseConflict):
        store.bind(_lease(B, X), 1000)
    store.bind(_lease(B, X, 3000.0), 2001)  # A's lease has run out
    assert store.holder_of(X, 2001).key == B


def test_a_new_binding_of_an_ia_frees_its_old_address():
    store = MemoryLeaseStore()
    store.bind(_lease(A, X), 1000)
    store.bind(_lease(A, Y), 1000)
    assert store.holder_of(X, 1000) is None and store.lease_for(A, 1000).address == Y


def test_offers_lose_to_bindings_and_expire_unwritten():
    store = MemoryLeaseStore()
    store.offer(Lease(A[0], A[1], X, 1060.0, LeaseState.OFFERED), 1000)
    assert store.lease_for(A, 1000).state is LeaseState.OFFERED and store.leases() == []
    assert store.holder_of(X, 1061) is None


def test_quarantine_drops_the_lease_and_expire_sweeps_everything_old():
    store = MemoryLeaseStore()
    store.bind(_lease(A, X, 1500.0), 1000)
    store.bind(_lease(B, Y), 1000)
    store.quarantine(Y, 1600.0)
    assert store.lease_for(B, 1000) is None and store.quarantined(Y, 1599)
    assert [lease.key for lease in store.expire(1700)] == [A]
    assert store.quarantines() == {} and store.leases() == []


def test_eui64_link_local_addresses_give_their_mac_and_others_none():
    assert mac_of(IPv6Address("fe80::5054:ff:fe12:3456")) == "52:54:00:12:34:56"
    assert mac_of(IPv6Address("fe80::1c2d:3e4f:5a6b:7c8d")) is None
    assert mac_of(IPv6Address("fd00::5054:ff:fe12:3456")) is None  # not link-local


def test_link_for_and_a_range_outside_its_prefix():
    assert link_for((LAB, REMOTE), IPv6Address("fd00:213:8::77")) is REMOTE
    assert link_for((LAB, REMOTE), IPv6Address("fd00:1::1")) is None
    with pytest.raises(ValueError, match="range"):
        Link(IPv6Network("fd00:1::/64"), pool=(IPv6Address("fd00:2::1"), IPv6Address("fd00:1::2")))


def test_the_subnet_router_anycast_address_is_never_given():
    assert not LAB.usable(IPv6Address("fd00:213:7::")) and LAB.usable(X)


def test_an_ia_gets_the_same_address_back_from_its_hash_after_its_lease_is_gone():
    store = MemoryLeaseStore()
    allocator = Allocator.build(store, ())
    first = allocator.choose(A, None, LAB, (), 1000)
    assert allocator.choose(A, None, LAB, (), 5000) == first


def test_a_full_pool_is_not_probed_again_for_a_second():
    store = MemoryLeaseStore()
    allocator = Allocator.build(store, ())
    store.bind(_lease(A, IPv6Address("fd00:1::1"), 9999), 1000)
    store.bind(_lease(B, IPv6Address("fd00:1::2"), 9999), 1000)
    other = (b"\x00\x03\x00\x01cccccc", 1)
    assert allocator.choose(other, None, TINY, (), 1000) is None
    store.release(A)
    assert allocator.choose(other, None, TINY, (), 1000 + FULL_POOL_RETRY / 2) is None
    assert allocator.choose(other, None, TINY, (), 1000 + FULL_POOL_RETRY) is not None


def test_a_host_is_found_by_duid_before_mac():
    by_duid = Host(duid=A[0], address=X)
    by_mac = Host(mac="52:54:00:00:00:01", address=Y)
    allocator = Allocator.build(MemoryLeaseStore(), (by_duid, by_mac))
    assert allocator.host_for(A[0], "52:54:00:00:00:01") is by_duid
    assert allocator.host_for(B[0], "52:54:00:00:00:01") is by_mac
    assert allocator.host_for(B[0], None) is None


WIDE = Link(
    IPv6Network("fd00:213:7::/64"),
    pool=(IPv6Address("fd00:213:7::10"), IPv6Address("fd00:213:7::ff")),
)


def ias(count: int, tag: int) -> list[tuple[bytes, int]]:
    """``count`` IAs of as many DUID-LLs, tagged apart from another server's clients."""
    return [(b"\x00\x03\x00\x01" + bytes([tag, 0, 0, 0, n >> 8, n & 255]), 1) for n in range(count)]


def position(address: IPv6Address, link: Link = WIDE) -> int:
    assert link.pool is not None
    return int(address) - int(link.pool[0])


def test_a_share_probes_only_its_own_positions_of_the_pool_while_they_last():
    store = MemoryLeaseStore()
    allocator = Allocator.build(store, ())
    for key in ias(120, 1):  # the share of 1 of 2 holds 120 of the 240 addresses
        given = allocator.choose(key, None, WIDE, (), 1000, Share(1, 2))
        assert given is not None and position(given) % 2 == 1, given
        store.bind(_lease(key, given), 1000)


def test_two_live_servers_memories_never_pick_one_address_for_two_ias():
    """Each server's memory knows only its own bindings, as two servers between polls."""
    picked: list[set[IPv6Address]] = []
    for index, tag in ((0, 1), (1, 2)):
        store = MemoryLeaseStore()
        allocator = Allocator.build(store, ())
        for key in ias(100, tag):
            given = allocator.choose(key, None, WIDE, (), 1000, Share(index, 2))
            assert given is not None
            store.bind(_lease(key, given), 1000)
        picked.append({lease.address for lease in store.leases()})
    assert len(picked[0]) == len(picked[1]) == 100 and not picked[0] & picked[1]


def test_a_full_share_falls_back_to_the_rest_of_the_pool():
    three = Link(TINY.prefix, pool=(IPv6Address("fd00:1::1"), IPv6Address("fd00:1::3")))
    store = MemoryLeaseStore()
    store.bind(_lease(A, IPv6Address("fd00:1::2")), 1000)  # the share of 1 of 2: position 1
    other = (b"\x00\x03\x00\x01cccccc", 1)
    given = Allocator.build(store, ()).choose(other, None, three, (), 1000, Share(1, 2))
    assert given in {IPv6Address("fd00:1::1"), IPv6Address("fd00:1::3")}


def test_reservations_current_bindings_and_hints_ignore_the_share():
    store = MemoryLeaseStore()
    store.bind(_lease(A, IPv6Address("fd00:213:7::11")), 1000)  # position 1: share 1's
    reserved = Host(duid=B[0], address=IPv6Address("fd00:213:7::13"))
    allocator = Allocator.build(store, (reserved,))
    mine = Share(0, 2)
    assert allocator.choose(A, None, WIDE, (), 1000, mine) == IPv6Address("fd00:213:7::11")
    assert allocator.choose(B, reserved, WIDE, (), 1000, mine) == IPv6Address("fd00:213:7::13")
    other = (b"\x00\x03\x00\x01cccccc", 1)
    hint = IPv6Address("fd00:213:7::15")
    assert allocator.choose(other, None, WIDE, (hint,), 1000, mine) == hint
