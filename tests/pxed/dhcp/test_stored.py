"""The leases known stored (``pxed.dhcp.stored``): what a renewal may be confirmed from
while the database is down.  It follows the lease table's keys and never claims a row
the database may not hold."""

from __future__ import annotations

from ipaddress import IPv4Address

from protocols.dhcp.leases import Lease
from pxed.dhcp.stored import StoredLeases

MAC_A, MAC_B = "52:54:00:00:00:0a", "52:54:00:00:00:0b"
IP_1, IP_2 = IPv4Address("10.213.7.101"), IPv4Address("10.213.7.102")


def test_a_committed_bind_replaces_the_clients_row_and_the_addresss():
    stored = StoredLeases([Lease(MAC_A, IP_1, 100.0), Lease(MAC_B, IP_2, 100.0)])
    stored.committed([Lease(MAC_A, IP_2, 200.0)], lost=[], read=[])
    assert stored.lease_for(MAC_A, 0) == Lease(MAC_A, IP_2, 200.0)
    assert stored.lease_for(MAC_B, 0) is None  # its expired row gave way on IP_2
    stored.forget_address(IP_1)  # nothing holds it any more
    assert stored.lease_for(MAC_A, 0) is not None


def test_a_bind_that_lost_deleted_the_clients_old_row_and_the_winner_is_read():
    stored = StoredLeases([Lease(MAC_A, IP_1, 100.0)])
    winner = Lease(MAC_B, IP_2, 300.0)
    stored.committed([Lease(MAC_A, IP_2, 200.0)], lost=[Lease(MAC_A, IP_2, 200.0)], read=[winner])
    assert stored.lease_for(MAC_A, 0) is None and stored.lease_for(MAC_B, 0) == winner


def test_forgotten_released_quarantined_and_expired_rows_are_not_confirmed():
    stored = StoredLeases([Lease(MAC_A, IP_1, 100.0), Lease(MAC_B, IP_2, 50.0)])
    assert stored.lease_for(MAC_B, 50.0) is None  # expired
    stored.expire(60.0)
    stored.committed([Lease(MAC_A, IP_2, 200.0)], lost=[], read=[])
    assert stored.lease_for(MAC_A, 60.0) == Lease(MAC_A, IP_2, 200.0)
    stored.forget_address(IP_2)
    assert stored.lease_for(MAC_A, 60.0) is None
    stored.committed([Lease(MAC_B, IP_1, 200.0)], lost=[], read=[])
    stored.forget(MAC_B)
    assert stored.lease_for(MAC_B, 60.0) is None
