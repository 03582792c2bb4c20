"""DHCPv6 clients for the interop tests, run in a client namespace as
``python -m tests.interop.dhcp6_runner COMMAND --interface IF ...``.

``fuzz``: ``--count`` hostile datagrams grown from real messages (lab/udpfuzz.py's
mutations) at ff02::1:2, bounded in count and time, then one clean exchange;
prints how many were sent and the address the exchange got.

``pxe``: an EDK2 PXEv6 client's first steps: a SOLICIT with option 61 (x64 UEFI)
and vendor class PXEClient to ff02::1:2, then a REQUEST to the boot service on
``--server``:4011; prints the option 59 of the ADVERTISE and of the REPLY.

``load`` (the crash test): SOLICIT/ADVERTISE/REQUEST/REPLY exchanges for
fresh DUIDs (DUID-LL of made-up MACs), ``--window`` at a time, for
``--duration`` seconds, surviving a server that dies and comes back (an
exchange unanswered for ``--retry`` seconds is given up and a fresh client takes
its place).  Every REPLY that grants an address is appended to ``--acks`` as
``duid address xid``, line-buffered, so the test reads every REPLY the client
has seen so far.
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

from lab.udpfuzz import mutations
from protocols.dhcpv6.duid import DuidLl
from protocols.dhcpv6.options import (
    CLIENTID,
    IA_NA,
    IAADDR,
    INTERFACE_ID,
    SERVERID,
    IaAddress,
    IaNa,
    Option,
)
from protocols.dhcpv6.wire import (
    Dhcpv6Message,
    Dhcpv6Relay,
    MessageType,
    decode_dhcpv6,
    encode_dhcpv6,
)
from protocols.errors import MalformedPacket
from tests.interop.load_window import add_load_arguments, run_window

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

    def answer(data: bytes) -> None:
        nonlocal acked
        try:
            reply = decode_dhcpv6(data)
        except MalformedPacket:
            return
        exchange = live.get(reply.transaction_id) if isinstance(reply, Dhcpv6Message) else None
        if exchange is None or not isinstance(reply, Dhcpv6Message):
            return
        address = granted(reply)
        server = reply.get(SERVERID)
        if reply.msg_type == M.ADVERTISE and exchange.state == M.SOLICIT:
            if address is None or server is None:
                del live[exchange.xid]
                return
            ia = IaNa(1, 0, 0, (Option.of(IAADDR, IaAddress(address, 0, 0)),))
            send(exchange, M.REQUEST, server, Option.of(IA_NA, ia))
        elif reply.msg_type == M.REPLY and exchange.state == M.REQUEST:
            if address is not None:
                out.write(f"{exchange.client.data.hex(':')} {address} {exchange.xid:06x}\n")
                acked += 1
            del live[exchange.xid]

    run_window(sock, args, live, start, answer)
    out.close()
    return {"acked": acked, "clients": serial}


FUZZ_TIME_BUDGET = 30.0  # seconds, whatever the count
# Below the veth's 1500-byte MTU: a larger datagram would leave in IPv6 fragments, and
# reassembly is the kernel's business, not pxed's.
MAX_FUZZ = 1200


def fuzz(args: argparse.Namespace) -> dict[str, Any]:
    sock, index = client_socket(args.interface)
    servers = (SERVERS, 547, 0, index)
    client = Option.of(CLIENTID, DuidLl(1, bytes.fromhex("02000000fe01")))
    ia = Option.of(IA_NA, IaNa(1, 0, 0, ()))
    solicit = Dhcpv6Message(msg_type=M.SOLICIT, transaction_id=1, options=(client, ia))
    relayed = Dhcpv6Relay.around(
        solicit,
        options=[Option(INTERFACE_ID, b"eth0")],
        msg_type=M.RELAY_FORW,
        link_address=IPv6Address("fd00:213:7::1"),
        peer_address=IPv6Address("fe80::1"),
    )
    seeds = [encode_dhcpv6(solicit), encode_dhcpv6(relayed)]
    hostile = mutations(seeds, random.Random(args.seed))
    deadline = time.monotonic() + FUZZ_TIME_BUDGET
    sent = 0
    while sent < args.count and time.monotonic() < deadline:
        try:
            sock.sendto(next(hostile)[:MAX_FUZZ], servers)
        except (BlockingIOError, OSError):
            time.sleep(0.001)  # a full buffer, or a datagram too big: go on
        sent += 1
        if sent % 100 == 0:
            time.sleep(0.01)  # bounded rate: 10,000 a second at most
    sock.close()
    return {"sent": sent, "granted": exchange(args.interface)}


def exchange(interface: str, wait: float = 60.0) -> str | None:
    """One SOLICIT/ADVERTISE/REQUEST/REPLY, each message sent again every second it goes
    unanswered (the server may still be reading a backlog); the address, or None."""
    sock, index = client_socket(interface)
    servers = (SERVERS, 547, 0, index)
    client = Option.of(CLIENTID, DuidLl(1, bytes.fromhex("02000000fe02")))
    ia = Option.of(IA_NA, IaNa(1, 0, 0, ()))
    solicit = Dhcpv6Message(msg_type=M.SOLICIT, transaction_id=2, options=(client, ia))
    deadline = time.monotonic() + wait
    last = encode_dhcpv6(solicit)
    sock.sendto(last, servers)
    state = M.SOLICIT
    while time.monotonic() < deadline:
        if not select.select([sock], [], [], 1.0)[0]:
            sock.sendto(last, servers)
            continue
        try:
            reply = decode_dhcpv6(sock.recv(65536))
        except MalformedPacket:
            continue
        if not isinstance(reply, Dhcpv6Message) or reply.transaction_id != 2:
            continue
        address = granted(reply)
        if reply.msg_type == M.ADVERTISE and state == M.SOLICIT and address is not None:
            server = reply.get(SERVERID)
            assert server is not None
            held = IaNa(1, 0, 0, (Option.of(IAADDR, IaAddress(address, 0, 0)),))
            request = Dhcpv6Message(
                msg_type=M.REQUEST,
                transaction_id=2,
                options=(client, server, Option.of(IA_NA, held)),
            )
            last = encode_dhcpv6(request)
            sock.sendto(last, servers)
            state = M.REQUEST
        elif reply.msg_type == M.REPLY and state == M.REQUEST:
            return None if address is None else str(address)
    return None


PXE_OPTIONS = (
    Option(61, (7).to_bytes(2, "big")),
    Option(16, bytes.fromhex("00000157") + b"\x00\x20PXEClient:Arch:00007:UNDI:003016"),
)


def pxe(args: argparse.Namespace) -> dict[str, Any]:
    sock, index = client_socket(args.interface)
    client = Option.of(CLIENTID, DuidLl(1, bytes.fromhex("02000000fe03")))
    ia = Option.of(IA_NA, IaNa(1, 0, 0, ()))
    solicit = Dhcpv6Message(
        msg_type=M.SOLICIT, transaction_id=3, options=(client, ia, *PXE_OPTIONS)
    )
    advertise = ask(sock, encode_dhcpv6(solicit), (SERVERS, 547, 0, index), 3, M.ADVERTISE)
    request = Dhcpv6Message(msg_type=M.REQUEST, transaction_id=4, options=(client, *PXE_OPTIONS))
    reply = ask(sock, encode_dhcpv6(request), (args.server, 4011), 4, M.REPLY)
    return {
        "advertise": advertise.boot_file_url if advertise is not None else None,
        "addresses": [str(a) for a in [granted(advertise)] if a] if advertise else [],
        "reply": reply.boot_file_url if reply is not None else None,
    }


def ask(
    sock: socket.socket, data: bytes, to: tuple[Any, ...], xid: int, kind: MessageType
) -> Dhcpv6Message | None:
    """Send ``data`` (again every second, for 10 s) until a ``kind`` with ``xid`` comes."""
    deadline = time.monotonic() + 10.0
    sock.sendto(data, to)
    while time.monotonic() < deadline:
        if not select.select([sock], [], [], 1.0)[0]:
            sock.sendto(data, to)
            continue
        try:
            reply = decode_dhcpv6(sock.recv(65536))
        except MalformedPacket:
            continue
        if isinstance(reply, Dhcpv6Message) and (reply.transaction_id, reply.msg_type) == (
            xid,
            kind,
        ):
            return reply
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dhcp6_runner")
    commands = parser.add_subparsers(dest="command", required=True)
    generator = commands.add_parser("load")
    add_load_arguments(generator)
    fuzzer = commands.add_parser("fuzz")
    fuzzer.add_argument("--interface", required=True)
    fuzzer.add_argument("--count", type=int, default=5000)
    fuzzer.add_argument("--seed", type=int, default=15)
    booting = commands.add_parser("pxe")
    booting.add_argument("--interface", required=True)
    booting.add_argument("--server", required=True)
    args = parser.parse_args(argv)
    command = {"load": load, "fuzz": fuzz, "pxe": pxe}[args.command]
    print(json.dumps(command(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
