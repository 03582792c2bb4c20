"""PostgreSQL for the tests: a session server and an empty database per test, on the
throwaway cluster of ``lab/postgres.py``.

``postgres_server`` (once per session) starts a cluster; ``postgres_url`` gives each
test an empty database of its own on it.  ``cluster()`` gives a test a cluster of its
own that it can stop and start again (the database going away).  Tests skip, saying
why, when a cluster cannot run here (``PostgresUnavailable``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.python.failure import Failure

from lab import postgres
from lab.postgres import Cluster, PostgresServer, PostgresUnavailable

_names = itertools.count(1)
T = TypeVar("T")


@contextmanager
def cluster() -> Iterator[Cluster]:
    """lab.postgres.cluster(), or a skip saying why it cannot run here."""
    try:
        postgres.require()
    except PostgresUnavailable as missing:
        pytest.skip(str(missing))
    with postgres.cluster() as made:
        yield made


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with cluster() as running:
        yield running.start()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """An empty database of this test's own, dropped afterwards."""
    import psycopg

    name = f"pxed_test_{os.getpid()}_{next(_names)}"
    admin = postgres_server.url("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield postgres_server.url(name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def committed(store: Any) -> None:
    """Commit a lease store (SQLite, or PostgreSQL through ``Inline``) and raise what it
    failed with: a test reads the outcome as soon as the commit returns."""
    outcome = store.commit()
    if outcome is not None:
        failures: list[BaseException] = []
        outcome.addErrback(lambda failure: failures.append(failure.value))
        if failures:
            raise failures[0]


class Inline:
    """A ``pxed.database.pg_batches.Runner`` that runs each call at once: a test reads the
    outcome of a commit as soon as it returns, without a reactor."""

    def run(self, call: Callable[[], T]) -> Deferred[T]:
        return maybeDeferred(call)

    def stop(self) -> None:
        pass


class Held:
    """A runner that keeps the calls until ``run_all``: commits queued, then answered in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Callable[[], object], Deferred[object]]] = []

    def run(self, call: Callable[[], T]) -> Deferred[T]:
        done: Deferred[T] = Deferred()
        self.calls.append((call, done))  # type: ignore[arg-type]
        return done

    def run_all(self) -> None:
        while self.calls:
            self.run_one()

    def run_one(self) -> None:
        call, done = self.calls.pop(0)
        try:
            result = call()
        except Exception:
            done.errback(Failure())
        else:
            done.callback(result)

    def stop(self) -> None:
        pass


def end_pxed_sessions(url: str) -> None:
    """The database server ends pxed's sessions, as a restart or a lost link would."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'pxed' AND datname = current_database()"
        )
