"""The DHCPv4 leases PostgreSQL is known to hold, by MAC and by address: what may still
be promised while the database is down (``pxed.database.stored`` says how it follows
the table; docs/ha.md, "When the database is down")."""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address

from protocols.dhcp.leases import Lease
from pxed.database.stored import Stored


class StoredLeases(Stored[str, IPv4Address, Lease]):
    def __init__(self, rows: Iterable[Lease]) -> None:
        super().__init__(rows, _mac, _ip)


def _mac(lease: Lease) -> str:
    return lease.mac


def _ip(lease: Lease) -> IPv4Address:
    return lease.ip
