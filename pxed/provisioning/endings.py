"""The done and failed callbacks of one reactor turn, committed together.

What ends an install must be on disk before pxed answers the callback
(``pxed.provisioning.lifecycle``), and an fsync holds the reactor, and so every
DHCP and TFTP client, for milliseconds: a rack finishing its installs together
posted 500 callbacks, 500 fsyncs. So a turn's callbacks are held and their
ends committed at the turn's end in one transaction and one fsync
(``pxed.groupcommit``, as DHCP does with its leases); each is answered once
that commit returns. If it fails, nothing of the batch changed, and every
callback of it is told so (the installer's ``curl`` fails and the operator
sees the host still installing, rather than pxed claiming a state it lost).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from pxed.groupcommit import GroupCommit, TurnClock
from pxed.provisioning.lifecycle import HostState, InstallEnd, Lifecycle

log = Logger(namespace="pxed.lifecycle")


@dataclass(frozen=True)
class _Held:
    end: InstallEnd
    answer: Deferred[HostState] = field(default_factory=Deferred)


class InstallEndings:
    """Ends installs for the callbacks: ``end`` fires once the turn's ends are on disk."""

    def __init__(self, lifecycle: Lifecycle, reactor: TurnClock) -> None:
        self.lifecycle = lifecycle
        self._turn: GroupCommit[_Held, list[HostState]] = GroupCommit(
            reactor, self._commit, self._committed, self._not_committed
        )

    def end(self, end: InstallEnd) -> Deferred[HostState]:
        """The host's state once ``end`` is committed with the rest of this turn's; fails
        (LifecycleError) if the commit did, and then nothing of the turn was changed."""
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
                "host {mac}: {outcome} not saved, the callback is refused: {error}",
                mac=held.end.mac,
                outcome=held.end.outcome,
                error=str(failure.value),
            )
            held.answer.errback(failure)
