"""Which pxed servers sharing ``server.database`` are alive, for the client split.

Every ``BEAT`` seconds this server writes its row in ``servers`` (its name, the
addresses it answers from, the database's ``clock_timestamp()``) and reads every
row back in the same transaction; a server whose beat is older than
``server.peer_timeout`` is gone.  The database's clock judges every beat, so the
servers' own clocks may disagree.  The exchange runs in a thread of its own with a
connection of its own (``pxed.database.worker``): the reactor never waits on it,
and a lease batch stuck behind a lock does not make this server look dead.  The
row is committed with ``synchronous_commit`` off: a beat lost in a crash of the
database only makes this server look gone a second sooner.

What the split does with the result is ``protocols.dhcp.split``; while the
database cannot be read, the last live set stands (no lease commits then either).
The same live set shares out the DHCPv6 pools' free addresses (``share``).
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address
from typing import Any

import psycopg
from psycopg.rows import TupleRow
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from protocols.dhcp.split import Peers
from protocols.share import Share
from pxed.database.connection import connect, redacted
from pxed.database.pg_batches import Runner
from pxed.text import first_line

BEAT = 1.0  # seconds between heartbeats
Row = tuple[str, list[IPv4Address], bool]  # name, addresses, alive
log = Logger(namespace="pxed.dhcp")


class Heartbeat:
    """This server's heartbeat row, and the live set read with it (``peers``)."""

    def __init__(
        self,
        url: str,
        name: str,
        addresses: Iterable[IPv4Address],
        timeout: float,
        runner: Runner,
        clock: Any,
    ) -> None:
        self.url = url
        self.name = name
        self.addresses = tuple(addresses)
        self.timeout = timeout
        self.peers = Peers(name, frozenset({name}))
        self.problem: str | None = None  # why the last beat failed, until one works
        self._runner = runner
        self._conn: psycopg.Connection[TupleRow] | None = None  # the worker's
        self._beating = False
        self._loop = LoopingCall(self.beat)
        self._loop.clock = clock

    def start(self) -> None:
        self._loop.start(BEAT, now=True)

    def share(self) -> Share:
        """This server's share of each pool's free addresses, by the live set last read:
        DHCPv6's adapter asks it too (its clients are not split, its free addresses are)."""
        return self.peers.share

    def stop(self) -> Deferred[None]:
        """Stop beating, close the connection and the thread: the peers see this server
        gone after ``timeout`` (a stopping server answers nothing more anyway)."""
        if self._loop.running:
            self._loop.stop()
        closed = self._runner.run(self._disconnect)
        return closed.addBoth(self._stopped)

    def beat(self) -> Deferred[None]:
        """One exchange with the database, unless the last one has not returned yet."""
        if self._beating:
            return succeed(None)
        self._beating = True
        exchanged = self._runner.run(self._exchange)
        read: Deferred[None] = exchanged.addCallbacks(self._read, self._failed)
        return read.addBoth(self._done)

    # -- the worker's side ---------------------------------------------------

    def _exchange(self) -> list[Row]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = connect(self.url)
        conn = self._conn
        with conn.transaction():
            conn.execute("SET LOCAL synchronous_commit TO off")
            conn.execute(
                "INSERT INTO servers (name, addresses, beat) VALUES (%s, %s, clock_timestamp())"
                " ON CONFLICT (name) DO UPDATE SET addresses = EXCLUDED.addresses,"
                " beat = EXCLUDED.beat",
                (self.name, list(self.addresses)),
            )
            rows = conn.execute(
                "SELECT name, addresses, clock_timestamp() - beat < make_interval(secs => %s)"
                " FROM servers",
                (self.timeout,),
            ).fetchall()
        return [(name, list(addresses), bool(alive)) for name, addresses, alive in rows]

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()

    # -- back on the reactor -------------------------------------------------

    def _read(self, rows: list[Row]) -> None:
        if self.problem is not None:
            self.problem = None
            log.info("dhcp: heartbeats readable again in {url}", url=redacted(self.url))
        live = frozenset(name for name, _, alive in rows if alive) | {self.name}
        # An address a live server answers from is never a gone one's (a renamed server
        # leaves its old row behind, with the same addresses).
        answering = {
            IPv4Address(a) for name, addresses, _ in rows if name in live for a in addresses
        }
        gone = (
            frozenset(
                IPv4Address(address)
                for name, addresses, _ in rows
                if name not in live
                for address in addresses
            )
            - answering
            - set(self.addresses)
        )
        before, self.peers = self.peers, Peers(self.name, live, gone)
        if live != before.live:
            log.info(
                "dhcp: servers answering clients now: {live}{took}",
                live=", ".join(sorted(live)),
                took=" (this one answers every client)" if live == {self.name} else "",
                gone=", ".join(sorted(before.live - live)),
            )

    def _failed(self, failure: Failure) -> None:
        problem = first_line(failure.value) if isinstance(failure.value, Exception) else ""
        if self.problem is None:
            log.warn(
                "dhcp: heartbeat to {url} failed ({problem}); the client split stays as it was",
                url=redacted(self.url),
                problem=problem,
            )
        self.problem = problem or "heartbeat failed"  # the next beat reconnects if need be

    def _done(self, result: None) -> None:
        self._beating = False

    def _stopped(self, result: Any) -> None:
        self._runner.stop()
