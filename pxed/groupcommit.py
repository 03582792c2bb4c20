"""Group commit: what a reactor turn holds back until one commit makes it durable.

A server that promises something durable (a lease in a DHCP ACK, an installed
host in a callback's 200) must not answer before its write is on disk, and an
fsync per answer costs milliseconds of the reactor each. So the answers of one
reactor turn are held, the turn's writes are committed once at its end
(``callLater(0)``), and only then do the held answers leave: a burst of a
hundred requests costs one fsync, not a hundred. If the commit fails, every
held answer goes the failure's way: none claims a write that is not stored.

The DHCP and DHCPv6 adapters hold their replies so (``pxed.datagram.batching``),
the install-state callbacks their HTTP answers (``pxed.provisioning.sqlite_states``).
What is held, how the commit is made (a store's pending writes, or the held
items themselves) and what an answer is stay theirs.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IDelayedCall
from twisted.python.failure import Failure

T = TypeVar("T")
R = TypeVar("R")


class TurnClock(Protocol):
    def callLater(
        self, delay: float, callable: Callable[..., Any], *args: Any, **kw: Any
    ) -> IDelayedCall: ...


class GroupCommit(Generic[T, R]):
    """Items held until the commit at the end of their reactor turn.

    ``commit(batch)`` makes the turn's writes durable (it may return a Deferred:
    the reactor goes on meanwhile, gathering the next batch); then
    ``committed(batch, result)``, or ``not_committed(batch, failure)`` if it
    raised. Past ``limit`` held items the batch is committed at once.
    """

    def __init__(
        self,
        reactor: TurnClock,
        commit: Callable[[list[T]], R | Deferred[R]],
        committed: Callable[[list[T], R], object],
        not_committed: Callable[[list[T], Failure], object],
        limit: int | None = None,
    ) -> None:
        self._reactor = reactor
        self._commit = commit
        self._committed = committed
        self._not_committed = not_committed
        self._limit = limit
        self._held: list[T] = []
        self._call: IDelayedCall | None = None

    def hold(self, item: T) -> None:
        """Keep ``item`` for the end of this turn's commit."""
        self._held.append(item)
        if self._limit is not None and len(self._held) >= self._limit:
            self.flush()
        self.wrote()

    def wrote(self) -> None:
        """This turn wrote something with nothing to hold: commit at its end all the same."""
        if self._call is None:
            self._call = self._reactor.callLater(0, self._end_of_turn)

    def _end_of_turn(self) -> None:
        self._call = None
        self.flush()

    def flush(self) -> Deferred[object]:
        """Commit what is held now; fires once ``committed`` or ``not_committed`` ran."""
        batch, self._held = self._held, []
        done = maybeDeferred(self._commit, batch)
        return done.addCallbacks(
            partial(self._committed, batch), partial(self._not_committed, batch)
        )

    def stop(self) -> Deferred[object]:
        """Commit what is held now and drop the end-of-turn call (the service stops)."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        return self.flush()
