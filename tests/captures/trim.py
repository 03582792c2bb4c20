"""Cut a whole boot capture down: every DHCP packet, the edges of each TFTP transfer.

A QEMU boot moves a kernel and an initrd over TFTP, thousands of DATA/ACK pairs that all
look alike; what the firmware does differently lives at the start and the end of each
transfer. So this keeps, per transfer, the request, every OACK and ERROR, DATA and ACK for
blocks 0 to `first_blocks`, and the last DATA block with its ACK (retransmissions of kept
blocks stay too, they are real behaviour). Everything DHCP (67, 68, 4011) and DHCPv6 (546,
547) is kept, TFTP over IPv6 is cut like TFTP over IPv4; other UDP (mDNS, ...) and what is
not UDP (ICMPv6 neighbour discovery and router adverts) is dropped.

Frames are copied byte for byte with their timestamps into a classic pcap, so tshark and
`pxed pcap` read the cut file the same way they read the whole one.

    .venv/bin/python -m tests.captures.trim WHOLE.pcap CUT.pcap [--first-blocks N]
"""

from __future__ import annotations

import argparse
import struct
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pxed.pcap.capture import PCAP_MAGIC_NSEC, PCAP_MAGIC_USEC, Frame, read_frames
from pxed.pcap.classify import TFTP_REQUEST_OPCODES, Classifier, Protocol
from pxed.pcap.dissect import Datagram, Dissector, IPAddress

FIRST_BLOCKS = 4  # one whole RFC 7440 window of 4, and the ACK that closes it
SNAPLEN = 262144
DATA, ACK = 3, 4

Endpoint = tuple[IPAddress, int]


@dataclass
class _Transfer:
    """The datagrams of one TFTP transfer, keyed by its client endpoint."""

    frames: list[tuple[int, Datagram]] = field(default_factory=list)

    def last_block(self) -> int | None:
        blocks = [_block(d) for _, d in self.frames if _opcode(d) == DATA]
        return blocks[-1] if blocks else None


def _opcode(datagram: Datagram) -> int:
    return int.from_bytes(datagram.payload[:2], "big")


def _block(datagram: Datagram) -> int:
    return int.from_bytes(datagram.payload[2:4], "big")


def kept_frames(frames: Iterable[Frame], first_blocks: int = FIRST_BLOCKS) -> list[Frame]:
    """The frames a trimmed capture keeps, in their original order."""
    dissector, classifier = Dissector(), Classifier()
    by_number: dict[int, Frame] = {}
    keep: set[int] = set()
    transfers: dict[Endpoint, _Transfer] = {}
    done: list[_Transfer] = []
    for frame in frames:
        by_number[frame.number] = frame
        datagram = dissector.dissect(frame)
        if not isinstance(datagram, Datagram):
            continue
        protocol = classifier.classify(datagram)
        if protocol in (Protocol.DHCP, Protocol.DHCPV6):
            keep.update(datagram.frames)
        elif protocol is Protocol.TFTP:
            _file(datagram, transfers, done)
    for transfer in [*done, *transfers.values()]:
        keep.update(_edges(transfer, first_blocks))
    return [by_number[number] for number in sorted(keep)]


def _file(datagram: Datagram, transfers: dict[Endpoint, _Transfer], done: list[_Transfer]) -> None:
    """Add a TFTP datagram to its transfer; a request from a known endpoint starts a new one."""
    client = (datagram.src, datagram.sport)
    if _opcode(datagram) in TFTP_REQUEST_OPCODES:
        if client in transfers:
            done.append(transfers.pop(client))
        transfers[client] = _Transfer()
    transfer = transfers.get(client) or transfers.get((datagram.dst, datagram.dport))
    if transfer is not None:  # a server port answering a request that was not captured
        transfer.frames.append((datagram.frame.number, datagram))


def _edges(transfer: _Transfer, first_blocks: int) -> set[int]:
    last = transfer.last_block()
    kept: set[int] = set()
    for _, datagram in transfer.frames:
        opcode = _opcode(datagram)
        if opcode in (DATA, ACK):
            block = _block(datagram)
            if block > first_blocks and block != last:
                continue
        kept.update(datagram.frames)
    return kept


def write_pcap(path: Path, frames: Sequence[Frame]) -> None:
    """A classic little-endian pcap; nanosecond stamps only if some frame needs them."""
    link_types = {frame.link_type for frame in frames}
    if len(link_types) > 1:
        raise ValueError(f"{path}: frames of several link types {sorted(link_types)}")
    link_type = link_types.pop() if link_types else 1
    stamps = [frame.timestamp_ns or 0 for frame in frames]
    nano = any(stamp % 1000 for stamp in stamps)
    magic, scale = (PCAP_MAGIC_NSEC, 1) if nano else (PCAP_MAGIC_USEC, 1000)
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, SNAPLEN, link_type))
        for frame, stamp in zip(frames, stamps, strict=True):
            seconds, fraction = divmod(stamp, 1_000_000_000)
            out.write(
                struct.pack(
                    "<IIII", seconds, fraction // scale, len(frame.data), frame.original_length
                )
            )
            out.write(frame.data)


def trim(source: Path, target: Path, first_blocks: int = FIRST_BLOCKS) -> int:
    """Write the trimmed copy of `source` to `target`; returns the number of frames kept."""
    frames = kept_frames(read_frames(source), first_blocks)
    write_pcap(target, frames)
    return len(frames)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--first-blocks", type=int, default=FIRST_BLOCKS)
    args = parser.parse_args(argv)
    count = trim(args.source, args.target, args.first_blocks)
    print(f"{args.target}: {count} frames, {args.target.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
