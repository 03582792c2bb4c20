"""Where the replay captures live, and what pxed makes of each packet in them.

Our own recordings are in tests/captures/. The public third-party captures are
not copied into the repository: ``PXED_PUBLIC_CAPTURES`` names their folder,
by default the workplace's shared corpus beside the clone (CI lays it out the
same way), and they are used when that folder exists.  Every *.pcap and *.pcapng found is replayed:
adding a capture needs no change here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pxed.pcap.capture import read_frames
from pxed.pcap.classify import Classifier, Protocol
from pxed.pcap.dissect import Datagram, Dissector
from pxed.pcap.payload import Outcome, judge

ROOT = Path(__file__).resolve().parents[2]
OWN = ROOT / "tests" / "captures"
PUBLIC = Path(os.environ.get("PXED_PUBLIC_CAPTURES", ROOT.parent / "shared/captures/public"))
# DHCPv6 captures, kept beside the others until they join them (see their README.md).
PUBLIC_DHCPV6 = Path(
    os.environ.get("PXED_PUBLIC_DHCPV6_CAPTURES", ROOT.parent / "shared/captures/public-dhcpv6")
)
GOLDEN = ROOT / "tests" / "replay" / "golden"
SUFFIXES = (".pcap", ".pcapng")


def _captures_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if path.suffix in SUFFIXES)


OWN_CAPTURES = _captures_in(OWN)
PUBLIC_CAPTURES = _captures_in(PUBLIC)
PUBLIC_DHCPV6_CAPTURES = _captures_in(PUBLIC_DHCPV6)
ALL_CAPTURES = OWN_CAPTURES + PUBLIC_CAPTURES + PUBLIC_DHCPV6_CAPTURES


def corpus(path: Path) -> str:
    """Which corpus a capture came from: own, public or public-dhcpv6."""
    return {OWN: "own", PUBLIC_DHCPV6: "public-dhcpv6"}.get(path.parent, "public")


def label(path: Path) -> str:
    """A test id that says which corpus the capture came from."""
    return f"{corpus(path)}/{path.name}"


def golden_path(path: Path) -> Path:
    """Own captures' goldens at the top of golden/, public ones under golden/<corpus>/."""
    name = path.name + ".txt"
    return GOLDEN / name if path.parent == OWN else GOLDEN / corpus(path) / name


@dataclass(frozen=True)
class Replayed:
    """One DHCP/TFTP payload of a capture and what pxed --strict made of it."""

    datagram: Datagram
    protocol: Protocol
    outcome: Outcome

    @property
    def number(self) -> int:
        return self.datagram.frame.number


def replay(path: Path) -> list[Replayed]:
    """Every DHCP/TFTP payload in the capture, judged with the round-trip check on."""
    dissector = Dissector()
    classifier = Classifier()
    found = []
    for frame in read_frames(path):
        datagram = dissector.dissect(frame)
        if not isinstance(datagram, Datagram):
            continue
        protocol = classifier.classify(datagram)
        if protocol is not None:
            found.append(Replayed(datagram, protocol, judge(protocol, datagram, True)))
    return found
