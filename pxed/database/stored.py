"""The rows a shared lease table is known to hold: what may still be promised while the
database is down (docs/ha.md, "When the database is down"), for DHCPv4 and DHCPv6.

A store's memory is written when the engine binds, before the commit, so it may
hold binds whose commit failed or has not returned.  This copy changes only as the
database is known to have changed: a batch that committed puts its binds (a bind that
lost inserted nothing, and its transaction deleted the client's old row) and the rows
the transaction read (the other servers' new leases, the holder of an address lost);
a reload puts every row.  A batch that failed may or may not have committed (the
connection can die during COMMIT), so every client it bound is forgotten, as is a
client whose row a release, a DECLINE's quarantine or the expiry sweep deletes, from
the moment that write is queued.  Forgetting is always safe: a forgotten client is
only not answered while the database is down.

A row is known by the table's two keys: the client's (a MAC; a DUID and IAID) and
its address (UNIQUE); the family says how to read them off a lease.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Iterable
from typing import Generic, Protocol, TypeVar

K = TypeVar("K", bound=Hashable)
A = TypeVar("A", bound=Hashable)


class Row(Protocol):
    def active(self, now: float) -> bool: ...


L = TypeVar("L", bound=Row)


class Stored(Generic[K, A, L]):
    """One row per client and per address, as the lease table's keys allow."""

    def __init__(self, rows: Iterable[L], key: Callable[[L], K], address: Callable[[L], A]):
        self._key = key
        self._address = address
        self._by_key: dict[K, L] = {}
        self._by_address: dict[A, K] = {}
        for row in rows:
            self._put(row)

    def lease_for(self, key: K, now: float) -> L | None:
        """The client's stored lease, unless it has expired."""
        lease = self._by_key.get(key)
        return lease if lease is not None and lease.active(now) else None

    def committed(self, binds: Iterable[L], lost: Collection[L], read: Iterable[L]) -> None:
        """A batch committed: its ``binds`` in order, those in ``lost`` having only deleted
        the client's old row, then the rows its transaction ``read``."""
        for lease in binds:
            if lease in lost:
                self.forget(self._key(lease))
            else:
                self._put(lease)
        for row in read:
            self._put(row)

    def failed(self, binds: Iterable[L]) -> None:
        """A batch failed, and may or may not have committed: its clients are forgotten."""
        for lease in binds:
            self.forget(self._key(lease))

    def forget(self, key: K) -> None:
        lease = self._by_key.pop(key, None)
        if lease is not None:
            del self._by_address[self._address(lease)]

    def forget_address(self, address: A) -> None:
        key = self._by_address.get(address)
        if key is not None:
            self.forget(key)

    def expire(self, now: float) -> None:
        for lease in [lease for lease in self._by_key.values() if not lease.active(now)]:
            self.forget(self._key(lease))

    def _put(self, lease: L) -> None:
        """The row replaces the client's and the address's (the table's primary key and
        its UNIQUE address)."""
        self.forget(self._key(lease))
        self.forget_address(self._address(lease))
        self._by_key[self._key(lease)] = lease
        self._by_address[self._address(lease)] = self._key(lease)
