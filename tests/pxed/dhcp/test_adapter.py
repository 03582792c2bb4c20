"""The Twisted DHCP adapter on a fake UDP reactor: sockets, group commit, drops, logs, counters."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.defer import Deferred
from twisted.logger import LogLevel, capturedLogs

from protocols.dhcp.leases import Lease, MemoryLeaseStore
from protocols.dhcp.options import MessageType, Option
from protocols.dhcp.overdue import Overdue
from protocols.dhcp.server import Mode, Settings
from protocols.dhcp.split import Peers, owner
from protocols.dhcp.wire import DhcpPacket, decode_dhcp, encode_dhcp
from pxed.datagram.batching import MAX_BATCH, MAX_DATAGRAM
from pxed.dhcp.service import DhcpService, Interface
from tests.protocols.dhcp_engine_support import MAC, MAC2, request, settings
from tests.support.fake_adapter import CommitRecorder, SocketOpener
from tests.support.fake_udp import FakeDatagramPort, FakeUDPReactor
from tests.support.fuzz import property_settings

LAB = Interface("lab0", IPv4Address("10.213.7.1"))
REMOTE = Interface("remote0", IPv4Address("10.213.8.1"))
CLIENT = ("0.0.0.0", 68)
PXE = ((60, "PXEClient:Arch:00000:UNDI:002001"), (93, (0,)))


@dataclass
class RecordingStore(CommitRecorder, MemoryLeaseStore):
    """A memory store that records binds and commits, and what had been sent at each commit."""

    def bind(self, lease: Lease, now: float) -> None:
        super().bind(lease, now)
        self.events.append(("bind", lease.mac))

    def release(self, mac: str) -> None:
        super().release(mac)
        self.events.append(("release", mac))


class Harness:
    def __init__(
        self,
        engine_settings: Settings | None = None,
        interfaces=(LAB, REMOTE),
        boot_seen=None,
        make_store=RecordingStore,
    ) -> None:
        self.reactor = FakeUDPReactor()
        self.store = make_store(self.reactor)
        self.opener = SocketOpener()
        self.sockets = self.opener.opened
        self.service = DhcpService(
            engine_settings or settings(),
            lambda: self.store,
            interfaces,
            self.reactor,
            self.opener,
            boot_seen=boot_seen,
        )
        self.service.privilegedStartService()
        self.service.startService()

    def port(self, interface: Interface, port: int = 67) -> FakeDatagramPort:
        (found,) = [
            p
            for p in self.reactor.open_ports
            if p.protocol.interface == interface and p.protocol.port == port  # type: ignore[attr-defined]
        ]
        return found

    def deliver(
        self, datagram: bytes, interface: Interface = LAB, port: int = 67, sender=CLIENT
    ) -> None:
        self.port(interface, port).protocol.datagramReceived(datagram, sender)

    def replies(self) -> list[tuple[DhcpPacket, tuple[str, int]]]:
        return [(decode_dhcp(data), to) for _, data, to in self.reactor.sent]


def test_one_socket_per_interface_adopted_with_64k_reads_and_closed_after():
    """Each interface gets its own socket (name + port 67), adopted with maxPacketSize 65536."""
    h = Harness()
    assert [(s.interface, s.port) for s in h.sockets] == [("lab0", 67), ("remote0", 67)]
    assert all(s.closed for s in h.sockets)  # the reactor keeps its own dup
    assert [p.adopted_fd for p in h.reactor.open_ports] == [100, 101]
    assert {p.max_packet_size for p in h.reactor.open_ports} == {MAX_DATAGRAM}


def test_proxy_mode_also_listens_on_4011_per_interface():
    h = Harness(settings(mode=Mode.PROXY))
    assert [(s.interface, s.port) for s in h.sockets] == [
        ("lab0", 67),
        ("lab0", 4011),
        ("remote0", 67),
        ("remote0", 4011),
    ]


def test_dora_gives_offer_then_ack_broadcast_with_interface_server_id():
    """DISCOVER -> OFFER, REQUEST -> ACK, both broadcast to :68 from the lab interface."""
    h = Harness()
    h.deliver(request(MessageType.DISCOVER, xid=7))
    h.reactor.advance(0)
    (offer, to), *_ = h.replies()
    assert offer.message_type == MessageType.OFFER and to == ("255.255.255.255", 68)
    assert offer.server_id == LAB.address and offer.xid == 7
    h.deliver(
        request(MessageType.REQUEST, xid=8, options=((50, offer.yiaddr), (54, offer.server_id)))
    )
    h.reactor.advance(0)
    ack, to = h.replies()[1]
    assert ack.message_type == MessageType.ACK and ack.yiaddr == offer.yiaddr
    assert h.store.lease_for(MAC, h.reactor.seconds()).ip == offer.yiaddr
    assert h.service.stats.messages[("DISCOVER", "offer")] == 1
    assert h.service.stats.messages[("REQUEST", "ack")] == 1


def test_reply_leaves_by_the_socket_of_the_interface_it_came_in_on():
    h = Harness()
    h.deliver(request(MessageType.DISCOVER), interface=REMOTE)
    h.reactor.advance(0)
    assert len(h.port(REMOTE).written) == 1 and h.port(LAB).written == []
    offer = decode_dhcp(h.port(REMOTE).written[0][0])
    assert offer.server_id == REMOTE.address
    assert offer.yiaddr in IPv4Network("10.213.8.0/24")


def test_no_reply_is_sent_before_its_batch_is_committed():
    """Group commit: replies wait for the end of the reactor turn, after one commit."""
    h = Harness()
    for mac in (MAC, MAC2):
        h.deliver(request(MessageType.DISCOVER, mac))
    h.reactor.advance(0)
    offers = h.replies()
    for offer, _ in offers:
        h.deliver(
            request(
                MessageType.REQUEST,
                offer.mac,
                options=((50, offer.yiaddr), (54, offer.server_id)),
            )
        )
    assert len(h.reactor.sent) == 2, "ACKs must not leave before the commit"
    h.reactor.advance(0)
    assert [p.message_type for p, _ in h.replies()[2:]] == [MessageType.ACK] * 2
    binds_then_commit = [e for e in h.store.events if e[0] != "release"][-3:]
    assert binds_then_commit == [("bind", MAC), ("bind", MAC2), ("commit", 2)]


def test_a_full_batch_is_committed_and_sent_without_waiting_for_the_turn_to_end():
    """A long read burst leaves in slices of MAX_BATCH, each after its own commit."""
    h = Harness()
    macs = [f"52:54:00:00:01:{n:02x}" for n in range(MAX_BATCH + 3)]
    for mac in macs:
        h.deliver(request(MessageType.REQUEST, mac, options=((50, IPv4Address("10.213.7.100")),)))
    # REQUESTs for one address: the first gets it, the rest NAKs; all are replies.
    assert len(h.reactor.sent) == MAX_BATCH
    assert ("commit", 0) in h.store.events
    h.reactor.advance(0)
    assert len(h.reactor.sent) == MAX_BATCH + 3
    assert h.store.events[-1] == ("commit", MAX_BATCH)


def test_a_release_is_committed_though_nothing_is_sent():
    """RELEASE gets no reply, yet its deletion must reach the disk in the same turn."""
    h = Harness()
    ip = IPv4Address("10.213.7.100")
    h.deliver(request(MessageType.REQUEST, options=((50, ip),)))
    h.reactor.advance(0)
    h.deliver(request(MessageType.RELEASE, ciaddr=ip), sender=(str(ip), 68))  # from its address
    h.reactor.advance(0)
    assert h.store.events[-2:] == [("release", MAC), ("commit", 1)]
    assert h.store.leases() == []


def test_failed_commit_sends_no_reply_of_the_batch():
    """A lease that did not reach the disk is never acknowledged."""
    h = Harness()
    h.store.fail_commit = True
    with capturedLogs() as events:
        h.deliver(request(MessageType.REQUEST, options=((50, IPv4Address("10.213.7.100")),)))
        h.reactor.advance(0)
    assert h.reactor.sent == []
    assert h.service.stats.commit_failures == 1
    assert any(e["log_level"] == LogLevel.critical for e in events)


def test_a_database_down_logs_one_traceback_then_one_line_per_failed_batch():
    """Ten seconds of a database down fail hundreds of batches: one traceback says why,
    the rest of the run a line each, and the first commit that works again says so."""
    h = Harness()
    h.store.fail_commit = True
    with capturedLogs() as events:
        for last in (100, 101, 102):
            h.deliver(
                request(MessageType.REQUEST, options=((50, IPv4Address(f"10.213.7.{last}")),))
            )
            h.reactor.advance(0)
        h.store.fail_commit = False
        h.deliver(request(MessageType.REQUEST, options=((50, IPv4Address("10.213.7.103")),)))
        h.reactor.advance(0)
    assert [e["log_level"] for e in events if "log_failure" in e] == [LogLevel.critical]
    again = [e for e in events if "failed again" in e["log_format"]]
    assert [e["failures"] for e in again] == [2, 3]
    assert [e["failures"] for e in events if "succeed again" in e["log_format"]] == [3]
    assert h.service.stats.commit_failures == 3 and len(h.reactor.sent) == 1


@dataclass
class DownStore(RecordingStore):
    """PostgreSQL down: every commit fails, and only ``stored`` is known committed."""

    stored: dict[str, Lease] = field(default_factory=dict)
    fail_commit: bool = True
    writable = False

    def committed(self, mac: str, now: float) -> Lease | None:
        lease = self.stored.get(mac)
        return lease if lease is not None and lease.active(now) else None


def test_with_the_database_down_a_stored_leases_renewal_leaves_at_once_and_the_rest_never():
    """The confirmation promises nothing the failing commit would have stored: it does
    not wait for the batch, and the batch's other replies are dropped with it."""
    h = Harness(make_store=DownStore)
    ip = IPv4Address("10.213.7.100")
    now = h.reactor.seconds()
    h.store.stored[MAC] = Lease(MAC, ip, now + 90)
    h.store.bind(h.store.stored[MAC], now)
    h.deliver(request(MessageType.REQUEST, MAC2, options=((50, IPv4Address("10.213.7.101")),)))
    h.deliver(request(MessageType.DISCOVER, "52:54:00:00:00:99"))
    h.deliver(request(MessageType.REQUEST, ciaddr=ip), sender=(str(ip), 68))
    [(ack, to)] = h.replies()  # before the turn's commit
    assert (ack.message_type, ack.mac, ack.option(51), to) == (
        MessageType.ACK,
        MAC,
        90,
        (str(ip), 68),
    )
    h.reactor.advance(0)
    assert len(h.reactor.sent) == 1 and h.service.stats.commit_failures == 1
    assert h.service.stats.messages[("REQUEST", "ack")] == 1


@dataclass
class WaitingStore(RecordingStore):
    """A store whose commits go over the network (PostgreSQL): each returns a Deferred the
    test fires when it likes."""

    waiting: list[Deferred[None]] = field(default_factory=list)

    def commit(self) -> Deferred[None]:  # type: ignore[override]
        self.waiting.append(Deferred())
        return self.waiting[-1]


def test_replies_wait_for_a_commit_that_returns_later_and_the_adapter_answers_meanwhile():
    h = Harness(make_store=WaitingStore)
    store = h.store
    store.waiting.clear()  # the expiry sweep's, at start
    first, second = IPv4Address("10.213.7.100"), IPv4Address("10.213.7.101")
    h.deliver(request(MessageType.REQUEST, MAC, options=((50, first),)))
    h.reactor.advance(0)
    h.deliver(request(MessageType.REQUEST, MAC2, options=((50, second),)))
    h.reactor.advance(0)
    assert len(store.waiting) == 2 and h.reactor.sent == []
    store.waiting[0].callback(None)
    assert [(p.mac, p.message_type) for p, _ in h.replies()] == [(MAC, MessageType.ACK)]
    store.waiting[1].errback(OSError("server closed the connection unexpectedly"))
    assert len(h.reactor.sent) == 1 and h.service.stats.commit_failures == 1


@property_settings
@given(st.binary(max_size=700))
def test_no_datagram_escapes_datagram_received(datagram):
    """Random bytes are logged and dropped, or answered; never an exception out of the socket."""
    h = Harness()
    with capturedLogs() as events:
        h.deliver(datagram)
        h.reactor.advance(0)
    assert not any(e["log_level"] == LogLevel.critical for e in events)


def test_malformed_datagram_is_logged_with_reason_and_mac_and_dropped():
    h = Harness()
    truncated = request(MessageType.DISCOVER)[:100]
    with capturedLogs() as events:
        h.deliver(truncated)
        h.reactor.advance(0)
    assert h.reactor.sent == []
    (event,) = [e for e in events if e.get("outcome") == "malformed"]
    assert event["mac"] == MAC and event["reason"]
    assert h.service.stats.messages[("malformed", "dropped")] == 1


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ((Option(53, b"\x01\x02"),), "option 53"),
        ((Option(53, b"\x01"), Option(50, b"\x0a\xd5\x07")), "option 50"),
    ],
)
def test_badly_typed_message_type_or_requested_address_is_logged_as_malformed(options, reason):
    """Not an "internal error" with a traceback: a client's bad option is its own fault."""
    h = Harness()
    packet = DhcpPacket(xid=1, chaddr=bytes.fromhex(MAC.replace(":", "")), options=options)
    with capturedLogs() as events:
        h.deliver(encode_dhcp(packet))
        h.reactor.advance(0)
    assert h.reactor.sent == []
    assert not any(e["log_level"] == LogLevel.critical for e in events)
    (event,) = [e for e in events if e.get("outcome") == "malformed"]
    assert event["mac"] == MAC and reason in event["reason"]
    assert h.service.stats.messages[("malformed", "dropped")] == 1


def test_an_engine_bug_is_logged_and_the_socket_keeps_serving(monkeypatch):
    h = Harness()

    def broken(*args: object) -> None:
        raise RuntimeError("engine bug")

    monkeypatch.setattr(h.service.engine, "handle", broken)
    with capturedLogs() as events:
        h.deliver(request(MessageType.DISCOVER))
    assert any(e.get("log_failure") is not None for e in events)
    monkeypatch.undo()
    h.deliver(request(MessageType.DISCOVER))
    h.reactor.advance(0)
    assert len(h.reactor.sent) == 1


def test_unknown_mac_is_refused_and_logged_with_its_mac():
    """allow_unknown false: silence for a MAC not under hosts, and an info event saying so."""
    h = Harness(settings(allow_unknown=False))
    with capturedLogs() as events:
        h.deliver(request(MessageType.DISCOVER, xid=0xBEEF))
        h.reactor.advance(0)
    assert h.reactor.sent == []
    (event,) = [e for e in events if e.get("outcome") == "refused"]
    assert event["mac"] == MAC and event["xid"] == 0xBEEF and event["kind"] == "DISCOVER"
    assert event["log_level"] == LogLevel.info
    assert h.service.stats.messages[("DISCOVER", "refused")] == 1


def test_proxy_4011_ack_goes_to_the_request_source_address_and_port():
    """OVMF listens only on the port it sent from (4011); iPXE on 68."""
    h = Harness(settings(mode=Mode.PROXY))
    source = ("10.213.7.55", 4011)
    pxe_request = request(MessageType.REQUEST, options=PXE, ciaddr=IPv4Address(source[0]))
    h.deliver(pxe_request, port=4011, sender=source)
    h.reactor.advance(0)
    ((ack, to),) = h.replies()
    assert to == source
    assert ack.message_type == MessageType.ACK and ack.boot_file == "pxelinux.0"
    assert h.port(LAB, 4011).written and not h.port(LAB, 67).written


def test_expired_leases_are_swept_and_committed_periodically():
    h = Harness()
    h.deliver(request(MessageType.REQUEST, options=((50, IPv4Address("10.213.7.100")),)))
    h.reactor.advance(0)
    assert h.store.leases()
    h.reactor.advance(3600 + 60)
    assert h.store.leases() == []
    assert h.store.events[-1][0] == "commit"


def test_a_failed_expiry_commit_is_logged_and_the_sweep_keeps_running():
    """A full disk once must not stop lease expiry for the life of the daemon."""
    h = Harness()
    h.deliver(request(MessageType.REQUEST, options=((50, IPv4Address("10.213.7.100")),)))
    h.reactor.advance(0)
    h.store.fail_commit = True
    with capturedLogs() as events:
        h.reactor.advance(60)
    assert any(e.get("log_failure") is not None for e in events)
    h.store.fail_commit = False
    h.reactor.advance(3600)
    assert h.store.leases() == []
    assert h.store.events[-1][0] == "commit"
    assert h.service._expiry is not None and h.service._expiry.running


def test_stop_sends_the_pending_batch_and_closes_every_socket_and_the_store():
    h = Harness()
    h.deliver(request(MessageType.DISCOVER))
    h.service.stopService()
    assert len(h.reactor.sent) == 1
    assert h.store.events[-2:] == [("commit", 0), ("close", None)]
    assert h.reactor.open_ports == []
    assert h.reactor.getDelayedCalls() == []


def test_provisioning_hears_of_netbooting_clients_only():
    """A PXE client given a boot file is "seen booting"; a plain DHCP client is not."""
    seen: list[tuple[str, str]] = []
    h = Harness(boot_seen=lambda mac, source: seen.append((mac, source)))
    h.deliver(request(MessageType.DISCOVER, MAC, options=PXE))
    h.deliver(request(MessageType.DISCOVER, MAC2))
    h.reactor.advance(0)
    assert seen == [(MAC, "dhcp")]


def test_a_failing_provisioning_hook_does_not_stop_the_reply():
    def broken(mac: str, source: str) -> None:
        raise OSError("state database is read-only")

    h = Harness(boot_seen=broken)
    with capturedLogs() as events:
        h.deliver(request(MessageType.DISCOVER, MAC, options=PXE))
        h.reactor.advance(0)
    assert len(h.reactor.sent) == 1
    assert any(e.get("log_failure") is not None for e in events)


def test_a_client_with_no_loader_for_its_architecture_is_warned_about_once_per_mac():
    """Issue 13: an ARM64 UEFI client (option 93 = 11) gets an address, no boot file, and one
    warning naming its architecture, however often its firmware retries."""
    arm64 = ((60, "PXEClient:Arch:00011:UNDI:003016"), (93, (11,)))
    h = Harness()
    with capturedLogs() as events:
        for mac in (MAC, MAC, MAC2):
            h.deliver(request(MessageType.DISCOVER, mac, options=arm64))
            h.reactor.advance(0)
    assert [packet.file.strip(b"\0") for packet, _ in h.replies()] == [b"", b"", b""]
    warned = [e for e in events if e.get("log_level") == LogLevel.warn]
    assert [e["mac"] for e in warned] == [MAC, MAC2]
    assert "ARM 64-bit UEFI" in warned[0]["why"] and "dhcp.boot.arm64" in warned[0]["why"]


def test_served_leases_read_the_running_servers_leases_from_memory():
    """Issue 16: with leases in PostgreSQL, the Kickstart's identity rule and /api/leases read
    the DHCP server's own rows, not the SQLite file (which then does not exist)."""
    from pxed.dhcp.service import ServedLeases

    h = Harness()
    served = ServedLeases(h.service)
    h.deliver(request(MessageType.DISCOVER, MAC))
    h.reactor.advance(0)
    (offer, _), *_ = h.replies()
    request_options = ((50, offer.yiaddr), (54, offer.server_id))
    h.deliver(request(MessageType.REQUEST, MAC, options=request_options))
    h.reactor.advance(0)
    now = h.reactor.seconds()
    assert served.mac_for(offer.yiaddr, now) == MAC
    assert served.mac_for(IPv4Address("10.99.0.1"), now) is None
    assert [row[:2] for row in served.rows()] == [(MAC, str(offer.yiaddr))]


@dataclass
class SteadyBeat:
    """A heartbeat whose live set stays as given (pxed.dhcp.heartbeat reads it from SQL)."""

    peers: Peers


def test_with_a_live_peer_only_this_servers_bucket_is_answered_and_the_rest_counted_as_peer():
    h = Harness()
    both = frozenset({"pxe1", "pxe2"})
    h.service.heartbeat = SteadyBeat(Peers("pxe1", both))  # type: ignore[assignment]
    macs = [f"52:54:00:00:00:{n:02x}" for n in range(40)]
    mine = [mac for mac in macs if owner(bytes.fromhex(mac.replace(":", "")), both) == "pxe1"]
    for mac in macs:
        h.deliver(request(MessageType.DISCOVER, mac))
    h.reactor.advance(0)
    assert {packet.mac for packet, _ in h.replies()} <= set(mine)  # the pool holds 10
    counted = h.service.stats.messages
    assert counted[("DISCOVER", "peer")] == len(macs) - len(mine) > 0
    assert sum(n for (_, outcome), n in counted.items() if outcome != "peer") == len(mine)


def test_with_a_live_peer_this_server_offers_from_its_share_of_the_pool():
    """pxe2 ranks second of two: while its share lasts, the odd positions of 100-109."""
    h = Harness()
    both = frozenset({"pxe1", "pxe2"})
    h.service.heartbeat = SteadyBeat(Peers("pxe2", both))  # type: ignore[assignment]
    macs = [f"52:54:00:00:01:{n:02x}" for n in range(40)]
    mine = [mac for mac in macs if owner(bytes.fromhex(mac.replace(":", "")), both) == "pxe2"]
    for mac in mine[:5]:
        h.deliver(request(MessageType.DISCOVER, mac))
        h.reactor.advance(0)
    offered = {int(packet.yiaddr) & 0xFF for packet, _ in h.replies()}
    assert offered == {101, 103, 105, 107, 109}


def test_a_live_peers_client_that_waited_is_offered_here_logged_once_and_counted():
    """The peer beats but does not hear this client (docs/ha.md): secs 4 is left to it,
    secs 10 (server.peer_ack_delay) is answered here, and its MAC logged once."""
    h = Harness()
    both = frozenset({"pxe1", "pxe2"})
    h.service.heartbeat = SteadyBeat(Peers("pxe1", both))  # type: ignore[assignment]
    h.service.overdue = Overdue(ack_delay=10)
    mac = next(
        mac
        for n in range(256)
        if owner(bytes.fromhex((mac := f"52:54:00:00:02:{n:02x}").replace(":", "")), both) == "pxe2"
    )

    def discover(secs: int, xid: int) -> bytes:
        packet = decode_dhcp(request(MessageType.DISCOVER, mac, xid=xid, options=PXE))
        return encode_dhcp(replace(packet, secs=secs, layout=None), min_size=300)

    with capturedLogs() as events:
        h.deliver(discover(secs=4, xid=1))
        h.reactor.advance(0)
        assert h.replies() == []
        for secs in (10, 14):
            h.deliver(discover(secs=secs, xid=1))
            h.reactor.advance(0)
    offers = [packet for packet, _ in h.replies()]
    assert [(p.mac, p.message_type) for p in offers] == [(mac, MessageType.OFFER)] * 2
    taken = [e for e in events if "live peer" in e.get("log_format", "")]
    assert [(e["mac"], e["why"]) for e in taken] == [(mac, "secs 10 >= server.peer_ack_delay 10")]
    assert h.service.stats.takeovers == 2
    assert h.service.stats.messages[("DISCOVER", "peer")] == 1
    assert h.service.stats.messages[("DISCOVER", "offer")] == 2


def test_a_live_peers_client_this_server_ignores_too_is_neither_logged_nor_counted_as_taken():
    """Waiting does not always mean the peer does not hear: it may ignore the client on
    purpose (here: unknown hosts are not served); so does this server, and says nothing."""
    h = Harness(settings(allow_unknown=False))
    both = frozenset({"pxe1", "pxe2"})
    h.service.heartbeat = SteadyBeat(Peers("pxe1", both))  # type: ignore[assignment]
    h.service.overdue = Overdue(ack_delay=10)
    mac = next(
        mac
        for n in range(256)
        if owner(bytes.fromhex((mac := f"52:54:00:00:03:{n:02x}").replace(":", "")), both) == "pxe2"
    )
    with capturedLogs() as events:
        for _ in range(4):
            h.deliver(request(MessageType.DISCOVER, mac, xid=7, options=PXE))
            h.reactor.advance(0)
    assert h.replies() == []
    assert not [e for e in events if "live peer" in e.get("log_format", "")]
    assert h.service.stats.takeovers == 0
    assert h.service.stats.messages[("DISCOVER", "peer")] == 2
