"""The least a Twisted TFTP server can do per block: the ceiling pxed is measured against.

    .venv/bin/python benchmarks/tftp_floor.py ADDRESS PORT ROOT

A read server with no engine, no timers, no retransmission, no logging, no
checks beyond what curl and atftp need to finish: RRQ -> OACK (blksize and
windowsize, at most 16) or DATA 1; an ACK of the last block sent -> the next
window sliced from an mmap, one ``transport.write`` per block, on a fresh
unconnected port per transfer, as pxed does. What separates pxed from
this row is pxed's own per-block work; what separates this row from dnsmasq is
Twisted and CPython. Never use it for anything but this benchmark.
"""

from __future__ import annotations

import mmap
import os
import struct
import sys

from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol

RRQ, DATA, ACK, OACK = 1, 3, 4, 6


class Transfer(DatagramProtocol):
    noisy = False

    def __init__(
        self, data: mmap.mmap, blksize: int, window: int, oack: bytes, client: tuple[str, int]
    ) -> None:
        self.data, self.blksize, self.window, self.oack = data, blksize, window, oack
        self.client = client
        self.sent = 0  # the last block sent
        self.last = len(data) // blksize + 1

    def startProtocol(self) -> None:
        if self.oack:
            self.transport.write(struct.pack("!H", OACK) + self.oack, self.client)
        else:
            self._send_window(0)

    def _send_window(self, acked: int) -> None:
        for block in range(acked + 1, min(acked + self.window, self.last) + 1):
            start = (block - 1) * self.blksize
            head = struct.pack("!HH", DATA, block & 0xFFFF)
            self.transport.write(head + self.data[start : start + self.blksize], self.client)
            self.sent = block

    def datagramReceived(self, datagram: bytes, addr: tuple[str, int]) -> None:
        opcode, number = struct.unpack_from("!HH", datagram)
        if opcode != ACK or number != self.sent & 0xFFFF:
            return  # no loss here: an earlier ACK only repeats one already answered
        if self.sent == self.last:
            self.transport.stopListening()
        else:
            self._send_window(self.sent)


class Listener(DatagramProtocol):
    noisy = False

    def __init__(self, address: str, root: str) -> None:
        self.address, self.root = address, root

    def datagramReceived(self, datagram: bytes, addr: tuple[str, int]) -> None:
        fields = datagram[2:].split(b"\0")
        name = os.path.basename(fields[0].decode())
        options = {k.lower(): v for k, v in zip(fields[2::2], fields[3::2], strict=False)}
        blksize = min(int(options.get(b"blksize", b"512")), 65464)
        window = min(int(options.get(b"windowsize", b"1")), 16)
        oack = b""
        if b"blksize" in options:
            oack += b"blksize\0%d\0" % blksize
        if b"windowsize" in options:
            oack += b"windowsize\0%d\0" % window
        with open(os.path.join(self.root, name), "rb") as f:
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        transfer = Transfer(data, blksize, window, oack, addr)
        reactor.listenUDP(0, transfer, interface=self.address, maxPacketSize=65536)


def main() -> None:
    address, port, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    reactor.listenUDP(port, Listener(address, root), interface=address, maxPacketSize=65536)
    reactor.run()


if __name__ == "__main__":
    main()
