"""Connections to ``server.database``: every one durable on commit, every failure one line.

A lease is promised in an ACK only after its COMMIT returns, so each session sets
``synchronous_commit = on`` itself rather than trusting the server's or the role's
default (``off`` or ``local`` would let a COMMIT return before the WAL, or the
synchronous standby, has it).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow

from pxed.text import first_line

# Unless the URL says otherwise: a database that does not answer must not hold DHCP for
# long.  Every batch waits for the one before it, so a COMMIT hung on a dead TCP peer would
# hold every later ACK: libpq gives up on a connection whose data go unacknowledged for
# tcp_user_timeout ms (or whose keepalives go unanswered), the batch fails, the store
# reconnects.  Ignored on Unix sockets, which cannot hang so.
CONNECTION_DEFAULTS = {
    "application_name": "pxed",
    "connect_timeout": "5",
    "tcp_user_timeout": "10000",
    "keepalives_idle": "10",
    "keepalives_interval": "3",
    "keepalives_count": "3",
}


class DatabaseUnreachable(Exception):
    """``server.database`` cannot be connected to; the message names it without its password."""


def redacted(url: str) -> str:
    """``url`` fit for a log line: any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def connect(url: str) -> psycopg.Connection[TupleRow]:
    """A connection whose COMMIT returns only once the transaction is durable.

    In autocommit mode: a transaction is exactly a ``with conn.transaction()`` block,
    never one a stray SELECT left open.
    """
    try:
        given = conninfo_to_dict(url)
        defaults = {key: value for key, value in CONNECTION_DEFAULTS.items() if key not in given}
        conn = psycopg.connect(make_conninfo(url, **defaults), autocommit=True)
    except psycopg.Error as error:
        raise DatabaseUnreachable(
            f"server.database {redacted(url)}: cannot connect: {first_line(error)}"
        ) from error
    try:
        conn.execute("SET synchronous_commit TO on")
    except psycopg.Error as error:
        conn.close()
        raise DatabaseUnreachable(
            f"server.database {redacted(url)}: connected, then failed: {first_line(error)}"
        ) from error
    return conn
