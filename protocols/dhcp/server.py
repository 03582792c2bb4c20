"""The DHCP/BOOTP/proxyDHCP server engine (RFC 2131, RFC 1534, PXE 2.1), sans-I/O.

``DhcpServer.handle(request, received, now)`` returns what to do: a ``Reply``
(encoded bytes and where to send them) or ``NoReply`` with the reason for the
log.  The engine writes leases into its ``LeaseStore`` but never commits: the
adapter commits the store (one fsync for a batch) before it sends any reply of
that batch, so an ACK never leaves before its lease is durable.

Decisions worth knowing:

- The server identifier is the address of the interface the request came in
  on; next-server and boot URLs use ``server_address`` when set.
- A REQUEST is ACKed whenever the address is one the client may hold (its
  lease, its reservation, or free in the pool), even without our offer: an
  offer lost in a crash or restart then costs nothing.  A wrong address gets a
  NAK in SELECTING (the client chose us), and otherwise when authoritative or
  when we know the client; else silence (RFC 2131 4.3.2).
- Retransmissions need no cache: the same request meets the same lease state
  and gets the same address back.
- While the store cannot write (``LeaseStore.writable`` false: its database is
  down), nothing is bound; a renewal or INIT-REBOOT for the lease the store has
  committed is ACKed for the time that lease has left, its expiry unchanged, and
  every other REQUEST goes unanswered (docs/ha.md).  Such an ACK is marked
  ``committed``: it promises nothing a commit still has to store.
- Replies always fit the client's option 57 (at least 576, at most a 1500-byte
  MTU): the encoder overloads file/sname first, then requested options are
  dropped from the end of the parameter request list.

What one client on the LAN may take from the others (hostile or looping):

- A relayed request (giaddr set) is answered only when giaddr lies in a
  configured subnet and, if ``relays`` is set, when it comes from one of those
  addresses; anyone else's giaddr would pick any subnet's pool and aim replies
  at any address.
- DISCOVERs are rate-limited per MAC (``discover_burst``, then
  ``discover_rate`` a second): past it the client is ignored until it slows.
- RELEASE is believed only from the lease's own address (or through a relay),
  DECLINE only from that address, from 0.0.0.0 (RFC 2131: a client that
  declines has no address) or through a relay. A MAC may DECLINE
  ``decline_limit`` times per ``decline_time``, and DECLINEs never quarantine
  more than ``max_quarantined`` of a subnet's pool.
- A dynamic BOOTP lease expires after ``bootp_lease_time``; only a reservation
  is for ever (BOOTP clients never renew, so a flood of them would otherwise
  hold the pool across restarts).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from ipaddress import IPv4Address

from protocols.dhcp.allocation import Allocator, Host, Subnet, subnet_for
from protocols.dhcp.leases import Lease, LeaseState, LeaseStore
from protocols.dhcp.limits import RateLimit
from protocols.dhcp.options import (
    BOOTFILE,
    BROADCAST_ADDRESS,
    DNS_SERVERS,
    DOMAIN_NAME,
    HOSTNAME,
    LEASE_TIME,
    MAX_MESSAGE_SIZE,
    MESSAGE,
    MESSAGE_TYPE,
    PARAMETER_REQUEST_LIST,
    REBINDING_TIME,
    RELAY_AGENT_INFO,
    RENEWAL_TIME,
    ROUTER,
    SERVER_ID,
    SUBNET_MASK,
    TFTP_SERVER,
    MessageType,
    Option,
)
from protocols.dhcp.policy import (
    OPT_ARCH,
    OPT_IPXE_ENCAP,
    OPT_USER_CLASS,
    OPT_VENDOR_CLASS,
    BootChoice,
    BootFamily,
    BootSettings,
    Client,
    choose_boot,
    classify,
    no_loader,
    proxy_ack,
    proxy_offer,
)
from protocols.dhcp.wire import (
    BOOTREQUEST,
    BROADCAST_FLAG,
    FILE_SIZE,
    DhcpPacket,
    EncodeError,
    decode_dhcp,
    encode_dhcp,
)
from protocols.errors import MalformedPacket
from protocols.share import WHOLE_POOL, Share

BROADCAST = IPv4Address("255.255.255.255")
ZERO = IPv4Address(0)
MIN_MESSAGE = 576  # RFC 2131: every client takes a 576-byte IP datagram
MAX_MESSAGE = 1500  # never build a reply that fragments on an Ethernet MTU
IP_UDP_HEADERS = 28
BOOTP_MIN_SIZE = 300  # RFC 951 replies; some relays drop anything shorter


class Mode(enum.Enum):
    FULL = "full"
    PROXY = "proxy"
    OFF = "off"


@dataclass(frozen=True)
class Ports:
    server: int = 67
    client: int = 68
    proxy: int = 4011


@dataclass(frozen=True)
class Settings:
    """What the engine needs from ``dhcp:`` and ``hosts:``; the adapter builds it from config.

    MACs in ``deny`` and as ``hosts`` keys are lowercase and colon-separated
    (``leases.normalise_mac``), the form ``DhcpPacket.mac`` gives.
    """

    boot: BootSettings
    mode: Mode = Mode.FULL
    authoritative: bool = True
    allow_unknown: bool = False
    deny: frozenset[str] = frozenset()
    subnets: tuple[Subnet, ...] = ()
    hosts: Mapping[str, Host] = field(default_factory=dict)
    server_address: IPv4Address | None = None
    offer_time: float = 60.0
    decline_time: float = 600.0
    ports: Ports = Ports()
    relays: frozenset[IPv4Address] = frozenset()  # empty: any source, giaddr in a subnet
    bootp_lease_time: float = 3600.0
    decline_limit: int = 3
    max_quarantined: float = 0.25
    discover_burst: int = 8
    discover_rate: float = 1.0


@dataclass(frozen=True)
class Received:
    """Where a request came from: the serving interface's address, the source, the local port."""

    address: IPv4Address
    source: tuple[IPv4Address, int]
    port: int = 67
    interface: str = ""


@dataclass(frozen=True)
class Reply:
    packet: DhcpPacket
    data: bytes
    destination: tuple[IPv4Address, int]
    reason: str
    no_loader: str | None = None  # a booting client got no boot file: why (pxed warns once)
    committed: bool = False  # promises only a lease already stored: needs no commit to leave


@dataclass(frozen=True)
class NoReply:
    reason: str


Action = Reply | NoReply


def reply_destination(
    request: DhcpPacket, reply: DhcpPacket, received: Received, ports: Ports
) -> tuple[IPv4Address, int]:
    """RFC 2131 section 4.1, plus proxyDHCP's udp/4011 answered to its exact source.

    Unicast to yiaddr would need an ARP entry for a client that cannot answer
    ARP yet, so broadcast is the fallback for every client-bound reply.
    """
    if received.port == ports.proxy:
        return received.source
    if request.giaddr != ZERO:
        return request.giaddr, ports.server
    if request.ciaddr != ZERO and reply.option(MESSAGE_TYPE) != MessageType.NAK:
        return request.ciaddr, ports.client
    return BROADCAST, ports.client


class DhcpServer:
    def __init__(self, settings: Settings, store: LeaseStore) -> None:
        self.settings = settings
        self.store = store
        self.allocator = Allocator.build(store, settings.hosts)
        # Which free addresses this server probes first: with peers sharing the lease
        # database, the adapter sets its share from the live set (protocols.dhcp.split).
        self.share: Share = WHOLE_POOL
        self.discovers = RateLimit(settings.discover_rate, settings.discover_burst)
        self.declines = RateLimit(
            settings.decline_limit / settings.decline_time, settings.decline_limit
        )

    def handle_datagram(self, data: bytes, received: Received, now: float) -> Action:
        try:
            request = decode_dhcp(data)
        except MalformedPacket as error:
            return NoReply(f"malformed packet: {error}")
        return self.handle(request, received, now)

    def handle(self, request: DhcpPacket, received: Received, now: float) -> Action:
        try:
            return self._handle(request, received, now)
        except MalformedPacket as error:
            return NoReply(f"malformed option: {error}")

    def _handle(self, request: DhcpPacket, received: Received, now: float) -> Action:
        settings = self.settings
        if settings.mode is Mode.OFF:
            return NoReply("dhcp.mode is off")
        if request.op != BOOTREQUEST:
            return NoReply(f"op {request.op} is not a BOOTREQUEST")
        if not 1 <= request.hlen <= 16:
            return NoReply(f"hardware address length {request.hlen}")
        relay = request.get(RELAY_AGENT_INFO)
        if relay is not None and relay.error is not None:
            # A relay garbled its own option; echoing it back would confuse it (Kea drops these).
            return NoReply(f"malformed relay agent information (option 82): {relay.error}")
        mac = request.mac
        if mac in settings.deny:
            return NoReply(f"{mac} is on the deny list")
        if not settings.allow_unknown and mac not in settings.hosts:
            return NoReply(f"{mac} is not under hosts and allow_unknown is false")
        if request.giaddr != ZERO:
            untrusted = self._untrusted_relay(request, received)
            if untrusted is not None:
                return untrusted
        if received.port == settings.ports.proxy:
            return self._boot_server(request, received)
        kind = request.message_type
        if settings.mode is Mode.PROXY:
            return self._proxy(request, received, kind)
        if kind is None:
            return self._bootp(request, received, now)
        handler = self._HANDLERS.get(kind)
        if handler is None:
            return NoReply(f"ignoring DHCP message type {kind}")
        return handler(self, request, received, now)

    # -- full mode ---------------------------------------------------------

    def _discover(self, request: DhcpPacket, received: Received, now: float) -> Action:
        if not self.discovers.allow(request.mac, now):
            return NoReply(f"{request.mac} sends DISCOVERs faster than discover_rate allows")
        subnet = self._subnet(request, received)
        if subnet is None:
            return self._no_subnet(request, received)
        ip = self.allocator.choose(request.mac, subnet, request.requested_ip, now, self.share)
        if ip is None:
            return NoReply(f"no address for {request.mac} in {subnet.network}")
        lease = Lease(request.mac, ip, now + self.settings.offer_time, LeaseState.OFFERED)
        self.store.offer(lease, now)
        return self._lease_reply(request, received, subnet, MessageType.OFFER, ip)

    def _request(self, request: DhcpPacket, received: Received, now: float) -> Action:
        server_id = request.server_id
        if server_id is not None and server_id != received.address:
            self.store.forget_offer(request.mac)
            return NoReply(f"{request.mac} chose server {server_id}")
        if not self.store.writable:
            return self._confirm(request, received, now)
        selecting = server_id is not None
        ip = request.requested_ip
        if ip is None and not selecting:
            ip = request.ciaddr if request.ciaddr != ZERO else None
        if ip is None:
            return NoReply("REQUEST names no address (no option 50 or ciaddr)")
        mac = request.mac
        lease = self.store.lease_for(mac, now)
        # Only a lease we gave makes ciaddr trustworthy here: a stranger's ciaddr from
        # another subnet must not win it an address there.
        renewing = lease is not None and lease.ip == request.ciaddr
        subnet = self._subnet(request, received, by_ciaddr=renewing)
        if subnet is None and not selecting:
            return self._no_subnet(request, received)
        host = self.settings.hosts.get(mac)
        reservation = host.ip if host is not None else None
        has_record = lease is not None or reservation is not None
        holds = (lease is not None and lease.ip == ip) or reservation == ip
        acceptable = subnet is not None and self.allocator.acceptable(mac, ip, subnet, now)
        if subnet is not None and acceptable and (selecting or holds or self._authoritative):
            hostname = self._hostname(request)
            expires = now + subnet.lease_time
            self.store.bind(Lease(mac, ip, expires, LeaseState.BOUND, hostname), now)
            return self._lease_reply(request, received, subnet, MessageType.ACK, ip)
        if acceptable:
            return NoReply(f"not authoritative and no record of {mac} holding {ip}")
        if selecting or has_record or self._authoritative:
            return self._nak(request, received, f"{ip} is not available to {mac}")
        return NoReply(f"{ip} is not available to {mac}; not authoritative, staying silent")

    def _confirm(self, request: DhcpPacket, received: Received, now: float) -> Action:
        """A REQUEST while nothing can be stored: only a renewal (ciaddr) or INIT-REBOOT
        (option 50) of the lease the store has committed is ACKed, for the time that lease
        has left, so the client's lease ends no later than the stored one and nothing needs
        writing.  A SELECTING client needs a new lease: silence, as for every other."""
        mac = request.mac
        ip = request.requested_ip
        if ip is None and request.ciaddr != ZERO:
            ip = request.ciaddr
        down = "the lease database is down"
        if request.server_id is not None or ip is None:
            return NoReply(f"{down}: only renewals of stored leases are answered")
        lease = self.store.committed(mac, now)
        if lease is None or lease.ip != ip or lease.expires is None:
            return NoReply(f"{down}: {mac} has no stored lease on {ip} to confirm")
        left = int(lease.expires - now)
        subnet = self._subnet(request, received, by_ciaddr=request.ciaddr == ip)
        if left < 1 or subnet is None or not self.allocator.acceptable(mac, ip, subnet, now):
            return NoReply(f"{down}: {mac}'s stored lease on {ip} is not confirmed")
        action = self._lease_reply(request, received, subnet, MessageType.ACK, ip, left)
        if not isinstance(action, Reply):
            return action
        reason = f"{action.reason} ({down}: its stored lease, {left} s left)"
        return replace(action, reason=reason, committed=True)

    def _decline(self, request: DhcpPacket, received: Received, now: float) -> Action:
        ip = request.requested_ip
        lease = self.store.lease_for(request.mac, now)
        if not self._for_us(request, received) or lease is None or lease.ip != ip or ip is None:
            return NoReply(f"DECLINE of {ip} that {request.mac} was not given by us")
        if not self._from_holder(request, received, ip, declining=True):
            return NoReply(f"DECLINE of {ip} for {request.mac} from {received.source[0]}")
        if not self.declines.allow(request.mac, now):
            return NoReply(f"{request.mac} declined more than decline_limit times; ignored")
        subnet = self._subnet(request, received)
        if subnet is not None and self._quarantine_full(subnet, now):
            return NoReply(f"{request.mac} declined {ip}: max_quarantined of the pool reached")
        until = now + self.settings.decline_time
        self.store.quarantine(ip, until)
        return NoReply(f"{request.mac} declined {ip}: quarantined until {until:.0f}")

    def _release(self, request: DhcpPacket, received: Received, now: float) -> Action:
        lease = self.store.lease_for(request.mac, now)
        if not self._for_us(request, received) or lease is None or lease.ip != request.ciaddr:
            return NoReply(f"RELEASE of {request.ciaddr} that {request.mac} does not hold")
        if not self._from_holder(request, received, lease.ip, declining=False):
            return NoReply(
                f"RELEASE of {lease.ip} for {request.mac} from {received.source[0]}, "
                "not from the address itself"
            )
        self.store.release(request.mac)
        return NoReply(f"{request.mac} released {request.ciaddr}")

    def _inform(self, request: DhcpPacket, received: Received, now: float) -> Action:
        subnet = self._subnet(request, received, by_ciaddr=True)
        if subnet is None:
            return self._no_subnet(request, received)
        return self._lease_reply(request, received, subnet, MessageType.ACK, ZERO)

    def _bootp(self, request: DhcpPacket, received: Received, now: float) -> Action:
        subnet = self._subnet(request, received, by_ciaddr=True)
        if subnet is None:
            return self._no_subnet(request, received)
        if request.ciaddr != ZERO:
            # RFC 951: a client that fills in ciaddr knows its address; give it boot
            # information only, or it would hold a second, never-expiring address.
            return self._lease_reply(request, received, subnet, None, ZERO)
        mac = request.mac
        ip = self.allocator.choose(mac, subnet, None, now, self.share)
        if ip is None:
            return NoReply(f"no address for BOOTP client {mac} in {subnet.network}")
        host = self.settings.hosts.get(mac)
        reserved = host is not None and host.ip == ip
        expires = None if reserved else now + self.settings.bootp_lease_time
        self.store.bind(Lease(mac, ip, expires, LeaseState.BOUND, self._hostname(request)), now)
        return self._lease_reply(request, received, subnet, None, ip)

    _HANDLERS: Mapping[int, Callable[[DhcpServer, DhcpPacket, Received, float], Action]] = {
        MessageType.DISCOVER: _discover,
        MessageType.REQUEST: _request,
        MessageType.DECLINE: _decline,
        MessageType.RELEASE: _release,
        MessageType.INFORM: _inform,
    }

    # -- proxy mode --------------------------------------------------------

    def _proxy(self, request: DhcpPacket, received: Received, kind: object) -> Action:
        client = _client(request)
        if kind != MessageType.DISCOVER or not client.pxe:
            return NoReply(f"proxy mode answers only PXEClient DISCOVERs (got {kind})")
        choice = self._proxy_choice(proxy_offer, client, request, received)
        if choice is None:
            return NoReply(f"proxy mode: {no_loader(client, self.settings.boot)}")
        return self._boot_reply(request, received, MessageType.OFFER, choice)

    def _boot_server(self, request: DhcpPacket, received: Received) -> Action:
        """udp/4011: the PXE boot server REQUEST, answered with the boot file."""
        client = _client(request)
        kind = request.message_type
        if kind not in (MessageType.REQUEST, MessageType.INFORM) or not client.pxe:
            return NoReply(f"udp/{received.port} answers only PXEClient REQUESTs (got {kind})")
        choice = self._proxy_choice(proxy_ack, client, request, received)
        if choice is None:
            return NoReply(f"no boot file configured for {request.mac}")
        return self._boot_reply(request, received, MessageType.ACK, choice)

    def _proxy_choice(
        self,
        decide: Callable[
            [Client, str, IPv4Address, BootSettings, Mapping[BootFamily, str] | None],
            BootChoice | None,
        ],
        client: Client,
        request: DhcpPacket,
        received: Received,
    ) -> BootChoice | None:
        """What ``decide`` (proxy_offer or proxy_ack) boots this client with, its host's
        own loader first."""
        host = self.settings.hosts.get(request.mac)
        loader = host.loader if host else None
        return decide(client, request.mac, self._next_server(received), self.settings.boot, loader)

    def _boot_reply(
        self, request: DhcpPacket, received: Received, kind: MessageType, choice: BootChoice
    ) -> Action:
        head = (_option(MESSAGE_TYPE, kind), _option(SERVER_ID, received.address))
        file, spilled = _place_file(choice.file)
        options = _with(head, [*choice.options.items(), *spilled])
        return self._send(
            request,
            received,
            options,
            f"proxy {kind.name} {choice.family.value} {choice.file or '(file via 4011)'}",
            siaddr=choice.next_server,
            file=file,
            ciaddr=request.ciaddr,
        )

    # -- building replies --------------------------------------------------

    def _lease_reply(
        self,
        request: DhcpPacket,
        received: Received,
        subnet: Subnet,
        kind: MessageType | None,
        ip: IPv4Address,
        lease_time: int | None = None,
    ) -> Action:
        """OFFER, ACK (``ip`` is ZERO for INFORM) or, with ``kind`` None, a BOOTREPLY
        (``ip`` ZERO for a BOOTP client that knows its address).  The lease time is the
        subnet's unless ``lease_time`` says otherwise; T1 and T2 follow it."""
        host = self.settings.hosts.get(request.mac)
        next_server = self._next_server(received)
        client = _client(request)
        choice = (
            None
            if client is _NOT_BOOTING
            else choose_boot(
                client,
                request.mac,
                next_server,
                self.settings.boot,
                host.loader if host else None,
            )
        )
        if kind is None or ip == ZERO:
            lease_time = None
        elif lease_time is None:
            lease_time = subnet.lease_time
        prl = request.get(PARAMETER_REQUEST_LIST)
        fixed, wanted = _reply_options(
            kind,
            received.address,
            lease_time,
            b"" if prl is None else prl.data,
            subnet,
            host.hostname if host is not None and host.hostname else None,
            choice is not None,
        )
        file = ""
        if choice is not None:
            file, spilled = _place_file(choice.file)
            fixed = _with(fixed, [*choice.options.items(), *spilled])
            taken = {option.code for option in fixed}
            places = {
                TFTP_SERVER: _option(TFTP_SERVER, str(choice.next_server)),
                BOOTFILE: _option(BOOTFILE, choice.file),
            }
            wanted = tuple(
                [places.get(option.code, option) for option in wanted if option.code not in taken]
            )
        options = fixed + wanted
        name = kind.name if kind is not None else "BOOTREPLY"
        missing = (
            None if choice or client is _NOT_BOOTING else no_loader(client, self.settings.boot)
        )
        boot = f" boot {choice.family.value} {choice.file}" if choice else ""
        boot += f" (no boot file: {missing})" if missing else ""
        action = self._send(
            request,
            received,
            options,
            f"{name} {ip!s} to {request.mac}{boot}",
            yiaddr=ip,
            siaddr=next_server if choice else ZERO,
            ciaddr=request.ciaddr if kind in (MessageType.ACK, None) else ZERO,
            file=file,
            droppable=len(wanted),
        )
        if missing and isinstance(action, Reply):
            return replace(action, no_loader=missing)
        return action

    def _nak(self, request: DhcpPacket, received: Received, why: str) -> Action:
        options = (
            _option(MESSAGE_TYPE, MessageType.NAK),
            _option(SERVER_ID, received.address),
            Option.of(MESSAGE, why),
        )
        # RFC 2131 4.3.2: a relay must broadcast a NAK, the client may have no address.
        relayed = request.giaddr != ZERO
        return self._send(request, received, options, f"NAK: {why}", broadcast=relayed)

    def _send(
        self,
        request: DhcpPacket,
        received: Received,
        options: tuple[Option, ...],
        reason: str,
        *,
        file: str = "",
        droppable: int = 0,
        broadcast: bool = False,
        yiaddr: IPv4Address = ZERO,
        siaddr: IPv4Address = ZERO,
        ciaddr: IPv4Address = ZERO,
    ) -> Action:
        """Encode within the client's size limit, dropping trailing requested options if needed."""
        relay = request.get(RELAY_AGENT_INFO)
        tail = [relay] if relay else []
        budget = _max_payload(request)
        vend = None if request.is_dhcp else bytes(64)
        for dropped in range(droppable + 1):
            reply = DhcpPacket.reply(
                request,
                [*options[: len(options) - dropped], *tail],
                file=file,
                vend=vend,
                yiaddr=yiaddr,
                siaddr=siaddr,
                ciaddr=ciaddr,
            )
            if broadcast:
                reply = replace(reply, flags=reply.flags | BROADCAST_FLAG)
            try:
                data = encode_dhcp(reply, max_size=budget, min_size=BOOTP_MIN_SIZE)
            except EncodeError:
                continue
            destination = reply_destination(request, reply, received, self.settings.ports)
            return Reply(reply, data, destination, reason)
        return NoReply(f"reply to {request.mac} does not fit in {budget} bytes")

    # -- helpers -----------------------------------------------------------

    @property
    def _authoritative(self) -> bool:
        return self.settings.authoritative

    def _subnet(
        self, request: DhcpPacket, received: Received, *, by_ciaddr: bool = False
    ) -> Subnet | None:
        """By giaddr for a relayed request; else, ``by_ciaddr``, by ciaddr, which RFC 2131
        4.3.2 says to trust: a relayed client renews (or INFORMs) by unicast straight to
        us, without a relay, so its request arrives on an interface of another subnet.
        Else the interface's."""
        subnets = self.settings.subnets
        if request.giaddr != ZERO:
            return subnet_for(subnets, request.giaddr)
        if by_ciaddr and request.ciaddr != ZERO:
            own = subnet_for(subnets, request.ciaddr)
            if own is not None:
                return own
        return subnet_for(subnets, received.address)

    def _no_subnet(self, request: DhcpPacket, received: Received) -> NoReply:
        relay = f"relay {request.giaddr}" if request.giaddr != ZERO else received.address
        return NoReply(f"no subnet configured for {relay}")

    def _next_server(self, received: Received) -> IPv4Address:
        return self.settings.server_address or received.address

    def _untrusted_relay(self, request: DhcpPacket, received: Received) -> NoReply | None:
        relays = self.settings.relays
        if relays and received.source[0] not in relays:
            return NoReply(f"giaddr {request.giaddr} from {received.source[0]}, not a relay")
        if subnet_for(self.settings.subnets, request.giaddr) is None:
            return NoReply(f"no subnet configured for relay {request.giaddr}")
        return None

    def _from_holder(
        self, request: DhcpPacket, received: Received, ip: IPv4Address, declining: bool
    ) -> bool:
        """Sent by the client holding ``ip``: from that address, or relayed (relays are
        vetted first), or for a DECLINE from 0.0.0.0, as a client without an address sends."""
        source = received.source[0]
        return request.giaddr != ZERO or source == ip or (declining and source == ZERO)

    def _quarantine_full(self, subnet: Subnet, now: float) -> bool:
        if subnet.pool is None:
            return False
        size = int(subnet.pool[1]) - int(subnet.pool[0]) + 1
        held = sum(
            1
            for ip, until in self.store.quarantines().items()
            if until > now and subnet.in_pool(ip)
        )
        return held + 1 > self.settings.max_quarantined * size

    def _for_us(self, request: DhcpPacket, received: Received) -> bool:
        server_id = request.server_id
        return server_id is None or server_id == received.address

    def _hostname(self, request: DhcpPacket) -> str | None:
        host = self.settings.hosts.get(request.mac)
        if host is not None and host.hostname:
            return host.hostname
        return request.hostname


# Without one of these a request cannot be from boot firmware (``Client.netboot``), and
# classify's other fields only matter for a PXE or HTTP client: most DHCP traffic is
# leases only (installers, booted hosts, relays' perfdhcp), so it skips classify.
_BOOT_HINTS = frozenset((OPT_VENDOR_CLASS, OPT_ARCH, OPT_IPXE_ENCAP, OPT_USER_CLASS))
_NOT_BOOTING = Client()


def _client(request: DhcpPacket) -> Client:
    if not request.carries(_BOOT_HINTS):
        return _NOT_BOOTING
    return classify({option.code: option.data for option in request.options})


def _place_file(file: str) -> tuple[str, list[tuple[int, object]]]:
    """The boot file in the ``file`` field when it fits (with its NUL), else in option 67."""
    if len(file.encode()) < FILE_SIZE:
        return file, []
    return "", [(BOOTFILE, file)]


def _with(head: tuple[Option, ...], rest: list[tuple[int, object]]) -> tuple[Option, ...]:
    """``head`` first, then ``rest`` without codes already present (first one wins)."""
    seen = {option.code for option in head}
    out = list(head)
    for code, value in rest:
        if code not in seen:
            seen.add(code)
            out.append(_option(code, value))
    return tuple(out)


@lru_cache(maxsize=4096)
def _reply_options(
    kind: MessageType | None,
    server_id: IPv4Address,
    lease_time: int | None,
    prl: bytes,
    subnet: Subnet,
    hostname: str | None,
    booting: bool,
) -> tuple[tuple[Option, ...], tuple[Option, ...]]:
    """An OFFER's or ACK's options but what is the client's own: what every reply of one
    kind, server and lease time starts with, and the offered options the parameter
    request list asks for (``_wanted``) without the codes of the first, where for a
    booting client options 66 and 67 hold the places of its boot server and file (they
    may name the client: iPXE's script URL does).  Clients of one kind send the same
    list, so a reply costs a lookup here, not a rebuild of its option list
    (benchmarks/README.md); a client can add an entry per list it makes up, hence the
    bound."""
    head: list[tuple[int, object]] = []
    if kind is not None:
        head += [(MESSAGE_TYPE, kind), (SERVER_ID, server_id)]
    if kind is not None and lease_time is not None:
        head += [
            (LEASE_TIME, lease_time),
            (RENEWAL_TIME, lease_time // 2),
            (REBINDING_TIME, lease_time * 7 // 8),
        ]
    fixed = tuple(_option(code, value) for code, value in head)
    taken = {option.code for option in fixed}
    wanted = _wanted(prl, subnet, hostname, (ZERO, "") if booting else None)
    return fixed, tuple(option for option in wanted if option.code not in taken)


def _wanted(
    prl: bytes,
    subnet: Subnet,
    hostname: str | None,
    boot: tuple[IPv4Address, str] | None,
) -> tuple[Option, ...]:
    """The offered options (the subnet's, the host's name, the boot server and file) in
    parameter-request-list order; all of them (by code) without a PRL, or with an empty
    one (option 55 of length 0, which real clients send).  ``prl`` is option 55's raw
    bytes, whose every byte is a code.

    Subnet mask and routers follow even when not asked for: PXE ROMs and BOOTP
    clients often do not ask, and cannot work without them.
    """
    offered = dict(_subnet_options(subnet))
    if hostname:
        offered[HOSTNAME] = _option(HOSTNAME, hostname)
    if boot is not None:
        server, file = boot
        offered[TFTP_SERVER] = _option(TFTP_SERVER, str(server))
        offered[BOOTFILE] = _option(BOOTFILE, file)
    asked = [code for code in dict.fromkeys(prl) if code in offered]
    if not asked:
        return tuple(offered[code] for code in sorted(offered))
    essentials = [code for code in (SUBNET_MASK, ROUTER) if code in offered and code not in asked]
    return tuple(offered[code] for code in essentials + asked)


def _max_payload(request: DhcpPacket) -> int:
    option = request.get(MAX_MESSAGE_SIZE)
    size = option.value if option is not None and isinstance(option.value, int) else MIN_MESSAGE
    return min(max(size, MIN_MESSAGE), MAX_MESSAGE) - IP_UDP_HEADERS


@lru_cache(maxsize=4096)
def _option(code: int, value: object) -> Option:
    """Options repeat across replies (message type, server id, lease times, boot files):
    encoding each distinct one once keeps Construct off the per-packet path."""
    return Option.of(code, value)


@lru_cache(maxsize=256)
def _subnet_options(subnet: Subnet) -> tuple[tuple[int, Option], ...]:
    """A subnet's options, encoded once: they are the same in every reply."""
    options: list[tuple[int, object]] = [
        (SUBNET_MASK, subnet.network.netmask),
        (BROADCAST_ADDRESS, subnet.network.broadcast_address),
    ]
    if subnet.routers:
        options.append((ROUTER, subnet.routers))
    if subnet.dns:
        options.append((DNS_SERVERS, subnet.dns))
    if subnet.domain:
        options.append((DOMAIN_NAME, subnet.domain))
    return tuple((code, _option(code, value)) for code, value in options)
