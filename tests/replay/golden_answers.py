"""What the DHCP and DHCPv6 answer replays share (test_dhcp_answers.py,
test_dhcp6_answers.py): the captures a family's requests are in, the request side of a
capture, the transcript of what the engine answered, and its golden file.

Each family's engine is played every request of a capture, in order, at one fixed
``NOW``, and the transcript (each request, the reply read back off its bytes or why the
engine stayed silent, the leases left at the end) is compared with the reviewed golden
text in tests/replay/golden/<family>-answers/.  ``PXED_UPDATE_GOLDEN=1`` rewrites the
golden files instead; review the diff.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from protocols.dhcp.leases import MemoryLeaseStore
from protocols.dhcp.server import NoReply as DhcpNoReply
from protocols.dhcp.wire import decode_dhcp
from protocols.dhcpv6.leases import MemoryLeaseStore as Memory6LeaseStore
from protocols.dhcpv6.server import NoReply as Dhcpv6NoReply
from protocols.dhcpv6.wire import decode_dhcpv6
from pxed.pcap import dhcp_view, dhcpv6_view
from pxed.pcap.classify import Protocol
from pxed.pcap.payload import Decoded
from tests.replay.corpus import ALL_CAPTURES, OWN, Replayed, label, replay

UPDATE = os.environ.get("PXED_UPDATE_GOLDEN") == "1"
CONFIGS = Path(__file__).resolve().parent / "configs"
MODES = ("full", "proxy")
NOW = 1_800_000_000.0  # 2027-01-15: every request is handled at this instant
# The golden files end in .answers, not .txt: test_replay.py owns every *.txt under golden/.
SUFFIX = ".answers"


@dataclass(frozen=True)
class Family:
    """How one family's transcript reads its messages: ``decode`` turns a reply's bytes
    into the message ``view`` (pxed.pcap's dhcp_view or dhcpv6_view) describes;
    ``endpoint`` writes an address and port; ``silent`` is the engine's NoReply type;
    ``title`` names the family in the transcript's head, ``empty`` says a capture holds
    no request, ``leases`` lists what the engine's lease store holds at the end."""

    title: str
    empty: str
    protocol: Protocol
    decode: Callable[[bytes], Any]
    view: ModuleType
    endpoint: Callable[[object, int], str]
    silent: type
    leases: Callable[[Any], list[str]]


@dataclass(frozen=True)
class Answer:
    """One request and what the engine did with it."""

    result: Replayed
    action: Any  # the engine's Reply or NoReply; None: no socket of this mode listens


def captures_of(protocol: Protocol) -> list[Path]:
    """Every capture holding a datagram of ``protocol``."""
    return [
        path for path in ALL_CAPTURES if any(result.protocol is protocol for result in replay(path))
    ]


def cases(captures: list[Path]) -> list[tuple[Path, str]]:
    return [(capture, mode) for capture in captures for mode in MODES]


def case_ids(pairs: list[tuple[Path, str]]) -> list[str]:
    return [f"{label(capture)}-{mode}" for capture, mode in pairs]


def decoded_message(result: Replayed) -> Any:
    """The decoded message of ``result``, or None where it does not decode."""
    outcome = result.outcome
    return outcome.message if isinstance(outcome, Decoded) else None


def request_side(
    results: list[Replayed], protocol: Protocol, is_request: Callable[[Any], bool]
) -> list[Replayed]:
    """What a server would be handed: the ``protocol`` messages ``is_request`` takes for a
    client's (or relay's), and payloads that do not decode at all (the engine must drop
    those with a reason).  Server replies in the capture are left out."""
    found = []
    for result in results:
        if result.protocol is not protocol:
            continue
        packet = decoded_message(result)
        if packet is None or is_request(packet):
            found.append(result)
    return found


def answers_to(
    requests: list[Replayed],
    ports: tuple[int, int],
    handle: Callable[[Replayed, int], Any],
    heard: Callable[[Replayed, int], bool],
) -> list[Answer]:
    """Each request as the engine answers it (``handle``: the request and the port it
    came to, the server's or the proxy's of ``ports``), or None where ``heard`` says no
    socket of the mode takes it."""
    server_port, proxy_port = ports
    answers = []
    for result in requests:
        port = proxy_port if result.datagram.dport == proxy_port else server_port
        answers.append(Answer(result, handle(result, port) if heard(result, port) else None))
    return answers


def transcript(
    family: Family,
    capture: Path,
    mode: str,
    config: Path,
    played: tuple[list[Answer], Any, object],
) -> str:
    """The transcript of ``capture`` played in ``mode`` on the scenario ``config``
    (``played``: the answers, the lease store left, pxed's address)."""
    answers, store, here = played
    lines = [
        f"# {label(capture)} answered by pxed in {family.title}{mode} mode "
        f"({config.relative_to(CONFIGS.parents[2])}), pxed at {here}",
    ]
    if not answers:
        lines.append(family.empty)
    for answer in answers:
        lines += ["", *answer_lines(answer, mode, family)]
    lines += ["", *family.leases(store)]
    return "\n".join(lines) + "\n"


def answer_lines(answer: Answer, mode: str, family: Family) -> list[str]:
    datagram = answer.result.datagram
    packet = decoded_message(answer.result)
    source = family.endpoint(datagram.src, datagram.sport)
    origin = f"{source} -> {family.endpoint(datagram.dst, datagram.dport)}"
    if packet is None:
        head = f"frame {answer.result.number} {origin} (does not decode)"
    else:
        head = f"frame {answer.result.number} {origin} {family.view.kind(packet)} "
        head += family.view.summary(packet)
    action = answer.action
    if action is None:
        return [head, f"  -> not received: {mode} mode does not listen on udp/{datagram.dport}"]
    if isinstance(action, family.silent):
        return [head, f"  -> silent: {action.reason}"]
    reply = family.decode(action.data)
    sent = f"{family.view.kind(reply)} to {family.endpoint(*action.destination)}"
    return [
        head,
        f"  -> {sent} ({len(action.data)} bytes): {action.reason}",
        *(f"     {line}" for line in family.view.detail(reply)),
    ]


def listing(title: str, rows: list[str]) -> list[str]:
    """A transcript's closing list (the leases left), ``(none)`` where it is empty."""
    return [title, *(rows or ["  (none)"])]


def golden_answers(answers: Path, capture: Path, mode: str) -> Path:
    """The golden transcript of ``capture`` in ``mode`` under the folder ``answers``."""
    return answers / f"{capture.name}.{mode}{SUFFIX}"


def matches_golden(text: str, golden: Path) -> None:
    """Asserts ``text`` is the golden file's (after rewriting it, with PXED_UPDATE_GOLDEN)."""
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), f"no golden file {golden}: run with PXED_UPDATE_GOLDEN=1 and review"
    assert text == golden.read_text(), (
        f"{golden.name} differs: if the new answers are right, regenerate with "
        "PXED_UPDATE_GOLDEN=1 and review the diff"
    )


def present_files(answers: Path, public: Path) -> set[Path]:
    """The golden files under ``answers``, less those of public captures when the public
    folder ``public`` is not here."""
    present = set(answers.glob(f"*{SUFFIX}"))
    if not public.is_dir():
        present = {path for path in present if (OWN / captured_name(path)).exists()}
    return present


def captured_name(golden: Path) -> str:
    """``udhcpc-dnsmasq.pcap.full.answers`` -> ``udhcpc-dnsmasq.pcap``."""
    return golden.name.removesuffix(SUFFIX).rsplit(".", 1)[0]


def expected_files(answers: Path, pairs: Iterable[tuple[Path, str]]) -> set[Path]:
    return {golden_answers(answers, capture, mode) for capture, mode in pairs}


def _dhcp_leases(store: MemoryLeaseStore) -> list[str]:
    """The leases and quarantined addresses a DHCP engine's store holds at the end."""
    leases = [
        f"  {lease.ip} {lease.mac} {lease.state.value} "
        + ("no expiry" if lease.expires is None else f"expires NOW+{lease.expires - NOW:.0f}s")
        + (f" hostname={lease.hostname}" if lease.hostname else "")
        for lease in store.leases()
    ]
    lines = listing("leases at the end:", leases)
    quarantines = store.quarantines()
    lines += [
        f"  quarantined {ip} until NOW+{until - NOW:.0f}s"
        for ip, until in sorted(quarantines.items())
    ]
    return lines


DHCP = Family(
    "",
    "(no BOOTREQUEST in this capture: only server replies)",
    Protocol.DHCP,
    decode_dhcp,
    dhcp_view,
    lambda address, port: f"{address}:{port}",
    DhcpNoReply,
    _dhcp_leases,
)


def _dhcpv6_bindings(store: Memory6LeaseStore) -> list[str]:
    """The bindings a DHCPv6 engine's store holds at the end."""
    bindings = [
        f"  {lease.address} iaid {lease.iaid} {lease.mac or 'no MAC'} {lease.state.value} "
        f"expires NOW+{lease.expires - NOW:.0f}s"
        for lease in store.leases()
    ]
    return listing("bindings at the end:", bindings)


DHCPV6 = Family(
    "DHCPv6 ",
    "(no client message in this capture: only server replies)",
    Protocol.DHCPV6,
    decode_dhcpv6,
    dhcpv6_view,
    lambda address, port: f"[{address}]:{port}",
    Dhcpv6NoReply,
    _dhcpv6_bindings,
)
