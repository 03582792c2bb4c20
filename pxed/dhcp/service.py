"""The DHCP server's Twisted side: sockets per interface, group commit, logs, counters.

The engine (``protocols.dhcp.server``) decides every reply and writes leases
into the store; this module decodes, calls it, and performs what it says.

Choices worth knowing:

* One socket per ``server.interfaces`` entry, bound to 0.0.0.0 on the server
  port with SO_BINDTODEVICE (``pxed.dhcp.sockets``), adopted into the reactor.
  A reply is written on the socket its request came in on, so it leaves by
  that interface.  Proxy mode adds the same per interface on udp/4011.
* Group commit (``pxed.datagram.batching``, shared with DHCPv6): a reactor turn's
  replies leave once the store has committed its leases; a failed commit drops them.
  An ACK the engine made from a lease already stored (the database is down: docs/ha.md)
  leaves at once.
* A malformed datagram is logged with the reason and dropped; the socket keeps serving.
* One log event per request, with the client MAC, xid, message type, address
  and outcome as named fields; ``stats`` counts requests by (type, outcome)
  for /metrics.
* A SIGHUP reload hands new settings to ``reconfigure``: a new engine over
  the same open lease store and the same sockets, so leases, quarantines and
  replies waiting for their commit carry over.
"""

from __future__ import annotations

import socket
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.defer import Deferred
from twisted.logger import Logger, LogLevel

from protocols.dhcp.leases import Lease, LeaseStore
from protocols.dhcp.options import MessageType
from protocols.dhcp.overdue import Overdue
from protocols.dhcp.server import DhcpServer, Mode, NoReply, Received, Reply, Settings
from protocols.dhcp.split import take
from protocols.dhcp.wire import DhcpPacket, decode_dhcp
from protocols.errors import MalformedPacket
from pxed.config import Config
from pxed.datagram.batching import (
    BatchingService,
    DatagramStats,
    DurableStore,
    Listener,
    OpenSocket,
    Outgoing,
    Reactor,
)
from pxed.dhcp.settings import engine_settings
from pxed.events import DhcpExchange, EventBus, log_line

if TYPE_CHECKING:
    from pxed.dhcp.heartbeat import Heartbeat

TOLD_MEMORY = 4096  # MACs each warning remembers, the least recent forgotten


class Told:
    """The MACs a warning was logged for, the most recent TOLD_MEMORY of them: a warning
    once per client, in a memory a LAN sending any MAC cannot grow."""

    def __init__(self) -> None:
        self._macs: OrderedDict[str, None] = OrderedDict()

    def first(self, mac: str) -> bool:
        """Whether ``mac`` is new here (and remember it)."""
        if mac in self._macs:
            self._macs.move_to_end(mac)
            return False
        self._macs[mac] = None
        if len(self._macs) > TOLD_MEMORY:
            self._macs.popitem(last=False)
        return True


NO_SERVER = IPv4Address(0)  # siaddr of a reply that carries no boot information

_LEASE_CHANGES = frozenset({"RELEASE", "DECLINE"})

log = Logger(namespace="pxed.dhcp")


class DurableLeaseStore(LeaseStore, DurableStore[Lease], Protocol):
    """The engine's store plus what the adapter drives (``pxed.datagram.batching``)."""

    def leases(self) -> list[Lease]: ...


# Told (mac, "dhcp") whenever a client is given boot information: provisioning moves a
# ready host to "booting" (pxed.provisioning.resources.Provisioning.seen).
BootSeen = Callable[[str, str], None]


@dataclass(frozen=True)
class Interface:
    """A served interface and its IPv4 address (the server identifier of replies sent there)."""

    name: str
    address: IPv4Address


# An enum member's ``.name`` is a Python property: each name is read once, here.
_MESSAGE_NAMES: dict[object, str] = {None: "BOOTP", **{kind: kind.name for kind in MessageType}}
_REPLY_OUTCOMES: dict[object, str] = {
    None: "bootreply",
    **{kind: kind.name.lower() for kind in MessageType},
}


def message_name(kind: object) -> str:
    """``DISCOVER``, ``BOOTP`` for a request without option 53, else the raw number."""
    name = _MESSAGE_NAMES.get(kind)
    return str(kind) if name is None else name


def _reply_outcome(kind: object) -> str:
    """``offer``, ``ack``, ``nak``, ``bootreply`` for a BOOTP reply."""
    outcome = _REPLY_OUTCOMES.get(kind)
    return str(kind) if outcome is None else outcome


@lru_cache(maxsize=1024)
def _source_address(host: str) -> IPv4Address:
    """Requests come from few addresses (a relay's, 0.0.0.0), and ``IPv4Address`` parses
    text in Python, a few microseconds a request: each address is parsed once."""
    return IPv4Address(host)


@lru_cache(maxsize=4096)
def _address_text(address: IPv4Address) -> str:
    """``str(IPv4Address)`` formats in Python, three times the cost of this cache's lookup;
    the addresses an exchange names are the pool's, and a flood of others only cycles it."""
    return str(address)


class DhcpService(BatchingService[Lease, Interface, Settings]):
    """Serves DHCP on every interface; replies wait for their batch's lease commit."""

    name = "dhcp"
    log = log
    family = socket.AF_INET
    store: DurableLeaseStore
    engine: DhcpServer

    def __init__(
        self,
        settings: Settings,
        open_store: Callable[[], DurableLeaseStore],
        interfaces: Sequence[Interface],
        reactor: Reactor,
        open_socket: OpenSocket,
        stats: DatagramStats | None = None,
        boot_seen: BootSeen | None = None,
        events: EventBus | None = None,
        heartbeat: Heartbeat | None = None,
        overdue: Overdue | None = None,
    ) -> None:
        super().__init__(settings, open_store, interfaces, reactor, open_socket, stats)
        self.heartbeat = heartbeat  # with a shared database: the live peers split the clients
        self.overdue = overdue  # with it: a live peer's clients it evidently does not hear
        self.events = events or EventBus()
        self.boot_seen = boot_seen
        self._told_no_loader = Told()
        self._told_took_over = Told()

    @property
    def listen_ports(self) -> tuple[int, ...]:
        if self.settings.mode is Mode.PROXY:
            return (self.settings.ports.server, self.settings.ports.proxy)
        return (self.settings.ports.server,)

    def build_engine(self) -> None:
        self.engine = DhcpServer(self.settings, self.store)

    def startService(self) -> None:
        super().startService()
        if self.heartbeat is not None:
            self.heartbeat.start()

    def stopService(self) -> Deferred[Any]:
        closed = super().stopService()
        if self.heartbeat is not None:
            beat = self.heartbeat.stop()
            closed.addBoth(lambda outcome: beat.addBoth(lambda _: outcome))
        return closed

    def subnets(self, settings: Settings) -> int:
        return len(settings.subnets)

    def prepare_reload(self, config: Config) -> Callable[[], None]:
        """DHCP's part of a reload (``inventory.Prepare``): the new settings, built now."""
        return partial(self.reconfigure, engine_settings(config, self.interfaces[0].address))

    # --- requests ------------------------------------------------------------------------

    def handle(
        self, listener: Listener[Interface], datagram: bytes, addr: tuple[str, int]
    ) -> Outgoing | None:
        try:
            request = decode_dhcp(datagram)
        except MalformedPacket as bad:
            self._malformed(listener, datagram, addr, bad)
            return None
        overdue = None  # why this server answers a live peer's client (docs/ha.md)
        if self.heartbeat is not None:
            peers = self.heartbeat.peers
            mine = take(request, peers, listener.interface.address)
            if mine is None and self.overdue is not None:
                overdue = self.overdue.check(request)
            if mine is None and overdue is None:  # a live peer's client
                self.stats.messages[(message_name(request.message_type), "peer")] += 1
                return None
            request = mine or request
            self.engine.share = peers.share  # the free addresses this server probes first
        received = Received(
            listener.interface.address,
            (_source_address(addr[0]), addr[1]),
            listener.port,
            listener.interface.name,
        )
        action = self.engine.handle(request, received, self.reactor.seconds())
        try:
            self._record(listener, request, action, addr)
        except MalformedPacket as bad:
            # A badly typed option 53 or 50: the engine dropped it too; log it as such.
            self._malformed(listener, datagram, addr, bad)
        if not isinstance(action, Reply):
            return None
        self._booting(action)
        if overdue is not None:
            self._took_over(action.packet.mac, overdue)
        if action.no_loader is not None:
            self._no_loader(action.packet.mac, action.no_loader)
        ip, port = action.destination
        mac = action.packet.mac
        to, where = (str(ip), port), f"{ip}:{port}"
        return Outgoing(listener, action.data, to, where, mac, mac, committed=action.committed)

    def _took_over(self, mac: str, why: str) -> None:
        """Count a reply to a live peer's client, and warn once per MAC (the most recent
        TOLD_MEMORY of them): the operator learns which clients the peer does not hear."""
        self.stats.takeovers += 1
        if not self._told_took_over.first(mac):
            return
        log.warn(
            "dhcp {mac}: answered for a live peer that evidently does not hear it ({why})",
            mac=mac,
            why=why,
        )

    def _no_loader(self, mac: str, why: str) -> None:
        """Warn once per MAC (the most recent TOLD_MEMORY of them) that a booting client
        got an address but no boot file: its firmware retries at every boot, and a line per
        exchange would bury the one fact the operator needs, the architecture."""
        if not self._told_no_loader.first(mac):
            return
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

    def expired(self, lease: Lease) -> None:
        log.info("dhcp lease expired: {mac} {ip}", mac=lease.mac, ip=str(lease.ip))

    # --- logs and counters ---------------------------------------------------------------

    def _record(
        self,
        listener: Listener[Interface],
        request: DhcpPacket,
        action: Reply | NoReply,
        addr: tuple[str, int],
    ) -> None:
        kind = message_name(request.message_type)
        mac = request.mac
        if isinstance(action, Reply):
            outcome = _reply_outcome(action.packet.message_type)
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
            ip=_address_text(ip),
            reason=action.reason,
        )
        self.events.publish(event)
        # DISCOVERs (and what we ignore) come in bursts: keep them at debug. RELEASE and
        # DECLINE are never answered, yet change a lease, so they stay at info.
        quiet = outcome == "offer" or (outcome == "ignored" and kind not in _LEASE_CHANGES)
        log_line(log, LogLevel.debug if quiet else LogLevel.info, event)

    def _refused(self, mac: str) -> bool:
        """The MAC policy said no (deny list, or unknown with allow_unknown false)."""
        settings = self.settings
        return mac in settings.deny or (not settings.allow_unknown and mac not in settings.hosts)

    def _malformed(
        self,
        listener: Listener[Interface],
        datagram: bytes,
        addr: tuple[str, int],
        bad: MalformedPacket,
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
        overdue=None if heartbeat is None else Overdue(config.server.peer_ack_delay),
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
