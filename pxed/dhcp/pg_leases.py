"""Durable DHCP leases in PostgreSQL (``server.database``), committed off the reactor.

The same promise as the SQLite store (``pxed.dhcp.leases``): a lease is committed,
with ``synchronous_commit`` on, before its ACK leaves; writes gather into a batch
and one COMMIT covers it; the engine reads a ``MemoryLeaseStore`` mirror, written
through and loaded at start.  What differs is the wait: a COMMIT travels the
network, so ``commit()`` hands the batch to the worker thread
(``pxed.database.worker``) and returns a Deferred that fires once it is durable;
the adapter sends the batch's replies then, and meanwhile keeps answering.

Two pxed servers may share the database and serve the same pools (docs/ha.md).  Each
allocates from its own memory, which does not know every lease the other bound, so
the database decides: ``leases.ip`` is UNIQUE, and a bind is an ``INSERT ... ON
CONFLICT DO NOTHING`` in the batch's transaction.  A bind that inserts nothing lost
the address to a lease the other server committed (or is committing: the insert
waits for it): that client's reply is not sent (the commit's Deferred fires with the
MACs whose binds lost, and the adapter skips their replies), memory learns the
winner's lease, and the client's retry gets a NAK or another address.  Both servers
start a client's probe at the same MAC-hashed address, so they mostly agree anyway;
to lose less, every commit (at most once a ``PEER_POLL`` seconds) also reads the
leases the other servers committed since the last look, by ``seq``.  That read is a
hint (a row whose sequence number was taken before one already seen, but committed
after, is missed); the constraint is the guarantee.

Batches commit in the order they were handed in, and a batch with no writes still
waits for the ones before it, since its replies may rest on their leases.  When a
batch fails (the database went away, a constraint, a lost connection), memory may
claim leases the database does not hold: every batch already queued behind it
fails too (its writes were decided on that memory), memory is read again from
the database (reconnecting if need be), and until that reload has worked every
commit fails, so no ACK leaves for a lease that is not stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from ipaddress import IPv4Address
from typing import Any, LiteralString, Protocol, TypeVar

import psycopg
from psycopg.rows import TupleRow
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from protocols.dhcp.leases import Lease, LeaseState, MemoryLeaseStore
from pxed.database.connection import connect, first_line, redacted
from pxed.database.migrations import migrate
from pxed.dhcp.leases import LeaseDatabaseError, MirroredLeases

T = TypeVar("T")
log = Logger(namespace="pxed.dhcp")
Write = tuple[LiteralString, tuple[object, ...]]
PEER_POLL = 1.0  # seconds between reads of the other servers' new leases
_LEASE = "mac, host(ip), expires, hostname"


@dataclass(frozen=True)
class Bind:
    """A lease to insert only if its address is free in the database too."""

    lease: Lease
    now: float


@dataclass
class Outcome:
    """What a batch's transaction found besides its own writes."""

    lost: list[tuple[Lease, Lease | None, str | None]] = field(default_factory=list)
    learned: list[Lease] = field(default_factory=list)  # the other servers' new leases


class Runner(Protocol):
    """Where the database calls run: ``pxed.database.worker.Worker``, or inline in tests."""

    def run(self, call: Callable[[], T]) -> Deferred[T]: ...

    def stop(self) -> None: ...


class PostgresLeaseStore(MirroredLeases):
    """A ``LeaseStore`` whose bound leases and quarantines are in PostgreSQL once committed."""

    def __init__(
        self, conn: psycopg.Connection[TupleRow], url: str, runner: Runner, server: str = ""
    ) -> None:
        self._conn = conn  # the worker's from here on
        self.url = url
        self.server = server  # written in each lease row; the peers' rows are polled
        self._runner = runner
        self._seq = _last_seq(conn)
        self._memory = _read(conn)
        self._polled = 0.0  # worker side: when the peers' leases were last read
        self._writes: list[Write | Bind] = []
        self._queued = 0  # batches handed to the worker whose outcome is not back yet
        self._stale = False  # memory may hold what the database lost: reload before trusting it
        self._lost = False  # writes made since the last commit were dropped by a reload
        self._reloading = False
        self._broken = False  # worker side: a batch failed, later ones fail until a reload
        self.problem: str | None = None  # why commits fail, until a reload has worked (/healthz)

    @classmethod
    def open(cls, url: str, runner: Runner, server: str = "") -> PostgresLeaseStore:
        """Connect, apply pending schema migrations and load the leases.

        Blocking: called once at start, before any client is answered.
        """
        conn = connect(url)
        try:
            before, now = migrate(conn)
            store = cls(conn, url, runner, server)
        except (psycopg.Error, ValueError) as error:
            conn.close()
            raise LeaseDatabaseError(
                f"server.database {redacted(url)}: cannot open the lease tables: {error}"
            ) from error
        except Exception:
            conn.close()
            raise
        log.info(
            "dhcp: {count} leases in {url}, schema version {now}{migrated}",
            count=len(store.leases()),
            url=redacted(url),
            now=now,
            migrated=f" (migrated from {before})" if before != now else "",
        )
        return store

    # -- writes ------------------------------------------------------------

    def bind(self, lease: Lease, now: float) -> None:
        self._memory.bind(lease, now)
        self._writes.append(Bind(lease, now))

    def release(self, mac: str) -> None:
        self._memory.release(mac)
        self._writes.append(("DELETE FROM leases WHERE mac = %s", (mac,)))

    def quarantine(self, ip: IPv4Address, until: float) -> None:
        self._memory.quarantine(ip, until)
        self._writes.append(("DELETE FROM leases WHERE ip = %s", (ip,)))
        self._writes.append(
            (
                "INSERT INTO quarantine (ip, until) VALUES (%s, %s)"
                " ON CONFLICT (ip) DO UPDATE SET until = EXCLUDED.until",
                (ip, until),
            )
        )

    def expire(self, now: float) -> list[Lease]:
        """Delete expired leases and quarantines; return the leases that went."""
        gone = self._memory.expire(now)
        self._writes.append(
            ("DELETE FROM leases WHERE expires IS NOT NULL AND expires <= %s", (now,))
        )
        self._writes.append(("DELETE FROM quarantine WHERE until <= %s", (now,)))
        return gone

    @property
    def pending(self) -> bool:
        """Whether writes wait for ``commit()``."""
        return bool(self._writes)

    def commit(self) -> Deferred[frozenset[str]] | None:
        """Hand the batch to the worker: the Deferred fires once it is durable with the
        MACs whose binds lost their address to another server (their replies must not
        leave), or fails with LeaseDatabaseError.  None when there is nothing to wait for."""
        writes, self._writes = self._writes, []
        if self._stale or self._lost:
            self._lost = False
            self._reload()
            raise LeaseDatabaseError(
                f"server.database {redacted(self.url)}: an earlier lease commit failed and"
                " the leases are being read again; this batch's replies are dropped"
            )
        if not writes and self._queued == 0:
            return None
        self._queued += 1
        done = self._runner.run(partial(self._store, writes))
        done.addBoth(self._returned)
        done.addErrback(self._failed)
        return done.addCallback(self._settle)

    def close(self) -> Deferred[None]:
        """Commit what is left, then close the connection and stop the worker."""
        try:
            last: Deferred[frozenset[str]] | None = self.commit()
        except LeaseDatabaseError:
            last = None
        closed = self._runner.run(self._disconnect)
        closed.addBoth(self._stopped)
        return closed if last is None else last.addBoth(lambda result: closed)

    # -- the worker's side ---------------------------------------------------

    def _store(self, writes: list[Write | Bind]) -> Outcome:
        if self._broken:
            raise LeaseDatabaseError(
                f"server.database {redacted(self.url)}: not written, an earlier batch failed"
            )
        outcome = Outcome()
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
        except psycopg.Error as error:
            self._broken = True
            raise LeaseDatabaseError(
                f"server.database {redacted(self.url)}: lease writes rolled back"
                f" ({first_line(error)}); their replies are dropped and clients will retry"
            ) from error
        return outcome

    def _bind(self, bind: Bind, outcome: Outcome) -> None:
        """The client's old row goes, and an expired one on the address; then the insert,
        which a live lease on the address (committed, or committing elsewhere) refuses."""
        lease = bind.lease
        self._conn.execute(
            "DELETE FROM leases WHERE mac = %s"
            " OR (ip = %s AND expires IS NOT NULL AND expires <= %s)",
            (lease.mac, lease.ip, bind.now),
        )
        inserted = self._conn.execute(
            "INSERT INTO leases (mac, ip, expires, hostname, server)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING seq",
            (lease.mac, lease.ip, lease.expires, lease.hostname, self.server),
        ).fetchone()
        if inserted is not None:
            return
        row = self._conn.execute(
            f"SELECT {_LEASE}, server FROM leases WHERE ip = %s", (lease.ip,)
        ).fetchone()
        holder = None if row is None else _lease(row[:4])
        outcome.lost.append((lease, holder, None if row is None else row[4]))

    def _poll(self, outcome: Outcome) -> None:
        rows = self._conn.execute(
            f"SELECT {_LEASE}, seq FROM leases WHERE seq > %s AND server IS DISTINCT FROM %s"
            " ORDER BY seq",
            (self._seq, self.server),
        ).fetchall()
        outcome.learned = [_lease(row[:4]) for row in rows]
        if rows:
            self._seq = rows[-1][4]
        self._polled = time.monotonic()

    def _disconnect(self) -> None:
        """The connection of the moment: a reload queued before may have replaced it."""
        self._conn.close()

    def _fetch(self) -> MemoryLeaseStore:
        if self._conn.closed or self._conn.broken:
            self._conn = connect(self.url)
        self._seq = _last_seq(self._conn)
        memory = _read(self._conn)
        self._broken = False
        return memory

    # -- back on the reactor -------------------------------------------------

    def _returned(self, result: T) -> T:
        self._queued -= 1
        return result

    def _failed(self, failure: Failure) -> Failure:
        self._stale = True
        if self.problem is None:
            self.problem = str(failure.value)
            log.error(
                "dhcp: {problem}; no ACK leaves until the leases are stored again",
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

    def _settle(self, outcome: Outcome) -> frozenset[str]:
        """Memory learns the leases the database holds that it did not know; the MACs whose
        binds lost are returned, for the adapter to drop their replies."""
        for lease in outcome.learned:
            self._learn(lease)
        for lease, holder, server in outcome.lost:
            log.warn(
                "dhcp {mac}: {ip} was bound meanwhile by server {server} to {holder};"
                " no ACK sent, the client will retry and get another address",
                mac=lease.mac,
                ip=str(lease.ip),
                server=server or "?",
                holder=holder.mac if holder else "?",
            )
            mine = self._memory.lease_for(lease.mac, float("-inf"))
            if mine is not None and mine.ip == lease.ip:
                self._memory.release(lease.mac)
            if holder is not None:
                self._learn(holder)
        return frozenset(lease.mac for lease, _, _ in outcome.lost)

    def _learn(self, lease: Lease) -> None:
        """Put another server's lease in memory, unless memory knows a newer one (a later
        expiry) for that client or that address."""
        always = float("-inf")
        for mac in (lease.mac, self._memory.holder_of(lease.ip, always)):
            known = None if mac is None else self._memory.lease_for(mac, always)
            if known is not None and _later(known.expires, lease.expires):
                return
        holder = self._memory.holder_of(lease.ip, always)
        if holder is not None and holder != lease.mac:
            self._memory.release(holder)
        self._memory.bind(lease, always)

    def _reloaded(self, memory: MemoryLeaseStore) -> None:
        self._memory = memory
        self._stale = self._reloading = False
        if self.problem is not None:
            self.problem = None
            log.info(
                "dhcp: server.database {url} answers again: {count} leases read, serving",
                url=redacted(self.url),
                count=len(memory.leases()),
            )
        if self._writes:  # made on the memory just replaced, and never stored
            self._writes = []
            self._lost = True

    def _reload_failed(self, failure: Failure) -> None:
        self._reloading = False  # the next commit tries again

    def _stopped(self, result: Any) -> Any:
        self._runner.stop()
        return result


def _lease(row: tuple[Any, ...]) -> Lease:
    mac, ip, expires, hostname = row
    return Lease(mac, IPv4Address(ip), expires, LeaseState.BOUND, hostname)


def _later(one: float | None, other: float | None) -> bool:
    """Whether expiry ``one`` is later than ``other`` (None: never expires)."""
    if one is None or other is None:
        return one is None and other is not None
    return one > other


def _last_seq(conn: psycopg.Connection[TupleRow]) -> int:
    row = conn.execute("SELECT coalesce(max(seq), 0) FROM leases").fetchone()
    return 0 if row is None else int(row[0])


def _read(conn: psycopg.Connection[TupleRow]) -> MemoryLeaseStore:
    """The committed leases and quarantines, read in one snapshot."""
    memory = MemoryLeaseStore()
    with conn.transaction():
        leases = conn.execute(f"SELECT {_LEASE} FROM leases").fetchall()
        quarantined = conn.execute("SELECT host(ip), until FROM quarantine").fetchall()
    for row in leases:
        memory.bind(_lease(row), float("-inf"))
    for ip, until in quarantined:
        memory.quarantine(IPv4Address(ip), until)
    return memory


# The read API, for tools beside the running server (``pxed leases``): one short
# connection, committed rows only, in the shapes ``pxed.dhcp.leases`` returns.
def read_table(
    url: str,
) -> tuple[list[tuple[str, str, float | None, str | None, str | None]], list[tuple[str, float]]]:
    """(mac, ip, expires, hostname, server) of every lease by address, and (ip, until) of
    every quarantined address, soonest first.  Raises DatabaseUnreachable or psycopg.Error."""
    with connect(url) as conn, conn.transaction():
        leases = conn.execute(f"SELECT {_LEASE}, server FROM leases ORDER BY ip").fetchall()
        quarantined = conn.execute(
            "SELECT host(ip), until FROM quarantine ORDER BY until"
        ).fetchall()
    return leases, quarantined
