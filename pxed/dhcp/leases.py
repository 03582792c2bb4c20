"""Durable DHCP leases: SQLite in ``server.state_dir``.

The file's handling (WAL, full sync, versioned schema, one transaction per batch
that the adapter commits before the batch's ACKs leave, a failed batch rolled back
and memory read again) is ``pxed.database.sqlite``'s, shared with DHCPv6; this
module says what the rows are.

All leases also live in a ``MemoryLeaseStore`` so that the engine's lookups
(one per probed pool address) never touch the disk; SQLite is write-through and
read at start.  Offers stay in memory only (see ``protocols.dhcp.leases``), and
do not survive a failed batch's reload, as they do not survive a restart.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from ipaddress import IPv4Address
from pathlib import Path
from typing import ClassVar

from protocols.dhcp.leases import Lease, LeaseState, MemoryLeaseStore
from pxed.database.sqlite import Migration, SqliteBatchStore, read_only

DATABASE_NAME = "leases.sqlite3"


class LeaseDatabaseError(Exception):
    """The lease database cannot be used; the message says which file and why."""


def _create_v1(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE leases (mac TEXT PRIMARY KEY, ip TEXT NOT NULL UNIQUE,"
        " expires REAL, hostname TEXT)"
    )
    conn.execute("CREATE TABLE quarantine (ip TEXT PRIMARY KEY, until REAL NOT NULL)")


class MirroredLeases:
    """What a durable lease store answers from its copy in memory: every read, and the
    offers, which are never written (SQLite and PostgreSQL alike).

    The engine asks per packet, so no read ever waits on the database.
    """

    _memory: MemoryLeaseStore

    def lease_for(self, mac: str, now: float) -> Lease | None:
        return self._memory.lease_for(mac, now)

    def holder_of(self, ip: IPv4Address, now: float) -> str | None:
        return self._memory.holder_of(ip, now)

    def quarantined(self, ip: IPv4Address, now: float) -> bool:
        return self._memory.quarantined(ip, now)

    def leases(self) -> list[Lease]:
        return self._memory.leases()

    def quarantines(self) -> dict[IPv4Address, float]:
        return self._memory.quarantines()

    def offer(self, lease: Lease, now: float) -> None:
        self._memory.offer(lease, now)

    def forget_offer(self, mac: str) -> None:
        self._memory.forget_offer(mac)


class SqliteLeaseStore(MirroredLeases, SqliteBatchStore[MemoryLeaseStore]):
    """A ``LeaseStore`` whose bound leases and quarantines survive a crash once committed."""

    DATABASE_NAME = DATABASE_NAME
    MIGRATIONS: ClassVar[tuple[Migration, ...]] = (_create_v1,)
    Error = LeaseDatabaseError
    # A commit runs on this thread and a failed one reloads memory at once: the store
    # always takes writes, so the engine never asks what is committed.
    writable = True

    def committed(self, mac: str, now: float) -> Lease | None:
        return self._memory.committed(mac, now)

    # -- writes ------------------------------------------------------------

    def bind(self, lease: Lease, now: float) -> None:
        self._memory.bind(lease, now)
        # REPLACE deletes every row the new one collides with, by MAC (the primary key)
        # or by address (UNIQUE): the client's old lease and the address's old holder.
        self._write(
            "INSERT OR REPLACE INTO leases (mac, ip, expires, hostname) VALUES (?, ?, ?, ?)",
            (lease.mac, str(lease.ip), lease.expires, lease.hostname),
        )

    def release(self, mac: str) -> None:
        self._memory.release(mac)
        self._write("DELETE FROM leases WHERE mac = ?", (mac,))

    def quarantine(self, ip: IPv4Address, until: float) -> None:
        self._memory.quarantine(ip, until)
        self._write("DELETE FROM leases WHERE ip = ?", (str(ip),))
        self._write("INSERT OR REPLACE INTO quarantine (ip, until) VALUES (?, ?)", (str(ip), until))

    def expire(self, now: float) -> list[Lease]:
        """Delete expired leases and quarantines; return the leases that went."""
        gone = self._memory.expire(now)
        self._write("DELETE FROM leases WHERE expires IS NOT NULL AND expires <= ?", (now,))
        self._write("DELETE FROM quarantine WHERE until <= ?", (now,))
        return gone

    def _read(self) -> MemoryLeaseStore:
        """The committed leases and quarantines; ValueError for a garbled row."""
        memory = MemoryLeaseStore()
        # UNIQUE(ip) in the table rules out conflicts, whatever their expiry.
        for mac, ip, expires, hostname in self._conn.execute(
            "SELECT mac, ip, expires, hostname FROM leases"
        ):
            lease = Lease(mac, IPv4Address(ip), expires, LeaseState.BOUND, hostname)
            memory.bind(lease, float("-inf"))
        for ip, until in self._conn.execute("SELECT ip, until FROM quarantine"):
            memory.quarantine(IPv4Address(ip), until)
        return memory


# The read API: for tools and pages beside the running server, each query on a
# read-only connection (``pxed.database.sqlite.read_only`` says why).
def read_leases(path: Path) -> list[tuple[str, str, float | None, str | None]]:
    """(mac, ip, expires, hostname) of every lease row, by address."""
    with closing(read_only(path)) as conn:
        rows = conn.execute("SELECT mac, ip, expires, hostname FROM leases").fetchall()
    return sorted(rows, key=lambda row: tuple(int(part) for part in row[1].split(".")))


def read_quarantine(path: Path) -> list[tuple[str, float]]:
    """(ip, until) of every address quarantined after a DHCPDECLINE, soonest first."""
    with closing(read_only(path)) as conn:
        return conn.execute("SELECT ip, until FROM quarantine ORDER BY until").fetchall()


def read_holder(path: Path, ip: IPv4Address, now: float) -> str | None:
    """The MAC whose unexpired lease is ``ip``, if any."""
    with closing(read_only(path)) as conn:
        row = conn.execute(
            "SELECT mac FROM leases WHERE ip = ? AND (expires IS NULL OR expires > ?)",
            (str(ip), now),
        ).fetchone()
    return None if row is None else str(row[0])
