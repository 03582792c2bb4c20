"""Durable DHCPv6 leases: SQLite in ``server.state_dir``, in a file of their own.

The same rules as DHCPv4's store (``pxed.dhcp.leases``, whose docstring says why):
WAL with ``synchronous=FULL``, writes gathered in one open transaction that
``commit()`` ends before the batch's replies leave, every read answered from a
``MemoryLeaseStore`` loaded at start, offers never written, and a batch that
cannot be committed rolled back whole with memory read again from the disk.

``leases6.sqlite3``, not a table in DHCPv4's file: an SQLite file has one writer
at a time, and each server keeps its transaction open across a reactor turn, so
two services writing one file from one thread would wait on each other's lock.
The schema is versioned the same way (``schema_version``, ``MIGRATIONS``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from ipaddress import IPv6Address
from pathlib import Path

from protocols.dhcpv6.leases import BindingKey, Lease, LeaseState, MemoryLeaseStore

DATABASE_NAME = "leases6.sqlite3"
SCHEMA_VERSION = 1
_SELF_ROLLBACK = "SQLite ended the transaction by itself"


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


# MIGRATIONS[n] takes a database at schema version n to n + 1.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_create_v1]
assert len(MIGRATIONS) == SCHEMA_VERSION


class Sqlite6LeaseStore:
    """The DHCPv6 engine's ``LeaseStore`` whose bindings and quarantines survive a crash
    once committed."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._unsaved = False  # writes made since the last successful COMMIT
        self._failure: str | None = None  # why some of them cannot reach the disk
        self._memory = self._read()

    @classmethod
    def open(cls, state_dir: str | Path) -> Sqlite6LeaseStore:
        """Open (creating if needed) ``state_dir/leases6.sqlite3`` and load what it holds."""
        path = Path(state_dir) / DATABASE_NAME
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None)
        except (OSError, sqlite3.Error) as error:
            raise Lease6DatabaseError(f"{path}: cannot open the lease database: {error}") from error
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise Lease6DatabaseError(
                    f"{path}: SQLite refused WAL journaling (got {mode!r}); "
                    "put server.state_dir on a local filesystem"
                )
            conn.execute("PRAGMA synchronous=FULL")
            _migrate(conn, path)
            return cls(conn, path)
        except (sqlite3.Error, ValueError) as error:
            conn.close()
            raise Lease6DatabaseError(f"{path}: cannot open the lease database: {error}") from error
        except Lease6DatabaseError:
            conn.close()
            raise

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

    # -- writes ----------------------------------------------------------------

    def bind(self, lease: Lease, now: float) -> None:
        self._memory.bind(lease, now)
        address = str(lease.address)
        self._write(
            "DELETE FROM leases6 WHERE (client = ? AND iaid = ?) OR address = ?",
            (lease.client, lease.iaid, address),
        )
        self._write(
            "INSERT INTO leases6 (client, iaid, address, expires, mac) VALUES (?, ?, ?, ?, ?)",
            (lease.client, lease.iaid, address, lease.expires, lease.mac),
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

    @property
    def pending(self) -> bool:
        """Whether writes wait for ``commit()``, including writes an error already lost."""
        return self._unsaved

    def commit(self) -> None:
        """Make every write so far durable (one fsync for the batch), or roll the batch
        back, reload memory from the disk and raise (``pxed.dhcp.leases`` says why a
        transaction SQLite ended by itself counts as a failure)."""
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
        raise Lease6DatabaseError(
            f"{self.path}: lease writes were rolled back after a database error ({failure})"
            " and are not on disk; their replies are dropped and clients will retry"
        )

    def close(self) -> None:
        try:
            self.commit()
        finally:
            self._conn.close()

    def _write(self, sql: str, params: tuple[object, ...]) -> None:
        """Errors wait for ``commit()``, which drops the whole batch, replies included."""
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
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            memory = self._read()
        except (sqlite3.Error, ValueError) as error:
            raise Lease6DatabaseError(
                f"{self.path}: lease writes failed ({self._failure}), then reloading the"
                f" leases failed ({error}); no replies are sent until the lease database"
                " can be read again"
            ) from error
        self._memory = memory
        self._unsaved = False
        self._failure = None

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


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    version = 0 if row is None else row[0]
    if version > SCHEMA_VERSION:
        raise Lease6DatabaseError(
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


def read_leases6(path: Path) -> list[tuple[str, int, str, float, str | None]]:
    """(client DUID in hex, IAID, address, expires, MAC) of every binding, read-only so a
    reader beside the running server never takes its write lock."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        rows = conn.execute("SELECT client, iaid, address, expires, mac FROM leases6").fetchall()
    return sorted(
        ((bytes(c).hex(":"), i, a, e, m) for c, i, a, e, m in rows),
        key=lambda row: IPv6Address(row[2]),
    )
