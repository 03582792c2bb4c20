"""The DHCPv6 server engine (RFC 8415, the boot options of RFC 5970), sans-I/O.

``Dhcpv6Server.handle(packet, received, now)`` returns what to do: a ``Reply`` (the
encoded message, wrapped in RELAY-REPLs when it came through relays, and where to
send it) or ``NoReply`` with the reason for the log.  As in DHCPv4, the engine writes
bindings into its ``LeaseStore`` but never commits: the adapter commits the store
once for a batch before any reply of that batch leaves, so a REPLY never promises
an address that is not on disk.

Decisions worth knowing:

- Server identifiers as RFC 8415 section 16 wants them: REQUEST, RENEW, RELEASE and
  DECLINE must name our DUID (addressed to another server, they are ignored);
  SOLICIT, CONFIRM and REBIND must name none; INFORMATION-REQUEST ours if any.
- The link (and so the pool) of a relayed message is that of the innermost relay
  whose link-address is set (a lightweight relay, RFC 6221, leaves it ::); of any
  other, the receiving interface's (``Received.address``).  A link with no
  ``dhcp6`` subnet gets no addresses, but INFORMATION-REQUEST is still answered.
- A reply goes back to where the message came from (``Received.source``): the
  client, or the outermost relay.  Each RELAY-REPL copies its RELAY-FORW's header and
  echoes its interface-id (option 18); nothing else relays added is echoed.
- SOLICIT with no address for any IA gets an ADVERTISE with no IA and a top-level
  NoAddrsAvail; REQUEST gets NoAddrsAvail, or NotOnLink for an address off the link,
  per IA.  RENEW of an IA without a binding gets NoBinding; REBIND of one is granted
  the address it names when that is free, as a REQUEST after a restart is.  An
  address that no longer fits (another link, a new reservation) is returned with
  lifetimes 0, as RFC 8415 18.3.4 and 18.3.5 say, and so is an IA's old address when
  its binding moves to a new one.  IA_TA and IA_PD are answered NoAddrsAvail and
  NoPrefixAvail: they are not served.
- While the store cannot write (``LeaseStore.writable`` false: its database is
  down), nothing is bound; a RENEW or REBIND whose every IA names the address of the
  binding the store has committed gets a REPLY with lifetimes of the time that
  binding has left (T1 and T2 at 0.5 and 0.8 of it), its expiry unchanged, and every
  other message goes unanswered (docs/ha.md).  Such a REPLY is marked ``committed``:
  it promises nothing a commit still has to store.
- ``Settings.preference`` (option 7) goes in every full-mode ADVERTISE that offers an
  address: at 255 a client REQUESTs at once instead of waiting out its collection
  time for other servers (RFC 8415 18.2.1; OVMF waits 5 s, docs/firmware.md).  Never
  in proxy mode: the client must still take the address server's ADVERTISE.
- A RELEASEd address stays bound to its IA for ``release_time`` more seconds (at most
  its lifetime left) rather than going back to the pool: OVMF releases its address
  before GRUB, which goes on using it (docs/firmware.md).  The same IA, or another
  DUID of the same host, may take it back meanwhile; nobody else may.
- Rapid commit (``Settings.rapid_commit``): a SOLICIT with option 14 gets the REPLY
  and a durable binding at once.
- SOLICITs are rate-limited per source (``solicit_burst``, then ``solicit_rate`` a
  second), keyed by the client's link-local address, or the innermost relay's
  peer-address when relayed: never by DUID, which a hostile client varies at will.
  Past it the source is ignored until it slows.
- Offers hold at most ``max_offered`` of a link's pool (protocols/dhcpv6/limits.py):
  past that an ADVERTISE names a free address without holding it, so a flood of
  SOLICITs from many sources cannot starve a REQUEST.  Reserved addresses are always
  held: no other client may have them anyway.
- Proxy mode answers only netboot clients pxed has a URL for, and only with boot
  options: a SOLICIT with an ADVERTISE that carries no IA and no status code at all
  (EDK2's DHCPv6 drops an ADVERTISE with any non-success status, top-level or in an
  IA, before its PXE or HTTP Boot driver sees it), echoing ``PXEClient`` so EDK2
  takes it for a proxy offer; and INFORMATION-REQUEST with a REPLY.  EDK2's PXE then
  asks its boot file with a REQUEST to the URL's server on udp/4011, answered in any
  mode by ``_boot_service`` (``Received.port == Settings.boot_port``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv6Address

from protocols.dhcp.limits import RateLimit
from protocols.dhcp.server import Mode
from protocols.dhcpv6.allocation import Allocator, Host, Link, link_for, mac_from_link_local
from protocols.dhcpv6.boot import BootChoice, BootSettings, check_template, choose_boot, no_boot_url
from protocols.dhcpv6.duid import HWTYPE_ETHERNET, Duid
from protocols.dhcpv6.leases import BindingKey, Lease, LeaseState, LeaseStore
from protocols.dhcpv6.limits import OfferHolds
from protocols.dhcpv6.options import (
    CLIENTID,
    DNS_SERVERS,
    DOMAIN_LIST,
    IA_NA,
    IA_PD,
    IA_TA,
    IAADDR,
    INTERFACE_ID,
    PREFERENCE,
    RAPID_COMMIT,
    SERVERID,
    STATUS_CODE,
    IaAddress,
    IaNa,
    IaPd,
    IaTa,
    Option,
    Status,
    StatusCode,
)
from protocols.dhcpv6.wire import (
    Dhcpv6Message,
    Dhcpv6Packet,
    Dhcpv6Relay,
    EncodeError,
    MessageType,
    decode_dhcpv6,
    encode_dhcpv6,
)
from protocols.errors import MalformedPacket
from protocols.share import WHOLE_POOL, Share

BOOT_SERVICE_PORT = 4011
M = MessageType

# RFC 8415 section 16: True, the message must carry our server identifier; False, none;
# None, ours if any.
_SERVER_ID: Mapping[int, bool | None] = {
    M.SOLICIT: False,
    M.REQUEST: True,
    M.CONFIRM: False,
    M.RENEW: True,
    M.REBIND: False,
    M.RELEASE: True,
    M.DECLINE: True,
    M.INFORMATION_REQUEST: None,
}


@dataclass(frozen=True)
class Settings:
    """What the engine needs from ``dhcp6:`` and ``hosts:``; the adapter builds it."""

    server_duid: Duid  # DUID-LL or DUID-LLT of the server, stable across restarts
    boot: BootSettings
    mode: Mode = Mode.FULL
    links: tuple[Link, ...] = ()
    hosts: tuple[Host, ...] = ()
    server_address: IPv6Address | None = None  # {server6} in URLs; else Received.address
    rapid_commit: bool = False
    offer_time: float = 60.0
    decline_time: float = 600.0
    release_time: float = 0.0  # a RELEASEd address stays with its IA this long
    preference: int = 0  # option 7 in ADVERTISEs; 0 is RFC 8415's value when absent
    max_quarantined: float = 0.25
    max_offered: float = 0.25
    solicit_burst: int = 8
    solicit_rate: float = 1.0
    relays: frozenset[IPv6Address] = frozenset()  # empty: relayed messages from anyone
    boot_port: int = BOOT_SERVICE_PORT

    def __post_init__(self) -> None:
        for host in self.hosts:
            for template in host.loader.values():
                check_template(template)


@dataclass(frozen=True)
class Received:
    """Where a message came from.  ``address`` is a global (or ULA) address of the
    receiving interface: it picks the link of a client that is not relayed and is
    {server6} in boot URLs (a link-local one would need a zone the client cannot
    know).  ``source`` is the sender and its port, ``port`` the local port."""

    address: IPv6Address
    source: tuple[IPv6Address, int]
    port: int = 547
    interface: str = ""


@dataclass(frozen=True)
class Reply:
    message: Dhcpv6Packet
    data: bytes
    destination: tuple[IPv6Address, int]
    reason: str
    no_loader: str | None = None  # a booting client got no boot URL: why (pxed warns once)
    committed: bool = False  # promises only bindings already stored: needs no commit to leave


@dataclass(frozen=True)
class NoReply:
    reason: str


Action = Reply | NoReply


@dataclass(frozen=True)
class _Exchange:
    """One client message, its relays (outermost first), and what is known of its sender."""

    message: Dhcpv6Message
    relays: tuple[Dhcpv6Relay, ...]
    received: Received
    link: Link | None
    client: bytes  # option 1's bytes (b"" for an INFORMATION-REQUEST without one)
    mac: str | None
    host: Host | None
    now: float

    @property
    def who(self) -> str:
        return self.mac or f"DUID {self.client.hex()}"

    def key(self, iaid: int) -> BindingKey:
        return self.client, iaid


class Dhcpv6Server:
    def __init__(self, settings: Settings, store: LeaseStore) -> None:
        self.settings = settings
        self.store = store
        self.allocator = Allocator.build(store, settings.hosts)
        self.server_id = Option.of(SERVERID, settings.server_duid)
        self.solicits = RateLimit(settings.solicit_rate, settings.solicit_burst)
        self.offers = OfferHolds(settings.max_offered)
        # Which free addresses this server probes first: with peers sharing the lease
        # database, the adapter sets its share from the DHCPv4 heartbeat's live set.
        self.share: Share = WHOLE_POOL

    def handle_datagram(self, data: bytes, received: Received, now: float) -> Action:
        try:
            packet = decode_dhcpv6(data)
        except MalformedPacket as error:
            return NoReply(f"malformed packet: {error}")
        return self.handle(packet, received, now)

    def handle(self, packet: Dhcpv6Packet, received: Received, now: float) -> Action:
        try:
            return self._handle(packet, received, now)
        except MalformedPacket as error:
            return NoReply(f"malformed option: {error}")

    def _handle(self, packet: Dhcpv6Packet, received: Received, now: float) -> Action:
        settings = self.settings
        if settings.mode is Mode.OFF:
            return NoReply("dhcp6.mode is off")
        relays, message = _unwrap(packet)
        if message is None:
            inner = packet.client_message if isinstance(packet, Dhcpv6Relay) else packet
            return NoReply(f"{inner.msg_type} is not a client message (or is relayed as a reply)")
        if relays and settings.relays and received.source[0] not in settings.relays:
            return NoReply(f"RELAY-FORW from {received.source[0]}, not one of dhcp6.relays")
        duid = message.client_id
        client = message.get(CLIENTID)
        if client is None and message.msg_type != M.INFORMATION_REQUEST:
            return NoReply(f"{message.msg_type} without a client identifier")
        data = client.data if client is not None else b""
        mac = _mac(relays, duid, received)
        exchange = _Exchange(
            message=message,
            relays=relays,
            received=received,
            link=self._link(relays, received),
            client=data,
            mac=mac,
            host=self.allocator.host_for(data, mac) if data else None,
            now=now,
        )
        if received.port == settings.boot_port:
            return self._boot_service(exchange)
        kind = message.msg_type
        wrong = self._wrong_server(message, _SERVER_ID[kind])
        if wrong is not None:
            return wrong
        if kind == M.SOLICIT:
            source = relays[-1].peer_address if relays else received.source[0]
            if not self.solicits.allow(_text(source), now):
                return NoReply(
                    f"{exchange.who} from {source} sends SOLICITs faster than solicit_rate allows"
                )
        if settings.mode is Mode.PROXY:
            return self._proxy(exchange)
        if not self.store.writable:
            return self._confirm_stored(exchange)
        return self._HANDLERS[kind](self, exchange)

    # -- full mode ---------------------------------------------------------

    def _solicit(self, ex: _Exchange) -> Action:
        if ex.link is None:
            return self._no_link(ex)
        commit = self.settings.rapid_commit and ex.message.rapid_commit
        ias, given = self._assign(ex, ex.link, commit=commit, on_link=False)
        if not given:
            body = [_status(StatusCode.NO_ADDRS_AVAIL, "no addresses available")]
            return self._configured(ex, M.ADVERTISE, body, "no address available")
        if commit:
            body = [Option(RAPID_COMMIT, b""), *ias]
            return self._configured(ex, M.REPLY, body, f"rapid commit {_show(given)}")
        preference = self.settings.preference
        body = [*ias, Option.of(PREFERENCE, preference)] if preference else ias
        return self._configured(ex, M.ADVERTISE, body, _show(given))

    def _request(self, ex: _Exchange) -> Action:
        if ex.link is None:
            return self._no_link(ex)
        ias, given = self._assign(ex, ex.link, commit=True, on_link=True)
        return self._configured(ex, M.REPLY, ias, _show(given) if given else "no address")

    def _renew(self, ex: _Exchange) -> Action:
        return self._extend(ex, rebinding=False)

    def _rebind(self, ex: _Exchange) -> Action:
        return self._extend(ex, rebinding=True)

    def _extend(self, ex: _Exchange, *, rebinding: bool) -> Action:
        """RENEW and REBIND: extend each IA's binding if it still fits its link."""
        link = ex.link
        if link is None:
            return self._no_link(ex)
        ias, given = [], []
        for ia in ex.message.ia_na:
            key, listed = ex.key(ia.iaid), _listed(ia)
            lease = self.store.lease_for(key, ex.now)
            bound = lease if lease is not None and lease.state is LeaseState.BOUND else None
            fits = bound is not None and self._acceptable(ex, key, bound.address, link)
            if fits and bound is not None:
                keep: IPv6Address | None = bound.address
            elif bound is None and rebinding:
                keep = next((a for a in listed if self._acceptable(ex, key, a, link)), None)
            else:
                keep = None
            if bound is None and keep is None and not (rebinding and listed):
                ias.append(_ia(ia.iaid, 0, 0, _status(StatusCode.NO_BINDING, "no binding")))
                continue
            inner = []
            if keep is not None:
                self._bind(ex, key, keep, link)
                inner.append(_address(keep, link.lease_time))
                given.append(keep)
            elif bound is not None:
                self._forget(key)
            old = [bound.address] if bound is not None else []
            inner += [_address(a, 0) for a in dict.fromkeys([*old, *listed]) if a != keep]
            t1, t2 = (link.t1, link.t2) if keep is not None else (0, 0)
            ias.append(_ia(ia.iaid, t1, t2, *inner))
        return self._configured(ex, M.REPLY, ias, f"extended {_show(given)}")

    def _confirm_stored(self, ex: _Exchange) -> Action:
        """While nothing can be stored: only a RENEW or REBIND whose every IA names the
        address of the binding the store has committed is answered, with the time that
        binding has left, so the client's lease ends no later than the stored one and
        nothing needs writing.  Anything else would bind, release or rest on a commit:
        silence, as when a commit fails."""
        down = "the lease database is down"
        link = ex.link
        if ex.message.msg_type not in (M.RENEW, M.REBIND) or link is None:
            return NoReply(f"{down}: only renewals of stored bindings are answered")
        ias, given, lefts = [], [], []
        for ia in ex.message.ia_na:
            key, listed = ex.key(ia.iaid), _listed(ia)
            lease = self.store.committed(key, ex.now)
            if lease is None or lease.address not in listed:
                return NoReply(f"{down}: {ex.who} has no stored binding of IA {ia.iaid} named")
            left = int(lease.expires - ex.now)
            if left < 1 or not self._acceptable(ex, key, lease.address, link):
                return NoReply(f"{down}: {ex.who}'s stored binding {lease.address} not confirmed")
            inner = [_address(a, left if a == lease.address else 0) for a in listed]
            ias.append(_ia(ia.iaid, left // 2, left * 4 // 5, *inner))
            given.append(lease.address)
            lefts.append(left)
        if not given:
            return NoReply(f"{down}: {ex.who} names no binding to confirm")
        detail = f"confirmed {_show(given)} ({down}: stored, {min(lefts)} s left)"
        action = self._configured(ex, M.REPLY, ias, detail)
        return dataclasses.replace(action, committed=True) if isinstance(action, Reply) else action

    def _release(self, ex: _Exchange) -> Action:
        body, released = [], []
        for ia in ex.message.ia_na:
            key = ex.key(ia.iaid)
            lease = self._holding(ex, key, ia)
            if lease is None:
                body.append(_ia(ia.iaid, 0, 0, _status(StatusCode.NO_BINDING, "no binding")))
                continue
            released.append(self._let_go(ex, key, lease))
        body.append(_status(StatusCode.SUCCESS, "released"))
        return self._send(ex, M.REPLY, body, f"released {', '.join(released) or 'nothing'}")

    def _let_go(self, ex: _Exchange, key: BindingKey, lease: Lease) -> str:
        """Forget a released binding, or keep it ``release_time`` longer."""
        until = min(lease.expires, ex.now + self.settings.release_time)
        if until <= ex.now:
            self._forget(key)
            return str(lease.address)
        self.store.bind(dataclasses.replace(lease, expires=until), ex.now)
        return f"{lease.address} (kept for {until - ex.now:.0f} s)"

    def _decline(self, ex: _Exchange) -> Action:
        body, declined = [], []
        for ia in ex.message.ia_na:
            key = ex.key(ia.iaid)
            lease = self._holding(ex, key, ia)
            if lease is None:
                body.append(_ia(ia.iaid, 0, 0, _status(StatusCode.NO_BINDING, "no binding")))
                continue
            if self._quarantine_full(lease.address, ex.now):
                self._forget(key)
                declined.append(f"{lease.address} (released: max_quarantined reached)")
            else:
                self.store.quarantine(lease.address, ex.now + self.settings.decline_time)
                declined.append(f"{lease.address} (quarantined)")
        body.append(_status(StatusCode.SUCCESS, "declined"))
        return self._send(ex, M.REPLY, body, f"declined {', '.join(declined) or 'nothing'}")

    def _confirm(self, ex: _Exchange) -> Action:
        """RFC 8415 18.3.3: are the client's addresses on its link?  With no address, or
        no knowledge of the link, a server must stay silent."""
        ias: list[IaNa | IaTa] = [*ex.message.ia_na, *ex.message.ia_ta]
        listed = [address for ia in ias for address in _listed(ia)]
        if not listed:
            return NoReply("CONFIRM names no address")
        if ex.link is None:
            return self._no_link(ex)
        if all(address in ex.link.prefix for address in listed):
            body = [_status(StatusCode.SUCCESS, "all addresses still on link")]
            return self._send(ex, M.REPLY, body, "on link")
        body = [_status(StatusCode.NOT_ON_LINK, "not on this link")]
        return self._send(ex, M.REPLY, body, "not on link")

    def _information_request(self, ex: _Exchange) -> Action:
        if any(ex.message.get(code) is not None for code in (IA_NA, IA_TA, IA_PD)):
            return NoReply("INFORMATION-REQUEST with an IA option (RFC 8415 16.12)")
        return self._configured(ex, M.REPLY, [], "information")

    _HANDLERS: Mapping[int, Callable[[Dhcpv6Server, _Exchange], Action]] = {
        M.SOLICIT: _solicit,
        M.REQUEST: _request,
        M.CONFIRM: _confirm,
        M.RENEW: _renew,
        M.REBIND: _rebind,
        M.RELEASE: _release,
        M.DECLINE: _decline,
        M.INFORMATION_REQUEST: _information_request,
    }

    # -- proxy mode and the boot service -----------------------------------

    def _proxy(self, ex: _Exchange) -> Action:
        kind = ex.message.msg_type
        if kind not in (M.SOLICIT, M.INFORMATION_REQUEST):
            return NoReply(f"proxy mode answers only SOLICIT and INFORMATION-REQUEST (got {kind})")
        choice = self._boot(ex, proxy=True)
        if choice is None:
            return NoReply(f"proxy mode: {self._why_no_boot(ex)}")
        reply = M.ADVERTISE if kind == M.SOLICIT else M.REPLY
        return self._send(ex, reply, list(choice.options), f"proxy {_boot_text(choice)}")

    def _boot_service(self, ex: _Exchange) -> Action:
        """udp/4011: EDK2's PXE asks its boot file here after a proxy offer."""
        kind = ex.message.msg_type
        if kind not in (M.REQUEST, M.INFORMATION_REQUEST):
            return NoReply(f"udp/{ex.received.port} answers only REQUEST (got {kind})")
        wrong = self._wrong_server(ex.message, None)
        if wrong is not None:
            return wrong
        choice = self._boot(ex, proxy=True)
        if choice is None:
            return NoReply(f"boot service: {self._why_no_boot(ex)}")
        return self._send(ex, M.REPLY, list(choice.options), f"boot service {_boot_text(choice)}")

    # -- building replies --------------------------------------------------

    def _assign(
        self, ex: _Exchange, link: Link, *, commit: bool, on_link: bool
    ) -> tuple[list[Option], list[IPv6Address]]:
        """An IA option for every IA in the message, and the addresses given.  ``commit``
        binds (REQUEST, rapid commit), else offers; ``on_link`` answers an IA naming an
        address off the link with NotOnLink (REQUEST), else such names are ignored."""
        ias, given = [], []
        for ia in ex.message.ia_na:
            listed = _listed(ia)
            if on_link and any(address not in link.prefix for address in listed):
                ias.append(_ia(ia.iaid, 0, 0, _status(StatusCode.NOT_ON_LINK, "not on link")))
                continue
            key = ex.key(ia.iaid)
            hints = [address for address in listed if address in link.prefix]
            address = self.allocator.choose(key, ex.host, link, hints, ex.now, self.share)
            if address is None:
                ias.append(_ia(ia.iaid, 0, 0, _status(StatusCode.NO_ADDRS_AVAIL, "pool full")))
                continue
            ias.append(self._hold(ex, key, address, link, commit))
            given.append(address)
        for ta in ex.message.ia_ta:
            status = _status(StatusCode.NO_ADDRS_AVAIL, "temporary addresses are not served")
            ias.append(Option.of(IA_TA, IaTa(ta.iaid, (status,))))
        for pd in ex.message.ia_pd:
            status = _status(StatusCode.NO_PREFIX_AVAIL, "prefixes are not delegated")
            ias.append(Option.of(IA_PD, IaPd(pd.iaid, 0, 0, (status,))))
        return ias, given

    def _hold(
        self, ex: _Exchange, key: BindingKey, address: IPv6Address, link: Link, commit: bool
    ) -> Option:
        """Bind (or offer) ``address`` to the IA, and the IA option that says so."""
        previous = self.store.lease_for(key, ex.now)
        inner = [_address(address, link.lease_time)]
        if commit:
            self._bind(ex, key, address, link)
            moved = previous is not None and previous.address != address
            if moved and previous is not None and previous.state is LeaseState.BOUND:
                inner.append(_address(previous.address, 0))
        elif self._may_offer(ex, key, address, link):
            expires = ex.now + self.settings.offer_time
            lease = Lease(key[0], key[1], address, expires, LeaseState.OFFERED, ex.mac)
            self.store.offer(lease, ex.now)
            if link.in_pool(address):
                self.offers.hold(link, key, expires)
        return _ia(key[1], link.t1, link.t2, *inner)

    def _forget(self, key: BindingKey) -> None:
        self.store.release(key)
        self.offers.drop(key)

    def _may_offer(self, ex: _Exchange, key: BindingKey, address: IPv6Address, link: Link) -> bool:
        """Whether to hold an offer: never by displacing (the host's other DUID keeps the
        address until a REQUEST), and in the pool only while offers have room."""
        if self.allocator.displaced(key, address, ex.now) is not None:
            return False
        return not link.in_pool(address) or self.offers.room(link, key, ex.now)

    def _bind(self, ex: _Exchange, key: BindingKey, address: IPv6Address, link: Link) -> None:
        displaced = self.allocator.displaced(key, address, ex.now)
        if displaced is not None:
            self._forget(displaced.key)
        lease = Lease(key[0], key[1], address, ex.now + link.lease_time, LeaseState.BOUND, ex.mac)
        self.store.bind(lease, ex.now)
        self.offers.drop(key)

    def _configured(
        self, ex: _Exchange, kind: MessageType, body: list[Option], detail: str
    ) -> Action:
        """A reply that carries configuration: the link's options and the boot URL."""
        options = [*body, *(_link_options(ex.link) if ex.link is not None else ())]
        choice = self._boot(ex, proxy=False)
        missing = None
        if choice is not None:
            options += choice.options
            detail += f" {_boot_text(choice)}"
        else:
            missing = no_boot_url(ex.message, ex.mac, self.settings.boot)
            detail += f" (no boot URL: {missing})" if missing else ""
        return self._send(ex, kind, options, detail, no_loader=missing)

    def _send(
        self,
        ex: _Exchange,
        kind: MessageType,
        body: list[Option],
        detail: str,
        no_loader: str | None = None,
    ) -> Action:
        """Client and server identifiers first, then ``body``; wrapped back through every
        relay, innermost first, so each relay gets the header and interface-id it sent."""
        client = ex.message.get(CLIENTID)
        head = [client] if client is not None else []
        reply: Dhcpv6Packet = Dhcpv6Message(
            msg_type=kind,
            transaction_id=ex.message.transaction_id,
            options=(*head, self.server_id, *body),
        )
        try:
            for relay in reversed(ex.relays):
                echoed = relay.get(INTERFACE_ID)
                reply = Dhcpv6Relay.around(
                    reply,
                    options=[echoed] if echoed is not None else [],
                    msg_type=M.RELAY_REPL,
                    hop_count=relay.hop_count,
                    link_address=relay.link_address,
                    peer_address=relay.peer_address,
                )
            data = encode_dhcpv6(reply)
        except EncodeError as error:
            return NoReply(f"{kind} to {ex.who} does not encode: {error}")
        reason = f"{kind} to {ex.who}: {detail}"
        return Reply(reply, data, ex.received.source, reason, no_loader)

    # -- helpers -----------------------------------------------------------

    def _wrong_server(self, message: Dhcpv6Message, rule: bool | None) -> NoReply | None:
        theirs = message.get(SERVERID)
        kind = message.msg_type
        if rule is True and theirs is None:
            return NoReply(f"{kind} without a server identifier")
        if rule is False and theirs is not None:
            return NoReply(f"{kind} with a server identifier")
        if theirs is not None and theirs.data != self.server_id.data:
            return NoReply(f"{kind} for another server")
        return None

    def _link(self, relays: tuple[Dhcpv6Relay, ...], received: Received) -> Link | None:
        for relay in reversed(relays):
            address = relay.link_address
            if not address.is_unspecified and not address.is_link_local:
                return link_for(self.settings.links, address)
        return link_for(self.settings.links, received.address)

    def _no_link(self, ex: _Exchange) -> NoReply:
        where = next(
            (
                f"relay link {relay.link_address}"
                for relay in reversed(ex.relays)
                if not relay.link_address.is_unspecified
            ),
            str(ex.received.address),
        )
        return NoReply(f"{ex.message.msg_type} from {ex.who}: no dhcp6 subnet for {where}")

    def _holding(self, ex: _Exchange, key: BindingKey, ia: IaNa) -> Lease | None:
        """The IA's bound lease, if the client names its address (RELEASE, DECLINE)."""
        lease = self.store.lease_for(key, ex.now)
        if lease is None or lease.state is not LeaseState.BOUND:
            return None
        return lease if lease.address in _listed(ia) else None

    def _acceptable(self, ex: _Exchange, key: BindingKey, address: IPv6Address, link: Link) -> bool:
        return self.allocator.acceptable(key, ex.host, address, link, ex.now)

    def _boot(self, ex: _Exchange, *, proxy: bool) -> BootChoice | None:
        server = self.settings.server_address or ex.received.address
        loader = ex.host.loader if ex.host is not None else None
        return choose_boot(ex.message, ex.mac, server, self.settings.boot, loader, proxy=proxy)

    def _why_no_boot(self, ex: _Exchange) -> str:
        return no_boot_url(ex.message, ex.mac, self.settings.boot) or "not a netboot client"

    def _quarantine_full(self, address: IPv6Address, now: float) -> bool:
        link = link_for(self.settings.links, address)
        if link is None or not link.in_pool(address):
            return False
        held = sum(
            1 for a, until in self.store.quarantines().items() if until > now and link.in_pool(a)
        )
        return held + 1 > self.settings.max_quarantined * link.pool_size


def _unwrap(packet: Dhcpv6Packet) -> tuple[tuple[Dhcpv6Relay, ...], Dhcpv6Message | None]:
    """The RELAY-FORWs around a client message (outermost first) and the message; None
    for anything a client or relay does not send a server."""
    relays = []
    while isinstance(packet, Dhcpv6Relay):
        if packet.msg_type != M.RELAY_FORW:
            return (), None
        relays.append(packet)
        packet = packet.relayed
    if packet.msg_type not in _SERVER_ID:
        return (), None
    return tuple(relays), packet


def _mac(relays: tuple[Dhcpv6Relay, ...], duid: Duid | None, received: Received) -> str | None:
    """The client's MAC: the first relay's option 79, the DUID's, or its link-local address's."""
    if relays:
        found = relays[-1].client_link_layer
        if found is not None and found.hw_type == HWTYPE_ETHERNET and len(found.address) == 6:
            return found.address.hex(":")
    if duid is not None and duid.mac is not None:
        return duid.mac
    return mac_from_link_local(relays[-1].peer_address if relays else received.source[0])


def _listed(ia: IaNa | IaTa) -> list[IPv6Address]:
    """The addresses a client names in an IA (hints, or what it holds)."""
    return [
        option.value.address
        for option in ia.options
        if option.code == IAADDR and isinstance(option.value, IaAddress)
    ]


def _ia(iaid: int, t1: int, t2: int, *inner: Option) -> Option:
    return Option.of(IA_NA, IaNa(iaid, t1, t2, inner))


def _address(address: IPv6Address, lifetime: int) -> Option:
    return Option.of(IAADDR, IaAddress(address, lifetime, lifetime))


@lru_cache(maxsize=64)
def _status(code: StatusCode, message: str) -> Option:
    return Option.of(STATUS_CODE, Status(code, message))


@lru_cache(maxsize=256)
def _link_options(link: Link) -> tuple[Option, ...]:
    """A link's options, encoded once: they are the same in every reply."""
    options = []
    if link.dns:
        options.append(Option.of(DNS_SERVERS, link.dns))
    if link.domains:
        options.append(Option.of(DOMAIN_LIST, link.domains))
    return tuple(options)


@lru_cache(maxsize=4096)
def _text(address: IPv6Address) -> str:
    """``str(address)``, remembered: formatting an IPv6 address is pure Python and was
    about a tenth of the engine's time; a client's address is in the reason of its
    ADVERTISE and again of its REPLY, a relay's is every SOLICIT's rate-limit key (an
    address equals and hashes with its scope, so the text is the same)."""
    return str(address)


def _show(addresses: list[IPv6Address]) -> str:
    return ", ".join(map(_text, addresses)) or "nothing"


def _boot_text(choice: BootChoice) -> str:
    return f"boot {choice.family.value} {choice.url}"
