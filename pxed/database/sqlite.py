"""A lease store's SQLite file: opened in WAL, versioned, written in batches, reloaded.

A DHCP server promises a client its address in a reply, so the lease must be on
disk before the reply leaves.  WAL with ``synchronous=FULL`` makes a COMMIT
durable (the WAL is fsynced at every commit).  Writes go into one open
transaction and ``commit()`` ends it: the adapter handles a batch of requests,
commits once, then sends the batch's replies (group commit), which is what lets
a single fsync cover many exchanges.

Every read is answered from a copy in memory, loaded at start (``_read``), so the
engine's lookups never touch the disk.  A batch that cannot be committed (disk
full, I/O error, or SQLite rolling the transaction back by itself) is rolled back
whole and memory is read again from the database, so memory never claims a lease
that is not on disk nor forgets one that is.  Write errors wait for ``commit()``,
which raises: the adapter then drops the batch's replies and the clients retry.

DHCPv4 (``pxed.dhcp.leases``) and DHCPv6 (``pxed.dhcp6.leases``) each subclass
``SqliteBatchStore`` with their file name, schema steps, error type and rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar, Generic, Self, TypeVar

M = TypeVar("M")
Migration = Callable[[sqlite3.Connection], None]
_SELF_ROLLBACK = "SQLite ended the transaction by itself"


class SqliteBatchStore(Generic[M]):
    """Batched, durable writes to one SQLite file, with its rows mirrored in an ``M``.

    A subclass names its file (``DATABASE_NAME``), its schema steps (``MIGRATIONS[n]``
    takes the file from version n to n + 1), the error it raises (``Error``, built
    from a message naming the file), and reads its rows in ``_read``.
    """

    DATABASE_NAME: ClassVar[str]
    MIGRATIONS: ClassVar[Sequence[Migration]]
    Error: ClassVar[type[Exception]]
    _memory: M

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._unsaved = False  # writes made since the last successful COMMIT
        self._failure: str | None = None  # why some of them cannot reach the disk
        self._memory = self._read()

    def _read(self) -> M:
        """The committed rows; ValueError for a garbled one."""
        raise NotImplementedError

    @classmethod
    def open(cls, state_dir: str | Path) -> Self:
        """Open (creating if needed) ``state_dir/DATABASE_NAME`` and load what it holds."""
        path = Path(state_dir) / cls.DATABASE_NAME
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None)
        except (OSError, sqlite3.Error) as error:
            raise cls.Error(f"{path}: cannot open the lease database: {error}") from error
        try:
            return cls._prepare(conn, path)
        except (sqlite3.Error, ValueError) as error:
            conn.close()
            raise cls.Error(f"{path}: cannot open the lease database: {error}") from error
        except cls.Error:
            conn.close()
            raise

    @classmethod
    def _prepare(cls, conn: sqlite3.Connection, path: Path) -> Self:
        """WAL, full sync, the current schema, the rows loaded; ValueError for a bad row."""
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise cls.Error(
                f"{path}: SQLite refused WAL journaling (got {mode!r}); "
                "put server.state_dir on a local filesystem"
            )
        conn.execute("PRAGMA synchronous=FULL")
        cls._migrate(conn, path)
        return cls(conn, path)

    @classmethod
    def _migrate(cls, conn: sqlite3.Connection, path: Path) -> None:
        latest = len(cls.MIGRATIONS)
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        version = 0 if row is None else row[0]
        if version > latest:
            raise cls.Error(
                f"{path}: lease database schema {version} is newer than this pxed "
                f"understands ({latest}); upgrade pxed or move the file away"
            )
        if version == latest:
            return
        conn.execute("BEGIN IMMEDIATE")
        for step in cls.MIGRATIONS[version:]:
            step(conn)
        conn.execute("DELETE FROM schema_version")
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (latest,))
        conn.execute("COMMIT")

    @property
    def pending(self) -> bool:
        """Whether writes wait for ``commit()`` (the adapter must not send replies yet),
        including writes a database error already lost."""
        return self._unsaved

    def commit(self) -> None:
        """Make every write so far durable (one fsync for the whole batch), or raise.

        On failure the batch is rolled back and memory reloaded from the database
        before ``Error`` is raised.  On some errors (SQLITE_FULL, SQLITE_IOERR)
        SQLite rolls the transaction back by itself; a later COMMIT would then succeed
        without those writes and the batch's replies would promise leases that are not
        on disk, so that case fails too.
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
        raise self.Error(
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

        If even that fails, the failure stays: every commit raises (so no reply leaves)
        and tries again, until memory and disk agree.
        """
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            memory = self._read()
        except (sqlite3.Error, ValueError) as error:
            raise self.Error(
                f"{self.path}: lease writes failed ({self._failure}), then reloading the"
                f" leases failed ({error}); no replies are sent until the lease database"
                " can be read again"
            ) from error
        self._memory = memory
        self._unsaved = False
        self._failure = None


def read_only(path: Path) -> sqlite3.Connection:
    """For tools and pages beside the running server: ``mode=ro`` never takes the server's
    write lock nor creates a missing file, and WAL shows it every committed lease."""
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)
