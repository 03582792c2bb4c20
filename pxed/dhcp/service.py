"""The DHCP server's Twisted side: sockets per interface, group commit, logs, counters.

The engine (``protocols.dhcp.server``) decides every reply and writes leases
into the store; this module decodes, calls it, and performs what it says.

Choices worth knowing:

* One socket per ``server.interfaces`` entry, bound to 0.0.0.0 on the server
  port with SO_BINDTODEVICE (``pxed.dhcp.sockets``), adopted into the reactor.
  A reply is written on the socket its request came in on, so it leaves by
  that interface.  Proxy mode adds the same per interface on udp/4011.
* Group commit: every datagram is handled as it arrives, its reply held back;
  at the end of the reactor turn (``callLater(0)``) the store commits once and
  only then are the held replies sent.  A lease is on disk before its ACK
  leaves, and a burst of a hundred requests costs one fsync, not a hundred.
  If the commit fails, the batch's replies are dropped: clients retry, and no
  client is told about a lease that is not on disk.  A PostgreSQL store's
  commit returns a Deferred: the batch's replies leave when it fires, and the
  reactor goes on answering (and gathering the next batch) meanwhile.
* Nothing escapes ``datagramReceived``: a malformed datagram is logged with
  the reason and dropped, and an unexpected error is logged with its
  traceback and the datagram dropped; the socket keeps serving.
* One log event per request, with the client MAC, xid, message type, address
  and outcome as named fields; ``stats`` counts requests by (type, outcome)
  for /metrics.
* A SIGHUP reload hands new settings to ``reconfigure``: a new engine over
  the same open lease store and the same sockets, so leases, quarantines and
  replies waiting for their commit carry over.
"""

from __future__ import annotations

import socket
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Any, Protocol

from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IUDPTransport
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from protocols.dhcp.leases import Lease, LeaseStore
from protocols.dhcp.options import MessageType
from protocols.dhcp.server import DhcpServer, Mode, NoReply, Received, Reply, Settings
from protocols.dhcp.split import take
from protocols.dhcp.wire import DhcpPacket, decode_dhcp
from protocols.errors import MalformedPacket
from pxed.config import Config
from pxed.dhcp.settings import engine_settings
from pxed.events import DhcpExchange, EventBus

if TYPE_CHECKING:
    from pxed.dhcp.heartbeat import Heartbeat

MAX_DATAGRAM = 65536  # docs/pitfalls.md #1
# Twisted reads up to 256 KiB of queued datagrams in one go; a batch that large would
# leave as one burst of replies that overflows a relay's or client's receive buffer
# (perfdhcp lost a fifth of its OFFERs so).  Past this many replies, commit and send.
MAX_BATCH = 32
NO_LOADER_MEMORY = 4096  # MACs warned about a missing loader, the least recent forgotten
EXPIRY_INTERVAL = 60.0  # seconds between sweeps of expired leases and quarantines
NO_SERVER = IPv4Address(0)  # siaddr of a reply that carries no boot information

_LEASE_CHANGES = frozenset({"RELEASE", "DECLINE"})

log = Logger(namespace="pxed.dhcp")


class Reactor(Protocol):
    """What the adapter needs of a reactor: IReactorTime and IReactorSocket (or a test's fake)."""

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


class DurableLeaseStore(LeaseStore, Protocol):
    """The engine's store plus what the adapter drives: commits, expiry, closing.

    ``commit`` and ``close`` either finish before they return (SQLite: a local fsync) or
    return a Deferred that fires when they have (PostgreSQL: a COMMIT over the network,
    in a worker thread); both raise or fail with the reason when they cannot.
    """

    def commit(self) -> Deferred[frozenset[str]] | None:
        """None, or a Deferred firing with the MACs whose replies must not leave (their
        binds lost the address to another server sharing the database)."""

    def expire(self, now: float) -> list[Lease]: ...

    def close(self) -> Deferred[None] | None: ...

    def leases(self) -> list[Lease]: ...


class SocketLike(Protocol):
    def fileno(self) -> int: ...

    def close(self) -> None: ...


OpenSocket = Callable[[str, int], SocketLike]
# Told (mac, "dhcp") whenever a client is given boot information: provisioning moves a
# ready host to "booting" (pxed.provisioning.resources.Provisioning.seen).
BootSeen = Callable[[str, str], None]


@dataclass(frozen=True)
class Interface:
    """A served interface and its IPv4 address (the server identifier of replies sent there)."""

    name: str
    address: IPv4Address


@dataclass
class DhcpStats:
    """Counters for /metrics: requests by (message type, outcome), commits, batch sizes."""

    messages: Counter[tuple[str, str]] = field(default_factory=Counter)
    commits: int = 0
    commit_failures: int = 0
    replies_sent: int = 0
    largest_batch: int = 0


def message_name(kind: object) -> str:
    """``DISCOVER``, ``BOOTP`` for a request without option 53, else the raw number."""
    if kind is None:
        return "BOOTP"
    return kind.name if isinstance(kind, MessageType) else str(kind)


class _Listener(DatagramProtocol):
    """One adopted socket: an interface on one port (the server port, or 4011 in proxy mode)."""

    noisy = False
    transport: IUDPTransport  # not None: the reactor adopts the socket before it reads it

    def __init__(self, server: DhcpService, interface: Interface, port: int) -> None:
        self.server = server
        self.interface = interface
        self.port = port

    def logPrefix(self) -> str:
        return f"pxed-dhcp-{self.interface.name}-{self.port}"

    def datagramReceived(self, datagram: bytes, addr: tuple[str, int]) -> None:
        try:
            self.server.received(self, datagram, addr)
        except Exception:
            log.failure(
                "dhcp: datagram from {client} on {interface} dropped: internal error",
                client=f"{addr[0]}:{addr[1]}",
                interface=self.interface.name,
            )


@dataclass(frozen=True)
class _Outgoing:
    listener: _Listener
    reply: Reply


class DhcpService(Service):
    """Serves DHCP on every interface; replies wait for their batch's lease commit."""

    name = "dhcp"
    store: DurableLeaseStore  # opened, with the engine, in privilegedStartService
    engine: DhcpServer

    def __init__(
        self,
        settings: Settings,
        open_store: Callable[[], DurableLeaseStore],
        interfaces: Sequence[Interface],
        reactor: Reactor,
        open_socket: OpenSocket,
        stats: DhcpStats | None = None,
        boot_seen: BootSeen | None = None,
        events: EventBus | None = None,
        heartbeat: Heartbeat | None = None,
    ) -> None:
        self.settings = settings
        self.heartbeat = heartbeat  # with a shared database: the live peers split the clients
        self.events = events or EventBus()
        self.open_store = open_store
        self.interfaces = tuple(interfaces)
        self.reactor = reactor
        self.open_socket = open_socket
        self.stats = stats or DhcpStats()
        self.boot_seen = boot_seen
        self._ports: list[Any] = []
        self._batch: list[_Outgoing] = []
        self._flush_call: IDelayedCall | None = None
        self._told_no_loader: OrderedDict[str, None] = OrderedDict()
        self._expiry: LoopingCall | None = None

    @property
    def listen_ports(self) -> tuple[int, ...]:
        if self.settings.mode is Mode.PROXY:
            return (self.settings.ports.server, self.settings.ports.proxy)
        return (self.settings.ports.server,)

    def privilegedStartService(self) -> None:
        """Open the leases and bind here: twistd calls this after it forks, before it drops root.

        Opening SQLite before twistd daemonizes would hand the child a connection
        whose file locks stayed with the parent (SQLite forbids using one across
        fork), and port 67 needs root.
        """
        super().privilegedStartService()
        self.store = self.open_store()
        self.engine = DhcpServer(self.settings, self.store)
        for interface in self.interfaces:
            for port in self.listen_ports:
                self._ports.append(self._adopt(interface, port))
        log.info(
            "dhcp: {mode} mode on {interfaces}, udp/{ports}",
            mode=self.settings.mode.value,
            interfaces=", ".join(f"{i.name} ({i.address})" for i in self.interfaces),
            ports="+".join(str(p) for p in self.listen_ports),
        )

    def _adopt(self, interface: Interface, port: int) -> Any:
        sock = self.open_socket(interface.name, port)
        try:
            return self.reactor.adoptDatagramPort(
                sock.fileno(),
                socket.AF_INET,
                _Listener(self, interface, port),
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
        if self.heartbeat is not None:
            self.heartbeat.start()

    def stopService(self) -> Deferred[Any]:
        """Commit and send the pending batch, close the store, then every socket; fire when
        they are closed.  The sockets wait for the store: a batch still committing
        (PostgreSQL) sends its replies on them when its commit returns."""
        super().stopService()
        if self._expiry is not None and self._expiry.running:
            self._expiry.stop()
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self._flush_call = None
        self.flush()
        ports, self._ports = self._ports, []
        closed = maybeDeferred(self.store.close)
        if self.heartbeat is not None:
            beat = self.heartbeat.stop()
            closed.addBoth(lambda outcome: beat.addBoth(lambda _: outcome))
        return closed.addBoth(self._close_ports, ports)

    @staticmethod
    def _close_ports(outcome: object, ports: list[Any]) -> Deferred[Any]:
        closing = [port.stopListening() for port in ports]
        stopped = gatherResults([d for d in closing if d is not None])
        return stopped.addCallback(lambda _: outcome)

    def prepare_reload(self, config: Config) -> Callable[[], None]:
        """DHCP's part of a reload (``inventory.Prepare``): the new settings, built now."""
        return partial(self.reconfigure, engine_settings(config, self.interfaces[0].address))

    def reconfigure(self, settings: Settings) -> None:
        """Answer by ``settings`` from the next request on, on the sockets already open.

        ``settings`` must not need sockets this service has not bound: the
        reload keeps the ports and the mode's sockets as they were at start.
        """
        self.settings = settings
        if self._ports:
            self.engine = DhcpServer(settings, self.store)
        log.info(
            "dhcp: reloaded: {mode} mode, {hosts} hosts, {subnets} subnets",
            mode=settings.mode.value,
            hosts=len(settings.hosts),
            subnets=len(settings.subnets),
        )

    # --- requests ------------------------------------------------------------------------

    def received(self, listener: _Listener, datagram: bytes, addr: tuple[str, int]) -> None:
        """One datagram on one interface's socket: decide now, send after the batch commits."""
        try:
            request = decode_dhcp(datagram)
        except MalformedPacket as bad:
            self._malformed(listener, datagram, addr, bad)
            return
        if self.heartbeat is not None:
            mine = take(request, self.heartbeat.peers, listener.interface.address)
            if mine is None:  # a live peer's client (protocols.dhcp.split)
                self.stats.messages[(message_name(request.message_type), "peer")] += 1
                return
            request = mine
        received = Received(
            listener.interface.address,
            (IPv4Address(addr[0]), addr[1]),
            listener.port,
            listener.interface.name,
        )
        action = self.engine.handle(request, received, self.reactor.seconds())
        try:
            self._record(listener, request, action, addr)
        except MalformedPacket as bad:
            # A badly typed option 53 or 50: the engine dropped it too; log it as such.
            self._malformed(listener, datagram, addr, bad)
        if isinstance(action, Reply):
            self._booting(action)
            if action.no_loader is not None:
                self._no_loader(action.packet.mac, action.no_loader)
            self._batch.append(_Outgoing(listener, action))
            if len(self._batch) >= MAX_BATCH:
                self.flush()
        # Silent requests write too (RELEASE, DECLINE): every turn ends with a commit.
        if self._flush_call is None:
            self._flush_call = self.reactor.callLater(0, self._end_of_turn)

    def _no_loader(self, mac: str, why: str) -> None:
        """Warn once per MAC (the most recent NO_LOADER_MEMORY of them) that a booting client
        got an address but no boot file: its firmware retries at every boot, and a line per
        exchange would bury the one fact the operator needs, the architecture."""
        if mac in self._told_no_loader:
            self._told_no_loader.move_to_end(mac)
            return
        self._told_no_loader[mac] = None
        if len(self._told_no_loader) > NO_LOADER_MEMORY:
            self._told_no_loader.popitem(last=False)
        log.warn("dhcp {mac} gets an address but no boot file: {why}", mac=mac, why=why)

    def _booting(self, reply: Reply) -> None:
        """Tell provisioning a host is netbooting (a reply naming a boot server)."""
        if self.boot_seen is None or reply.packet.siaddr == NO_SERVER:
            return
        try:
            self.boot_seen(reply.packet.mac, "dhcp")
        except Exception:
            # The host's state is bookkeeping; its boot must not wait on it.
            log.failure("dhcp: recording that {mac} boots failed", mac=reply.packet.mac)

    def _end_of_turn(self) -> None:
        self._flush_call = None
        self.flush()

    def flush(self) -> None:
        """Commit the batch's leases (one fsync), then send its replies, in arrival order."""
        batch, self._batch = self._batch, []
        committed = maybeDeferred(self.store.commit)
        committed.addCallbacks(partial(self._committed, batch), partial(self._not_committed, batch))

    def _committed(self, batch: list[_Outgoing], lost: frozenset[str] | None) -> None:
        self.stats.commits += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        for outgoing in batch:
            if not lost or outgoing.reply.packet.mac not in lost:
                self._send(outgoing)

    def _not_committed(self, batch: list[_Outgoing], failure: Failure) -> None:
        self.stats.commit_failures += 1
        log.failure(
            "dhcp: lease commit failed; {count} replies not sent (clients will retry)",
            failure,
            count=len(batch),
        )

    def _send(self, outgoing: _Outgoing) -> None:
        ip, port = outgoing.reply.destination
        try:
            outgoing.listener.transport.write(outgoing.reply.data, (str(ip), port))
        except OSError as error:
            log.warn(
                "dhcp: reply to {mac} at {destination} not sent: {error}",
                mac=outgoing.reply.packet.mac,
                destination=f"{ip}:{port}",
                error=error.strerror or str(error),
            )
            return
        self.stats.replies_sent += 1

    def expire(self) -> None:
        """Drop expired leases and quarantines, and commit.

        Errors are logged, not raised: an exception would stop the LoopingCall, and
        with it every later sweep.  Deletions lost with a failed commit are by time,
        so the next sweep makes them again.
        """
        swept = maybeDeferred(self.store.expire, self.reactor.seconds())
        swept.addCallback(self._commit_sweep)
        swept.addCallbacks(self._expired, self._not_expired)

    def _commit_sweep(self, gone: list[Lease]) -> Deferred[list[Lease]]:
        return maybeDeferred(self.store.commit).addCallback(lambda _: gone)

    @staticmethod
    def _expired(gone: list[Lease]) -> None:
        for lease in gone:
            log.info("dhcp lease expired: {mac} {ip}", mac=lease.mac, ip=str(lease.ip))

    @staticmethod
    def _not_expired(failure: Failure) -> None:
        log.failure(
            "dhcp: sweeping expired leases failed; trying again in {interval:.0f} s",
            failure,
            interval=EXPIRY_INTERVAL,
        )

    # --- logs and counters ---------------------------------------------------------------

    def _record(
        self,
        listener: _Listener,
        request: DhcpPacket,
        action: Reply | NoReply,
        addr: tuple[str, int],
    ) -> None:
        kind = message_name(request.message_type)
        mac = request.mac
        if isinstance(action, Reply):
            outcome = message_name(action.packet.message_type).lower()
            if outcome == "bootp":
                outcome = "bootreply"
            ip = action.packet.yiaddr
        else:
            outcome = "refused" if self._refused(mac) else "ignored"
            ip = request.requested_ip or request.ciaddr
        self.stats.messages[(kind, outcome)] += 1
        event = DhcpExchange(
            time=self.reactor.seconds(),
            mac=mac,
            kind=kind,
            xid=request.xid,
            interface=listener.interface.name,
            port=listener.port,
            client=f"{addr[0]}:{addr[1]}",
            outcome=outcome,
            ip=str(ip),
            reason=action.reason,
        )
        self.events.publish(event)
        # DISCOVERs (and what we ignore) come in bursts: keep them at debug. RELEASE and
        # DECLINE are never answered, yet change a lease, so they stay at info.
        quiet = outcome == "offer" or (outcome == "ignored" and kind not in _LEASE_CHANGES)
        (log.debug if quiet else log.info)(event.FORMAT, **event.fields())

    def _refused(self, mac: str) -> bool:
        """The MAC policy said no (deny list, or unknown with allow_unknown false)."""
        settings = self.settings
        return mac in settings.deny or (not settings.allow_unknown and mac not in settings.hosts)

    def _malformed(
        self, listener: _Listener, datagram: bytes, addr: tuple[str, int], bad: MalformedPacket
    ) -> None:
        # chaddr sits at bytes 28-34 of any BOOTP-shaped datagram: name the sender if we can.
        mac = datagram[28:34].hex(":") if len(datagram) >= 34 else "unknown"
        self.stats.messages[("malformed", "dropped")] += 1
        log.info(
            "dhcp malformed datagram from {mac} ({client}) on {interface} dropped: {reason}",
            mac=mac,
            client=f"{addr[0]}:{addr[1]}",
            interface=listener.interface.name,
            port=listener.port,
            outcome="malformed",
            reason=str(bad),
            size=len(datagram),
        )


class ServedLeases:
    """The leases of the DHCP server in this process, read from its memory: the rows its
    database holds (SQLite or PostgreSQL) without a query on the reactor thread, for the
    Kickstart's identity rule and the status page (pxed.provisioning.inventory)."""

    def __init__(self, service: DhcpService) -> None:
        self.service = service

    def mac_for(self, ip: IPv4Address, now: float) -> str | None:
        lease = self._lease(ip, now)
        return None if lease is None else lease.mac

    def rows(self) -> list[tuple[str, str, float | None, str | None]]:
        store = self._store()
        leases = store.leases() if store is not None else []
        return [
            (lease.mac, str(lease.ip), lease.expires, lease.hostname)
            for lease in sorted(leases, key=lambda lease: lease.ip)
        ]

    def _lease(self, ip: IPv4Address, now: float) -> Lease | None:
        store = self._store()
        mac = store.holder_of(ip, now) if store is not None else None
        lease = store.lease_for(mac, now) if store is not None and mac is not None else None
        return lease if lease is not None and lease.ip == ip else None

    def _store(self) -> DurableLeaseStore | None:
        """None until the service has opened its store (privilegedStartService)."""
        return getattr(self.service, "store", None)


def dhcp_service(
    config: Config,
    reactor: Reactor,
    boot_seen: BootSeen | None = None,
    events: EventBus | None = None,
) -> DhcpService:
    """The DHCP server for ``config``: interfaces read now, leases loaded when it starts.

    ``server.address`` left out means the first interface's address (docs/configuration.md).
    """
    from pxed.dhcp.sockets import DhcpSocketError, open_dhcp_socket
    from pxed.netif import interface_address

    names = config.server.interfaces
    if not names:
        raise DhcpSocketError("dhcp: server.interfaces is empty; DHCP needs an interface to serve")
    interfaces = [Interface(name, interface_address(name)) for name in names]
    settings = engine_settings(config, interfaces[0].address)
    heartbeat = None
    if config.server.database is not None:
        from pxed.database.worker import Worker
        from pxed.dhcp.heartbeat import Heartbeat

        heartbeat = Heartbeat(
            config.server.database,
            config.server.label,
            [interface.address for interface in interfaces],
            config.server.peer_timeout,
            Worker(reactor, "pxed-heartbeat"),
            reactor,
        )
    return DhcpService(
        settings,
        partial(open_lease_store, config, reactor),
        interfaces,
        reactor,
        open_dhcp_socket,
        boot_seen=boot_seen,
        events=events,
        heartbeat=heartbeat,
    )


def open_lease_store(config: Config, reactor: Reactor) -> DurableLeaseStore:
    """SQLite in ``server.state_dir``, or PostgreSQL when ``server.database`` names it."""
    if config.server.database is None:
        from pxed.dhcp.leases import SqliteLeaseStore

        return SqliteLeaseStore.open(config.server.state_dir)
    from pxed.database.worker import Worker
    from pxed.dhcp.pg_leases import PostgresLeaseStore

    return PostgresLeaseStore.open(
        config.server.database, Worker(reactor, "pxed-leases"), config.server.label
    )
