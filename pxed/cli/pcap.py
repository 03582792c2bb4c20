"""``pxed pcap``: what DHCP/BOOTP, DHCPv6 and TFTP said in a capture, one aligned line per packet.

The tool a sysadmin runs on a capture from a failing boot, so the line shows
what matters for a boot (message type, xid, MAC or DUID, addresses, boot file,
options by name, TFTP file and blocks) and ``-v`` shows every field under it.
``--strict`` turns it into a check of pxed's own grammars against real
traffic: exit status 1 if a payload makes a decoder raise anything but
MalformedPacket, or decodes but does not re-encode to the same bytes.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pxed.pcap import dhcp_view, dhcpv6_view, tftp_view
from pxed.pcap.capture import CaptureError, Frame, NotACapture, read_frames
from pxed.pcap.classify import Classifier, Protocol
from pxed.pcap.dissect import LINK_NAMES, Datagram, Dissector, IPAddress, Skipped
from pxed.pcap.payload import Bug, Decoded, Malformed, Outcome, judge
from pxed.pcap.textview import hex_lines

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".dmp")
ADDRESS_WIDTH = len("255.255.255.255:65535")
KIND_WIDTH = len("BOOTREQUEST")
DETAIL_INDENT = " " * 8


@dataclass(frozen=True)
class View:
    kind: Callable[[Any], str]
    summary: Callable[[Any], str]
    detail: Callable[[Any], list[str]]


VIEWS = {
    Protocol.DHCP: View(dhcp_view.kind, dhcp_view.summary, dhcp_view.detail),
    Protocol.DHCPV6: View(dhcpv6_view.kind, dhcpv6_view.summary, dhcpv6_view.detail),
    Protocol.TFTP: View(tftp_view.kind, tftp_view.summary, tftp_view.detail),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("captures", nargs="+", type=Path, metavar="FILE", help="pcap or pcapng")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="print every field of each packet under it"
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 if a payload crashes a decoder or does not re-encode to the same bytes",
    )
    parser.add_argument(
        "--tftp-port",
        type=_port,
        action="append",
        default=[],
        metavar="PORT",
        help="a TFTP server listens on PORT too, not only 69 (repeatable)",
    )
    parser.add_argument(
        "--absolute-time", action="store_true", help="print UTC times instead of seconds"
    )


def run(args: argparse.Namespace) -> int:
    status = 0
    try:
        for path in args.captures:
            status |= _report_file(path, args)
    except BrokenPipeError:
        # `pxed pcap big.pcap | head`: the reader left; stop quietly, not with a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return status


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{text} is not a UDP port (1-65535)")
    return int(text)


@dataclass
class _Tally:
    """Counts for the line under a file's packets."""

    frames: int = 0
    protocols: Counter[str] = field(default_factory=Counter)
    malformed: int = 0
    bugs: list[int] = field(default_factory=list)  # frame numbers
    skipped: Counter[str] = field(default_factory=Counter)


class _FileReport:
    """Prints one capture file: a heading, the packet lines, a tally."""

    def __init__(self, path: Path, args: argparse.Namespace) -> None:
        self.path = path
        self.args = args
        self.tally = _Tally()
        self.started = False
        self.first_ns: int | None = None
        self.dissector = Dissector()
        self.classifier = Classifier(args.tftp_port)

    def frame(self, frame: Frame) -> None:
        self._start()
        self.tally.frames += 1
        if self.first_ns is None:
            self.first_ns = frame.timestamp_ns
        result = self.dissector.dissect(frame)
        if isinstance(result, Skipped):
            self.tally.skipped[result.reason] += 1
        elif isinstance(result, Datagram):
            self._datagram(result)

    def finish(self) -> None:
        self._start()
        for leftover in self.dissector.leftovers():
            self.tally.skipped[leftover.reason] += 1
        print(f"-- {_tally_text(self.tally)}")
        print()

    def _start(self) -> None:
        if not self.started:
            self.started = True
            print(f"== {self.path} ==")

    def _datagram(self, datagram: Datagram) -> None:
        protocol = self.classifier.classify(datagram)
        if protocol is None:
            self.tally.skipped["other UDP"] += 1
            return
        self.tally.protocols[protocol.value] += 1
        outcome = judge(protocol, datagram, self.args.strict)
        self.tally.malformed += isinstance(outcome, Malformed)
        if isinstance(outcome, Bug):
            self.tally.bugs.append(datagram.frame.number)
        print(self._line(datagram, protocol, outcome))
        if self.args.verbose:
            for text in _detail(datagram, protocol, outcome):
                print(DETAIL_INDENT + text)

    def _line(self, datagram: Datagram, protocol: Protocol, outcome: Outcome) -> str:
        frame = datagram.frame
        source = _endpoint(datagram.src, datagram.sport)
        destination = _endpoint(datagram.dst, datagram.dport)
        where = f"{source:>{ADDRESS_WIDTH}} -> {destination:<{ADDRESS_WIDTH}}"
        return (
            f"{frame.number:>5}  {self._time(frame)}  {where}  {self._message(protocol, outcome)}"
        )

    def _message(self, protocol: Protocol, outcome: Outcome) -> str:
        if isinstance(outcome, Malformed):
            return f"MALFORMED {protocol.value}: {outcome.reason}"
        if isinstance(outcome, Bug):
            return f"PXED BUG {protocol.value}: {outcome.reason}"
        view = VIEWS[protocol]
        kind = view.kind(outcome.message)
        return f"{protocol.value} {kind:<{KIND_WIDTH}} {view.summary(outcome.message)}".rstrip()

    def _time(self, frame: Frame) -> str:
        if self.args.absolute_time:
            return f"{_utc(frame.timestamp_ns):<26}"
        if frame.timestamp_ns is None or self.first_ns is None:
            return f"{'-':>11}"
        return f"{_seconds(frame.timestamp_ns - self.first_ns):>11}"


def _endpoint(address: IPAddress, port: int) -> str:
    """address:port, with an IPv6 address in brackets (RFC 3986) so the port stands apart."""
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


def _report_file(path: Path, args: argparse.Namespace) -> int:
    if path.is_dir():
        _note(f"{path}: is a directory, skipped")
        return 0
    report = _FileReport(path, args)
    try:
        for frame in read_frames(path):
            report.frame(frame)
    except NotACapture as error:
        if path.suffix.lower() in CAPTURE_SUFFIXES:
            _note(str(error))
            return 1
        _note(f"{path}: not a capture file, skipped")
        return 0
    except CaptureError as error:
        report.finish()
        _note(str(error))
        return 1
    report.finish()
    if report.tally.bugs:
        frames = ", ".join(map(str, report.tally.bugs))
        _note(f"{path}: pxed cannot handle frame(s) {frames} (PXED BUG lines above)")
    return 1 if args.strict and report.tally.bugs else 0


def _detail(datagram: Datagram, protocol: Protocol, outcome: Outcome) -> list[str]:
    lines = [_frame_text(datagram)]
    if isinstance(outcome, Decoded):
        return lines + VIEWS[protocol].detail(outcome.message)
    return (
        lines
        + [f"payload ({len(datagram.payload)} bytes captured):"]
        + ["  " + line for line in hex_lines(datagram.payload)]
    )


def _frame_text(datagram: Datagram) -> str:
    frame = datagram.frame
    link = LINK_NAMES.get(frame.link_type, f"link type {frame.link_type}")
    parts = [f"frame {frame.number}: {len(frame.data)} of {frame.original_length} bytes, {link}"]
    if datagram.vlans:
        parts.append("VLAN " + ".".join(str(vlan) for vlan in datagram.vlans))
    if len(datagram.frames) > 1:
        parts.append("reassembled from frames " + ", ".join(map(str, datagram.frames)))
    parts.append(f"UDP payload {len(datagram.payload) + datagram.missing} bytes")
    return "; ".join(parts)


def _tally_text(tally: _Tally) -> str:
    found = ", ".join(f"{count} {name}" for name, count in sorted(tally.protocols.items()))
    frames = f"{tally.frames} frame{'' if tally.frames == 1 else 's'}"
    text = f"{frames}: " + (found or "no DHCP/BOOTP/TFTP packets")
    if tally.malformed:
        text += f", {tally.malformed} malformed"
    if tally.bugs:
        text += f", {len(tally.bugs)} PXED BUG" + ("S" if len(tally.bugs) > 1 else "")
    return text + _skipped_text(tally.skipped.items())


def _skipped_text(skipped: Iterable[tuple[str, int]]) -> str:
    listed = sorted(skipped, key=lambda item: (-item[1], item[0]))
    if not listed:
        return ""
    return "; not decoded: " + ", ".join(f"{count} {reason}" for reason, count in listed)


def _seconds(nanoseconds: int) -> str:
    sign = "-" if nanoseconds < 0 else ""
    whole, rest = divmod(abs(nanoseconds), 1_000_000_000)
    return f"{sign}{whole}.{rest // 1000:06d}"


def _utc(nanoseconds: int | None) -> str:
    if nanoseconds is None:
        return "-"
    seconds, rest = divmod(nanoseconds, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{stamp}.{rest // 1000:06d}"


def _note(text: str) -> None:
    sys.stdout.flush()
    print(f"pxed pcap: {text}", file=sys.stderr)
