"""Durable DHCP leases: SQLite in ``server.state_dir``.

The DHCP engine promises a client its address in an ACK, so the lease must be
on disk before the ACK leaves.  WAL with ``synchronous=FULL`` makes a COMMIT
durable (the WAL is fsynced at every commit).  Writes go into one open
transaction and ``commit()`` ends it: the adapter handles a batch of requests,
commits once, then sends the batch's ACKs (group commit), which is what lets
a single fsync cover many exchanges.

All leases also live in a ``MemoryLeaseStore`` so that the engine's lookups
(one per probed pool address) never touch the disk; SQLite is write-through and
read only at start.  Offers stay in memory only (see ``protocols.dhcp.leases``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path

from protocols.dhcp.leases import Lease, LeaseState, MemoryLeaseStore

DATABASE_NAME = "leases.sqlite3"
SCHEMA_VERSION = 1


class LeaseDatabaseError(Exception):
    """The lease database cannot be used; the message says which file and why."""


def _create_v1(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE leases (mac TEXT PRIMARY KEY, ip TEXT NOT NULL UNIQUE,"
        " expires REAL, hostname TEXT)"
    )
    conn.execute("CREATE TABLE quarantine (ip TEXT PRIMARY KEY, until REAL NOT NULL)")


# MIGRATIONS[n] takes a database at schema version n to n + 1.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_create_v1]
assert len(MIGRATIONS) == SCHEMA_VERSION


class SqliteLeaseStore:
    """A ``LeaseStore`` whose bound leases and quarantines survive a crash once committed."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._memory = MemoryLeaseStore()
        self._unsaved = False  # writes made since the last successful COMMIT
        self._lost = False  # some of them went with a transaction SQLite rolled back
        self._load()

    @classmethod
    def open(cls, state_dir: str | Path) -> SqliteLeaseStore:
        """Open (creating if needed) ``state_dir/leases.sqlite3`` and load what it holds."""
        path = Path(state_dir) / DATABASE_NAME
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None)
        except (OSError, sqlite3.Error) as error:
            raise LeaseDatabaseError(f"{path}: cannot open the lease database: {error}") from error
        try:
            return cls._prepare(conn, path)
        except (sqlite3.Error, ValueError) as error:
            conn.close()
            raise LeaseDatabaseError(f"{path}: cannot open the lease database: {error}") from error
        except LeaseDatabaseError:
            conn.close()
            raise

    @classmethod
    def _prepare(cls, conn: sqlite3.Connection, path: Path) -> SqliteLeaseStore:
        """WAL, full sync, the current schema, the rows loaded; ValueError for a bad row."""
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise LeaseDatabaseError(
                f"{path}: SQLite refused WAL journaling (got {mode!r}); "
                "put server.state_dir on a local filesystem"
            )
        conn.execute("PRAGMA synchronous=FULL")
        _migrate(conn, path)
        return cls(conn, path)

    # -- reads: memory only ------------------------------------------------

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

    # -- writes ------------------------------------------------------------

    def offer(self, lease: Lease, now: float) -> None:
        self._memory.offer(lease, now)

    def forget_offer(self, mac: str) -> None:
        self._memory.forget_offer(mac)

    def bind(self, lease: Lease, now: float) -> None:
        self._memory.bind(lease, now)
        self._write("DELETE FROM leases WHERE mac = ? OR ip = ?", (lease.mac, str(lease.ip)))
        self._write(
            "INSERT INTO leases (mac, ip, expires, hostname) VALUES (?, ?, ?, ?)",
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

    @property
    def pending(self) -> bool:
        """Whether writes wait for ``commit()`` (the adapter must not send ACKs yet)."""
        return self._conn.in_transaction

    def commit(self) -> None:
        """Make every write so far durable (one fsync for the whole batch), or raise.

        On some errors (SQLITE_FULL, SQLITE_IOERR) SQLite rolls the transaction back by
        itself; a later COMMIT would then succeed without those writes, and the batch's
        ACKs would promise leases that are not on disk.  So that case raises too.
        """
        if self._conn.in_transaction:
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error:
                if not self._conn.in_transaction:  # rolled back: the caller hears of it now
                    self._unsaved = self._lost = False
                raise
        elif self._unsaved:
            self._lost = True
        lost = self._lost
        self._unsaved = self._lost = False
        if lost:
            raise LeaseDatabaseError(
                f"{self.path}: lease writes were rolled back after a database error"
                " and are not on disk; their replies are dropped and clients will retry"
            )

    def close(self) -> None:
        try:
            self.commit()
        finally:
            self._conn.close()

    def _write(self, sql: str, params: tuple[object, ...]) -> None:
        if not self._conn.in_transaction:
            self._lost = self._lost or self._unsaved
            self._conn.execute("BEGIN")
        self._unsaved = True
        self._conn.execute(sql, params)

    def _load(self) -> None:
        # UNIQUE(ip) in the table rules out conflicts, whatever their expiry.
        for mac, ip, expires, hostname in self._conn.execute(
            "SELECT mac, ip, expires, hostname FROM leases"
        ):
            lease = Lease(mac, IPv4Address(ip), expires, LeaseState.BOUND, hostname)
            self._memory.bind(lease, float("-inf"))
        for ip, until in self._conn.execute("SELECT ip, until FROM quarantine"):
            self._memory.quarantine(IPv4Address(ip), until)


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    version = 0 if row is None else row[0]
    if version > SCHEMA_VERSION:
        raise LeaseDatabaseError(
            f"{path}: lease database schema {version} is newer than this pxed "
            f"understands ({SCHEMA_VERSION}); upgrade pxed or move the file away"
        )
    if version == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    for step in MIGRATIONS[version:]:
        step(conn)
    conn.execute("DELETE FROM schema_version")
    conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
    conn.execute("COMMIT")
