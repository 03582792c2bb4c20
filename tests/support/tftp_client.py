"""A small, strict RFC 1350/2347/2348/7440 read client for tests, windowsize included.

None of the Debian clients is fit for the windowed loss test: curl, tftp-hpa and
busybox do not speak windowsize, and atftp, which does, ignores a retransmitted
window it already holds without ACKing again and restarts its own timer on every
datagram, so once its window ACK is lost it stays silent until the server gives
up. This client answers what a careful firmware would: an out-of-order or
repeated block gets an ACK for the last block received in order (at once for a
new gap, then at most once per burst: waiting for the server's timer instead made
windowed transfers under loss slower than lockstep), the retransmit timer runs
from the last progress, not from the last datagram, and after the final ACK it
lingers to ACK a repeated final block.

Run as a program (inside a namespace, for example)::

    python -m tests.support.tftp_client HOST PORT FILE OUT [--blksize N] [--windowsize N]

Every wait is bounded: ``timeout`` between retransmissions, ``patience``
without progress before giving up.
"""

from __future__ import annotations

import argparse
import select
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

RRQ, DATA, ACK, ERROR, OACK = 1, 3, 4, 5, 6
MAX_DATAGRAM = 65536


class TftpClientError(Exception):
    """The transfer failed: the server sent ERROR, or nothing useful came within patience."""


@dataclass
class Fetched:
    data: bytes
    options: dict[str, str]
    acks_sent: int = 0
    out_of_order: int = 0
    strangers: list[tuple[str, int]] = field(default_factory=list)


def _rrq(filename: str, options: dict[str, str]) -> bytes:
    parts = [filename, "octet"]
    for name, value in options.items():
        parts += [name, value]
    return struct.pack("!H", RRQ) + b"".join(p.encode() + b"\0" for p in parts)


def _ack(block: int) -> bytes:
    return struct.pack("!HH", ACK, block & 0xFFFF)


def _oack_options(payload: bytes) -> dict[str, str]:
    fields = payload.split(b"\0")[:-1]
    return {
        fields[i].decode().lower(): fields[i + 1].decode() for i in range(0, len(fields) - 1, 2)
    }


class _Transfer:
    def __init__(
        self, server: tuple[str, int], options: dict[str, str], timeout: float, source: str
    ) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if source:
            self.sock.bind((source, 0))
        self.server = server
        self.tid: tuple[str, int] | None = None
        self.timeout = timeout
        self.blksize = 512
        self.window = 1
        self.expected = 1  # absolute number of the next block we want
        self.in_window = 0  # blocks received in order since our last ACK
        self.gap_acked = 0  # the `expected` we last sent a gap ACK for
        self.data = bytearray()
        self.result = Fetched(b"", {})
        self.last_ack: bytes | None = None
        self.last_ack_at = 0.0
        self.options = options

    def send_ack(self, block: int) -> None:
        # The server starts its next window right after the block we ACK, so our count of
        # blocks in the window restarts with every ACK, gap ACKs included.
        self.in_window = 0
        self.last_ack = _ack(block)
        self.last_ack_at = time.monotonic()
        self.result.acks_sent += 1
        assert self.tid is not None
        self.sock.sendto(self.last_ack, self.tid)

    def receive(self, wait: float) -> tuple[bytes, tuple[str, int]] | None:
        ready, _, _ = select.select([self.sock], [], [], max(0.0, wait))
        if not ready:
            return None
        datagram, addr = self.sock.recvfrom(MAX_DATAGRAM)
        return datagram, addr

    def on_data(self, block: int, payload: bytes) -> bool:
        """Handle one DATA; True when the transfer is complete."""
        if block != self.expected & 0xFFFF:
            # A gap (or a window we already hold): ACK the last block in order, at once for
            # a new gap, else at most once per burst so the rest of a window stays quiet.
            self.result.out_of_order += 1
            if self.gap_acked != self.expected or time.monotonic() - self.last_ack_at > 0.01:
                self.gap_acked = self.expected
                self.send_ack(self.expected - 1)
            return False
        self.data += payload
        self.expected += 1
        self.in_window += 1
        final = len(payload) < self.blksize
        if final or self.in_window >= self.window:
            self.send_ack(block)
        return final


def fetch(
    server: tuple[str, int],
    filename: str,
    blksize: int | None = None,
    windowsize: int | None = None,
    tsize: bool = True,
    timeout: float = 0.5,
    patience: float = 30.0,
    source: str = "",
) -> Fetched:
    """Read ``filename`` from ``server`` (from address ``source`` if given); raises
    TftpClientError on failure."""
    options: dict[str, str] = {}
    if blksize is not None:
        options["blksize"] = str(blksize)
    if tsize:
        options["tsize"] = "0"
    if windowsize is not None:
        options["windowsize"] = str(windowsize)
    t = _Transfer(server, options, timeout, source)
    try:
        return _run(t, filename, patience)
    finally:
        t.sock.close()


def _run(t: _Transfer, filename: str, patience: float) -> Fetched:
    request = _rrq(filename, t.options)
    t.sock.sendto(request, t.server)
    progress_at = time.monotonic()
    retry_at = progress_at + t.timeout
    while True:
        now = time.monotonic()
        if now - progress_at > patience:
            raise TftpClientError(f"no progress for {patience:g} s at block {t.expected}")
        got = t.receive(retry_at - now)
        if got is None:  # our timer: say again what we last said
            if t.tid is None:
                t.sock.sendto(request, t.server)
            elif t.last_ack is not None:
                t.send_ack(t.expected - 1)
            retry_at = time.monotonic() + t.timeout
            continue
        datagram, addr = got
        if t.tid is None:
            t.tid = addr
        elif addr != t.tid:
            t.result.strangers.append(addr)
            t.sock.sendto(struct.pack("!HH", ERROR, 5) + b"unknown transfer ID\0", addr)
            continue
        opcode = struct.unpack_from("!H", datagram)[0] if len(datagram) >= 2 else 0
        before = t.expected
        if opcode == ERROR:
            code = struct.unpack_from("!H", datagram, 2)[0]
            message = datagram[4:].rstrip(b"\0").decode(errors="replace")
            raise TftpClientError(f"ERROR {code}: {message}")
        if opcode == OACK and t.expected == 1 and not t.data:
            t.result.options = _oack_options(datagram[2:])
            t.blksize = int(t.result.options.get("blksize", 512))
            t.window = int(t.result.options.get("windowsize", 1))
            t.send_ack(0)
            progress_at, retry_at = time.monotonic(), time.monotonic() + t.timeout
        elif opcode == DATA and len(datagram) >= 4:
            block = struct.unpack_from("!H", datagram, 2)[0]
            if t.on_data(block, datagram[4:]):
                _linger(t)
                t.result.data = bytes(t.data)
                return t.result
        if t.expected != before:
            progress_at, retry_at = time.monotonic(), time.monotonic() + t.timeout


def _linger(t: _Transfer) -> None:
    """Our final ACK may be lost: ACK the final block again if it comes back, for a while."""
    until = time.monotonic() + 2 * t.timeout
    while (left := until - time.monotonic()) > 0:
        got = t.receive(left)
        if got is not None and got[1] == t.tid and got[0][:2] == struct.pack("!H", DATA):
            assert t.last_ack is not None
            t.sock.sendto(t.last_ack, t.tid)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("file")
    parser.add_argument("out", type=Path)
    parser.add_argument("--blksize", type=int)
    parser.add_argument("--windowsize", type=int)
    parser.add_argument("--patience", type=float, default=60.0)
    args = parser.parse_args()
    try:
        got = fetch(
            (args.host, args.port),
            args.file,
            blksize=args.blksize,
            windowsize=args.windowsize,
            patience=args.patience,
        )
    except TftpClientError as err:
        print(f"tftp_client: {err}", file=sys.stderr)
        return 1
    args.out.write_bytes(got.data)
    print(f"options {got.options} acks {got.acks_sent} out-of-order {got.out_of_order}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
