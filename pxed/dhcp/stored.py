"""The DHCPv4 leases PostgreSQL is known to hold: what may still be promised while the
database is down (docs/ha.md, "When the database is down").

The store's memory is written when the engine binds, before the commit, so it may
hold binds whose commit failed or has not returned.  This copy changes only as the
database is known to have changed: a batch that committed puts its binds (a bind that
lost inserted nothing, and its transaction deleted the client's old row) and the rows
the transaction read (the other servers' new leases, the holder of an address lost);
a reload puts every row.  A batch that failed may or may not have committed (the
connection can die during COMMIT), so every client it bound is forgotten, as is a
client whose row a release, a DECLINE's quarantine or the expiry sweep deletes, from
the moment that write is queued.  Forgetting is always safe: a forgotten client is
only not answered while the database is down.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from ipaddress import IPv4Address

from protocols.dhcp.leases import Lease


class StoredLeases:
    """One row per client and per address, as the lease table's keys allow."""

    def __init__(self, rows: Iterable[Lease]) -> None:
        self._by_mac: dict[str, Lease] = {}
        self._by_ip: dict[IPv4Address, str] = {}
        for row in rows:
            self._put(row)

    def lease_for(self, mac: str, now: float) -> Lease | None:
        """The client's stored lease, unless it has expired."""
        lease = self._by_mac.get(mac)
        return lease if lease is not None and lease.active(now) else None

    def committed(
        self, binds: Iterable[Lease], lost: Collection[Lease], read: Iterable[Lease]
    ) -> None:
        """A batch committed: its ``binds`` in order, those in ``lost`` having only deleted
        the client's old row, then the rows its transaction ``read``."""
        for lease in binds:
            if lease in lost:
                self.forget(lease.mac)
            else:
                self._put(lease)
        for row in read:
            self._put(row)

    def forget(self, mac: str) -> None:
        lease = self._by_mac.pop(mac, None)
        if lease is not None:
            del self._by_ip[lease.ip]

    def forget_address(self, ip: IPv4Address) -> None:
        mac = self._by_ip.get(ip)
        if mac is not None:
            self.forget(mac)

    def expire(self, now: float) -> None:
        for lease in [lease for lease in self._by_mac.values() if not lease.active(now)]:
            self.forget(lease.mac)

    def _put(self, lease: Lease) -> None:
        """The row replaces the client's and the address's (mac is the table's primary
        key, ip is UNIQUE)."""
        self.forget(lease.mac)
        self.forget_address(lease.ip)
        self._by_mac[lease.mac] = lease
        self._by_ip[lease.ip] = lease.mac
