"""The daemon's host states in SQLite: a reactor turn's done and failed callbacks, one fsync.

What ends an install must be on disk before pxed answers the callback
(``pxed.provisioning.lifecycle``), and an fsync holds the reactor, and so every
DHCP and TFTP client, for milliseconds: a rack finishing its installs together
posted 500 callbacks, 500 fsyncs. So a turn's done and failed calls are held and
their ends committed at the turn's end in one transaction and one fsync
(``pxed.groupcommit``, as DHCP does with its leases); each answers once that
commit returns. If it fails, nothing of the batch changed and each answer fails
with the LifecycleError (the callback gets 503, its installer's ``curl`` fails,
and the host keeps its state and its token).

Everything else is the ``Lifecycle``'s, answered at once: reads from the local
file, and the changes of a boot on its way, which commit without an fsync.
``pxed.provisioning.pg_states`` is the PostgreSQL side of the same protocol
(``pxed.provisioning.host_states``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from pxed.events import EventBus
from pxed.groupcommit import GroupCommit, TurnClock
from pxed.provisioning.lifecycle import HostState, InstallEnd, Lifecycle

log = Logger(namespace="pxed.lifecycle")


@dataclass(frozen=True)
class _Held:
    end: InstallEnd
    answer: Deferred[HostState] = field(default_factory=Deferred)


class SqliteStates:
    """``pxed.provisioning.host_states.HostStates`` over SQLite (module docstring)."""

    def __init__(self, lifecycle: Lifecycle, reactor: TurnClock) -> None:
        self.lifecycle = lifecycle
        self.events: EventBus = lifecycle.events
        self._turn: GroupCommit[_Held, list[HostState]] = GroupCommit(
            reactor, self._commit, self._committed, self._not_committed
        )

    # -- at once, from the file -------------------------------------------------------

    def get(self, mac: str) -> HostState:
        return self.lifecycle.get(mac)

    def known(self, mac: str) -> bool:
        return self.lifecycle.known(mac)

    def all(self) -> list[HostState]:
        return self.lifecycle.all()

    def seen(self, mac: str, source: str, now: float) -> HostState:
        return self.lifecycle.seen(mac, source, now)

    def refresh(self, mac: str) -> HostState:
        return self.lifecycle.refresh(mac)

    def kickstart_fetched(self, mac: str, now: float, limit: int, window: float) -> HostState:
        return self.lifecycle.kickstart_fetched(mac, now, limit, window)

    # -- at the end of the turn ---------------------------------------------------------

    def done(self, mac: str, now: float) -> Deferred[HostState]:
        return self._end(InstallEnd(mac, "done", now))

    def failed(self, mac: str, now: float) -> Deferred[HostState]:
        return self._end(InstallEnd(mac, "failed", now))

    def _end(self, end: InstallEnd) -> Deferred[HostState]:
        held = _Held(end)
        self._turn.hold(held)
        return held.answer

    def _commit(self, batch: list[_Held]) -> list[HostState]:
        return self.lifecycle.end_installs([held.end for held in batch]) if batch else []

    @staticmethod
    def _committed(batch: list[_Held], states: list[HostState]) -> None:
        for held, state in zip(batch, states, strict=True):
            held.answer.callback(state)

    @staticmethod
    def _not_committed(batch: list[_Held], failure: Failure) -> None:
        for held in batch:
            log.error(
                "host {mac}: {outcome} not saved, the callback is answered 503: {error}",
                mac=held.end.mac,
                outcome=held.end.outcome,
                error=str(failure.value),
            )
            held.answer.errback(failure)
