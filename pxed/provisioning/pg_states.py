"""The daemon's host states in ``server.database``: every query in the database thread.

A query on the reactor thread stalls DHCP, TFTP and HTTP alike while PostgreSQL is
slow or gone (a connect timeout is seconds).  So every call here runs in one worker
thread (``pxed.database.worker``, as the lease commits do) and the reactor keeps a
snapshot of every host's row, which is what must answer at once reads:

- HTTP waits: ``/ks``, ``/preseed``, ``/boot`` and the callbacks read the host's row
  afresh (``refresh``) and write through the worker, rendering with NOT_DONE_YET;
  a database that fails answers 503 (``pxed.provisioning.resources``).
- TFTP cannot wait: its listener opens a generated file inside the reactor's turn
  and the sans-I/O listener engine has no state for "opening", so a per-MAC config
  is rendered from the snapshot.  The snapshot learns every change this server
  makes when it commits, the host's row at every DHCP exchange (``seen`` reads it
  in the worker: the exchange that starts a boot refreshes the host before its
  firmware asks TFTP for a config), and every row each ``POLL_EVERY`` seconds.  A
  done callback posted to the other server is here after at most that; an
  installed machine takes far longer to reboot and reach TFTP.
- DHCP, ``/metrics`` and the status page read the snapshot too; DHCP's ``seen``
  hands its write to the worker and does not wait for it.

The worker runs calls first in first out and hands the results back in that order,
so a poll never overwrites a change made after it was queued.  Changes of state are
announced (event bus, log line) back on the reactor.  While the database fails, the
first failed call logs an error with the host's MAC and the next call that works
logs once that it answers again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from pxed.database.pg_batches import Runner
from pxed.events import EventBus, StateChanged
from pxed.provisioning.lifecycle import HostState, LifecycleError, State, _from_row
from pxed.provisioning.pg_lifecycle import PostgresLifecycle

T = TypeVar("T")
POLL_EVERY = 1.0  # seconds between reads of every host's row into the snapshot

log = Logger(namespace="pxed.lifecycle")


class _InWorker(PostgresLifecycle):
    """The lifecycle the database thread uses: it keeps the changes it commits for the
    reactor to announce."""

    def __init__(self, url: str, server: str) -> None:
        super().__init__(url, server)
        self._made: list[StateChanged] = []

    def announce(self, event: StateChanged) -> None:
        self._made.append(event)

    def announce_now(self, event: StateChanged) -> None:
        super().announce(event)

    def taken(self) -> list[StateChanged]:
        made, self._made = self._made, []
        return made

    def read(self, mac: str) -> HostState | None:
        """``mac``'s row, None if it has none: one primary-key read."""
        row = self._row(mac)
        return None if row is None else _from_row(row)


class PostgresStates:
    """``pxed.provisioning.host_states.HostStates`` over PostgreSQL (module docstring)."""

    def __init__(self, url: str, server: str, runner: Runner, rows: list[HostState]) -> None:
        self._db = _InWorker(url, server)  # the worker's from here on
        self.events: EventBus = self._db.events
        self._runner = runner
        self._snapshot = {state.mac: state for state in rows}
        # (MAC, source) of the seen calls queued: one each is enough in a DHCP storm
        self._seeing: set[tuple[str, str]] = set()
        self._polling = False
        self._poll: LoopingCall | None = None
        self.problem: str | None = None  # why the last call failed, until one works

    @classmethod
    def open(cls, url: str, server: str, runner: Runner) -> PostgresStates:
        """Migrate and read every row now, at start (a bad URL stops pxed; the first TFTP
        answer already knows which hosts are installed); query in ``runner`` after."""
        lifecycle = PostgresLifecycle.open_database(url, server)
        try:
            rows = lifecycle.all()
        finally:
            lifecycle.close()  # twistd forks after this: the worker connects on its own
        return cls(url, server, runner, rows)

    def start(self, clock: IReactorTime) -> None:
        """Read every row into the snapshot each POLL_EVERY seconds."""
        self._poll = LoopingCall(self.poll)
        self._poll.clock = clock
        self._poll.start(POLL_EVERY, now=False)

    def close(self) -> None:
        """Stop polling and join the database thread (at shutdown)."""
        if self._poll is not None and self._poll.running:
            self._poll.stop()
        self._runner.run(self._db.close)
        self._runner.stop()

    # -- at once, from the snapshot ---------------------------------------------------

    def get(self, mac: str) -> HostState:
        return self._snapshot.get(mac) or HostState(mac, State.READY, 0.0, "", ())

    def known(self, mac: str) -> bool:
        return mac in self._snapshot

    def all(self) -> list[HostState]:
        return sorted(self._snapshot.values(), key=lambda state: state.mac)

    def seen(self, mac: str, source: str, now: float) -> HostState:
        """The snapshot's state now; the change (and a fresh read) in the worker."""
        if (mac, source) not in self._seeing:
            self._seeing.add((mac, source))
            seeing = self._call(mac, lambda: self._db.seen(mac, source, now))
            seeing.addErrback(_unexpected).addBoth(self._seen, mac, source)
        return self.get(mac)

    def _seen(self, result: object, mac: str, source: str) -> None:
        """Nothing waits on DHCP's or TFTP's bookkeeping."""
        self._seeing.discard((mac, source))

    # -- in the worker ------------------------------------------------------------------

    def refresh(self, mac: str) -> Deferred[HostState]:
        """``mac``'s row read afresh; the snapshot learns it."""
        reading = self._call(mac, lambda: self._db.read(mac))
        return reading.addCallback(self._learn_read, mac)

    def kickstart_fetched(
        self, mac: str, now: float, limit: int, window: float
    ) -> Deferred[HostState]:
        return self._call(mac, lambda: self._db.kickstart_fetched(mac, now, limit, window))

    def done(self, mac: str, now: float) -> Deferred[HostState]:
        return self._call(mac, lambda: self._db.done(mac, now))

    def failed(self, mac: str, now: float) -> Deferred[HostState]:
        return self._call(mac, lambda: self._db.failed(mac, now))

    def poll(self) -> Deferred[None]:
        """Every row into the snapshot; a failure is logged once and the old one stands."""
        if self._polling:
            return succeed(None)
        self._polling = True
        polling = self._call(None, self._db.all)
        return polling.addCallbacks(self._polled, self._poll_failed)

    def _polled(self, states: list[HostState]) -> None:
        self._polling = False
        self._snapshot = {state.mac: state for state in states}

    def _poll_failed(self, failure: Failure) -> None:
        self._polling = False  # swallowed: a LoopingCall stops on a failure
        _unexpected(failure)

    def _learn_read(self, state: HostState | None, mac: str) -> HostState:
        if state is None:
            self._snapshot.pop(mac, None)
            return self.get(mac)
        self._snapshot[mac] = state
        return state

    # -- the hand-over --------------------------------------------------------------------

    def _call(self, mac: str | None, call: Callable[[], T]) -> Deferred[T]:
        """Run ``call`` in the worker; back on the reactor, announce the changes it made,
        learn the state it returned, and log the outage it starts or ends."""

        def in_worker() -> tuple[T, list[StateChanged]]:
            self._db.taken()  # a call that raised leaves nothing for this one
            return call(), self._db.taken()

        running = self._runner.run(in_worker)
        return running.addCallbacks(
            self._returned, self._failed, callbackArgs=(mac,), errbackArgs=(mac,)
        )

    def _returned(self, result: tuple[T, list[StateChanged]], mac: str | None) -> T:
        value, made = result
        if isinstance(value, HostState):
            self._snapshot[value.mac] = value
        for event in made:
            self._db.announce_now(event)
        if self.problem is not None:
            self.problem = None
            which = f"for {mac}" if mac else "(the poll of every host)"
            log.info("host states: server.database can be read again {which}", which=which, mac=mac)
        return value

    def _failed(self, failure: Failure, mac: str | None) -> Failure:
        failure.trap(LifecycleError)
        if self.problem is None:
            self.problem = str(failure.value)
            log.error(
                "host states {which}: {problem}; HTTP install requests answer 503 and TFTP"
                " answers from the last states read, until the database answers again",
                which=f"for {mac}" if mac else "(the poll of every host)",
                mac=mac,
                problem=self.problem,
            )
        return failure


def _unexpected(failure: Failure) -> None:
    """Where nobody waits for the outcome: a database failure was logged by ``_call``,
    anything else is a bug, logged with its traceback."""
    if not failure.check(LifecycleError):
        log.failure("host states: a call in the database thread failed", failure)
