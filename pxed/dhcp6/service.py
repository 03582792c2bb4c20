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
* Group commit (``pxed.datagram.batching``, shared with DHCPv4): a reactor turn's
  replies leave once the store has committed its bindings; a failed commit drops them.
* A reply to a client goes to its link-local source address with the scope of
  the receiving interface (Twisted drops the scope id from the source tuple, and
  a link-local address without one cannot be sent to); a relayed reply goes to
  the relay's address on 547.  The scope is passed as the interface's index in
  a 4-tuple, never as ``%name``: Python resolves a name through getaddrinfo at
  every sendto, which failed ("Name or service not known") for one reply in
  eight under a perfdhcp burst.
* With a database shared by several pxed servers, each probes its own share of a
  pool's free addresses first (``protocols.share``); the live set that decides the
  shares is the DHCPv4 heartbeat's, handed in as ``share`` by the daemon.  DHCPv6
  clients are not split between the servers, only the free addresses.
* Nothing escapes ``datagramReceived``: a malformed datagram is counted and
  logged, an unexpected error logged with its traceback; the socket serves on.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from ipaddress import IPv6Address
from typing import Protocol

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
from protocols.dhcpv6.wire import Dhcpv6Packet, Dhcpv6Relay, decode_dhcpv6
from protocols.errors import MalformedPacket
from protocols.share import Share
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
from pxed.dhcp6.exchange import exchange_event
from pxed.dhcp6.settings import engine_settings6
from pxed.dhcp6.sockets import Dhcp6SocketError, interface_addresses6, open_dhcp6_socket
from pxed.events import EventBus

SERVER_PORT = 547

log = Logger(namespace="pxed.dhcp6")


class DurableLeaseStore(LeaseStore, DurableStore[Lease], Protocol):
    """The engine's store plus what the adapter drives (``pxed.datagram.batching``)."""

    def leases(self) -> list[Lease]: ...


@dataclass(frozen=True)
class Interface:
    """A served interface, its global (or ULA) address, and its index (the scope id of
    link-local destinations)."""

    name: str
    address: IPv6Address
    index: int = 0


class Dhcp6Service(BatchingService[Lease, Interface, Settings]):
    """Serves DHCPv6 on every interface; replies wait for their batch's lease commit."""

    name = "dhcp6"
    log = log
    family = socket.AF_INET6
    store: DurableLeaseStore
    engine: Dhcpv6Server

    def __init__(
        self,
        settings: Settings,
        open_store: Callable[[], DurableLeaseStore],
        interfaces: Sequence[Interface],
        reactor: Reactor,
        open_socket: OpenSocket,
        stats: DatagramStats | None = None,
        events: EventBus | None = None,
        share: Callable[[], Share] | None = None,
    ) -> None:
        super().__init__(settings, open_store, interfaces, reactor, open_socket, stats)
        self.events = events or EventBus()
        self.share = share  # with a shared database: this server's share of the pools

    @property
    def listen_ports(self) -> tuple[int, ...]:
        if self.settings.mode is Mode.PROXY:
            return (SERVER_PORT, BOOT_SERVICE_PORT)
        return (SERVER_PORT,)

    def build_engine(self) -> None:
        self.engine = Dhcpv6Server(self.settings, self.store)

    def subnets(self, settings: Settings) -> int:
        return len(settings.links)

    def prepare_reload(self, config: Config) -> Callable[[], None]:
        """DHCPv6's part of a reload: the new settings, same DUID, sockets and store."""
        return partial(self.reconfigure, engine_settings6(config, self.settings.server_duid))

    # --- messages ------------------------------------------------------------------------

    def handle(
        self, listener: Listener[Interface], datagram: bytes, addr: tuple[str, int]
    ) -> Outgoing | None:
        source = _scoped(addr[0], listener.interface.name)
        try:
            packet = decode_dhcpv6(datagram)
        except MalformedPacket as bad:
            self._malformed(listener, datagram, addr, bad)
            return None
        if self.share is not None:
            self.engine.share = self.share()  # the free addresses this server probes first
        received = Received(
            listener.interface.address, (source, addr[1]), listener.port, listener.interface.name
        )
        action = self.engine.handle(packet, received, self.reactor.seconds())
        mac = self._record(listener, packet, action, (source, addr[1]))
        if not isinstance(action, Reply):
            return None
        ip, port = action.destination
        scope = listener.interface.index if ip.is_link_local else 0
        text = str(ip)  # once: an IPv6Address is formatted anew at every str()
        # Twisted hands the tuple to sendto as it is: (host, port, flowinfo, scope id).
        to = (text.partition("%")[0], port, 0, scope)
        where = f"[{text}]:{port}"
        client = _client(packet)
        return Outgoing(listener, action.data, to, where, mac, client, committed=action.committed)

    def expired(self, lease: Lease) -> None:
        log.info(
            "dhcp6 lease expired: {mac} {address}",
            mac=lease.mac or f"DUID {lease.client.hex(':')}",
            address=str(lease.address),
        )

    # --- logs and counters ---------------------------------------------------------------

    def _record(
        self,
        listener: Listener[Interface],
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
        self,
        listener: Listener[Interface],
        datagram: bytes,
        addr: tuple[str, int],
        bad: MalformedPacket,
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


@lru_cache(maxsize=4096)
def _scoped(host: str, interface: str) -> IPv6Address:
    """The sender's address, with the receiving interface as its zone when it is link-local.

    Cached: parsing the text was a twentieth of the adapter's time per message, and a
    relay (or a client retrying) sends from one address; bounded, as senders are not."""
    address = IPv6Address(host)
    if address.is_link_local and address.scope_id is None:
        return IPv6Address(f"{host}%{interface}")
    return address


def _client(packet: Dhcpv6Packet) -> str:
    """The client's DUID in hex, as a store names the client of a lost bind; "" without one."""
    message = packet.client_message if isinstance(packet, Dhcpv6Relay) else packet
    client = message.get(1)
    return client.data.hex(":") if client is not None else ""


def dhcp6_service(
    config: Config,
    reactor: Reactor,
    events: EventBus | None = None,
    share: Callable[[], Share] | None = None,
) -> Dhcp6Service:
    """The DHCPv6 server for ``config``: interfaces and the server DUID read now, leases
    loaded when it starts.  ``share``: this server's share of the pools, with a database
    shared by several pxed servers (the DHCPv4 heartbeat's)."""
    from pxed.dhcp6.duid import server_duid

    names = config.dhcp6.interfaces or config.server.interfaces
    if not names:
        raise Dhcp6SocketError("dhcp6: no interface to serve; set dhcp6.interfaces")
    interfaces = [
        Interface(name, _link_address(config, name), socket.if_nametoindex(name)) for name in names
    ]
    settings = engine_settings6(config, server_duid(config.server.state_dir))
    return Dhcp6Service(
        settings,
        partial(open_lease_store6, config, reactor),
        interfaces,
        reactor,
        open_dhcp6_socket,
        events=events,
        share=share,
    )


def open_lease_store6(config: Config, reactor: Reactor) -> DurableLeaseStore:
    """SQLite in ``server.state_dir``, or PostgreSQL when ``server.database`` names it."""
    if config.server.database is None:
        from pxed.dhcp6.leases import Sqlite6LeaseStore

        return Sqlite6LeaseStore.open(config.server.state_dir)
    from pxed.database.worker import Worker
    from pxed.dhcp6.pg_leases import Postgres6LeaseStore

    return Postgres6LeaseStore.open(
        config.server.database, Worker(reactor, "pxed-leases6"), config.server.label
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
