"""Per-host timelines: which events land on which MAC, bounded memory, and a whole boot in order.

The scripted boot drives the real adapters (DHCP and TFTP on the fake UDP
reactor, the Kickstart and callback resources with DummyRequest); the
timeline only sees what they log, as it does inside ``twistd pxed``.
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from io import BytesIO
from ipaddress import IPv4Address
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from twisted.internet.address import IPv4Address as TwistedAddress
from twisted.logger import formatEvent, globalLogPublisher
from twisted.web.resource import Resource, getChildForRequest
from twisted.web.server import Site
from twisted.web.test.requesthelper import DummyRequest

from protocols.dhcp.leases import MemoryLeaseStore
from protocols.dhcp.options import MessageType
from protocols.tftp.wire import Ack, Data, ReadRequest, decode_tftp, encode_tftp
from pxed.config import load_config
from pxed.dhcp.service import DhcpService, Interface
from pxed.dhcp.settings import engine_settings
from pxed.events import DhcpExchange, HttpRequestStarted, HttpResponse, TftpRefused
from pxed.ops.operations import Operations, watch_requests
from pxed.ops.status import mount_status
from pxed.ops.timeline import Timeline, TimelineSubscriber, event_mac
from pxed.provisioning.inventory import Inventory
from pxed.provisioning.lifecycle import Lifecycle
from pxed.provisioning.resources import Provisioning, mount
from pxed.provisioning.tftp_files import ProvisionFiles
from pxed.provisioning.tokens import host_token
from pxed.tftp.service import TftpService, TftpSettings
from pxed.tftp.sources import ProviderChain, StaticRoot
from tests.protocols.dhcp_engine_support import request as dhcp_request
from tests.support.fake_udp import FakeUDPReactor
from tests.support.provision_lab import WEB, write_lab
from tests.support.rendering import rendered

SECRET = b"s" * 32
WEB_IP = "10.213.7.21"
LAB = Interface("lab0", IPv4Address("10.213.7.1"))
PXE = ((60, "PXEClient:Arch:00000:UNDI:002001"), (93, (0,)))


def no_lookup(ip: str) -> str | None:
    return None


def refused(mac: str, when: float) -> DhcpExchange:
    reason = "not under hosts and allow_unknown is false"
    return DhcpExchange(when, mac, "DISCOVER", 1, "lab0", 67, "0.0.0.0:68", "refused", "-", reason)


def tftp(file: str, client: str = f"{WEB_IP}:2070") -> TftpRefused:
    return TftpRefused(1.0, None, client, file, "not-found", "file not found")


def test_an_event_that_names_its_mac_goes_to_that_mac() -> None:
    assert event_mac(refused(WEB, 1.0), no_lookup) == WEB


def test_a_tftp_event_finds_its_mac_in_the_per_mac_file_name() -> None:
    assert event_mac(tftp("pxelinux.cfg/01-52-54-00-12-34-56"), no_lookup) == WEB


def test_a_grub_event_finds_its_mac_in_the_colon_spelling_grub_cfg_loader_asks_for() -> None:
    """pxed's grub/grub.cfg loads grub.cfg-01-$net_default_mac, which GRUB spells with colons."""
    assert event_mac(tftp("/grub.cfg-01-52:54:00:12:34:56"), no_lookup) == WEB


def test_a_tftp_event_without_a_mac_is_matched_by_the_clients_address() -> None:
    assert event_mac(tftp("pxelinux.0"), {WEB_IP: WEB}.get) == WEB
    assert event_mac(tftp("pxelinux.0"), no_lookup) is None


def test_an_http_response_without_a_mac_in_its_path_is_no_boot_step() -> None:
    """An installer fetches thousands of packages from /trees: they would bury the boot."""
    timeline = Timeline()
    package = HttpResponse(1.0, None, "GET", "/trees/x/a.rpm", 200, WEB_IP, 10)
    TimelineSubscriber(timeline, {WEB_IP: WEB}.get)(package)
    assert list(timeline.macs()) == []


def test_each_host_keeps_only_its_latest_events() -> None:
    timeline = Timeline(per_host=3)
    for n in range(5):
        timeline.add(WEB, refused(WEB, float(n)))
    assert [e.time for e in timeline.events(WEB)] == [2.0, 3.0, 4.0]
    assert timeline.last_seen(WEB) == 4.0


def test_the_least_recently_active_host_is_forgotten_first() -> None:
    timeline = Timeline(max_hosts=2)
    for mac in ("a", "b", "a", "c"):
        timeline.add(mac, refused(mac, 0.0))
    assert sorted(timeline.macs()) == ["a", "c"]


def test_refused_macs_cost_a_bounded_small_amount_and_never_push_hosts_out() -> None:
    """Issue 18: 4,096 refused MACs grew RSS by ~1 KB each in the hosts' timelines.

    250,000 refused DISCOVER events, as the DHCP adapter logs them, from 65,536 MACs.
    """
    timeline = Timeline(known=lambda mac: mac == WEB)
    observe = TimelineSubscriber(timeline, no_lookup)
    observe(refused(WEB, 1.0))
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for n in range(250_000):
        observe(refused(f"52:54:01:00:{(n >> 8) & 255:02x}:{n & 255:02x}", float(n)))
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 20 * 1024 * 1024
    assert len(list(timeline.macs())) == 1 + 1024
    assert [entry.time for entry in timeline.events(WEB)] == [1.0]


class Boot:
    """Real DHCP, TFTP and provisioning objects sharing one lab config, observed as in twistd."""

    def __init__(self, root: Path) -> None:
        path = write_lab(root)
        text = path.read_text().replace("dhcp:\n", "dhcp:\n  mode: full\n", 1)
        path.write_text(text.replace("state_dir:", "interfaces: [lab0], state_dir:", 1))
        config = load_config(path)
        self.reactor = FakeUDPReactor()
        inventory = Inventory(config)
        lifecycle = Lifecycle.open(config.server.state_dir)
        files = ProvisionFiles(inventory, lifecycle, self.reactor.seconds)
        self.p = Provisioning(inventory, lifecycle, SECRET, files, self.reactor.seconds)
        self.ops = Operations(self.p, self.reactor.seconds)
        settings = engine_settings(config, LAB.address)
        self.dhcp = DhcpService(
            settings,
            Leases,
            [LAB],
            self.reactor,
            FakeSocket,
            boot_seen=self.p.seen,
            events=self.p.events,
        )
        self.tftp = TftpService(
            TftpSettings(listen=("10.213.7.1",)),
            ProviderChain([files, StaticRoot(config.tftp.root)]),
            self.reactor,
            loop=self.reactor,
            events=self.p.events,
        )
        self.site = Resource()
        mount(self.site, self.p)
        mount_status(self.site, self.ops)

    def start(self) -> None:
        for service in (self.dhcp, self.tftp):
            service.privilegedStartService()
            service.startService()

    def stop(self) -> None:
        for service in (self.tftp, self.dhcp):
            service.stopService()

    def dhcp_exchange(self) -> None:
        dhcp = self.reactor.open_ports[0].address
        self.reactor.deliver(dhcp_request(MessageType.DISCOVER, WEB, options=PXE), dhcp, CLIENT)
        request = ((50, IPv4Address(WEB_IP)), (54, LAB.address), *PXE)
        self.reactor.deliver(dhcp_request(MessageType.REQUEST, WEB, options=request), dhcp, CLIENT)
        self.reactor.advance(0)  # end of turn: commit, send

    def tftp_fetch(self, name: str) -> bytes:
        client = (WEB_IP, 2070)
        mark = len(self.reactor.sent)
        self.reactor.deliver(encode_tftp(ReadRequest(name)), ("10.213.7.1", 69), client)
        received = b""
        while True:
            (src, datagram, _), *_ = self.reactor.sent[mark:]
            mark = len(self.reactor.sent)
            message = decode_tftp(datagram)
            assert isinstance(message, Data)
            received += message.payload
            self.reactor.deliver(encode_tftp(Ack(message.block)), src, client)
            if len(message.payload) < 512:
                return received

    def http(self, path: str, method: bytes = b"GET", **args: bytes) -> tuple[int, bytes]:
        req = DummyRequest([part.encode() for part in path.strip("/").split("/")])
        req.method = method
        req.client = TwistedAddress("TCP", WEB_IP, 40000)
        req.args = {key.encode(): [value] for key, value in args.items()}
        req.content = BytesIO(b"&".join(b"%s=%s" % (k.encode(), v) for k, v in args.items()))
        body = rendered(getChildForRequest(self.site, req), req)
        return req.responseCode or 200, body


CLIENT = ("0.0.0.0", 68)


class Leases(MemoryLeaseStore):
    """The adapter's durable store, minus the disk."""

    def commit(self) -> None:
        pass

    def close(self) -> None:
        pass


class FakeSocket:
    def __init__(self, interface: str, port: int) -> None:
        self.port = port

    def fileno(self) -> int:
        return 100 + self.port

    def close(self) -> None:
        pass


@pytest.fixture
def boot(tmp_path: Path) -> Iterator[Boot]:
    lab = Boot(tmp_path)
    lab.start()
    try:
        yield lab
    finally:
        lab.stop()


def test_a_scripted_boot_lists_dhcp_tftp_kickstart_and_done_in_order(boot: Boot) -> None:
    """DHCP DORA, the pxelinux config over TFTP, the Kickstart, the done callback: one story."""
    boot.dhcp_exchange()
    boot.reactor.advance(1)
    config = boot.tftp_fetch("pxelinux.cfg/01-52-54-00-12-34-56").decode()
    assert "inst.ks=" in config
    boot.reactor.advance(1)
    assert boot.http(f"/ks/{WEB}")[0] == 200
    boot.reactor.advance(1)
    token = host_token(SECRET, WEB).encode()
    assert boot.http(f"/api/hosts/{WEB}/done", b"POST", token=token)[0] == 200

    code, body = boot.http(f"/api/hosts/{WEB}/timeline")
    events = json.loads(body)["events"]
    kinds = [event["kind"] for event in events]
    assert code == 200
    assert _first_of_each(kinds) == ["dhcp", "state", "tftp", "kickstart", "callback"]
    assert [e["time"] for e in events] == sorted(e["time"] for e in events)
    dhcp = [e for e in events if e["kind"] == "dhcp"]
    assert [e["fields"]["kind"] for e in dhcp] == ["DISCOVER", "REQUEST"]
    assert "installing -> installed" in events[-1]["text"]


def _first_of_each(kinds: list[str]) -> list[str]:
    seen: list[str] = []
    for kind in kinds:
        if kind not in seen:
            seen.append(kind)
    return seen


def test_the_hosts_api_shows_state_address_and_last_seen(boot: Boot) -> None:
    boot.dhcp_exchange()
    rows: list[dict[str, Any]] = json.loads(boot.http("/api/hosts")[1])
    web = next(row for row in rows if row["mac"] == WEB)
    assert web["state"] == "booting" and web["ip"] == WEB_IP and web["profile"] == "web"
    assert web["last_seen"] is not None
    assert boot.http("/api/hosts/nonsense/timeline")[0] == 404


def test_address_lookups_are_remembered_for_a_few_seconds(boot: Boot) -> None:
    """A boot's burst of TFTP transfers costs one lease lookup, and a new lease shows soon."""
    calls: list[str] = []
    inventory = boot.p.inventory

    def counting(ip: str, now: float) -> str | None:
        calls.append(ip)
        return WEB

    inventory.mac_for_ip = counting  # type: ignore[method-assign]
    assert [boot.ops.mac_for_ip(WEB_IP) for _ in range(3)] == [WEB] * 3
    assert calls == [WEB_IP]
    boot.reactor.advance(6)
    boot.ops.mac_for_ip(WEB_IP)
    assert calls == [WEB_IP, WEB_IP]


def test_no_rendered_kickstart_token_or_secret_leaks_to_logs_apis_or_configs(boot: Boot) -> None:
    """Issue 14: what a Kickstart holds goes to its host only, never sideways."""
    lines: list[str] = []

    def collect(event: dict[str, Any]) -> None:
        lines.append(formatEvent(event) + " " + json.dumps({k: str(v) for k, v in event.items()}))

    globalLogPublisher.addObserver(collect)
    try:
        boot.dhcp_exchange()
        config = boot.tftp_fetch("pxelinux.cfg/01-52-54-00-12-34-56").decode()
        kickstart = boot.http(f"/ks/{WEB}")[1].decode()
        token = host_token(SECRET, WEB)
        assert token in kickstart and "network --hostname=web01" in kickstart
        boot.http(f"/api/hosts/{WEB}/done", b"POST", token=token.encode())
        shown = [
            config,
            *(boot.http(path)[1].decode() for path in ("/api/hosts", "/api/leases", "/metrics")),
            boot.http(f"/api/hosts/{WEB}/timeline")[1].decode(),
            boot.http(f"/boot/{WEB}.ipxe")[1].decode(),
            *lines,
        ]
    finally:
        globalLogPublisher.removeObserver(collect)
    for text in shown:
        assert token not in text and SECRET.decode("latin-1") not in text
        assert "network --hostname=" not in text  # no rendered Kickstart


def test_the_adapters_publish_typed_events_that_the_views_subscribe_to(boot: Boot) -> None:
    """No view reads log events: each adapter publishes what happened on the one bus."""
    seen: list[str] = []
    boot.p.events.subscribe(lambda event: seen.append(type(event).__name__))
    boot.dhcp_exchange()
    boot.tftp_fetch("pxelinux.cfg/01-52-54-00-12-34-56")
    assert boot.http(f"/ks/{WEB}")[0] == 200
    assert seen == [
        "DhcpExchange",
        "StateChanged",  # ready -> booting, seen by DHCP
        "DhcpExchange",
        "TftpTransferStarted",
        "TftpTransferEnded",
        "StateChanged",  # booting -> installing
        "KickstartRequest",
    ]


def test_a_failing_subscriber_is_logged_and_the_others_still_hear() -> None:
    from pxed.events import EventBus

    bus, heard = EventBus(), []
    bus.subscribe(lambda event: 1 / 0)
    bus.subscribe(heard.append)
    event = refused(WEB, 1.0)
    bus.publish(event)
    assert heard == [event]


@pytest.mark.parametrize("family", ["ks", "preseed"])
def test_an_answer_file_fetch_of_either_family_is_a_boot_step_of_its_host(family: str) -> None:
    """The access log's event names the host (its timeline) and never the URL's signature."""
    heard: list[HttpResponse] = []
    site = Site(Resource())
    site.log = lambda request: None  # type: ignore[method-assign]
    events = SimpleNamespace(publish=heard.append)
    operations = SimpleNamespace(clock=lambda: 1.0, provisioning=SimpleNamespace(events=events))
    watch_requests(site, operations)  # type: ignore[arg-type]
    request = DummyRequest([])
    request.path = f"/{family}/{WEB}/{'ab' * 16}".encode()
    request.code, request.sentLength = 200, 10
    request.client = TwistedAddress("TCP", WEB_IP, 40000)
    site.log(request)
    [event] = heard
    assert (event.mac, event.path) == (WEB, f"/{family}/{WEB}/<redacted>")


def test_a_request_is_published_when_its_resource_is_looked_up_so_a_long_fetch_shows() -> None:
    """The boot view draws a kernel over HTTP from its start; the response comes seconds later."""
    heard: list[object] = []
    leaf = Resource()
    leaf.isLeaf = True
    site = Site(leaf)
    events = SimpleNamespace(publish=heard.append)
    operations = SimpleNamespace(clock=lambda: 1.0, provisioning=SimpleNamespace(events=events))
    watch_requests(site, operations)  # type: ignore[arg-type]
    request = DummyRequest([b"tftp", b"vmlinuz"])
    request.path = b"/tftp/vmlinuz"
    request.client = TwistedAddress("TCP", WEB_IP, 40000)
    site.getResourceFor(request)
    [event] = heard
    assert event == HttpRequestStarted(1.0, None, "GET", "/tftp/vmlinuz", WEB_IP)


def test_a_scripted_boot_is_one_row_of_phases_on_the_boots_api(boot: Boot) -> None:
    """The real adapters' events, through Operations' subscription, as the page reads them."""
    boot.dhcp_exchange()
    boot.reactor.advance(1)
    boot.tftp_fetch("pxelinux.cfg/01-52-54-00-12-34-56")
    boot.reactor.advance(1)
    assert boot.http(f"/ks/{WEB}")[0] == 200
    token = host_token(SECRET, WEB).encode()
    assert boot.http(f"/api/hosts/{WEB}/done", b"POST", token=token)[0] == 200

    answer = json.loads(boot.http("/api/boots")[1])
    [row] = answer["boots"]
    assert (row["mac"], row["hostname"], answer["now"]) == (WEB, "web01", 2.0)
    phases = {phase["name"]: (phase["start"], phase["end"]) for phase in row["phases"]}
    assert phases == {
        "dhcp": (0.0, 0.0),
        "config": (1.0, 1.0),
        "kickstart": (2.0, 2.0),
        "callback": (2.0, 2.0),
    }
