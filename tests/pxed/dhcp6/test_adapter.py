"""The Twisted DHCPv6 adapter on a fake UDP reactor: sockets, group commit, scopes, drops."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv6Address

from twisted.logger import capturedLogs

from protocols.dhcp.server import Mode
from protocols.dhcpv6.leases import BindingKey, Lease, MemoryLeaseStore
from protocols.dhcpv6.server import Settings
from protocols.dhcpv6.wire import Dhcpv6Message, Dhcpv6Relay, decode_dhcpv6, encode_dhcpv6
from protocols.share import Share
from pxed.config import parse_config
from pxed.dhcp6.service import Dhcp6Service, Interface
from pxed.events import Dhcp6Exchange, Event, EventBus
from tests.protocols.dhcpv6_engine_support import (
    CLIENT as CLIENT_DUID,
)
from tests.protocols.dhcpv6_engine_support import (
    LINK_LOCAL,
    SERVER,
    SERVER_DUID,
    M,
    addresses,
    duid_bytes,
    ia,
    message,
    relayed,
    settings,
)
from tests.support.fake_adapter import CommitRecorder, SocketOpener
from tests.support.fake_udp import FakeDatagramPort, FakeUDPReactor

LAB = Interface("lab0", SERVER, index=7)
CLIENT = (str(LINK_LOCAL), 546)  # as Twisted hands it: no scope id


@dataclass
class RecordingStore(CommitRecorder, MemoryLeaseStore):
    def bind(self, lease: Lease, now: float) -> None:
        super().bind(lease, now)
        self.events.append(("bind", lease.address))


class Harness:
    def __init__(
        self,
        engine_settings: Settings | None = None,
        share: Callable[[], Share] | None = None,
        make_store: Callable[[FakeUDPReactor], RecordingStore] = RecordingStore,
    ) -> None:
        self.reactor = FakeUDPReactor()
        self.store = make_store(self.reactor)
        self.opener = SocketOpener()
        self.sockets = self.opener.opened
        self.published: list[Event] = []
        bus = EventBus()
        bus.subscribe(self.published.append)
        self.service = Dhcp6Service(
            engine_settings or settings(),
            lambda: self.store,
            [LAB],
            self.reactor,
            self.opener,
            events=bus,
            share=share,
        )
        self.service.startService()

    def port(self, port: int = 547) -> FakeDatagramPort:
        (found,) = [p for p in self.reactor.open_ports if p.protocol.port == port]  # type: ignore[attr-defined]
        return found

    def deliver(self, packet: Dhcpv6Message | Dhcpv6Relay | bytes, port: int = 547, sender=CLIENT):
        data = packet if isinstance(packet, bytes) else encode_dhcpv6(packet)
        self.port(port).protocol.datagramReceived(data, sender)

    def turn(self) -> None:
        self.reactor.advance(0)

    def replies(self) -> list[tuple[Dhcpv6Message | Dhcpv6Relay, tuple[object, ...]]]:
        return [(decode_dhcpv6(data), to) for _, data, to in self.reactor.sent]


def test_one_socket_per_interface_on_547_and_4011_too_in_proxy_mode():
    full = Harness()
    assert [(s.interface, s.port) for s in full.sockets] == [("lab0", 547)]
    proxy = Harness(settings(mode=Mode.PROXY))
    assert [(s.interface, s.port) for s in proxy.sockets] == [("lab0", 547), ("lab0", 4011)]
    assert all(s.closed for s in full.sockets + proxy.sockets)


def test_a_reply_goes_to_the_link_local_source_with_the_interfaces_scope():
    h = Harness()
    h.deliver(message(M.SOLICIT, ia()))
    h.turn()
    ((advertise, to),) = h.replies()
    assert isinstance(advertise, Dhcpv6Message) and advertise.msg_type == M.ADVERTISE
    assert to == (str(LINK_LOCAL), 546, 0, 7)  # scope id: the interface's index


def test_each_request_probes_the_share_the_live_servers_give_now():
    """The share is asked per request (the DHCPv4 heartbeat's live set changes at a beat)."""
    pool = settings().links[0].pool
    assert pool is not None
    shares = [Share(1, 2)]
    h = Harness(share=lambda: shares[-1])
    h.deliver(message(M.SOLICIT, ia()))
    shares.append(Share(0, 2))  # the peer is gone or back: the shares change with it
    h.deliver(message(M.SOLICIT, ia(2)))
    h.turn()
    offered = [list(addresses(reply)) for reply, _ in h.replies()]
    positions = [int(address) - int(pool[0]) for (address,) in offered]
    assert [p % 2 for p in positions] == [1, 0]


def test_no_reply_leaves_before_its_binding_is_committed():
    h = Harness()
    h.store.events.clear()  # the sweep at start
    h.deliver(message(M.REQUEST, ia(), server_id=SERVER_DUID))
    assert h.reactor.sent == []
    h.turn()
    (bound, address), committed = h.store.events
    assert bound == "bind" and committed == ("commit", 0)  # nothing sent at the commit
    ((reply, _),) = h.replies()
    assert isinstance(reply, Dhcpv6Message) and reply.msg_type == M.REPLY
    assert list(addresses(reply)) == [address]


def test_a_failed_commit_sends_no_reply_of_its_batch():
    h = Harness()
    h.store.fail_commit = True
    with capturedLogs() as events:
        h.deliver(message(M.REQUEST, ia(), server_id=SERVER_DUID))
        h.turn()
    assert h.reactor.sent == []
    assert h.service.stats.commit_failures == 1
    assert any("lease commit failed" in e["log_format"] for e in events)


@dataclass
class DownStore(RecordingStore):
    """PostgreSQL down: every commit fails, and only ``stored`` is known committed."""

    stored: dict[BindingKey, Lease] = field(default_factory=dict)
    fail_commit: bool = True
    writable = False

    def committed(self, key: BindingKey, now: float) -> Lease | None:
        lease = self.stored.get(key)
        return lease if lease is not None and lease.active(now) else None


def test_with_the_database_down_a_stored_bindings_renew_leaves_at_once_and_the_rest_never():
    """The confirmation promises nothing the failing commit would have stored: it does
    not wait for the batch, and the batch's other replies are dropped with it."""
    h = Harness(make_store=DownStore)
    assert isinstance(h.store, DownStore)
    pool = settings().links[0].pool
    assert pool is not None
    now = h.reactor.seconds()
    lease = Lease(duid_bytes(CLIENT_DUID), 1, pool[0], now + 90)
    h.store.stored[lease.key] = lease
    h.store.bind(lease, now)
    h.deliver(message(M.SOLICIT, ia(2)))
    h.deliver(message(M.RENEW, ia(1, pool[0]), server_id=SERVER_DUID))
    ((reply, _),) = h.replies()  # before the turn's commit
    assert isinstance(reply, Dhcpv6Message) and addresses(reply) == {pool[0]: 90}
    h.turn()
    assert len(h.reactor.sent) == 1 and h.service.stats.commit_failures == 1


def test_a_relayed_reply_goes_back_to_the_relay_on_547():
    h = Harness()
    relay = ("fd00:213:8::1", 547)
    h.deliver(relayed(message(M.SOLICIT, ia())), sender=relay)
    h.turn()
    ((answer, to),) = h.replies()
    assert isinstance(answer, Dhcpv6Relay) and answer.msg_type == M.RELAY_REPL
    assert to == (*relay, 0, 0)


def test_malformed_datagrams_are_counted_and_logged_and_the_listener_keeps_serving():
    h = Harness()
    with capturedLogs() as events:
        h.deliver(b"\x01\x00")
        h.deliver(b"\x03\xaa\xbb\xcc\x00\x01\x00\xff")
    assert h.service.stats.messages[("malformed", "dropped")] == 2
    malformed = [e for e in events if e.get("outcome") == "malformed"]
    assert len(malformed) == 2 and malformed[0]["mac"] == "52:54:00:12:34:56"
    h.deliver(message(M.SOLICIT, ia()))
    h.turn()
    assert len(h.replies()) == 1


def test_every_answered_message_is_logged_with_the_client_mac_and_counted():
    h = Harness()
    with capturedLogs() as events:
        h.deliver(message(M.REQUEST, ia(), server_id=SERVER_DUID))
        h.turn()
    (event,) = [e for e in events if e.get("kind") == "REQUEST"]
    assert event["mac"] == "52:54:00:12:34:56" and event["outcome"] == "reply"
    assert h.service.stats.messages[("REQUEST", "reply")] == 1


def test_stop_commits_the_pending_batch_closes_the_store_and_every_socket():
    h = Harness()
    h.deliver(message(M.REQUEST, ia(), server_id=SERVER_DUID))
    h.service.stopService()
    assert len(h.replies()) == 1
    assert h.store.events[-1] == ("close", None)
    assert h.reactor.open_ports == []


def test_a_reload_answers_by_the_new_hosts_on_the_same_sockets_store_and_duid(tmp_path):
    h = Harness()
    text = (
        "server: {address: 10.0.0.1, interfaces: [lab0], state_dir: /tmp}\n"
        "tftp: {enabled: false}\nhttp: {enabled: false}\n"
        "dhcp6:\n  mode: full\n  subnets:\n    - prefix: fd00:213:7::/64\n"
        '      range: ["fd00:213:7::100", "fd00:213:7::1ff"]\n'
        'hosts:\n  - {mac: "52:54:00:12:34:56", ip6: "fd00:213:7::77"}\n'
    )
    ports = list(h.reactor.open_ports)
    h.service.prepare_reload(parse_config(text, tmp_path / "pxed.yaml"))()
    assert h.reactor.open_ports == ports and h.service.engine.store is h.store
    assert h.service.settings.server_duid == SERVER_DUID
    h.deliver(message(M.REQUEST, ia(), server_id=SERVER_DUID))
    h.turn()
    ((reply, _),) = h.replies()
    assert isinstance(reply, Dhcpv6Message)
    assert list(addresses(reply)) == [IPv6Address("fd00:213:7::77")]


def test_every_exchange_is_published_as_a_typed_event_with_the_client_mac():
    """What the timeline, the boot view and the status page read (pxed.events)."""
    h = Harness()
    h.deliver(message(M.SOLICIT, ia()))
    h.deliver(message(M.REQUEST, ia(), server_id=SERVER_DUID, xid=0x0B0C0D))
    h.deliver(message(M.REQUEST, ia()))  # no server id: ignored
    h.turn()
    solicit, request, ignored = h.published
    assert isinstance(solicit, Dhcp6Exchange) and isinstance(request, Dhcp6Exchange)
    assert (solicit.mac, solicit.kind, solicit.outcome) == (
        "52:54:00:12:34:56",
        "SOLICIT",
        "advertise",
    )
    assert (request.kind, request.outcome, request.xid) == ("REQUEST", "reply", 0x0B0C0D)
    (reply,) = [r for r, _ in h.replies() if r.msg_type == M.REPLY]
    assert isinstance(reply, Dhcpv6Message)
    assert request.address == str(next(iter(addresses(reply))))
    assert (request.interface, request.port, request.relayed) == ("lab0", 547, False)
    assert request.client == f"[{LINK_LOCAL}%lab0]:546"
    assert isinstance(ignored, Dhcp6Exchange) and ignored.outcome == "ignored"
    assert ignored.address == "-" and "server identifier" in ignored.reason


def test_the_log_line_is_the_events_text():
    h = Harness()
    with capturedLogs() as events:
        h.deliver(message(M.REQUEST, ia(), server_id=SERVER_DUID))
        h.turn()
    (published,) = h.published
    (logged,) = [e for e in events if e.get("kind") == "REQUEST"]
    assert logged["log_format"] == Dhcp6Exchange.FORMAT
    assert published.text().startswith("dhcp6 REQUEST from 52:54:00:12:34:56 ")
