"""Durable DHCP leases: SQLite in ``server.state_dir``.

The DHCP engine promises a client its address in an ACK, so the lease must be
on disk before the ACK leaves.  WAL with ``synchronous=FULL`` makes a COMMIT
durable (the WAL is fsynced at every commit).  Writes go into one open
transaction and ``commit()`` ends it: the adapter handles a batch of requests,
commits once, then sends the batch's ACKs (group commit), which is what lets
a single fsync cover many exchanges.

All leases also live in a ``MemoryLeaseStore`` so that the engine's lookups
(one per probed pool address) never touch the disk; SQLite is write-through and
read at start.  Offers stay in memory only (see ``protocols.dhcp.leases``).

A batch that cannot be committed (disk full, I/O error, or SQLite rolling the
transaction back by itself) is rolled back whole and the in-memory view is read
again from the database, so memory never claims a lease that is not on disk nor
forgets one that is.  Write errors wait for ``commit()``, which raises: the
adapter then drops the batch's replies and the clients retry.  Offers do not
survive that reload, as they do not survive a restart.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from ipaddress import IPv4Address
from pathlib import Path

from protocols.dhcp.leases import Lease, LeaseState, MemoryLeaseStore

DATABASE_NAME = "leases.sqlite3"
SCHEMA_VERSION = 1
_SELF_ROLLBACK = "SQLite ended the transaction by itself"


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


class SqliteLeaseStore(MirroredLeases):
    """A ``LeaseStore`` whose bound leases and quarantines survive a crash once committed."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._unsaved = False  # writes made since the last successful COMMIT
        self._failure: str | None = None  # why some of them cannot reach the disk
        self._memory = self._read()

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

    @property
    def pending(self) -> bool:
        """Whether writes wait for ``commit()`` (the adapter must not send ACKs yet),
        including writes a database error already lost."""
        return self._unsaved

    def commit(self) -> None:
        """Make every write so far durable (one fsync for the whole batch), or raise.

        On failure the batch is rolled back and memory reloaded from the database
        before LeaseDatabaseError is raised.  On some errors (SQLITE_FULL, SQLITE_IOERR)
        SQLite rolls the transaction back by itself; a later COMMIT would then succeed
        without those writes and the batch's ACKs would promise leases that are not on
        disk, so that case fails too.
        """
        if self._failure is None and self._unsaved and not self._conn.in_transaction:
            self._failure = _SELF_ROLLBACK
        if self._failure is None and self._conn.in_transaction:
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as error:
                self._failure = str(error)
        if self._failure is None:
            self._unsaved = False
            return
        failure = self._failure
        self._reload()
        raise LeaseDatabaseError(
            f"{self.path}: lease writes were rolled back after a database error ({failure})"
            " and are not on disk; their replies are dropped and clients will retry"
        )

    def close(self) -> None:
        try:
            self.commit()
        finally:
            self._conn.close()

    def _write(self, sql: str, params: tuple[object, ...]) -> None:
        """Errors are kept for ``commit()``: the engine goes on answering, and the
        commit drops the whole batch, replies included."""
        try:
            if not self._conn.in_transaction:
                if self._unsaved:  # earlier writes went with a transaction SQLite ended
                    self._failure = self._failure or _SELF_ROLLBACK
                self._conn.execute("BEGIN")
            self._unsaved = True
            self._conn.execute(sql, params)
        except sqlite3.Error as error:
            self._failure = self._failure or str(error)

    def _reload(self) -> None:
        """Roll back what is left of a failed batch and make memory what the database holds.

        If even that fails, the failure stays: every commit raises (so no ACK leaves)
        and tries again, until memory and disk agree.
        """
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            memory = self._read()
        except (sqlite3.Error, ValueError) as error:
            raise LeaseDatabaseError(
                f"{self.path}: lease writes failed ({self._failure}), then reloading the"
                f" leases failed ({error}); no replies are sent until the lease database"
                " can be read again"
            ) from error
        self._memory = memory
        self._unsaved = False
        self._failure = None

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


# The read API: for tools and pages beside the running server.  Each query opens
# the database read-only (``mode=ro``), so a reader never takes the server's
# write lock nor creates a missing file; WAL shows it every committed lease.
def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def read_leases(path: Path) -> list[tuple[str, str, float | None, str | None]]:
    """(mac, ip, expires, hostname) of every lease row, by address."""
    with closing(_read_only(path)) as conn:
        rows = conn.execute("SELECT mac, ip, expires, hostname FROM leases").fetchall()
    return sorted(rows, key=lambda row: tuple(int(part) for part in row[1].split(".")))


def read_quarantine(path: Path) -> list[tuple[str, float]]:
    """(ip, until) of every address quarantined after a DHCPDECLINE, soonest first."""
    with closing(_read_only(path)) as conn:
        return conn.execute("SELECT ip, until FROM quarantine ORDER BY until").fetchall()


def read_holder(path: Path, ip: IPv4Address, now: float) -> str | None:
    """The MAC whose unexpired lease is ``ip``, if any."""
    with closing(_read_only(path)) as conn:
        row = conn.execute(
            "SELECT mac FROM leases WHERE ip = ? AND (expires IS NULL OR expires > ?)",
            (str(ip), now),
        ).fetchone()
    return None if row is None else str(row[0])
