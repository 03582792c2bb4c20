"""A DHCPv6 load generator for the crash test, run in a client namespace as
``python -m tests.interop.dhcp6_runner load --interface IF --acks FILE``.

SOLICIT/ADVERTISE/REQUEST/REPLY exchanges for fresh DUIDs (DUID-LL of made-up
MACs), ``--window`` at a time, for ``--duration`` seconds, surviving a server
that dies and comes back (an exchange unanswered for ``--retry`` seconds is
given up and a fresh client takes its place).  Every REPLY that grants an
address is appended to ``--acks`` as ``duid address xid``, line-buffered, so the
test reads every REPLY the client has seen so far.
"""

from __future__ import annotations

import argparse
import json
import random
import select
import socket
import sys
import time
from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import Any

from protocols.dhcpv6.duid import DuidLl
from protocols.dhcpv6.options import (
    CLIENTID,
    IA_NA,
    IAADDR,
    SERVERID,
    IaAddress,
    IaNa,
    Option,
)
from protocols.dhcpv6.wire import Dhcpv6Message, MessageType, decode_dhcpv6, encode_dhcpv6
from protocols.errors import MalformedPacket

M = MessageType
SERVERS = "ff02::1:2"  # All_DHCP_Relay_Agents_and_Servers


@dataclass
class Exchange:
    client: Option
    xid: int
    state: MessageType
    sent: float


def client_socket(interface: str) -> tuple[socket.socket, int]:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
    sock.bind(("::", 546))
    sock.setblocking(False)
    return sock, socket.if_nametoindex(interface)


def granted(reply: Dhcpv6Message) -> IPv6Address | None:
    """The address the REPLY's first IA_NA grants with a lifetime, if any."""
    for ia in reply.ia_na:
        for option in ia.options:
            value = option.value if option.code == IAADDR else None
            if isinstance(value, IaAddress) and value.valid > 0:
                return value.address
    return None


def load(args: argparse.Namespace) -> dict[str, Any]:
    sock, index = client_socket(args.interface)
    servers = (SERVERS, 547, 0, index)
    prefix = random.getrandbits(16).to_bytes(2, "big")
    serial = 0
    out = open(args.acks, "a", buffering=1)  # noqa: SIM115 - line-buffered for the whole run
    live: dict[int, Exchange] = {}
    acked = 0
    end = time.monotonic() + args.duration

    def send(exchange: Exchange, kind: MessageType, *options: Option) -> None:
        message = Dhcpv6Message(
            msg_type=kind, transaction_id=exchange.xid, options=(exchange.client, *options)
        )
        exchange.state, exchange.sent = kind, time.monotonic()
        sock.sendto(encode_dhcpv6(message), servers)

    def start() -> None:
        nonlocal serial
        serial += 1
        mac = b"\x02" + prefix + serial.to_bytes(3, "big")
        exchange = Exchange(
            Option.of(CLIENTID, DuidLl(1, mac)), random.getrandbits(24), M.SOLICIT, 0
        )
        live[exchange.xid] = exchange
        send(exchange, M.SOLICIT, Option.of(IA_NA, IaNa(1, 0, 0, ())))

    while time.monotonic() < end:
        while len(live) < args.window:
            start()
        readable = select.select([sock], [], [], 0.05)[0]
        while readable:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                break
            try:
                reply = decode_dhcpv6(data)
            except MalformedPacket:
                continue
            exchange = live.get(reply.transaction_id) if isinstance(reply, Dhcpv6Message) else None
            if exchange is None or not isinstance(reply, Dhcpv6Message):
                continue
            address = granted(reply)
            server = reply.get(SERVERID)
            if reply.msg_type == M.ADVERTISE and exchange.state == M.SOLICIT:
                if address is None or server is None:
                    del live[exchange.xid]
                    continue
                ia = IaNa(1, 0, 0, (Option.of(IAADDR, IaAddress(address, 0, 0)),))
                send(exchange, M.REQUEST, server, Option.of(IA_NA, ia))
            elif reply.msg_type == M.REPLY and exchange.state == M.REQUEST:
                if address is not None:
                    out.write(f"{exchange.client.data.hex(':')} {address} {exchange.xid:06x}\n")
                    acked += 1
                del live[exchange.xid]
        now = time.monotonic()
        for exchange in [e for e in live.values() if now - e.sent > args.retry]:
            del live[exchange.xid]  # the server died or dropped it: a fresh client takes its place
    out.close()
    return {"acked": acked, "clients": serial}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dhcp6_runner")
    commands = parser.add_subparsers(dest="command", required=True)
    generator = commands.add_parser("load")
    generator.add_argument("--interface", required=True)
    generator.add_argument("--acks", required=True)
    generator.add_argument("--duration", type=float, default=10.0)
    generator.add_argument("--window", type=int, default=16)
    generator.add_argument("--retry", type=float, default=0.5)
    args = parser.parse_args(argv)
    print(json.dumps(load(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
