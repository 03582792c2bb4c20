"""The one thread that talks to PostgreSQL, so the reactor never waits on the network.

psycopg 3's async interface needs an asyncio event loop, and pxed runs Twisted's
epoll reactor (its TFTP transfer loop and every service depend on it); switching the
whole daemon to the asyncio reactor for one driver is not worth it.  One connection
serves one query at a time anyway, so one thread that runs the calls in the order
they were handed in is all the concurrency there is to have: the reactor hands it a
batch's COMMIT and goes on answering, and the Deferred fires when the COMMIT returned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

T = TypeVar("T")


class FromThreads(Protocol):
    """The reactor as the worker needs it (IReactorFromThreads)."""

    def callFromThread(self, callable: Callable[..., Any], *args: Any, **kw: Any) -> None: ...


class Worker:
    """Runs calls in one thread, first in first out; results come back on the reactor."""

    def __init__(self, reactor: FromThreads, name: str) -> None:
        self._reactor = reactor
        self._pool = ThreadPool(minthreads=1, maxthreads=1, name=name)

    def run(self, call: Callable[[], T]) -> Deferred[T]:
        if not self._pool.started:
            self._pool.start()
        return deferToThreadPool(cast(IReactorFromThreads, self._reactor), self._pool, call)

    def stop(self) -> None:
        """Join the thread: call once every Deferred from ``run`` has fired."""
        if self._pool.started:
            self._pool.stop()
