"""Replay every captured DHCP/BOOTP request through the DHCP engine and pin its answer.

Each capture in tests/captures/ and the public captures (tests/replay/corpus.py) that holds a
request is played, in capture order, into a fresh engine built from a fixed
scenario config (tests/replay/configs/dhcp-answers-<mode>.yaml) the way the
daemon builds it (pxed.cli.explain.server_address + pxed.dhcp.settings.engine_settings).
What the engine says to each request -- the reply read back off its bytes with
pxed.pcap.dhcp_view, or the reason it stays silent -- and the lease table left at the
end are compared with the reviewed golden text in tests/replay/golden/dhcp-answers/.

Regenerate the golden files with ``PXED_UPDATE_GOLDEN=1`` and review the diff
(tests/replay/golden_answers.py: what this replay shares with the DHCPv6 one).

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

from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cache
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from protocols.dhcp.leases import MemoryLeaseStore
from protocols.dhcp.server import DhcpServer, Mode, NoReply, Received, Reply, Settings
from protocols.dhcp.wire import BOOTREQUEST, decode_dhcp, encode_dhcp
from protocols.errors import MalformedPacket
from pxed.cli.explain import server_address
from pxed.config import Config, load_config
from pxed.dhcp.settings import engine_settings
from pxed.pcap.classify import Protocol
from tests.replay import golden_answers as golden
from tests.replay.corpus import GOLDEN, PUBLIC, Replayed, label, replay
from tests.replay.golden_answers import CONFIGS, MODES, NOW, Answer, decoded_message

ANSWERS = GOLDEN / "dhcp-answers"


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


DHCP_CAPTURES = golden.captures_of(Protocol.DHCP)
CASES = golden.cases(DHCP_CAPTURES)


def golden_answers(capture: Path, mode: str) -> Path:
    return golden.golden_answers(ANSWERS, capture, mode)


def request_side(results: list[Replayed]) -> list[Replayed]:
    """BOOTREQUESTs, and payloads that do not decode (golden_answers.request_side)."""
    return golden.request_side(results, Protocol.DHCP, lambda packet: packet.op == BOOTREQUEST)


def _server_side_addresses(results: list[Replayed]) -> Iterator[IPv4Address]:
    """Addresses that belong to the captured server, in capture order (never giaddr)."""
    for result in results:
        packet = decoded_message(result)
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

    def handle(result: Replayed, port: int) -> Reply | NoReply:
        received = Received(here, (result.datagram.src, result.datagram.sport), port)
        return server.handle_datagram(result.datagram.payload, received, NOW)

    def heard(result: Replayed, port: int) -> bool:
        """A payload that does not decode is handed over wherever it came: the engine
        must drop it with a reason."""
        return port in listening or decoded_message(result) is None

    ports_heard = (ports.server, ports.proxy)
    answers = golden.answers_to(request_side(results), ports_heard, handle, heard)
    return answers, store, here


def transcript(capture: Path, mode: str) -> str:
    return golden.transcript(
        golden.DHCP, capture, mode, scenario(mode).config_path, play(capture, mode)
    )


def _ids(paths: list[Path]) -> list[str]:
    return [label(path) for path in paths]


@pytest.mark.parametrize(("capture", "mode"), CASES, ids=golden.case_ids(CASES))
def test_answers_match_the_golden_text(capture: Path, mode: str) -> None:
    golden.matches_golden(transcript(capture, mode), golden_answers(capture, mode))


def test_every_dhcp_capture_has_answers_and_no_answers_file_is_stale() -> None:
    assert golden.present_files(ANSWERS, PUBLIC) == golden.expected_files(ANSWERS, CASES)


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
            request = decoded_message(answer.result)
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
