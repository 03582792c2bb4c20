"""Replay every captured DHCPv6 client message through the DHCPv6 engine and pin its answer.

The DHCPv6 counterpart of test_dhcp_answers.py: each capture holding a DHCPv6 client
message (own QEMU boots in tests/captures/, the public DHCPv6 captures of
tests/replay/corpus.py) is played, in capture order, into a fresh engine built from a
fixed scenario config (tests/replay/configs/dhcp6-answers-<mode>.yaml) the way the daemon
builds it (pxed.dhcp6.settings.engine_settings6). What the engine says to each message
-- the reply read back off its bytes with pxed.pcap.dhcpv6_view, or why it stays silent
-- and the bindings left at the end are compared with the reviewed golden text in
tests/replay/golden/dhcp6-answers/.

Regenerate the golden files with ``PXED_UPDATE_GOLDEN=1`` and review the diff.

Determinism: one fixed ``now`` for every message, a fresh MemoryLeaseStore per capture.
pxed stands in for the captured server: its DUID is the first server identifier the
capture shows (so a captured REQUEST or RENEW is for pxed), else a fixed DUID-LL. Messages
arrive on the link of the first IA_NA or IA_TA address in the capture that lies in a configured
subnet (pxed at that prefix's ::1; without one, the first subnet's), from the captured
source. A message to udp/4011 reaches the engine only in proxy mode, the only mode that
listens there.
"""

from __future__ import annotations

import os
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
from pxed.pcap.dhcpv6_view import detail, kind, summary
from pxed.pcap.payload import Decoded
from tests.replay.corpus import ALL_CAPTURES, GOLDEN, OWN, PUBLIC_DHCPV6, Replayed, label, replay

UPDATE = os.environ.get("PXED_UPDATE_GOLDEN") == "1"
CONFIGS = Path(__file__).resolve().parent / "configs"
ANSWERS = GOLDEN / "dhcp6-answers"
MODES = ("full", "proxy")
NOW = 1_800_000_000.0  # 2027-01-15: every message is handled at this instant
SUFFIX = ".answers"  # not .txt: test_replay.py owns every *.txt under golden/
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


def _message(result: Replayed) -> Dhcpv6Packet | None:
    outcome = result.outcome
    return outcome.message if isinstance(outcome, Decoded) else None


def _is_request(packet: Dhcpv6Packet) -> bool:
    if isinstance(packet, Dhcpv6Relay):
        return packet.msg_type == MessageType.RELAY_FORW
    return packet.msg_type not in SERVER_MESSAGES


def request_side(results: list[Replayed]) -> list[Replayed]:
    """Client and relay-forward messages, and payloads that do not decode at all."""
    found = []
    for result in results:
        if result.protocol is not Protocol.DHCPV6:
            continue
        packet = _message(result)
        if packet is None or _is_request(packet):
            found.append(result)
    return found


def _inner(packet: Dhcpv6Packet) -> Dhcpv6Message:
    return packet.client_message if isinstance(packet, Dhcpv6Relay) else packet


def _messages(results: list[Replayed]) -> list[Dhcpv6Message]:
    found = []
    for result in results:
        packet = _message(result) if result.protocol is Protocol.DHCPV6 else None
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


def _dhcp6_captures() -> list[Path]:
    return [
        path
        for path in ALL_CAPTURES
        if any(result.protocol is Protocol.DHCPV6 for result in replay(path))
    ]


DHCP6_CAPTURES = _dhcp6_captures()


@dataclass(frozen=True)
class Answer:
    result: Replayed
    action: Reply | NoReply | None  # None: no socket of this mode listens on its port


def play(capture: Path, mode: str) -> tuple[list[Answer], MemoryLeaseStore, IPv6Address]:
    """Every client message of ``capture`` through a fresh engine, in order, at NOW."""
    scene = scenario(mode)
    results = replay(capture)
    settings = engine_settings6(scene.config, captured_server(results))
    here = arrival_address(scene, results)
    store = MemoryLeaseStore()
    server = Dhcpv6Server(settings, store)
    listening = {SERVER_PORT} | ({BOOT_SERVICE_PORT} if settings.mode is Mode.PROXY else set())
    answers = []
    for result in request_side(results):
        datagram = result.datagram
        port = BOOT_SERVICE_PORT if datagram.dport == BOOT_SERVICE_PORT else SERVER_PORT
        if port not in listening:
            answers.append(Answer(result, None))
            continue
        assert isinstance(datagram.src, IPv6Address)
        received = Received(here, (datagram.src, datagram.sport), port)
        answers.append(Answer(result, server.handle_datagram(datagram.payload, received, NOW)))
    return answers, store, here


def transcript(capture: Path, mode: str) -> str:
    answers, store, here = play(capture, mode)
    scene = scenario(mode)
    lines = [
        f"# {label(capture)} answered by pxed in DHCPv6 {mode} mode "
        f"({scene.config_path.relative_to(CONFIGS.parents[2])}), pxed at {here}",
    ]
    if not answers:
        lines.append("(no client message in this capture: only server replies)")
    for answer in answers:
        lines += ["", *_answer_lines(answer, scene)]
    lines += ["", *_binding_lines(store)]
    return "\n".join(lines) + "\n"


def _answer_lines(answer: Answer, scene: Scenario) -> list[str]:
    datagram = answer.result.datagram
    packet = _message(answer.result)
    origin = f"[{datagram.src}]:{datagram.sport} -> [{datagram.dst}]:{datagram.dport}"
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
    reply = decode_dhcpv6(action.data)
    destination = f"[{action.destination[0]}]:{action.destination[1]}"
    return [
        head,
        f"  -> {kind(reply)} to {destination} ({len(action.data)} bytes): {action.reason}",
        *(f"     {line}" for line in detail(reply)),
    ]


def _binding_lines(store: MemoryLeaseStore) -> list[str]:
    lines = ["bindings at the end:"]
    lines += [
        f"  {lease.address} iaid {lease.iaid} {lease.mac or 'no MAC'} {lease.state.value} "
        f"expires NOW+{lease.expires - NOW:.0f}s"
        for lease in store.leases()
    ] or ["  (none)"]
    return lines


def golden_answers(capture: Path, mode: str) -> Path:
    return ANSWERS / f"{capture.name}.{mode}{SUFFIX}"


CASES = [(capture, mode) for capture in DHCP6_CAPTURES for mode in MODES]


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
    """``x.pcap.full.answers`` -> ``x.pcap``."""
    return golden.name.removesuffix(SUFFIX).rsplit(".", 1)[0]


def test_every_dhcp6_capture_has_answers_and_no_answers_file_is_stale() -> None:
    expected = {golden_answers(capture, mode) for capture, mode in CASES}
    present = set(ANSWERS.glob(f"*{SUFFIX}"))
    if not PUBLIC_DHCPV6.is_dir():
        present = {path for path in present if (OWN / _captured_name(path)).exists()}
    assert present == expected


def test_the_public_dhcpv6_captures_and_both_qemu_boots_are_replayed() -> None:
    """Every public DHCPv6 capture with a client message, and the three firmware boots."""
    names = {capture.name for capture in DHCP6_CAPTURES}
    boots = {"qemu-ovmf-pxev6-grub", "qemu-ipxe-bios-http-ipv6", "qemu-ovmf-ipxe-efi-http-ipv6"}
    assert {f"{boot}.pcap" for boot in boots} <= names
    if PUBLIC_DHCPV6.is_dir():
        assert {path.name for path in PUBLIC_DHCPV6.glob("*.pcap*")} <= names


@pytest.mark.parametrize(("capture", "mode"), CASES, ids=[f"{label(c)}-{m}" for c, m in CASES])
def test_every_reply_round_trips_and_answers_the_message_it_was_for(
    capture: Path, mode: str
) -> None:
    answers, _, _ = play(capture, mode)
    for answer in answers:
        action = answer.action
        if not isinstance(action, Reply):
            continue
        assert encode_dhcpv6(decode_dhcpv6(action.data)) == action.data
        request = _message(answer.result)
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
        request = _message(answer.result)
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
