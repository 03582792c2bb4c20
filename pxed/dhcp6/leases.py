"""Durable DHCPv6 leases: SQLite in ``server.state_dir``, in a file of their own.

The file's handling is DHCPv4's (``pxed.database.sqlite``): WAL with
``synchronous=FULL``, writes gathered in one open transaction that ``commit()``
ends before the batch's replies leave, every read answered from a
``MemoryLeaseStore`` loaded at start (``MirroredLeases6``, shared with the
PostgreSQL store), offers never written, and a batch that cannot be committed
rolled back whole with memory read again from the disk.

``leases6.sqlite3``, not a table in DHCPv4's file: an SQLite file has one writer
at a time, and each server keeps its transaction open across a reactor turn, so
two services writing one file from one thread would wait on each other's lock.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from ipaddress import IPv6Address
from pathlib import Path
from typing import ClassVar

from protocols.dhcpv6.leases import BindingKey, Lease, LeaseState, MemoryLeaseStore
from pxed.database.sqlite import Migration, SqliteBatchStore, read_only

DATABASE_NAME = "leases6.sqlite3"


class Lease6DatabaseError(Exception):
    """The DHCPv6 lease database cannot be used; the message says which file and why."""


def _create_v1(conn: sqlite3.Connection) -> None:
    # One address per IA (client DUID, IAID); an address is held by one IA at a time.
    conn.execute(
        "CREATE TABLE leases6 (client BLOB NOT NULL, iaid INTEGER NOT NULL,"
        " address TEXT NOT NULL UNIQUE, expires REAL NOT NULL, mac TEXT,"
        " PRIMARY KEY (client, iaid))"
    )
    conn.execute("CREATE TABLE quarantine6 (address TEXT PRIMARY KEY, until REAL NOT NULL)")


class MirroredLeases6:
    """What a durable DHCPv6 store answers from its copy in memory: every read, and the
    offers, which are never written (SQLite and PostgreSQL alike)."""

    _memory: MemoryLeaseStore

    # -- reads and offers: memory only ---------------------------------------

    def lease_for(self, key: BindingKey, now: float) -> Lease | None:
        return self._memory.lease_for(key, now)

    def holder_of(self, address: IPv6Address, now: float) -> Lease | None:
        return self._memory.holder_of(address, now)

    def quarantined(self, address: IPv6Address, now: float) -> bool:
        return self._memory.quarantined(address, now)

    def quarantines(self) -> dict[IPv6Address, float]:
        return self._memory.quarantines()

    def leases(self) -> list[Lease]:
        return self._memory.leases()

    def offer(self, lease: Lease, now: float) -> None:
        self._memory.offer(lease, now)


class Sqlite6LeaseStore(MirroredLeases6, SqliteBatchStore[MemoryLeaseStore]):
    """The DHCPv6 engine's ``LeaseStore`` whose bindings and quarantines survive a crash
    once committed."""

    DATABASE_NAME = DATABASE_NAME
    MIGRATIONS: ClassVar[tuple[Migration, ...]] = (_create_v1,)
    Error = Lease6DatabaseError
    # A commit runs on this thread and a failed one reloads memory at once: the store
    # always takes writes, so the engine never asks what is committed.
    writable = True

    def committed(self, key: BindingKey, now: float) -> Lease | None:
        return self._memory.committed(key, now)

    # -- writes ----------------------------------------------------------------

    def bind(self, lease: Lease, now: float) -> None:
        self._memory.bind(lease, now)
        # REPLACE deletes every row the new one collides with, by IA (the primary key) or
        # by address (UNIQUE): the IA's old binding and the address's old holder.
        self._write(
            "INSERT OR REPLACE INTO leases6 (client, iaid, address, expires, mac)"
            " VALUES (?, ?, ?, ?, ?)",
            (lease.client, lease.iaid, str(lease.address), lease.expires, lease.mac),
        )

    def release(self, key: BindingKey) -> None:
        self._memory.release(key)
        self._write("DELETE FROM leases6 WHERE client = ? AND iaid = ?", key)

    def quarantine(self, address: IPv6Address, until: float) -> None:
        self._memory.quarantine(address, until)
        self._write("DELETE FROM leases6 WHERE address = ?", (str(address),))
        self._write(
            "INSERT OR REPLACE INTO quarantine6 (address, until) VALUES (?, ?)",
            (str(address), until),
        )

    def expire(self, now: float) -> list[Lease]:
        """Delete expired bindings and quarantines; return the bindings that went."""
        gone = self._memory.expire(now)
        self._write("DELETE FROM leases6 WHERE expires <= ?", (now,))
        self._write("DELETE FROM quarantine6 WHERE until <= ?", (now,))
        return gone

    def _read(self) -> MemoryLeaseStore:
        """The committed bindings and quarantines; ValueError for a garbled row."""
        memory = MemoryLeaseStore()
        for client, iaid, address, expires, mac in self._conn.execute(
            "SELECT client, iaid, address, expires, mac FROM leases6"
        ):
            lease = Lease(bytes(client), iaid, IPv6Address(address), expires, LeaseState.BOUND, mac)
            memory.bind(lease, float("-inf"))
        for address, until in self._conn.execute("SELECT address, until FROM quarantine6"):
            memory.quarantine(IPv6Address(address), until)
        return memory


def read_leases6(path: Path) -> list[tuple[str, int, str, float, str | None]]:
    """(client DUID in hex, IAID, address, expires, MAC) of every binding, by address, on a
    read-only connection (``pxed.database.sqlite.read_only`` says why)."""
    with closing(read_only(path)) as conn:
        rows = conn.execute("SELECT client, iaid, address, expires, mac FROM leases6").fetchall()
    return sorted(
        ((bytes(c).hex(":"), i, a, e, m) for c, i, a, e, m in rows),
        key=lambda row: IPv6Address(row[2]),
    )
