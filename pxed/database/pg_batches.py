"""A lease store's batches in PostgreSQL, committed off the reactor, in order.

The promise of the SQLite stores (``pxed.database.sqlite``): a lease is committed,
with ``synchronous_commit`` on, before the reply that promises it leaves; writes
gather into a batch and one COMMIT covers it; the engine reads a mirror in memory,
written through and loaded at start.  What differs is the wait: a COMMIT travels
the network, so ``commit()`` hands the batch to the worker thread
(``pxed.database.worker``) and returns a Deferred that fires once it is durable;
the adapter sends the batch's replies then, and meanwhile keeps answering.

Two pxed servers may share the database and serve the same pools (docs/ha.md).  Each
allocates from its own memory, so the database decides: the lease table's address
is UNIQUE, and a bind is an ``INSERT ... ON CONFLICT DO NOTHING`` in the batch's
transaction.  A bind that inserts nothing lost the address to a lease the other
server committed (or is committing: the insert waits for it): the commit's Deferred
fires with the clients whose binds lost, the adapter drops their replies, memory
learns the winner's lease, and the client's retry gets another address.  To lose
less, every commit (at most once a ``PEER_POLL`` seconds) also reads the leases the
other servers committed since the last look, by ``seq``.  That read is a hint (a row
whose sequence number was taken before one already seen, but committed after, is
missed); the constraint is the guarantee.

Batches commit in the order they were handed in, and a batch with no writes still
waits for the ones before it, since its replies may rest on their leases.  When a
batch fails (the database went away, a constraint, a lost connection), memory may
claim leases the database does not hold: every batch already queued behind it
fails too (its writes were decided on that memory), memory is read again from
the database (reconnecting if need be), and until that reload has worked every
commit fails (``writable`` is false), so no reply leaves for a lease that is not
stored.  Writes made on the old memory while the reload ran are dropped with it;
the next batch is still stored (its writes were made on the memory read), but its
replies are dropped with theirs, which they are mixed with.  A failed batch may
still have committed (the connection can die during COMMIT), so the rows known
committed (``committed``, what the engines may still promise while the database
is down; ``pxed.database.stored``) forget what such a batch wrote.

DHCPv4 (``pxed.dhcp.pg_leases``) and DHCPv6 (``pxed.dhcp6.pg_leases``) subclass
``PostgresBatchStore`` with their tables: the rows, a bind, the peers' poll and
what memory learns from them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar, Generic, LiteralString, NoReturn, Protocol, Self, TypeVar

import psycopg
from psycopg.rows import TupleRow
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from pxed.database.connection import connect, redacted
from pxed.database.migrations import migrate
from pxed.database.stored import Row, Stored
from pxed.text import first_line

T = TypeVar("T")
Lease = TypeVar("Lease", bound=Row)  # a row of the lease table: it knows when it expires
Memory = TypeVar("Memory")
Write = tuple[LiteralString, tuple[object, ...]]
PEER_POLL = 1.0  # seconds between reads of the other servers' new leases


@dataclass(frozen=True)
class Bind(Generic[Lease]):
    """A lease to insert only if its address is free in the database too."""

    lease: Lease
    now: float


@dataclass
class Outcome(Generic[Lease]):
    """What a batch's transaction found besides its own writes."""

    # (the lease that lost, the lease holding its address, the server that bound that)
    lost: list[tuple[Lease, Lease | None, str | None]] = field(default_factory=list)
    learned: list[Lease] = field(default_factory=list)  # the other servers' new leases


class Runner(Protocol):
    """Where the database calls run: ``pxed.database.worker.Worker``, or inline in tests."""

    def run(self, call: Callable[[], T]) -> Deferred[T]: ...

    def stop(self) -> None: ...


class Leases(Protocol[Lease]):
    def leases(self) -> list[Lease]: ...


M = TypeVar("M", bound=Leases[Any])


class PostgresBatchStore(Generic[Lease, M]):
    """Durable lease batches in PostgreSQL, with the rows mirrored in an ``M``.

    A subclass sets ``log``, ``Error`` (built from a message), ``SERVICE`` (the log
    lines' prefix) and ``REPLY`` (the reply a lease promises), and says how its rows
    are read (``_read``, ``_last_seq``), bound (``_bind``), polled (``_poll``) and
    learned (``_learn``), and what a bind that lost means (``_lost_bind``).
    """

    log: ClassVar[Logger]
    Error: ClassVar[type[Exception]]
    SERVICE: ClassVar[str]
    REPLY: ClassVar[str]  # what the clients wait for: ACK, REPLY
    _memory: M

    def __init__(
        self, conn: psycopg.Connection[TupleRow], url: str, runner: Runner, server: str = ""
    ) -> None:
        self._conn = conn  # the worker's from here on
        self.url = url
        self.server = server  # written in each lease row; the peers' rows are polled
        self._runner = runner
        self._seq = self._last_seq(conn)
        self._memory = self._read(conn)
        self._stored = self._remember(self._memory.leases())  # what is known committed
        self._polled = 0.0  # worker side: when the peers' leases were last read
        self._writes: list[Write | Bind[Lease]] = []
        self._queued = 0  # batches handed to the worker whose outcome is not back yet
        self._stale = False  # memory may hold what the database lost: reload before trusting it
        self._lost = False  # the next batch's replies rest partly on writes a reload dropped
        self._reloading = False
        self._broken = False  # worker side: a batch failed, later ones fail until a reload
        self.problem: str | None = None  # why commits fail, until a reload has worked (/healthz)

    @classmethod
    def open(cls, url: str, runner: Runner, server: str = "") -> Self:
        """Connect, apply pending schema migrations and load the leases.

        Blocking: called once at start, before any client is answered.
        """
        conn = connect(url)
        try:
            before, now = migrate(conn)
            store = cls(conn, url, runner, server)
        except (psycopg.Error, ValueError) as error:
            conn.close()
            raise cls.Error(
                f"server.database {redacted(url)}: cannot open the lease tables: {error}"
            ) from error
        except Exception:
            conn.close()
            raise
        cls.log.info(
            "{service}: {count} leases in {url}, schema version {now}{migrated}",
            service=cls.SERVICE,
            count=len(store._memory.leases()),
            url=redacted(url),
            now=now,
            migrated=f" (migrated from {before})" if before != now else "",
        )
        return store

    # -- what a family says --------------------------------------------------

    def _read(self, conn: psycopg.Connection[TupleRow]) -> M:
        """The committed leases and quarantines, read in one snapshot."""
        raise NotImplementedError

    def _last_seq(self, conn: psycopg.Connection[TupleRow]) -> int:
        raise NotImplementedError

    def _bind(self, bind: Bind[Lease], outcome: Outcome[Lease]) -> None:
        """Insert unless a live lease holds the address; else note the loss in ``outcome``."""
        raise NotImplementedError

    def _poll(self, outcome: Outcome[Lease]) -> None:
        """Put the leases other servers committed since ``_seq`` in ``outcome.learned``."""
        raise NotImplementedError

    def _learn(self, lease: Lease) -> None:
        """Put another server's lease in memory, unless memory knows a newer one."""
        raise NotImplementedError

    def _lost_bind(self, lease: Lease, holder: Lease | None, server: str | None) -> str:
        """Log a bind that lost, drop it from memory; the client as the adapter names it."""
        raise NotImplementedError

    def _remember(self, rows: list[Lease]) -> Stored[Any, Any, Lease]:
        """``rows``, known committed, by the table's client key and address."""
        raise NotImplementedError

    # -- what is known committed ----------------------------------------------

    def committed(self, key: Any, now: float) -> Lease | None:
        """The client's unexpired lease as the database is known to hold it: what the engine
        may still promise while ``writable`` is false."""
        return self._stored.lease_for(key, now)

    # -- the batch -----------------------------------------------------------

    @property
    def writable(self) -> bool:
        """False from a failed batch until the reload has worked: every commit fails then."""
        return not self._stale

    @property
    def pending(self) -> bool:
        """Whether writes wait for ``commit()``."""
        return bool(self._writes)

    def _queue(self, write: Write | Bind[Lease]) -> None:
        self._writes.append(write)

    def commit(self) -> Deferred[frozenset[str]] | None:
        """Hand the batch to the worker: the Deferred fires once it is durable with the
        clients whose binds lost their address to another server (their replies must
        not leave), or fails with ``Error``.  None when there is nothing to wait for."""
        writes, self._writes = self._writes, []
        if self._stale:
            self._reload()
            raise self.Error(
                f"server.database {redacted(self.url)}: an earlier lease commit failed and"
                " the leases are being read again; this batch's replies are dropped"
            )
        if not writes and self._queued == 0 and not self._lost:
            return None
        self._queued += 1
        done = self._runner.run(partial(self._store, writes))
        done.addBoth(self._returned)
        done.addErrback(self._failed, writes)
        settled = done.addCallback(self._settle, writes)
        if self._lost:
            self._lost = False
            settled.addCallback(self._drop_replies)
        return settled

    def close(self) -> Deferred[None]:
        """Commit what is left, then close the connection and stop the worker."""
        try:
            last: Deferred[frozenset[str]] | None = self.commit()
        except self.Error:
            last = None
        closed = self._runner.run(self._disconnect)
        closed.addBoth(self._stopped)
        return closed if last is None else last.addBoth(lambda result: closed)

    # -- the worker's side ---------------------------------------------------

    def _store(self, writes: list[Write | Bind[Lease]]) -> Outcome[Lease]:
        if self._broken:
            raise self.Error(
                f"server.database {redacted(self.url)}: not written, an earlier batch failed"
            )
        outcome: Outcome[Lease] = Outcome()
        poll = time.monotonic() - self._polled >= PEER_POLL
        if not writes and not poll:
            return outcome
        try:
            with self._conn.transaction():
                for write in writes:
                    if isinstance(write, Bind):
                        self._bind(write, outcome)
                    else:
                        self._conn.execute(*write)
                if poll:
                    self._poll(outcome)
                    self._polled = time.monotonic()
        except psycopg.Error as error:
            self._broken = True
            raise self.Error(
                f"server.database {redacted(self.url)}: lease writes rolled back"
                f" ({first_line(error)}); their replies are dropped and clients will retry"
            ) from error
        return outcome

    def _disconnect(self) -> None:
        """The connection of the moment: a reload queued before may have replaced it."""
        self._conn.close()

    def _fetch(self) -> M:
        if self._conn.closed or self._conn.broken:
            self._conn = connect(self.url)
        self._seq = self._last_seq(self._conn)
        memory = self._read(self._conn)
        self._broken = False
        return memory

    # -- back on the reactor -------------------------------------------------

    def _returned(self, result: T) -> T:
        self._queued -= 1
        return result

    def _failed(self, failure: Failure, writes: list[Write | Bind[Lease]]) -> Failure:
        """``writes`` may or may not be in the database: the connection can die during COMMIT."""
        self._stored.failed(write.lease for write in writes if isinstance(write, Bind))
        self._stale = True
        if self.problem is None:
            self.problem = str(failure.value)
            self.log.error(
                "{service}: {problem}; no {reply} leaves until the leases are stored again",
                service=self.SERVICE,
                reply=self.REPLY,
                problem=self.problem,
            )
        self._reload()
        return failure

    def _reload(self) -> None:
        """Read memory again from the database, unless a read is already on its way."""
        if self._reloading or not self._stale:
            return
        self._reloading = True
        self._runner.run(self._fetch).addCallbacks(self._reloaded, self._reload_failed)

    def _settle(self, outcome: Outcome[Lease], writes: list[Write | Bind[Lease]]) -> frozenset[str]:
        """``writes`` committed.  Memory learns the leases the database holds that it did not
        know; the clients whose binds lost are returned, for the adapter to drop their
        replies."""
        for lease in outcome.learned:
            self._learn(lease)
        lost = set()
        for lease, holder, server in outcome.lost:
            lost.add(self._lost_bind(lease, holder, server))
            if holder is not None:
                self._learn(holder)
        binds = [write.lease for write in writes if isinstance(write, Bind)]
        holders = [holder for _, holder, _ in outcome.lost if holder is not None]
        losers = [lease for lease, _, _ in outcome.lost]
        self._stored.committed(binds, losers, [*outcome.learned, *holders])
        return frozenset(lost)

    def _drop_replies(self, lost: frozenset[str]) -> NoReturn:
        """The batch is stored, but some of its replies were decided on the memory a reload
        replaced, for writes that reload threw away: none may leave."""
        raise self.Error(
            f"server.database {redacted(self.url)}: the leases were read again while this"
            " batch was being made; its writes are stored, its replies are dropped"
        )

    def _reloaded(self, memory: M) -> None:
        """``memory`` holds every row the database had when it was read."""
        self._memory = memory
        self._stored = self._remember(memory.leases())
        self._stale = self._reloading = False
        if self.problem is not None:
            self.problem = None
            self.log.info(
                "{service}: server.database {url} answers again: {count} leases read, serving",
                service=self.SERVICE,
                url=redacted(self.url),
                count=len(memory.leases()),
            )
        if self._writes:  # made on the memory just replaced, so never to be stored; the
            self._writes = []  # replies they promised are dropped with the next batch's
            self._lost = True

    def _reload_failed(self, failure: Failure) -> None:
        self._reloading = False  # the next commit tries again

    def _stopped(self, result: Any) -> Any:
        self._runner.stop()
        return result


def later(one: float | None, other: float | None) -> bool:
    """Whether expiry ``one`` is later than ``other`` (None: never expires)."""
    if one is None or other is None:
        return one is None and other is not None
    return one > other
