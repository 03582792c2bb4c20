"""The DHCP and DHCPv6 load generators' loop (``dhcp_runner load``, ``dhcp6_runner load``).

A window of exchanges for fresh clients is kept full for ``--duration`` seconds;
each answer is handed to the family's code, and an exchange unanswered for
``--retry`` seconds (the server died, or dropped it) is given up, a fresh client
taking its place.  Bounded in time, whatever the server does.
"""

from __future__ import annotations

import argparse
import select
import socket
import time
from collections.abc import Callable
from typing import Protocol, TypeVar


class Pending(Protocol):
    xid: int
    sent: float  # when its last message left


E = TypeVar("E", bound=Pending)


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--interface", required=True)
    parser.add_argument("--acks", required=True)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--retry", type=float, default=0.5)


def run_window(
    sock: socket.socket,
    args: argparse.Namespace,
    live: dict[int, E],
    start: Callable[[], None],
    answer: Callable[[bytes], None],
    tick: Callable[[], None] = lambda: None,
) -> None:
    """Until ``args.duration`` is over: ``start`` exchanges while fewer than ``args.window``
    are ``live``, ``answer`` each datagram, give up on the ones silent too long; ``tick``
    (what else the family sends on its own time) every pass."""
    end = time.monotonic() + args.duration
    while time.monotonic() < end:
        while len(live) < args.window:
            start()
        tick()
        readable = select.select([sock], [], [], 0.05)[0]
        while readable:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                break
            answer(data)
        now = time.monotonic()
        for exchange in [e for e in live.values() if now - e.sent > args.retry]:
            del live[exchange.xid]
