"""Host install states, persisted in ``server.state_dir/hosts.sqlite3`` (or, with
``server.database``, in PostgreSQL: ``pxed.provisioning.pg_lifecycle``).

ready -> booting (DHCP, TFTP or HTTP saw the host) -> installing (Kickstart fetched)
-> installed (done callback) or failed (failed callback); ``looping`` when the
loop breaker trips. ``pxed hosts rearm MAC`` puts a host back to ready.

SQLite rather than a JSON file because two processes write: the daemon, and
``pxed hosts rearm`` run by an operator while it serves. Every change is one
transaction that reads the row and writes it back (BEGIN IMMEDIATE), so
neither clobbers the other, and a COMMIT survives a crash of pxed.

Only what ends an install (done, failed, rearm) is fsynced before pxed answers:
forgetting it would reinstall an installed machine, or void the token of one
installing. ``end_installs`` commits many such ends in one transaction and one
fsync: the daemon gathers a reactor turn's callbacks so
(``pxed.provisioning.sqlite_states``), as DHCP gathers a turn's leases. The changes
a boot makes on its way (ready -> booting, a Kickstart fetch -> installing) commit
without an fsync (WAL, ``synchronous=NORMAL``): they survive pxed being killed, and
the next fsynced commit or checkpoint carries them to disk; a power cut may lose the
last few, which leaves a host booting rather than installing and the loop breaker
one fetch short, nothing worse. Each fsync held the reactor, and so every TFTP and
DHCP client, 3-9 ms per Kickstart in a storm (benchmarks/README.md).

The connection is opened on first use, not by ``open``: twistd builds the
services (and so calls ``open``) before it forks into the background, and an
SQLite connection carried across a fork loses its file locks to the parent.
``open`` checks the database with a connection it closes at once, so a bad
state_dir still stops pxed at start-up with a clear message.

The loop breaker is why this exists at all: a host whose install never reports
done (broken %post, no disk, wrong boot order) would otherwise reinstall at
every boot forever. More than ``loop_fetches`` answer-file fetches within
``loop_window`` seconds without a done callback make it ``looping``; it then
gets local boot until an operator rearms it.
"""

from __future__ import annotations

import enum
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from twisted.logger import Logger

from pxed.events import EventBus, StateChanged

DATABASE_NAME = "hosts.sqlite3"
# mac, state, since, source, fetches (JSON), generation[, server]
Row = tuple[Any, ...]

log = Logger(namespace="pxed.lifecycle")


class State(enum.StrEnum):
    READY = "ready"
    BOOTING = "booting"
    INSTALLING = "installing"
    INSTALLED = "installed"
    FAILED = "failed"
    LOOPING = "looping"


@dataclass(frozen=True)
class HostState:
    mac: str
    state: State
    since: float  # when the host entered this state
    source: str  # what moved it here: dhcp, tftp, kickstart, callback, rearm
    fetches: tuple[float, ...]  # answer-file fetches since the last done or rearm
    generation: int = 0  # installs ended (done, failed, rearm): the callback token's salt
    server: str = ""  # the pxed that made the change (PostgreSQL only: SQLite has one pxed)


@dataclass(frozen=True)
class InstallEnd:
    """What ends an install: its done or failed callback, or an operator's rearm."""

    mac: str
    outcome: Literal["done", "failed", "rearm"]
    now: float


class LifecycleError(Exception):
    """The state database cannot be used; the message says which file and why."""


class Lifecycle:
    """The install state of every host pxed has seen, one SQLite row each.

    The row reads and writes are the ``_row`` ... ``_write`` methods, so that
    ``pxed.provisioning.pg_lifecycle`` keeps the same states in PostgreSQL.
    """

    server = ""  # who makes the changes: only a shared database needs to say

    def __init__(self, path: Path) -> None:
        self.path = path
        self.events = EventBus()  # the daemon's bus, set when it wires provisioning
        self._opened: tuple[int, sqlite3.Connection] | None = None
        self._durable = True  # the connection's synchronous setting: FULL

    @classmethod
    def open(cls, state_dir: Path) -> Lifecycle:
        """The database in ``state_dir``, created and checked now, connected on first use."""
        lifecycle = cls(state_dir / DATABASE_NAME)
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise LifecycleError(
                f"{lifecycle.path}: cannot open the host state database: {error}"
            ) from None
        lifecycle._connect().close()  # the check's connection must not reach a forked daemon
        return lifecycle

    @property
    def _conn(self) -> sqlite3.Connection:
        """This process's connection (a new one after a fork: SQLite's locks do not follow)."""
        if self._opened is None or self._opened[0] != os.getpid():
            self._opened = (os.getpid(), self._connect())
            self._durable = True  # _connect's synchronous=FULL
        return self._opened[1]

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=10)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS hosts (mac TEXT PRIMARY KEY, state TEXT NOT NULL,"
                " since REAL NOT NULL, source TEXT NOT NULL, fetches TEXT NOT NULL,"
                " generation INTEGER NOT NULL DEFAULT 0)"
            )
            columns = {row[1] for row in conn.execute("PRAGMA table_info(hosts)")}
            if "generation" not in columns:  # a database from before per-install tokens
                conn.execute("ALTER TABLE hosts ADD COLUMN generation INTEGER NOT NULL DEFAULT 0")
        except sqlite3.Error as error:
            raise LifecycleError(
                f"{self.path}: cannot open the host state database: {error}"
            ) from None
        return conn

    def close(self) -> None:
        if self._opened is not None and self._opened[0] == os.getpid():
            self._opened[1].close()
        self._opened = None

    # -- reads ---------------------------------------------------------------

    def get(self, mac: str) -> HostState:
        """``mac``'s state; a host never seen is ready."""
        row = self._row(mac)
        return _from_row(row) if row else HostState(mac, State.READY, 0.0, "", ())

    def known(self, mac: str) -> bool:
        """``mac`` has a row: the inventory's seen it boot, or a DHCP exchange did."""
        return self._row(mac) is not None

    def all(self) -> list[HostState]:
        return sorted((_from_row(row) for row in self._rows()), key=lambda s: s.mac)

    def refresh(self, mac: str) -> HostState:
        """``get``: here the row is the truth already; a shared database's front
        (``pxed.provisioning.pg_states``) reads it afresh off the reactor."""
        return self.get(mac)

    # -- events --------------------------------------------------------------

    def seen(self, mac: str, source: str, now: float) -> HostState:
        """DHCP, TFTP or HTTP saw the host boot: ready -> booting, and failed -> booting
        for DHCP only; nothing else changes.

        An installed host stays installed (a ``netboot: once`` host boots its
        disk; an ``always`` host moves on when it fetches its Kickstart). A
        failed install is left for an operator to see until the host itself
        boots again: a generated config's fetch proves nothing (anyone can
        name a MAC in a TFTP or HTTP request), a DHCP exchange is its firmware.
        """
        leaving = (State.READY, State.FAILED) if source == "dhcp" else (State.READY,)
        current = self.get(mac)
        if current.state not in leaving:
            return current  # the common case (every DHCP packet): no write transaction
        with self._change(mac, durable=False) as change:
            if change.old.state in leaving:
                change.to(State.BOOTING, source, now)
        return change.new

    def kickstart_fetched(self, mac: str, now: float, limit: int, window: float) -> HostState:
        """-> installing, or -> looping past ``limit`` fetches within ``window`` seconds."""
        with self._change(mac, durable=False) as change:
            if change.old.state is State.LOOPING:
                return change.old
            fetches = (*(t for t in change.old.fetches if now - t < window), now)
            if len(fetches) > limit:
                change.to(State.LOOPING, "kickstart", now, fetches)
                log.error(
                    "host {mac} is looping: {count} answer-file fetches within {window} s and no "
                    "done callback; it gets local boot until `pxed hosts rearm {mac}`",
                    mac=mac,
                    count=len(fetches),
                    window=window,
                )
            else:
                change.to(State.INSTALLING, "kickstart", now, fetches)
        return change.new

    def done(self, mac: str, now: float) -> HostState:
        return self.end_installs([InstallEnd(mac, "done", now)])[0]

    def failed(self, mac: str, now: float) -> HostState:
        """-> failed; a looping host stays looping (only a rearm ends that)."""
        return self.end_installs([InstallEnd(mac, "failed", now)])[0]

    def rearm(self, mac: str, now: float) -> HostState:
        """Back to ready with the loop count cleared: the host installs at its next boot."""
        return self.end_installs([InstallEnd(mac, "rearm", now)])[0]

    def end_installs(self, ends: Sequence[InstallEnd]) -> list[HostState]:
        """Each end in order, all in one transaction on disk before it returns (one fsync);
        the host's state after each. Nothing is changed if it raises."""
        with _Transaction(self, [end.mac for end in ends], durable=True) as transaction:
            for end in ends:
                _end_install(transaction.change(end.mac), end)
        return [change.new for change in transaction.changes]

    def announce(self, event: StateChanged) -> None:
        """Publish and log a committed change of state (on the reactor: a lifecycle
        written from another thread hands its changes back first)."""
        self.events.publish(event)
        log.info(event.FORMAT, **event.fields())

    @contextmanager
    def _change(self, mac: str, durable: bool = True) -> Iterator[_Change]:
        """A read-modify-write of ``mac``'s row; ``durable``: on disk before it returns."""
        with _Transaction(self, [mac], durable) as transaction:
            yield transaction.change(mac)

    # -- the rows (SQLite here) ----------------------------------------------

    def _row(self, mac: str) -> Row | None:
        return self._conn.execute(  # type: ignore[no-any-return]
            "SELECT mac, state, since, source, fetches, generation FROM hosts WHERE mac = ?",
            (mac,),
        ).fetchone()

    def _rows(self) -> list[Row]:
        return self._conn.execute(
            "SELECT mac, state, since, source, fetches, generation FROM hosts"
        ).fetchall()

    def _begin(self, mac: str, durable: bool = True) -> None:
        """Open the transaction ``mac``'s read-modify-write runs in, excluding other writers;
        its COMMIT fsyncs only if ``durable`` (the setting is per connection, so it is made
        before each transaction that needs the other one)."""
        conn = self._conn
        if self._durable is not durable:
            conn.execute("PRAGMA synchronous=FULL" if durable else "PRAGMA synchronous=NORMAL")
            self._durable = durable
        conn.execute("BEGIN IMMEDIATE")

    def _lock(self, mac: str) -> None:
        """Keep other writers off ``mac``'s row until the transaction ends: in SQLite, BEGIN
        IMMEDIATE already keeps them off every row."""

    def _end(self, commit: bool) -> None:
        with self._saving():
            self._conn.execute("COMMIT" if commit else "ROLLBACK")

    def _write(self, old: HostState, new: HostState) -> None:
        with self._saving():
            self._conn.execute(
                "INSERT OR REPLACE INTO hosts (mac, state, since, source, fetches, generation)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    new.mac,
                    new.state.value,
                    new.since,
                    new.source,
                    json.dumps(list(new.fetches)),
                    new.generation,
                ),
            )

    @contextmanager
    def _saving(self) -> Iterator[None]:
        """A write or its COMMIT failing (disk full, I/O error) is a LifecycleError: the
        transaction is rolled back and the callback answered 503."""
        try:
            yield
        except sqlite3.Error as error:
            raise LifecycleError(f"{self.path}: host state changes not saved: {error}") from None


class _Transaction:
    """Read-modify-writes of host rows in one write transaction; the state changes are
    published once it has committed, and none is if it rolls back."""

    def __init__(self, lifecycle: Lifecycle, macs: Sequence[str], durable: bool) -> None:
        self._lifecycle = lifecycle
        self._macs = sorted(set(macs))  # one order for every writer's locks
        self._durable = durable
        self.changes: list[_Change] = []

    def __enter__(self) -> _Transaction:
        first, *others = self._macs
        self._lifecycle._begin(first, self._durable)
        try:
            for mac in others:
                self._lifecycle._lock(mac)
        except BaseException:
            self._lifecycle._end(commit=False)  # never leave the transaction open
            raise
        return self

    def change(self, mac: str) -> _Change:
        """A change of ``mac``'s row, from where this transaction's changes left it."""
        earlier = [change.new for change in self.changes if change.mac == mac]
        old = earlier[-1] if earlier else self._lifecycle.get(mac)
        self.changes.append(_Change(self._lifecycle, mac, old))
        return self.changes[-1]

    def __exit__(self, kind: object, error: object, tb: object) -> None:
        if error is not None:
            self._lifecycle._end(commit=False)
            return
        try:
            for change in self.changes:
                if change.new != change.old:
                    self._lifecycle._write(change.old, change.new)
            self._lifecycle._end(commit=True)
        except BaseException:
            _roll_back(self._lifecycle)
            raise
        for change in self.changes:
            change.publish()


def _roll_back(lifecycle: Lifecycle) -> None:
    """After a failed write or COMMIT: SQLite may have ended the transaction itself."""
    with suppress(LifecycleError):
        lifecycle._end(commit=False)


class _Change:
    """One read-modify-write of a host's row inside a write transaction."""

    def __init__(self, lifecycle: Lifecycle, mac: str, old: HostState) -> None:
        self._lifecycle = lifecycle
        self.mac = mac
        self.old = self.new = old

    def to(
        self,
        state: State,
        source: str,
        now: float,
        fetches: tuple[float, ...] | None = None,
        ends_install: bool = False,
    ) -> None:
        kept = self.old.fetches if fetches is None else fetches
        since = self.old.since if state is self.old.state else now
        generation = self.old.generation + 1 if ends_install else self.old.generation
        server = self._lifecycle.server
        self.new = HostState(self.mac, state, since, source, kept, generation, server)

    def publish(self) -> None:
        if self.new.state is not self.old.state:
            old, new = self.old.state.value, self.new.state.value
            self._lifecycle.announce(
                StateChanged(self.new.since, self.mac, old, new, self.new.source)
            )


def _end_install(change: _Change, end: InstallEnd) -> None:
    if end.outcome == "done":
        change.to(State.INSTALLED, "callback", end.now, (), ends_install=True)
    elif end.outcome == "rearm":
        change.to(State.READY, "rearm", end.now, (), ends_install=True)
    elif change.old.state is not State.LOOPING:  # only a rearm ends looping
        change.to(State.FAILED, "callback", end.now, ends_install=True)


def _from_row(row: Row) -> HostState:
    mac, state, since, source, fetches, generation, *server = row
    return HostState(
        mac, State(state), since, source, tuple(json.loads(fetches)), generation, *server
    )
