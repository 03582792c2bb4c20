"""The least any Python TFTP server can do per block: pxed's ceiling since it left Twisted's loop.

    .venv/bin/python benchmarks/tftp_python_floor.py ADDRESS PORT ROOT

One epoll loop in plain Python, like pxed.tftp.transfer_loop, with none of a real
server's work: no engine, timers, retransmission, stranger handling, logging
or checks beyond what curl and atftp need to finish. RRQ -> OACK (blksize) or
DATA 1; an ACK of the block in flight -> the next block sliced from an mmap
(which pxed cannot use: a file truncated under a mapping kills the daemon with
SIGBUS), sent on a fresh port connected to the client. Lockstep only. What
separates pxed from this row is pxed's own per-block work; what separates this
row from dnsmasq is CPython. Never use it for anything but this benchmark.
"""

from __future__ import annotations

import mmap
import os
import select
import socket
import struct
import sys

RRQ, DATA, ACK, OACK = 1, 3, 4, 6
HEADER = struct.Struct("!HH")


class Transfer:
    def __init__(self, sock: socket.socket, data: mmap.mmap, blksize: int) -> None:
        self.sock, self.data, self.blksize = sock, data, blksize
        self.sent = 0  # the block in flight; 0 is the OACK
        self.last = len(data) // blksize + 1

    def send_next(self) -> None:
        self.sent += 1
        start = (self.sent - 1) * self.blksize
        chunk = self.data[start : start + self.blksize]
        self.sock.send(HEADER.pack(DATA, self.sent & 0xFFFF) + chunk)


def start(address: str, root: str, request: bytes, client: tuple[str, int]) -> Transfer:
    fields = request[2:].split(b"\0")
    options = {k.lower(): v for k, v in zip(fields[2::2], fields[3::2], strict=False)}
    blksize = min(int(options.get(b"blksize", b"512")), 65464)
    with open(os.path.join(root, os.path.basename(fields[0].decode())), "rb") as f:
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, 0))
    sock.connect(client)
    sock.setblocking(False)
    transfer = Transfer(sock, data, blksize)
    if b"blksize" in options:
        sock.send(HEADER.pack(OACK, 0)[:2] + b"blksize\0%d\0" % blksize)
    else:
        transfer.send_next()
    return transfer


def main() -> None:
    address, port, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind((address, port))
    epoll = select.epoll()
    epoll.register(listener.fileno(), select.EPOLLIN)
    transfers: dict[int, Transfer] = {}
    while True:
        for fd, _ in epoll.poll():
            if fd == listener.fileno():
                request, client = listener.recvfrom(65536)
                transfer = start(address, root, request, client)
                transfers[transfer.sock.fileno()] = transfer
                epoll.register(transfer.sock.fileno(), select.EPOLLIN)
                continue
            transfer = transfers[fd]
            opcode, block = HEADER.unpack_from(transfer.sock.recv(65536))
            if opcode != ACK or block != transfer.sent & 0xFFFF:
                continue
            if transfer.sent == transfer.last:
                epoll.unregister(fd)
                transfer.sock.close()
                del transfers[fd]
            else:
                transfer.send_next()


if __name__ == "__main__":
    main()
