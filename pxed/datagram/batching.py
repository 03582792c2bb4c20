"""Group commit for a datagram server: a reactor turn's replies leave after one commit.

Every datagram is handled as it arrives, its reply held back; at the end of the
reactor turn (``callLater(0)``) the store commits once and only then are the held
replies sent, in arrival order (``pxed.groupcommit``). A lease is durable before the
reply that promises it leaves, and a burst of a hundred requests costs one fsync,
not a hundred. If the commit fails, the batch's replies are dropped: clients retry,
and no client is told about a lease that is not stored. A PostgreSQL store's commit
returns a Deferred: the batch's replies leave when it fires, and the reactor goes on
answering (and gathering the next batch) meanwhile; it fires with the clients whose
binds another server sharing the database won, and their replies never leave.  A
reply that promises only what is already stored (``Outgoing.committed``: a DHCPv4
renewal confirmed while the database is down) waits for nothing and leaves at once.

What is family-specific (decoding, the engine, the destination tuple, the log
lines of an exchange) is the subclass's: ``handle`` turns a datagram into an
``Outgoing`` or None.  Nothing escapes ``datagramReceived``: an unexpected error
is logged with its traceback and the datagram dropped; the socket keeps serving.
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Callable, Sequence, Sized
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, Protocol, TypeVar

from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IUDPTransport
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from pxed.groupcommit import GroupCommit
from pxed.text import first_line

MAX_DATAGRAM = 65536  # docs/pitfalls.md #1
# Twisted reads up to 256 KiB of queued datagrams in one go; a batch that large would
# leave as one burst of replies that overflows a relay's or client's receive buffer
# (perfdhcp lost a fifth of its OFFERs so).  Past this many replies, commit and send.
MAX_BATCH = 32
EXPIRY_INTERVAL = 60.0  # seconds between sweeps of expired leases and quarantines

L = TypeVar("L")


class ServedInterface(Protocol):
    """A served interface as the family describes it: its name and its address."""

    @property
    def name(self) -> str: ...

    @property
    def address(self) -> object: ...


class EngineSettings(Protocol):
    """What the start and reload log lines tell of a family's engine settings."""

    @property
    def mode(self) -> Enum: ...

    @property
    def hosts(self) -> Sized: ...


I = TypeVar("I", bound=ServedInterface)  # noqa: E741 -- the interface type of a family
S = TypeVar("S", bound=EngineSettings)


class Reactor(Protocol):
    """What the adapters need of a reactor: IReactorTime, IReactorSocket and
    IReactorFromThreads (for a PostgreSQL store's worker), or a test's fake."""

    def seconds(self) -> float: ...

    def callLater(
        self, delay: float, callable: Callable[..., Any], *args: Any, **kw: Any
    ) -> IDelayedCall: ...

    def callFromThread(self, callable: Callable[..., Any], *args: Any, **kw: Any) -> None: ...

    # Without a default, as IReactorSocket declares it (the adapter passes maxPacketSize).
    def adoptDatagramPort(
        self,
        fileDescriptor: int,
        addressFamily: socket.AddressFamily,
        protocol: DatagramProtocol,
        maxPacketSize: int,
    ) -> Any: ...


class DurableStore(Protocol[L]):
    """What the adapter drives of a lease store: commits, expiry, closing.

    ``commit`` and ``close`` either finish before they return (SQLite: a local fsync) or
    return a Deferred that fires when they have (PostgreSQL: a COMMIT over the network,
    in a worker thread); both raise or fail with the reason when they cannot.
    """

    def commit(self) -> Deferred[frozenset[str]] | None:
        """None, or a Deferred firing with the clients (``Outgoing.client``) whose replies
        must not leave (their binds lost the address to another server sharing the
        database)."""

    def expire(self, now: float) -> list[L]: ...

    def close(self) -> Deferred[None] | None: ...


class SocketLike(Protocol):
    def fileno(self) -> int: ...

    def close(self) -> None: ...


OpenSocket = Callable[[str, int], SocketLike]


@dataclass
class DatagramStats:
    """Counters for /metrics: requests by (message type, outcome), commits, batch sizes."""

    messages: Counter[tuple[str, str]] = field(default_factory=Counter)
    commits: int = 0
    commit_failures: int = 0
    replies_sent: int = 0
    largest_batch: int = 0
    takeovers: int = 0  # requests of a live peer's clients answered here (docs/ha.md)


class Listener(DatagramProtocol, Generic[I]):
    """One adopted socket: an interface on one port."""

    noisy = False
    transport: IUDPTransport  # not None: the reactor adopts the socket before it reads it

    def __init__(self, server: BatchingService[Any, I, Any], interface: I, port: int) -> None:
        self.server = server
        self.interface = interface
        self.port = port

    def logPrefix(self) -> str:
        return f"pxed-{self.server.name}-{self.interface.name}-{self.port}"

    def datagramReceived(self, datagram: bytes, addr: tuple[str, int]) -> None:
        try:
            self.server.received(self, datagram, addr)
        except Exception:
            self.server.log.failure(
                "{service}: datagram from {client} on {interface} dropped: internal error",
                service=self.server.name,
                client=self.server.shown(addr[0], addr[1]),
                interface=self.interface.name,
            )


@dataclass(frozen=True)
class Outgoing:
    """A reply held for its batch's commit: what to write, where, and for whom."""

    listener: Listener[Any]
    data: bytes
    to: Any  # the sendto address tuple, as the socket's family wants it
    where: str  # the destination for a log line
    mac: str  # the client, for a log line
    client: str  # the client as the store names it in a lost bind (the MAC in DHCPv4)
    committed: bool = False  # rests only on leases already stored: sent without waiting


class BatchingService(Service, Generic[L, I, S]):
    """Serves every interface on ``listen_ports``; replies wait for their batch's commit.

    A subclass sets ``name``, ``log`` and ``family``, builds its engine from
    ``settings`` in ``build_engine`` and answers a datagram in ``handle``.
    """

    name: str
    log: Logger
    family: socket.AddressFamily
    store: DurableStore[L]  # opened, with the engine, in privilegedStartService

    def __init__(
        self,
        settings: S,
        open_store: Callable[[], DurableStore[L]],
        interfaces: Sequence[I],
        reactor: Reactor,
        open_socket: OpenSocket,
        stats: DatagramStats | None,
    ) -> None:
        self.settings = settings
        self.open_store = open_store
        self.interfaces = tuple(interfaces)
        self.reactor = reactor
        self.open_socket = open_socket
        self.stats = stats or DatagramStats()
        self._ports: list[Any] = []
        self._turn: GroupCommit[Outgoing, frozenset[str] | None] = GroupCommit(
            reactor, self._commit, self._committed, self._not_committed, MAX_BATCH
        )
        self._failing = 0  # commits failed in a row (a database down fails every batch)
        self._expiry: LoopingCall | None = None

    # --- what a family says ----------------------------------------------------------

    @property
    def listen_ports(self) -> tuple[int, ...]:
        raise NotImplementedError

    def build_engine(self) -> None:
        """Build the engine from ``self.settings`` over ``self.store``."""
        raise NotImplementedError

    def subnets(self, settings: S) -> int:
        """How many subnets (links) ``settings`` serves, for the reload's log line."""
        raise NotImplementedError

    def handle(
        self, listener: Listener[I], datagram: bytes, addr: tuple[str, int]
    ) -> Outgoing | None:
        """Decide, log and count one datagram; the reply to send after the commit, if any."""
        raise NotImplementedError

    def expired(self, lease: L) -> None:
        """Log a lease the sweep removed."""
        raise NotImplementedError

    @staticmethod
    def shown(host: str, port: int) -> str:
        """An address as a log line writes it."""
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    # --- start and stop --------------------------------------------------------------

    def privilegedStartService(self) -> None:
        """Open the store and bind here: twistd calls this after it forks, before it drops root.

        Opening SQLite before twistd daemonizes would hand the child a connection
        whose file locks stayed with the parent (SQLite forbids using one across
        fork), and the DHCP ports need root.
        """
        super().privilegedStartService()
        self.store = self.open_store()
        self.build_engine()
        for interface in self.interfaces:
            for port in self.listen_ports:
                self._ports.append(self._adopt(interface, port))
        self.log.info(
            "{service}: {mode} mode on {interfaces}, udp/{ports}",
            service=self.name,
            mode=self.settings.mode.value,
            interfaces=", ".join(f"{i.name} ({i.address})" for i in self.interfaces),
            ports="+".join(str(p) for p in self.listen_ports),
        )

    def _adopt(self, interface: I, port: int) -> Any:
        sock = self.open_socket(interface.name, port)
        try:
            return self.reactor.adoptDatagramPort(
                sock.fileno(),
                self.family,
                Listener(self, interface, port),
                maxPacketSize=MAX_DATAGRAM,
            )
        finally:
            sock.close()  # the reactor holds its own duplicate of the descriptor

    def startService(self) -> None:
        if not self._ports:
            self.privilegedStartService()
        super().startService()
        self._expiry = LoopingCall(self.expire)
        self._expiry.clock = self.reactor  # type: ignore[assignment]
        self._expiry.start(EXPIRY_INTERVAL, now=True)

    def stopService(self) -> Deferred[Any]:
        """Commit and send the pending batch, close the store, then every socket; fire when
        they are closed.  The sockets wait for the store: a batch still committing
        (PostgreSQL) sends its replies on them when its commit returns."""
        super().stopService()
        if self._expiry is not None and self._expiry.running:
            self._expiry.stop()
        self._turn.stop()
        ports, self._ports = self._ports, []
        closed = maybeDeferred(self.store.close)
        return closed.addBoth(self._close_ports, ports)

    @staticmethod
    def _close_ports(outcome: object, ports: list[Any]) -> Deferred[Any]:
        closing = [port.stopListening() for port in ports]
        stopped = gatherResults([d for d in closing if d is not None])
        return stopped.addCallback(lambda _: outcome)

    def reconfigure(self, settings: S) -> None:
        """Answer by ``settings`` from the next request on, on the sockets already open.

        ``settings`` must not need sockets this service has not bound: the reload
        keeps the ports and the mode's sockets as they were at start, and the store
        (leases, quarantines, replies waiting for their commit carry over).
        """
        self.settings = settings
        if self._ports:
            self.build_engine()
        self.log.info(
            "{service}: reloaded: {mode} mode, {hosts} hosts, {subnets} subnets",
            service=self.name,
            mode=settings.mode.value,
            hosts=len(settings.hosts),
            subnets=self.subnets(settings),
        )

    # --- the batch -------------------------------------------------------------------

    def received(self, listener: Listener[I], datagram: bytes, addr: tuple[str, int]) -> None:
        """One datagram on one interface's socket: decide now, send after the batch commits."""
        outgoing = self.handle(listener, datagram, addr)
        if outgoing is not None and outgoing.committed:
            self._send(outgoing)
        elif outgoing is not None:
            self._turn.hold(outgoing)
            return
        # Silent requests may write too (RELEASE, DECLINE): every turn ends with a commit.
        self._turn.wrote()

    def _commit(self, batch: list[Outgoing]) -> Deferred[Any] | None:
        """The batch's leases, one fsync (its replies are sent after, in arrival order)."""
        return self.store.commit()

    def _committed(self, batch: list[Outgoing], lost: frozenset[str] | None) -> None:
        self.stats.commits += 1
        if self._failing:
            self.log.info(
                "{service}: lease commits succeed again after {failures} failed",
                service=self.name,
                failures=self._failing,
            )
            self._failing = 0
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        for outgoing in batch:
            if not lost or outgoing.client not in lost:
                self._send(outgoing)

    def _not_committed(self, batch: list[Outgoing], failure: Failure) -> None:
        """The first failure of a run is logged with its traceback; the rest of the run (a
        database down for 10 s fails hundreds of batches) one line each."""
        self.stats.commit_failures += 1
        self._failing += 1
        if self._failing == 1:
            self.log.failure(
                "{service}: lease commit failed; {count} replies not sent (clients will retry)",
                failure,
                service=self.name,
                count=len(batch),
            )
            return
        self.log.warn(
            "{service}: lease commit failed again ({failures} in a row): {error}; "
            "{count} replies not sent",
            service=self.name,
            failures=self._failing,
            error=first_line(failure.value),
            count=len(batch),
        )

    def _send(self, outgoing: Outgoing) -> None:
        try:
            outgoing.listener.transport.write(outgoing.data, outgoing.to)
        except OSError as error:
            self.log.warn(
                "{service}: reply to {mac} at {destination} not sent: {error}",
                service=self.name,
                mac=outgoing.mac,
                destination=outgoing.where,
                error=error.strerror or str(error),
            )
            return
        self.stats.replies_sent += 1

    # --- expiry ----------------------------------------------------------------------

    def expire(self) -> None:
        """Drop expired leases and quarantines, and commit.

        Errors are logged, not raised: an exception would stop the LoopingCall, and
        with it every later sweep.  Deletions lost with a failed commit are by time,
        so the next sweep makes them again.
        """
        swept = maybeDeferred(self.store.expire, self.reactor.seconds())
        swept.addCallback(self._commit_sweep)
        swept.addCallbacks(self._swept, self._not_swept)

    def _commit_sweep(self, gone: list[L]) -> Deferred[list[L]]:
        return maybeDeferred(self.store.commit).addCallback(lambda _: gone)

    def _swept(self, gone: list[L]) -> None:
        for lease in gone:
            self.expired(lease)

    def _not_swept(self, failure: Failure) -> None:
        self.log.failure(
            "{service}: sweeping expired leases failed; trying again in {interval:.0f} s",
            failure,
            service=self.name,
            interval=EXPIRY_INTERVAL,
        )
