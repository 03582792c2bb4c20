"""What the daemon asks of the host install states, whichever database keeps them.

Two kinds of answer.  What must answer at once, because a TFTP transfer, a DHCP
reply or the status page is waiting in the reactor's turn (``get``, ``known``,
``all``, ``seen``), answers from what is in memory: SQLite's ``Lifecycle`` reads
its local file, ``PostgresStates`` its snapshot of the shared table and hands the
write to the database thread.  What an HTTP request may wait for (``refresh``,
``kickstart_fetched``, ``done``, ``failed``) may answer with a Deferred: the
resources take either through ``maybeDeferred`` and render with NOT_DONE_YET.

``Lifecycle`` fits as it is (tests, tools); the daemon's SQLite side is
``pxed.provisioning.sqlite_states.SqliteStates``, which commits a reactor turn's done
and failed together, and ``pxed.provisioning.pg_states.PostgresStates`` the
PostgreSQL side.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, Protocol

from twisted.internet.defer import Deferred, fail, succeed

from pxed.events import EventBus
from pxed.provisioning.lifecycle import HostState

Answer = HostState | Deferred[HostState]
P = ParamSpec("P")


class HostStates(Protocol):
    """The install states as the resources, the generated files and the operator pages use them."""

    events: EventBus

    def get(self, mac: str) -> HostState: ...

    def known(self, mac: str) -> bool: ...

    def all(self) -> list[HostState]: ...

    def seen(self, mac: str, source: str, now: float) -> HostState: ...

    def refresh(self, mac: str) -> Answer: ...

    def kickstart_fetched(self, mac: str, now: float, limit: int, window: float) -> Answer: ...

    def done(self, mac: str, now: float) -> Answer: ...

    def failed(self, mac: str, now: float) -> Answer: ...


def ask(call: Callable[P, Answer], *args: P.args, **kwargs: P.kwargs) -> Deferred[HostState]:
    """``call``'s answer as a Deferred, whichever kind it gives (an error raised too)."""
    try:
        answer = call(*args, **kwargs)
    except Exception:
        return fail()
    return answer if isinstance(answer, Deferred) else succeed(answer)
