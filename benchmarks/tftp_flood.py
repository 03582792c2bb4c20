"""Read requests at a fixed rate at one TFTP listener; prints how many were answered.

    python benchmarks/tftp_flood.py IP PORT --rate 10000 --seconds 5 [--name N] [--distinct]

Issue 18's listener load: a hostile or broken LAN sends RRQs faster than any
boot does, most of them for files that do not exist, from many source ports.
Requests go out in batches every millisecond, round-robin over ``--sockets``
sockets; every datagram a server sends back (an ERROR, or the first DATA/OACK)
counts as an answer. ``--distinct`` asks for ``N.0``, ``N.1``, ...: a new name
each time, which no cache of names or decoded requests can help with. Answers
still arriving up to ``--drain`` seconds after the last request count too.
Bounded in count (rate x seconds) and time. One JSON line: sent, answered,
seconds taken to send.
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import time


def rrq(name: str) -> bytes:
    return b"\x00\x01" + name.encode() + b"\x00octet\x00"


def flood(args: argparse.Namespace) -> dict[str, float]:
    selector = selectors.DefaultSelector()
    sockets = []
    for _ in range(args.sockets):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        sock.bind((args.source, 0))
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        sockets.append(sock)
    total = int(args.rate * args.seconds)
    request, server = rrq(args.name), (args.ip, args.port)
    if args.distinct:  # made before the clock starts: the send loop must keep its rate
        requests = [rrq(f"{args.name}.{n}") for n in range(total)]
    sent = answered = 0
    began = time.monotonic()
    while sent < total:
        due = min(total, int((time.monotonic() - began) * args.rate) + 1)
        while sent < due:
            if args.distinct:
                request = requests[sent]
            try:
                sockets[sent % len(sockets)].sendto(request, server)
            except BlockingIOError:
                break  # our own send buffer is full: try again on the next pass
            sent += 1
        answered += _drain(selector, 0.001)
    sending = time.monotonic() - began
    end = time.monotonic() + args.drain
    while (left := end - time.monotonic()) > 0:
        answered += _drain(selector, left)
    return {"sent": sent, "answered": answered, "seconds": round(sending, 3)}


def _drain(selector: selectors.BaseSelector, timeout: float) -> int:
    count = 0
    for key, _ in selector.select(timeout):
        sock: socket.socket = key.fileobj  # type: ignore[assignment]
        while True:
            try:
                sock.recv(65536)
            except BlockingIOError:
                break
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ip")
    parser.add_argument("port", type=int)
    parser.add_argument("--rate", type=float, default=10_000.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--sockets", type=int, default=64)
    parser.add_argument("--source", default="0.0.0.0")
    parser.add_argument("--name", default="missing.bin")
    parser.add_argument("--distinct", action="store_true", help="NAME.N: a new name each time")
    parser.add_argument("--drain", type=float, default=2.0)
    print(json.dumps(flood(parser.parse_args())), flush=True)


if __name__ == "__main__":
    main()
