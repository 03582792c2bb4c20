"""The DHCPv6 server's Twisted side: a socket per interface, group commit, logs, counters.

The engine (``protocols.dhcpv6.server``) decides every reply and writes bindings
into the store; this module decodes, calls it, and performs what it says.  It
follows the DHCPv4 adapter (``pxed.dhcp.service``) in everything that is not
address-family specific:

* One socket per served interface on [::]:547, joined to ff02::1:2 there
  (``pxed.dhcp6.sockets``); proxy mode adds one on udp/4011 for EDK2's boot
  service request.  A reply leaves on the socket its request came in on.
* The interface's global (or ULA) address, read at start, is what the engine
  picks the client's link by and fills {server6} with: the one inside a
  ``dhcp6`` subnet, else the first.
* Group commit: replies of a reactor turn wait until the store has committed
  the turn's bindings (one fsync), so no REPLY promises an address that is not
  on disk; a failed commit drops the batch's replies and clients retry.
* A reply to a client goes to its link-local source address with the scope of
  the receiving interface (Twisted drops the scope id from the source tuple, and
  a link-local address without one cannot be sent to); a relayed reply goes to
  the relay's address on 547.  The scope is passed as the interface's index in
  a 4-tuple, never as ``%name``: Python resolves a name through getaddrinfo at
  every sendto, which failed ("Name or service not known") for one reply in
  eight under a perfdhcp burst.
* Nothing escapes ``datagramReceived``: a malformed datagram is counted and
  logged, an unexpected error logged with its traceback; the socket serves on.
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from ipaddress import IPv6Address
from typing import Any, Protocol

from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IUDPTransport
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from protocols.dhcp.server import Mode
from protocols.dhcpv6.allocation import mac_from_link_local
from protocols.dhcpv6.leases import Lease, LeaseStore
from protocols.dhcpv6.server import (
    BOOT_SERVICE_PORT,
    Dhcpv6Server,
    NoReply,
    Received,
    Reply,
    Settings,
)
from protocols.dhcpv6.wire import Dhcpv6Packet, decode_dhcpv6
from protocols.errors import MalformedPacket
from pxed.config import Config
from pxed.dhcp6.exchange import exchange_event
from pxed.dhcp6.settings import engine_settings6
from pxed.dhcp6.sockets import Dhcp6SocketError, interface_addresses6, open_dhcp6_socket
from pxed.events import EventBus

SERVER_PORT = 547
MAX_DATAGRAM = 65536
MAX_BATCH = 32  # replies held for one commit at most (pxed.dhcp.service says why)
EXPIRY_INTERVAL = 60.0  # seconds between sweeps of expired bindings and quarantines

log = Logger(namespace="pxed.dhcp6")


class Reactor(Protocol):
    """What the adapter needs of a reactor: IReactorTime and IReactorSocket (or a fake)."""

    def seconds(self) -> float: ...

    def callLater(
        self, delay: float, callable: Callable[..., Any], *args: Any, **kw: Any
    ) -> IDelayedCall: ...

    def adoptDatagramPort(
        self,
        fileDescriptor: int,
        addressFamily: socket.AddressFamily,
        protocol: DatagramProtocol,
        maxPacketSize: int,
    ) -> Any: ...


class DurableLeaseStore(LeaseStore, Protocol):
    """The engine's store plus what the adapter drives: commits, expiry, closing."""

    def commit(self) -> None: ...

    def expire(self, now: float) -> list[Lease]: ...

    def close(self) -> None: ...


class SocketLike(Protocol):
    def fileno(self) -> int: ...

    def close(self) -> None: ...


OpenSocket = Callable[[str, int], SocketLike]


@dataclass(frozen=True)
class Interface:
    """A served interface, its global (or ULA) address, and its index (the scope id of
    link-local destinations)."""

    name: str
    address: IPv6Address
    index: int = 0


@dataclass
class Dhcp6Stats:
    """Counters for /metrics and tests: messages by (type, outcome), commits, batches."""

    messages: Counter[tuple[str, str]] = field(default_factory=Counter)
    commits: int = 0
    commit_failures: int = 0
    replies_sent: int = 0
    largest_batch: int = 0


class _Listener(DatagramProtocol):
    """One adopted socket: an interface on one port (547, or 4011 in proxy mode)."""

    noisy = False
    transport: IUDPTransport

    def __init__(self, server: Dhcp6Service, interface: Interface, port: int) -> None:
        self.server = server
        self.interface = interface
        self.port = port

    def logPrefix(self) -> str:
        return f"pxed-dhcp6-{self.interface.name}-{self.port}"

    def datagramReceived(self, datagram: bytes, addr: tuple[str, int]) -> None:
        try:
            self.server.received(self, datagram, addr)
        except Exception:
            log.failure(
                "dhcp6: datagram from {client} on {interface} dropped: internal error",
                client=f"[{addr[0]}]:{addr[1]}",
                interface=self.interface.name,
            )


@dataclass(frozen=True)
class _Outgoing:
    listener: _Listener
    reply: Reply
    mac: str


class Dhcp6Service(Service):
    """Serves DHCPv6 on every interface; replies wait for their batch's lease commit."""

    name = "dhcp6"
    store: DurableLeaseStore  # opened, with the engine, in privilegedStartService
    engine: Dhcpv6Server

    def __init__(
        self,
        settings: Settings,
        open_store: Callable[[], DurableLeaseStore],
        interfaces: Sequence[Interface],
        reactor: Reactor,
        open_socket: OpenSocket,
        stats: Dhcp6Stats | None = None,
        events: EventBus | None = None,
    ) -> None:
        self.settings = settings
        self.open_store = open_store
        self.interfaces = tuple(interfaces)
        self.reactor = reactor
        self.open_socket = open_socket
        self.stats = stats or Dhcp6Stats()
        self.events = events or EventBus()
        self._ports: list[Any] = []
        self._batch: list[_Outgoing] = []
        self._flush_call: IDelayedCall | None = None
        self._expiry: LoopingCall | None = None

    @property
    def listen_ports(self) -> tuple[int, ...]:
        if self.settings.mode is Mode.PROXY:
            return (SERVER_PORT, BOOT_SERVICE_PORT)
        return (SERVER_PORT,)

    def privilegedStartService(self) -> None:
        """Open the leases and bind after twistd forks and before it drops root (SQLite
        must not cross a fork; port 547 needs root)."""
        super().privilegedStartService()
        self.store = self.open_store()
        self.engine = Dhcpv6Server(self.settings, self.store)
        for interface in self.interfaces:
            for port in self.listen_ports:
                self._ports.append(self._adopt(interface, port))
        log.info(
            "dhcp6: {mode} mode on {interfaces}, udp/{ports}",
            mode=self.settings.mode.value,
            interfaces=", ".join(f"{i.name} ({i.address})" for i in self.interfaces),
            ports="+".join(str(p) for p in self.listen_ports),
        )

    def _adopt(self, interface: Interface, port: int) -> Any:
        sock = self.open_socket(interface.name, port)
        try:
            return self.reactor.adoptDatagramPort(
                sock.fileno(),
                socket.AF_INET6,
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

    def stopService(self) -> Deferred[Any]:
        """Commit and send the pending batch, close the store, then every socket."""
        super().stopService()
        if self._expiry is not None and self._expiry.running:
            self._expiry.stop()
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self._flush_call = None
        self.flush()
        ports, self._ports = self._ports, []
        closed = maybeDeferred(self.store.close)
        return closed.addBoth(self._close_ports, ports)

    @staticmethod
    def _close_ports(outcome: object, ports: list[Any]) -> Deferred[Any]:
        closing = [port.stopListening() for port in ports]
        stopped = gatherResults([d for d in closing if d is not None])
        return stopped.addCallback(lambda _: outcome)

    def prepare_reload(self, config: Config) -> Callable[[], None]:
        """DHCPv6's part of a reload: the new settings, same DUID, sockets and store."""
        return partial(self.reconfigure, engine_settings6(config, self.settings.server_duid))

    def reconfigure(self, settings: Settings) -> None:
        self.settings = settings
        if self._ports:
            self.engine = Dhcpv6Server(settings, self.store)
        log.info(
            "dhcp6: reloaded: {mode} mode, {hosts} hosts, {subnets} subnets",
            mode=settings.mode.value,
            hosts=len(settings.hosts),
            subnets=len(settings.links),
        )

    # --- messages ------------------------------------------------------------------------

    def received(self, listener: _Listener, datagram: bytes, addr: tuple[str, int]) -> None:
        """One datagram on one interface's socket: decide now, send after the batch commits."""
        source = _scoped(addr[0], listener.interface.name)
        try:
            packet = decode_dhcpv6(datagram)
        except MalformedPacket as bad:
            self._malformed(listener, datagram, addr, bad)
            return
        received = Received(
            listener.interface.address, (source, addr[1]), listener.port, listener.interface.name
        )
        action = self.engine.handle(packet, received, self.reactor.seconds())
        who = self._record(listener, packet, action, (source, addr[1]))
        if isinstance(action, Reply):
            self._batch.append(_Outgoing(listener, action, who))
            if len(self._batch) >= MAX_BATCH:
                self.flush()
        # Silent messages may write too (a RELEASE answered or not): every turn commits.
        if self._flush_call is None:
            self._flush_call = self.reactor.callLater(0, self._end_of_turn)

    def _end_of_turn(self) -> None:
        self._flush_call = None
        self.flush()

    def flush(self) -> None:
        """Commit the batch's bindings (one fsync), then send its replies, in arrival order."""
        batch, self._batch = self._batch, []
        try:
            self.store.commit()
        except Exception:
            self.stats.commit_failures += 1
            log.failure(
                "dhcp6: lease commit failed; {count} replies not sent (clients will retry)",
                count=len(batch),
            )
            return
        self.stats.commits += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        for outgoing in batch:
            self._send(outgoing)

    def _send(self, outgoing: _Outgoing) -> None:
        ip, port = outgoing.reply.destination
        host = str(ip).partition("%")[0]
        scope = outgoing.listener.interface.index if ip.is_link_local else 0
        try:
            # Twisted hands the tuple to sendto as it is: (host, port, flowinfo, scope id).
            destination: Any = (host, port, 0, scope)
            outgoing.listener.transport.write(outgoing.reply.data, destination)
        except OSError as error:
            log.warn(
                "dhcp6: reply to {mac} at {destination} not sent: {error}",
                mac=outgoing.mac,
                destination=f"[{ip}]:{port}",
                error=error.strerror or str(error),
            )
            return
        self.stats.replies_sent += 1

    def expire(self) -> None:
        """Drop expired bindings and quarantines, and commit; errors are logged, never
        raised (they would stop the LoopingCall and every later sweep)."""
        try:
            gone = self.store.expire(self.reactor.seconds())
            self.store.commit()
        except Exception:
            log.failure(
                "dhcp6: sweeping expired leases failed; trying again in {interval:.0f} s",
                interval=EXPIRY_INTERVAL,
            )
            return
        for lease in gone:
            log.info(
                "dhcp6 lease expired: {mac} {address}",
                mac=lease.mac or f"DUID {lease.client.hex(':')}",
                address=str(lease.address),
            )

    # --- logs and counters ---------------------------------------------------------------

    def _record(
        self,
        listener: _Listener,
        packet: Dhcpv6Packet,
        action: Reply | NoReply,
        source: tuple[IPv6Address, int],
    ) -> str:
        """Count, publish and log the exchange; returns who the client is, for the send."""
        event = exchange_event(
            packet, action, source, listener.interface.name, listener.port, self.reactor.seconds()
        )
        self.stats.messages[(event.kind, event.outcome)] += 1
        self.events.publish(event)
        # SOLICITs and what is ignored come in bursts: debug; the rest changes bindings.
        quiet = event.outcome in ("advertise", "ignored") and event.kind != "RELEASE"
        (log.debug if quiet else log.info)(event.FORMAT, **event.fields())
        return event.who

    def _malformed(
        self, listener: _Listener, datagram: bytes, addr: tuple[str, int], bad: MalformedPacket
    ) -> None:
        self.stats.messages[("malformed", "dropped")] += 1
        log.info(
            "dhcp6 malformed datagram from {mac} ({client}) on {interface} dropped: {reason}",
            mac=mac_from_link_local(_scoped(addr[0], listener.interface.name)) or "unknown",
            client=f"[{addr[0]}]:{addr[1]}",
            interface=listener.interface.name,
            port=listener.port,
            outcome="malformed",
            reason=str(bad),
            size=len(datagram),
        )


def _scoped(host: str, interface: str) -> IPv6Address:
    """The sender's address, with the receiving interface as its zone when it is link-local."""
    address = IPv6Address(host)
    if address.is_link_local and address.scope_id is None:
        return IPv6Address(f"{host}%{interface}")
    return address


def dhcp6_service(config: Config, reactor: Reactor, events: EventBus | None = None) -> Dhcp6Service:
    """The DHCPv6 server for ``config``: interfaces and the server DUID read now, leases
    loaded when it starts."""
    from pxed.dhcp6.duid import server_duid
    from pxed.dhcp6.leases import Sqlite6LeaseStore

    names = config.dhcp6.interfaces or config.server.interfaces
    if not names:
        raise Dhcp6SocketError("dhcp6: no interface to serve; set dhcp6.interfaces")
    interfaces = [
        Interface(name, _link_address(config, name), socket.if_nametoindex(name)) for name in names
    ]
    settings = engine_settings6(config, server_duid(config.server.state_dir))
    return Dhcp6Service(
        settings,
        partial(Sqlite6LeaseStore.open, config.server.state_dir),
        interfaces,
        reactor,
        open_dhcp6_socket,
        events=events,
    )


def _link_address(config: Config, name: str) -> IPv6Address:
    """The interface's address inside a dhcp6 subnet, else its first global one."""
    addresses = interface_addresses6(name)
    if not addresses:
        raise Dhcp6SocketError(
            f"dhcp6: interface {name} has no global or ULA IPv6 address; DHCPv6 needs one to "
            "tell which dhcp6 subnet its clients are on and to put in boot URLs"
        )
    return next((a for a in addresses if config.dhcp6.subnet_for(a)), addresses[0])
