"""Replay every captured DHCP/BOOTP request through the DHCP engine and pin its answer.

Each capture in tests/captures/ and the public captures (tests/replay/corpus.py) that holds a
request is played, in capture order, into a fresh engine built from a fixed
scenario config (tests/replay/configs/dhcp-answers-<mode>.yaml) the way the
daemon builds it (pxed.cli.explain.server_address + pxed.dhcp.settings.engine_settings).
What the engine says to each request -- the reply read back off its bytes with
pxed.pcap.dhcp_view, or the reason it stays silent -- and the lease table left at the
end are compared with the reviewed golden text in tests/replay/golden/dhcp-answers/.

Regenerate the golden files with ``PXED_UPDATE_GOLDEN=1`` and review the diff.

Determinism: one fixed ``now`` for every request, a fresh MemoryLeaseStore per
capture.  Where a request arrives: pxed stands in for the server the capture
shows.  The first server identifier, reply source or unicast request destination
in the capture that lies in a configured subnet names the link, and pxed's
address on that link is the subnet's ``router`` (the scenario config makes pxed
every link's router); without one, ``server.address``.  A relayed request
arrives there too and the engine picks its subnet by giaddr.  A request to
udp/4011 reaches the engine only in proxy mode, the only mode that listens there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cache
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from protocols.dhcp.leases import MemoryLeaseStore
from protocols.dhcp.server import DhcpServer, Mode, NoReply, Received, Reply, Settings
from protocols.dhcp.wire import BOOTREQUEST, DhcpPacket, decode_dhcp, encode_dhcp
from protocols.errors import MalformedPacket
from pxed.cli.explain import server_address
from pxed.config import Config, load_config
from pxed.dhcp.settings import engine_settings
from pxed.pcap.classify import Protocol
from pxed.pcap.dhcp_view import detail, kind, summary
from pxed.pcap.payload import Decoded
from tests.replay.corpus import ALL_CAPTURES, GOLDEN, OWN, PUBLIC, Replayed, label, replay

UPDATE = os.environ.get("PXED_UPDATE_GOLDEN") == "1"
CONFIGS = Path(__file__).resolve().parent / "configs"
ANSWERS = GOLDEN / "dhcp-answers"
MODES = ("full", "proxy")
NOW = 1_800_000_000.0  # 2027-01-15: every request is handled at this instant
# The golden files end in .answers, not .txt: test_replay.py owns every *.txt under golden/.
SUFFIX = ".answers"


@dataclass(frozen=True)
class Scenario:
    mode: str
    config_path: Path
    config: Config
    settings: Settings

    @property
    def home(self) -> IPv4Address:
        """server.address: where requests arrive when the capture names no configured link."""
        return server_address(self.config)

    def link_address(self, address: IPv4Address) -> IPv4Address | None:
        """pxed's address on the configured link holding ``address`` (that subnet's router)."""
        subnet = self.config.dhcp.subnet_for(address)
        return subnet.router if subnet is not None else None


@cache
def scenario(mode: str) -> Scenario:
    path = CONFIGS / f"dhcp-answers-{mode}.yaml"
    config = load_config(path)
    return Scenario(mode, path, config, engine_settings(config, server_address(config)))


def _dhcp_captures() -> list[Path]:
    return [
        path
        for path in ALL_CAPTURES
        if any(result.protocol is Protocol.DHCP for result in replay(path))
    ]


DHCP_CAPTURES = _dhcp_captures()


def golden_answers(capture: Path, mode: str) -> Path:
    return ANSWERS / f"{capture.name}.{mode}{SUFFIX}"


def _packet(result: Replayed) -> DhcpPacket | None:
    outcome = result.outcome
    return outcome.message if isinstance(outcome, Decoded) else None


def request_side(results: list[Replayed]) -> list[Replayed]:
    """What a server would be handed: BOOTREQUESTs, and payloads that do not decode at all
    (the engine must drop those with a reason).  Server replies in the capture are left out."""
    found = []
    for result in results:
        if result.protocol is not Protocol.DHCP:
            continue
        packet = _packet(result)
        if packet is None or packet.op == BOOTREQUEST:
            found.append(result)
    return found


def _server_side_addresses(results: list[Replayed]) -> Iterator[IPv4Address]:
    """Addresses that belong to the captured server, in capture order (never giaddr)."""
    for result in results:
        packet = _packet(result)
        if result.protocol is not Protocol.DHCP or packet is None:
            continue
        try:
            server_id = packet.server_id
        except MalformedPacket:
            server_id = None
        if server_id is not None:
            yield server_id
        yield result.datagram.dst if packet.op == BOOTREQUEST else result.datagram.src


def arrival_address(scene: Scenario, results: list[Replayed]) -> IPv4Address:
    """pxed's address on the link the capture was recorded on (see the module docstring)."""
    for address in _server_side_addresses(results):
        ours = scene.link_address(address)
        if ours is not None:
            return ours
    return scene.home


@dataclass(frozen=True)
class Answer:
    """One request and what the engine did with it."""

    result: Replayed
    action: Reply | NoReply | None  # None: no socket of this mode listens on its port


def play(
    capture: Path, mode: str, settings: Settings | None = None
) -> tuple[list[Answer], MemoryLeaseStore, IPv4Address]:
    """Every request of ``capture`` through a fresh engine, in order, at NOW.

    ``settings`` replaces the scenario's engine settings (same links) for a what-if.
    """
    scene = scenario(mode)
    settings = settings or scene.settings
    results = replay(capture)
    here = arrival_address(scene, results)
    store = MemoryLeaseStore()
    server = DhcpServer(settings, store)
    ports = settings.ports
    listening = {ports.server} | ({ports.proxy} if settings.mode is Mode.PROXY else set())
    answers = []
    for result in request_side(results):
        datagram = result.datagram
        port = ports.proxy if datagram.dport == ports.proxy else ports.server
        if port not in listening and _packet(result) is not None:
            answers.append(Answer(result, None))
            continue
        received = Received(here, (datagram.src, datagram.sport), port)
        answers.append(Answer(result, server.handle_datagram(datagram.payload, received, NOW)))
    return answers, store, here


def transcript(capture: Path, mode: str) -> str:
    answers, store, here = play(capture, mode)
    scene = scenario(mode)
    lines = [
        f"# {label(capture)} answered by pxed in {mode} mode "
        f"({scene.config_path.relative_to(CONFIGS.parents[2])}), pxed at {here}",
    ]
    if not answers:
        lines.append("(no BOOTREQUEST in this capture: only server replies)")
    for answer in answers:
        lines += ["", *_answer_lines(answer, scene)]
    lines += ["", *_lease_lines(store)]
    return "\n".join(lines) + "\n"


def _answer_lines(answer: Answer, scene: Scenario) -> list[str]:
    datagram = answer.result.datagram
    packet = _packet(answer.result)
    origin = f"{datagram.src}:{datagram.sport} -> {datagram.dst}:{datagram.dport}"
    if packet is None:
        head = f"frame {answer.result.number} {origin} (does not decode)"
    else:
        head = f"frame {answer.result.number} {origin} {kind(packet)} {summary(packet)}"
    action = answer.action
    if action is None:
        return [
            head,
            f"  -> not received: {scene.mode} mode does not listen on udp/{datagram.dport}",
        ]
    if isinstance(action, NoReply):
        return [head, f"  -> silent: {action.reason}"]
    destination = f"{action.destination[0]}:{action.destination[1]}"
    reply = decode_dhcp(action.data)
    return [
        head,
        f"  -> {kind(reply)} to {destination} ({len(action.data)} bytes): {action.reason}",
        *(f"     {line}" for line in detail(reply)),
    ]


def _lease_lines(store: MemoryLeaseStore) -> list[str]:
    lines = ["leases at the end:"]
    lines += [
        f"  {lease.ip} {lease.mac} {lease.state.value} "
        + ("no expiry" if lease.expires is None else f"expires NOW+{lease.expires - NOW:.0f}s")
        + (f" hostname={lease.hostname}" if lease.hostname else "")
        for lease in store.leases()
    ] or ["  (none)"]
    quarantines = store.quarantines()
    lines += [
        f"  quarantined {ip} until NOW+{until - NOW:.0f}s"
        for ip, until in sorted(quarantines.items())
    ]
    return lines


def _ids(paths: list[Path]) -> list[str]:
    return [label(path) for path in paths]


CASES = [(capture, mode) for capture in DHCP_CAPTURES for mode in MODES]


@pytest.mark.parametrize(("capture", "mode"), CASES, ids=[f"{label(c)}-{m}" for c, m in CASES])
def test_answers_match_the_golden_text(capture: Path, mode: str) -> None:
    text = transcript(capture, mode)
    golden = golden_answers(capture, mode)
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), f"no golden file {golden}: run with PXED_UPDATE_GOLDEN=1 and review"
    assert text == golden.read_text(), (
        f"{golden.name} differs: if the new answers are right, regenerate with "
        "PXED_UPDATE_GOLDEN=1 and review the diff"
    )


def _captured_name(golden: Path) -> str:
    """``udhcpc-dnsmasq.pcap.full.answers`` -> ``udhcpc-dnsmasq.pcap``."""
    return golden.name.removesuffix(SUFFIX).rsplit(".", 1)[0]


def test_every_dhcp_capture_has_answers_and_no_answers_file_is_stale() -> None:
    expected = {golden_answers(capture, mode) for capture, mode in CASES}
    present = set(ANSWERS.glob(f"*{SUFFIX}"))
    if not PUBLIC.is_dir():
        present = {path for path in present if (OWN / _captured_name(path)).exists()}
    assert present == expected


def test_retransmitted_requests_get_the_same_answer() -> None:
    """A request sent again (same bytes but for ``secs``) meets the state its first copy
    left and must be answered byte for byte the same, or dropped for the same reason."""
    repeats = 0
    for capture, mode in CASES:
        answers, _, _ = play(capture, mode)
        first: dict[bytes, Answer] = {}
        for answer in answers:
            payload = answer.result.datagram.payload
            key = payload[:8] + bytes(2) + payload[10:]
            earlier = first.setdefault(key, answer)
            if earlier is not answer:
                repeats += 1
                assert _outcome(answer) == _outcome(earlier), (capture.name, mode)
    if PUBLIC.is_dir():
        assert repeats >= 4, "the charrua and udhcpc captures hold retransmissions"


def _outcome(answer: Answer) -> object:
    action = answer.action
    return action.data if isinstance(action, Reply) else action


def test_relayed_discover_with_malformed_option_82_is_dropped() -> None:
    capture = PUBLIC / "dhcp_relayed-discover_bad-opt82.pcap"
    if not capture.exists():
        pytest.skip(f"{PUBLIC} is not present")
    (answer,), _, _ = play(capture, "full")
    assert isinstance(answer.action, NoReply)


@pytest.mark.parametrize("capture", DHCP_CAPTURES, ids=_ids(DHCP_CAPTURES))
@pytest.mark.parametrize("mode", MODES)
def test_engine_never_raises_even_on_server_replies(capture: Path, mode: str) -> None:
    """Every DHCP payload, replies included, on both ports: a Reply or a NoReply, no exception."""
    scene = scenario(mode)
    server = DhcpServer(scene.settings, MemoryLeaseStore())
    ports = scene.settings.ports
    for result in replay(capture):
        if result.protocol is not Protocol.DHCP:
            continue
        for port in (ports.server, ports.proxy):
            received = Received(scene.home, (result.datagram.src, result.datagram.sport), port)
            action = server.handle_datagram(result.datagram.payload, received, NOW)
            assert isinstance(action, Reply | NoReply)


@pytest.mark.parametrize("capture", DHCP_CAPTURES, ids=_ids(DHCP_CAPTURES))
@pytest.mark.parametrize("mode", MODES)
def test_every_reply_round_trips_through_decode_and_encode(capture: Path, mode: str) -> None:
    """The bytes the engine sends decode to the packet it built, and re-encode unchanged.

    A plain BOOTP reply (``vend`` set) goes out without options, which a client that
    sent no magic cookie could not read, whatever the built packet holds.
    """
    answers, _, _ = play(capture, mode)
    for answer in answers:
        if isinstance(answer.action, Reply):
            built = answer.action.packet
            decoded = decode_dhcp(answer.action.data)
            assert decoded == (built if built.vend is None else replace(built, options=()))
            # An option the engine cannot read is only ever one it echoed from the request.
            request = _packet(answer.result)
            echoed = set(request.options) if request is not None else set()
            assert [o for o in decoded.options if o.error and o not in echoed] == []
            assert encode_dhcp(decoded) == answer.action.data


def test_bootp_client_that_knows_its_address_is_not_given_another() -> None:
    capture = PUBLIC / "bootp_rfc951_xyplex_no-cookie_plus-tftp-bcast-rrq.pcap"
    if not capture.exists():
        pytest.skip(f"{PUBLIC} is not present")
    unreserved = replace(scenario("full").settings, hosts={})
    (answer,), _, _ = play(capture, "full", unreserved)
    assert isinstance(answer.action, Reply)
    assert answer.action.packet.yiaddr in (IPv4Address(0), IPv4Address("129.111.3.120"))
