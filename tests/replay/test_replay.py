"""Replay every capture through pxed: each payload decodes and re-encodes byte for byte,
the packets broken on purpose fail the way they should, and `pxed pcap -v` matches the
reviewed golden text.

Regenerate the golden files with ``PXED_UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from protocols.dhcp.wire import DhcpPacket, decode_dhcp
from protocols.errors import MalformedPacket
from pxed.cli.main import main
from pxed.pcap.payload import Bug, Decoded, Malformed
from tests.replay.corpus import (
    ALL_CAPTURES,
    GOLDEN,
    OWN_CAPTURES,
    PUBLIC,
    PUBLIC_CAPTURES,
    PUBLIC_DHCPV6,
    PUBLIC_DHCPV6_CAPTURES,
    golden_path,
    label,
    replay,
)

TIMES = "\N{MULTIPLICATION SIGN}"
UPDATE = os.environ.get("PXED_UPDATE_GOLDEN") == "1"
# A capture this large gets the one-line golden; -v would be thousands of lines to review.
VERBOSE_LIMIT = 64 * 1024

# Packets that are malformed on purpose (public README.md), pinned by frame number:
# the payload itself is rejected with MalformedPacket...
MALFORMED = {
    "bootp_asan_truncated-garbage.pcap": {
        1: "truncated: 48 of 59384 payload bytes captured (frame cut short by the "
        "capture's snap length)",
    },
}
# ...or it decodes, but an option's bytes do not fit its type, and the strict accessor
# the DHCP engine uses raises MalformedPacket for that option.
INVALID_OPTIONS = {
    "dhcp_opt33-bad-length.pcap": {4: (33,), 5: (33,)},
    "dhcp_relayed-discover_bad-opt82.pcap": {1: (82,)},
}


def _ids(paths: list[Path]) -> list[str]:
    return [label(path) for path in paths]


@pytest.mark.parametrize("capture", ALL_CAPTURES, ids=_ids(ALL_CAPTURES))
def test_every_payload_decodes_and_round_trips(capture: Path) -> None:
    """No decoder crash, no re-encoding difference; only the pinned packets are malformed."""
    results = replay(capture)
    assert results, f"{capture.name}: no DHCP/TFTP packets found"
    bugs = {r.number: r.outcome.reason for r in results if isinstance(r.outcome, Bug)}
    malformed = {r.number: r.outcome.reason for r in results if isinstance(r.outcome, Malformed)}
    assert bugs == {}
    assert malformed == MALFORMED.get(capture.name, {})


@pytest.mark.parametrize("capture", ALL_CAPTURES, ids=_ids(ALL_CAPTURES))
def test_only_the_pinned_dhcp_options_are_invalid(capture: Path) -> None:
    invalid = {}
    for result in replay(capture):
        if isinstance(result.outcome, Decoded) and isinstance(result.outcome.message, DhcpPacket):
            packet = result.outcome.message
            codes = tuple(option.code for option in packet.options if option.error)
            if codes:
                invalid[result.number] = codes
    assert invalid == INVALID_OPTIONS.get(capture.name, {})


@pytest.mark.parametrize(
    ("name", "number", "code"),
    [
        (name, number, code)
        for name, packets in INVALID_OPTIONS.items()
        for number, codes in packets.items()
        for code in codes
    ],
)
def test_invalid_options_raise_malformed_packet_when_read_strictly(
    name: str, number: int, code: int
) -> None:
    capture = PUBLIC / name
    if not capture.exists():
        pytest.skip(f"{PUBLIC} is not present")
    (result,) = [r for r in replay(capture) if r.number == number]
    assert isinstance(result.outcome, Decoded)
    with pytest.raises(MalformedPacket, match=f"option {code} "):
        result.outcome.message.option(code)


def test_truncated_bootp_payload_itself_raises_malformed_packet() -> None:
    """The snap length cut tcpdump's fuzzed packet inside the BOOTP header."""
    capture = PUBLIC / "bootp_asan_truncated-garbage.pcap"
    if not capture.exists():
        pytest.skip(f"{PUBLIC} is not present")
    (result,) = replay(capture)
    with pytest.raises(MalformedPacket, match="truncated BOOTP header: 48 bytes"):
        decode_dhcp(result.datagram.payload)


def _readme_counts() -> dict[str, dict[str, int]]:
    """The per-protocol `frames:` counts from each row of the public README's table."""
    counts: dict[str, dict[str, int]] = {}
    for line in (PUBLIC / "README.md").read_text().splitlines():
        name = re.match(r"\| `([^`]+\.pcap(?:ng)?)`", line)
        frames = re.search("frames: ([a-z0-9" + TIMES + ", ]+);", line)
        if name and frames:
            pairs = re.findall("(dhcp|tftp)" + TIMES + r"(\d+)", frames.group(1))
            counts[name.group(1)] = {kind.upper(): int(n) for kind, n in pairs}
    return counts


@pytest.mark.parametrize("capture", PUBLIC_CAPTURES, ids=_ids(PUBLIC_CAPTURES))
def test_protocol_counts_agree_with_the_public_readme(capture: Path) -> None:
    """The README counted packets with tshark; pxed must find the same DHCP and TFTP ones."""
    expected = _readme_counts()[capture.name]
    found: dict[str, int] = {}
    for result in replay(capture):
        found[result.protocol.value] = found.get(result.protocol.value, 0) + 1
    assert found == expected


def _pcap_text(
    capture: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> str:
    monkeypatch.chdir(capture.parent)
    verbose = ["-v"] if capture.stat().st_size <= VERBOSE_LIMIT else []
    status = main(["pcap", "--strict", *verbose, capture.name])
    out, err = capsys.readouterr()
    assert (status, err) == (0, "")
    return out


@pytest.mark.parametrize("capture", ALL_CAPTURES, ids=_ids(ALL_CAPTURES))
def test_pcap_output_matches_the_golden_text(
    capture: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = _pcap_text(capture, capsys, monkeypatch)
    golden = golden_path(capture)
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), f"no golden file {golden}: run with PXED_UPDATE_GOLDEN=1 and review"
    assert text == golden.read_text()


def test_every_own_capture_has_a_committed_golden_and_no_golden_is_stale() -> None:
    expected = {golden_path(path) for path in OWN_CAPTURES}
    present = set(GOLDEN.glob("*.txt"))
    corpora = (
        ("public", PUBLIC, PUBLIC_CAPTURES),
        ("public-dhcpv6", PUBLIC_DHCPV6, PUBLIC_DHCPV6_CAPTURES),
    )
    for folder, found, captures in corpora:
        if found.is_dir():
            expected |= {golden_path(path) for path in captures}
            present |= set((GOLDEN / folder).glob("*.txt"))
    assert present == expected
