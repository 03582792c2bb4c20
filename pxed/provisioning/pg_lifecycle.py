"""Host install states, their history and the callback secret in PostgreSQL (``server.database``).

Two pxed servers share one install: a host may fetch its Kickstart through one and
post its done callback to the other, and its next boot, through either, must go to
local disk.  So the states, and the secret that signs the callback tokens, live in
the database they share rather than in each one's ``state_dir``.

The state machine is ``pxed.provisioning.lifecycle``'s; this module only keeps the
rows.  A change is one transaction under an advisory lock on the MAC (a row that
does not exist yet cannot be locked with ``FOR UPDATE``), so two servers, or a
server and ``pxed hosts rearm``, never clobber each other's change.  Each change of
state also appends a ``host_events`` row naming the server that made it.

These calls block on the network: the daemon makes them only in its database
thread (``pxed.provisioning.pg_states``), ``pxed hosts`` and ``pxed explain`` in
their own process.  A database that is down must not hold that thread for a
connect timeout at every call, so after a failed connection no new one is tried
for ``RETRY_AFTER`` seconds: meanwhile every call fails at once with LifecycleError
(the HTTP request is answered 503, the DHCP exchange goes on without its bookkeeping).
"""

from __future__ import annotations

import json
import os
import secrets
import time

import psycopg
from psycopg.rows import TupleRow

from pxed.database.connection import DatabaseUnreachable, connect, redacted
from pxed.database.migrations import SchemaTooNew, migrate
from pxed.events import EventBus
from pxed.provisioning.lifecycle import HostState, Lifecycle, LifecycleError, Row
from pxed.provisioning.tokens import SECRET_BYTES, SecretError
from pxed.text import first_line

RETRY_AFTER = 2.0  # seconds between connection attempts to a database that is down
_COLUMNS = "mac, state, since, source, fetches, generation, server"


class PostgresLifecycle(Lifecycle):
    """``Lifecycle`` over the ``hosts`` and ``host_events`` tables of ``server.database``."""

    def __init__(self, url: str, server: str) -> None:  # not Lifecycle's: no file
        self.events = EventBus()
        self.url = url
        self.server = server
        self._pg: tuple[int, psycopg.Connection[TupleRow]] | None = None
        self._failed_at: float | None = None

    @classmethod
    def open_database(cls, url: str, server: str) -> PostgresLifecycle:
        """Apply pending migrations now (a bad URL stops pxed at start); connect on first use,
        after twistd's fork."""
        where = f"server.database {redacted(url)}"
        try:
            with connect(url) as conn:
                migrate(conn)
        except (DatabaseUnreachable, SchemaTooNew) as error:
            raise LifecycleError(str(error)) from None
        except psycopg.Error as error:
            raise LifecycleError(f"{where}: cannot migrate: {first_line(error)}") from None
        return cls(url, server)

    def close(self) -> None:
        if self._pg is not None and self._pg[0] == os.getpid():
            self._pg[1].close()
        self._pg = None

    @property
    def _db(self) -> psycopg.Connection[TupleRow]:
        """This process's connection, made again if it broke (at most every RETRY_AFTER s)."""
        if self._pg is not None and self._pg[0] == os.getpid() and not self._pg[1].broken:
            return self._pg[1]
        now = time.monotonic()
        if self._failed_at is not None and now - self._failed_at < RETRY_AFTER:
            raise LifecycleError(
                f"server.database {redacted(self.url)}: host states unavailable, the database"
                " is unreachable (retrying)"
            )
        try:
            conn = connect(self.url)
        except DatabaseUnreachable as error:
            self._failed_at = now
            raise LifecycleError(f"{error} (host states)") from None
        self._failed_at = None
        self._pg = (os.getpid(), conn)
        return conn

    def _run(self, sql: str, params: tuple[object, ...] = ()) -> psycopg.Cursor[TupleRow]:
        try:
            return self._db.execute(sql, params)
        except psycopg.Error as error:
            raise LifecycleError(
                f"server.database {redacted(self.url)}: host states: {first_line(error)}"
            ) from None

    def _row(self, mac: str) -> Row | None:
        return self._run(f"SELECT {_COLUMNS} FROM hosts WHERE mac = %s", (mac,)).fetchone()

    def _rows(self) -> list[Row]:
        return self._run(f"SELECT {_COLUMNS} FROM hosts").fetchall()

    def _begin(self, mac: str, durable: bool = True) -> None:
        """``durable`` is ignored: every change commits as the PostgreSQL server is set to."""
        self._run("BEGIN")
        try:
            self._run("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"pxed host {mac}",))
        except LifecycleError:
            self._end(commit=False)  # an open, aborted transaction would fail every later call
            raise

    def _lock(self, mac: str) -> None:
        """The next MAC of a transaction ending several installs (``end_installs``)."""
        self._run("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"pxed host {mac}",))

    def _end(self, commit: bool) -> None:
        self._run("COMMIT" if commit else "ROLLBACK")

    def _write(self, old: HostState, new: HostState) -> None:
        self._run(
            f"INSERT INTO hosts ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (mac) DO UPDATE SET state = EXCLUDED.state, since = EXCLUDED.since,"
            " source = EXCLUDED.source, fetches = EXCLUDED.fetches,"
            " generation = EXCLUDED.generation, server = EXCLUDED.server",
            (
                new.mac,
                new.state.value,
                new.since,
                new.source,
                json.dumps(list(new.fetches)),
                new.generation,
                new.server,
            ),
        )
        if new.state is not old.state:
            self._run(
                "INSERT INTO host_events (at, mac, old, new, source, server)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (new.since, new.mac, old.state.value, new.state.value, new.source, new.server),
            )

    def history(self, mac: str) -> list[tuple[float, str, str, str, str]]:
        """(at, old, new, source, server) of every change of ``mac``'s state, oldest first."""
        return self._run(
            "SELECT at, old, new, source, server FROM host_events WHERE mac = %s ORDER BY id",
            (mac,),
        ).fetchall()


def shared_secret(url: str) -> bytes:
    """The callback secret every pxed on ``url`` signs with: made by the first to start.

    ``ON CONFLICT DO NOTHING`` then a read: two servers starting together both read
    the one row that won.  Whoever can read the ``secrets`` table can mark any host
    installed, as whoever can read ``state_dir/callback.secret`` can with SQLite.
    """
    where = f"server.database {redacted(url)}"
    try:
        with connect(url) as conn:
            conn.execute(
                "INSERT INTO secrets (name, value) VALUES ('callback', %s)"
                " ON CONFLICT (name) DO NOTHING",
                (secrets.token_bytes(SECRET_BYTES),),
            )
            row = conn.execute("SELECT value FROM secrets WHERE name = 'callback'").fetchone()
    except DatabaseUnreachable as error:
        raise SecretError(str(error)) from None
    except psycopg.Error as error:
        raise SecretError(
            f"{where}: cannot read the callback secret: {first_line(error)}"
        ) from None
    if row is None or len(row[0]) < 16:
        raise SecretError(f"{where}: the callback secret in table secrets is missing or short")
    return bytes(row[0])
