"""The PostgreSQL schema, in numbered steps, applied at start in one transaction.

``schema_version`` holds one row: how many steps of ``MIGRATIONS`` the database has.
The daemon applies the missing ones at start, all in one transaction under an
advisory lock, so a second pxed starting at the same moment waits and then finds
nothing to do, and a step that fails leaves the database as it was.  ``pxed check``
only reads the version (``status``).  A database newer than this pxed is refused:
its tables may mean something this code does not know.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import LiteralString

import psycopg
from psycopg.rows import TupleRow

from pxed.database.connection import DatabaseUnreachable, connect, redacted
from pxed.text import first_line

# MIGRATIONS[n] takes a database at schema version n to n + 1.  Never edit a step that
# has shipped: add one.  Times are seconds since the epoch, as the engine counts them.
MIGRATIONS: tuple[tuple[LiteralString, ...], ...] = (
    (
        "CREATE TABLE leases (mac text PRIMARY KEY, ip inet NOT NULL UNIQUE,"
        " expires double precision, hostname text)",
        "CREATE TABLE quarantine (ip inet PRIMARY KEY, until double precision NOT NULL)",
    ),
    (  # host install states, their history and the callback secret, shared by every pxed
        "CREATE TABLE hosts (mac text PRIMARY KEY, state text NOT NULL,"
        " since double precision NOT NULL, source text NOT NULL, fetches text NOT NULL,"
        " generation integer NOT NULL DEFAULT 0, server text NOT NULL)",
        "CREATE TABLE host_events (id bigserial PRIMARY KEY, at double precision NOT NULL,"
        " mac text NOT NULL, old text NOT NULL, new text NOT NULL, source text NOT NULL,"
        " server text NOT NULL)",
        "CREATE INDEX host_events_mac ON host_events (mac, id)",
        "CREATE TABLE secrets (name text PRIMARY KEY, value bytea NOT NULL)",
    ),
    (  # which server bound each lease; seq orders them for the peers' polls
        "ALTER TABLE leases ADD COLUMN server text",
        "ALTER TABLE leases ADD COLUMN seq bigserial",
        "CREATE INDEX leases_seq ON leases (seq)",
    ),
    (  # each server's heartbeat, by the database's clock: who splits the clients (docs/ha.md)
        "CREATE TABLE servers (name text PRIMARY KEY, addresses inet[] NOT NULL,"
        " beat timestamptz NOT NULL)",
    ),
    (  # DHCPv6 bindings, one address per IA; UNIQUE(address): two servers never bind one
        # address to two IAs.  seq orders them for the peers' polls, as in leases.
        "CREATE TABLE leases6 (client bytea NOT NULL, iaid bigint NOT NULL,"
        " address inet NOT NULL UNIQUE, expires double precision NOT NULL, mac text,"
        " server text, seq bigserial, PRIMARY KEY (client, iaid))",
        "CREATE INDEX leases6_seq ON leases6 (seq)",
        "CREATE TABLE quarantine6 (address inet PRIMARY KEY, until double precision NOT NULL)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
_LOCK = 0x70786564  # "pxed": the advisory lock that serialises migrations between servers


class SchemaTooNew(Exception):
    """The database was migrated by a newer pxed than this one."""


@dataclass(frozen=True)
class SchemaStatus:
    version: int  # 0: a database pxed never touched

    @property
    def pending(self) -> int:
        return SCHEMA_VERSION - self.version


def status(conn: psycopg.Connection[TupleRow]) -> SchemaStatus:
    """The database's schema version, read without changing anything."""
    exists = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    version = 0
    if exists and exists[0]:
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        version = 0 if row is None else int(row[0])
    return SchemaStatus(version)


def read_status(url: str) -> SchemaStatus:
    """Connect once and read the schema version, or say in one line why not.

    At start this runs before twistd forks, so a database that is down or newer
    than this pxed stops it with that line rather than a traceback after the fork;
    ``pxed check`` prints the same.  Raises DatabaseUnreachable or SchemaTooNew.
    """
    where = f"server.database {redacted(url)}"
    try:
        with connect(url) as conn:
            schema = status(conn)
    except psycopg.Error as error:
        raise DatabaseUnreachable(
            f"{where}: cannot read the schema version: {first_line(error)}"
        ) from error
    if schema.version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"{where}: schema version {schema.version} is newer than this pxed understands"
            f" ({SCHEMA_VERSION}); upgrade pxed"
        )
    return schema


def migrate(conn: psycopg.Connection[TupleRow]) -> tuple[int, int]:
    """Apply the pending steps; return (version before, version now).

    Raises SchemaTooNew, or psycopg.Error with nothing applied.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        before = 0 if row is None else int(row[0])
        if before > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"database schema {before} is newer than this pxed understands"
                f" ({SCHEMA_VERSION}); upgrade pxed"
            )
        for step in MIGRATIONS[before:]:
            for statement in step:
                conn.execute(statement)
        conn.execute("DELETE FROM schema_version")
        conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (SCHEMA_VERSION,))
    return before, SCHEMA_VERSION
