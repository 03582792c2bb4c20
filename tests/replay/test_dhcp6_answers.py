"""Replay every captured DHCPv6 client message through the DHCPv6 engine and pin its answer.

The DHCPv6 counterpart of test_dhcp_answers.py: each capture holding a DHCPv6 client
message (own QEMU boots in tests/captures/, the public DHCPv6 captures of
tests/replay/corpus.py) is played, in capture order, into a fresh engine built from a
fixed scenario config (tests/replay/configs/dhcp6-answers-<mode>.yaml) the way the daemon
builds it (pxed.dhcp6.settings.engine_settings6). What the engine says to each message
-- the reply read back off its bytes with pxed.pcap.dhcpv6_view, or why it stays silent
-- and the bindings left at the end are compared with the reviewed golden text in
tests/replay/golden/dhcp6-answers/.

Regenerate the golden files with ``PXED_UPDATE_GOLDEN=1`` and review the diff
(tests/replay/golden_answers.py: what this replay shares with the DHCPv4 one).

Determinism: one fixed ``now`` for every message, a fresh MemoryLeaseStore per capture.
pxed stands in for the captured server: its DUID is the first server identifier the
capture shows (so a captured REQUEST or RENEW is for pxed), else a fixed DUID-LL. Messages
arrive on the link of the first IA_NA or IA_TA address in the capture that lies in a configured
subnet (pxed at that prefix's ::1; without one, the first subnet's), from the captured
source. A message to udp/4011 reaches the engine only in proxy mode, the only mode that
listens there.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from ipaddress import IPv6Address
from pathlib import Path

import pytest

from protocols.dhcp.server import Mode
from protocols.dhcpv6.duid import Duid, DuidLl
from protocols.dhcpv6.leases import MemoryLeaseStore
from protocols.dhcpv6.options import IaAddress, IaNa, IaTa
from protocols.dhcpv6.server import (
    BOOT_SERVICE_PORT,
    Dhcpv6Server,
    NoReply,
    Received,
    Reply,
)
from protocols.dhcpv6.wire import (
    Dhcpv6Message,
    Dhcpv6Packet,
    Dhcpv6Relay,
    MessageType,
    decode_dhcpv6,
    encode_dhcpv6,
)
from protocols.errors import MalformedPacket
from pxed.config import Config, load_config
from pxed.dhcp6.settings import engine_settings6
from pxed.pcap.classify import Protocol
from tests.replay import golden_answers as golden
from tests.replay.corpus import GOLDEN, OWN, PUBLIC_DHCPV6, Replayed, replay
from tests.replay.golden_answers import CONFIGS, MODES, NOW, Answer, decoded_message

ANSWERS = GOLDEN / "dhcp6-answers"
DEFAULT_DUID = DuidLl(1, bytes.fromhex("025058454401"))
SERVER_PORT = 547
# What a server sends: never handed to the engine as a request.
SERVER_MESSAGES = (MessageType.ADVERTISE, MessageType.REPLY, MessageType.RECONFIGURE)


@dataclass(frozen=True)
class Scenario:
    mode: str
    config_path: Path
    config: Config


@cache
def scenario(mode: str) -> Scenario:
    path = CONFIGS / f"dhcp6-answers-{mode}.yaml"
    return Scenario(mode, path, load_config(path))


def _is_request(packet: Dhcpv6Packet) -> bool:
    if isinstance(packet, Dhcpv6Relay):
        return packet.msg_type == MessageType.RELAY_FORW
    return packet.msg_type not in SERVER_MESSAGES


def request_side(results: list[Replayed]) -> list[Replayed]:
    """Client and relay-forward messages, and payloads that do not decode at all."""
    return golden.request_side(results, Protocol.DHCPV6, _is_request)


def _inner(packet: Dhcpv6Packet) -> Dhcpv6Message:
    return packet.client_message if isinstance(packet, Dhcpv6Relay) else packet


def _messages(results: list[Replayed]) -> list[Dhcpv6Message]:
    found = []
    for result in results:
        packet = decoded_message(result) if result.protocol is Protocol.DHCPV6 else None
        if packet is not None:
            found.append(_inner(packet))
    return found


def captured_server(results: list[Replayed]) -> Duid:
    """The DUID of the server the capture shows, which pxed stands in for."""
    for message in _messages(results):
        try:
            duid = message.server_id
        except MalformedPacket:
            continue
        if duid is not None:
            return duid
    return DEFAULT_DUID


def arrival_address(scene: Scenario, results: list[Replayed]) -> IPv6Address:
    """pxed's address on the link the capture was recorded on (module docstring)."""
    subnets = scene.config.dhcp6.subnets
    for message in _messages(results):
        ias: list[IaNa | IaTa] = [*message.ia_na, *message.ia_ta]
        for ia in ias:
            for option in ia.options:
                if isinstance(option.value, IaAddress):
                    subnet = scene.config.dhcp6.subnet_for(option.value.address)
                    if subnet is not None:
                        return subnet.prefix[1]
    return subnets[0].prefix[1]


DHCP6_CAPTURES = golden.captures_of(Protocol.DHCPV6)
CASES = golden.cases(DHCP6_CAPTURES)


def play(capture: Path, mode: str) -> tuple[list[Answer], MemoryLeaseStore, IPv6Address]:
    """Every client message of ``capture`` through a fresh engine, in order, at NOW."""
    scene = scenario(mode)
    results = replay(capture)
    settings = engine_settings6(scene.config, captured_server(results))
    here = arrival_address(scene, results)
    store = MemoryLeaseStore()
    server = Dhcpv6Server(settings, store)
    listening = {SERVER_PORT} | ({BOOT_SERVICE_PORT} if settings.mode is Mode.PROXY else set())

    def handle(result: Replayed, port: int) -> Reply | NoReply:
        datagram = result.datagram
        assert isinstance(datagram.src, IPv6Address)
        received = Received(here, (datagram.src, datagram.sport), port)
        return server.handle_datagram(datagram.payload, received, NOW)

    requests = request_side(results)
    ports = (SERVER_PORT, BOOT_SERVICE_PORT)
    answers = golden.answers_to(requests, ports, handle, lambda _, port: port in listening)
    return answers, store, here


def transcript(capture: Path, mode: str) -> str:
    return golden.transcript(
        golden.DHCPV6, capture, mode, scenario(mode).config_path, play(capture, mode)
    )


def golden_answers(capture: Path, mode: str) -> Path:
    return golden.golden_answers(ANSWERS, capture, mode)


@pytest.mark.parametrize(("capture", "mode"), CASES, ids=golden.case_ids(CASES))
def test_answers_match_the_golden_text(capture: Path, mode: str) -> None:
    golden.matches_golden(transcript(capture, mode), golden_answers(capture, mode))


def test_every_dhcp6_capture_has_answers_and_no_answers_file_is_stale() -> None:
    present = golden.present_files(ANSWERS, PUBLIC_DHCPV6)
    assert present == golden.expected_files(ANSWERS, CASES)


def test_the_public_dhcpv6_captures_and_both_qemu_boots_are_replayed() -> None:
    """Every public DHCPv6 capture with a client message, and the three firmware boots."""
    names = {capture.name for capture in DHCP6_CAPTURES}
    boots = {"qemu-ovmf-pxev6-grub", "qemu-ipxe-bios-http-ipv6", "qemu-ovmf-ipxe-efi-http-ipv6"}
    assert {f"{boot}.pcap" for boot in boots} <= names
    if PUBLIC_DHCPV6.is_dir():
        assert {path.name for path in PUBLIC_DHCPV6.glob("*.pcap*")} <= names


@pytest.mark.parametrize(("capture", "mode"), CASES, ids=golden.case_ids(CASES))
def test_every_reply_round_trips_and_answers_the_message_it_was_for(
    capture: Path, mode: str
) -> None:
    answers, _, _ = play(capture, mode)
    for answer in answers:
        action = answer.action
        if not isinstance(action, Reply):
            continue
        assert encode_dhcpv6(decode_dhcpv6(action.data)) == action.data
        request = decoded_message(answer.result)
        assert request is not None
        assert _inner(action.message).transaction_id == _inner(request).transaction_id


@pytest.mark.parametrize("mode", MODES)
def test_ovmf_pxev6_is_given_its_boot_url_and_in_full_mode_the_address_it_asked_for(
    mode: str,
) -> None:
    """Full mode: ADVERTISE and REPLY with an address and option 59 (no PXEClient echo, so
    EDK2 boots from it directly). Proxy mode: an ADVERTISE with the URL and no address,
    and the REQUEST, meant for the address server, left alone."""
    answers, store, _ = play(OWN / "qemu-ovmf-pxev6-grub.pcap", mode)
    M = MessageType
    said = {}
    for answer in answers:
        request = decoded_message(answer.result)
        assert request is not None
        if isinstance(answer.action, Reply):
            said[_inner(request).msg_type] = _inner(answer.action.message)
    url = "tftp://[fd00:213:7::1]/grubx64.efi"
    assert said[M.SOLICIT].msg_type == M.ADVERTISE and said[M.SOLICIT].boot_file_url == url
    if mode == "full":
        assert said[M.REQUEST].msg_type == M.REPLY and said[M.REQUEST].boot_file_url == url
        assert said[M.SOLICIT].ia_na[0].options == said[M.REQUEST].ia_na[0].options
        assert said[M.RELEASE].msg_type == M.REPLY
        # OVMF released it before starting GRUB, which goes on using it: the binding is
        # kept for release_quarantine, so no other client is given the address meanwhile.
        [kept] = store.leases()
        assert kept.address == IPv6Address("fd00:213:7::14d") and kept.mac == "52:54:00:e2:e0:6a"
    else:
        assert said[M.SOLICIT].ia_na == () and said[M.SOLICIT].vendor_class
        assert set(said) == {M.SOLICIT}
