"""A boot storm: N lockstep TFTP reads at once, each from its own source address.

    python benchmarks/tftp_storm.py HOST PORT FILE --expect PATH --sources 10.213.5.10-209

Run by ``benchmarks/tftp.py`` inside the client namespace; prints one JSON line.
curl would do, but 200 curl processes on a 2-core machine measure the scheduler
more than the server; one asyncio process pinned to the client's CPU keeps the
client's share of the machine fixed. Each transfer behaves like a PXE ROM: an
RRQ with blksize, ACK 0 after the OACK, an ACK per block, a repeated ACK when a
block repeats, and after ``timeout`` seconds without progress the last packet
again, at most ``retries`` times in a row. Every distinct address gets its own
transfer (round-robin if there are more clients than addresses), so a server's
per-client limit sees what a rack of machines would make it see.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import socket
import statistics
import struct
import sys
import time
import zlib
from pathlib import Path
from typing import Any

RRQ, DATA, ACK, ERROR, OACK = 1, 3, 4, 5, 6
SWEEP = 0.05


class Transfer(asyncio.DatagramProtocol):
    """One read; `done` resolves to None on success or to why it failed."""

    def __init__(self, args: argparse.Namespace, started: float) -> None:
        self.args = args
        self.blksize = 512
        self.expected = 1
        self.size = 0
        self.crc = 0
        self.retries = 0
        self.last_packet = _rrq(args.file, args.blksize)
        self.progress = started
        self.started = started
        self.ended = 0.0
        self.server: tuple[str, int] | None = None
        self.transport: Any = None  # asyncio's selector transport, not a DatagramTransport
        self.done: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.sendto(self.last_packet, (self.args.host, self.args.port))

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.done.done() or len(data) < 4:
            return
        if self.server is None:
            self.server = addr
        elif addr != self.server:
            return
        opcode, number = struct.unpack_from("!HH", data)
        if opcode == DATA:
            self._data(number, data)
        elif opcode == OACK and self.expected == 1:
            fields = data[2:].split(b"\0")
            options = dict(zip(fields[0::2], fields[1::2], strict=False))
            self.blksize = int(options.get(b"blksize", b"512"))
            self._send(struct.pack("!HH", ACK, 0))
        elif opcode == ERROR:
            message = data[4:].rstrip(b"\0").decode(errors="replace")
            self.finish(f"ERROR {number}: {message}")

    def _data(self, number: int, data: bytes) -> None:
        if number == self.expected & 0xFFFF:
            payload = data[4:]
            self.size += len(payload)
            self.crc = zlib.crc32(payload, self.crc)
            self.expected += 1
            self._send(struct.pack("!HH", ACK, number))
            if len(payload) < self.blksize:
                self.finish(self._verdict())
        elif number == (self.expected - 1) & 0xFFFF:
            self._send(struct.pack("!HH", ACK, number))  # our ACK was lost: say it again

    def _send(self, packet: bytes) -> None:
        assert self.server is not None
        self.last_packet = packet
        self.progress = time.monotonic()
        self.retries = 0
        self.transport.sendto(packet, self.server)

    def _verdict(self) -> str | None:
        if self.size != self.args.expect_size:
            return f"got {self.size} bytes, expected {self.args.expect_size}"
        if self.crc != self.args.expect_crc:
            return "content differs from the file"
        return None

    def finish(self, failure: str | None) -> None:
        if not self.done.done():
            self.ended = time.monotonic()
            self.done.set_result(failure)
        if self.transport is not None:
            self.transport.close()

    def tick(self, now: float) -> None:
        """Retransmit after `timeout` without progress; give up after `retries` in a row."""
        if self.done.done() or now - self.progress < self.args.timeout:
            return
        if self.retries >= self.args.retries:
            self.finish(f"timed out at block {self.expected} after {self.retries} retries")
            return
        self.retries += 1
        self.progress = now
        self.transport.sendto(self.last_packet, self.server or (self.args.host, self.args.port))


def _rrq(filename: str, blksize: int) -> bytes:
    fields = [filename, "octet", "blksize", str(blksize)]
    return struct.pack("!H", RRQ) + b"".join(f.encode() + b"\0" for f in fields)


def _sources(spec: str) -> list[str]:
    """`10.213.5.10-209` -> every address from .10 to .209; a single address is one."""
    first, _, last = spec.partition("-")
    start = ipaddress.IPv4Address(first)
    if not last:
        return [str(start)]
    end = ipaddress.IPv4Address(".".join([*first.split(".")[:3], last]))
    return [str(ipaddress.IPv4Address(n)) for n in range(int(start), int(end) + 1)]


async def _sweep(transfers: list[Transfer]) -> None:
    while True:
        await asyncio.sleep(SWEEP)
        now = time.monotonic()
        for transfer in transfers:
            transfer.tick(now)


async def storm(args: argparse.Namespace) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    sources = _sources(args.sources)
    started = time.monotonic()
    transfers = []
    for n in range(args.clients):
        transfer = Transfer(args, started)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.bind((sources[n % len(sources)], 0))
        await loop.create_datagram_endpoint(lambda t=transfer: t, sock=sock)
        transfers.append(transfer)
    sweeper = asyncio.create_task(_sweep(transfers))
    await asyncio.wait([t.done for t in transfers], timeout=args.deadline)
    sweeper.cancel()
    for transfer in transfers:
        transfer.finish("deadline")  # no-op for those already done
    results = [t.done.result() for t in transfers]
    total = time.monotonic() - started
    failures = [r for r in results if r is not None]
    durations = [t.ended - t.started for t, r in zip(transfers, results, strict=True) if r is None]
    return {
        "clients": args.clients,
        "total_s": total,
        "ok": len(results) - len(failures),
        "failures": len(failures),
        "reasons": sorted(set(failures))[:5],
        "median_s": statistics.median(durations) if durations else None,
        "max_s": max(durations) if durations else None,
        "bytes": sum(t.size for t in transfers),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("file")
    parser.add_argument("--expect", type=Path, required=True, help="the served file, to check")
    parser.add_argument("--sources", required=True, help="A.B.C.D or A.B.C.D-E: source addresses")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--blksize", type=int, default=1468)
    parser.add_argument("--timeout", type=float, default=1.0)
    parser.add_argument("--retries", type=int, default=5)
    parser.add_argument("--deadline", type=float, default=120.0)
    args = parser.parse_args()
    args.expect_size, args.expect_crc = _fingerprint(args.expect)
    print(json.dumps(asyncio.run(storm(args))))
    return 0


def _fingerprint(path: Path) -> tuple[int, int]:
    size, crc = 0, 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            size += len(chunk)
            crc = zlib.crc32(chunk, crc)
    return size, crc


if __name__ == "__main__":
    sys.exit(main())
