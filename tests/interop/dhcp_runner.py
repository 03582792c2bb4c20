"""pxed as a DHCP server in a namespace, plus the scripted clients the DHCP interop tests need.

In the test process: ``write_config`` and ``start_pxed`` (``twistd -n pxed``
spawned in the server namespace, waited for until its sockets are bound).

In a client namespace, as ``python -m tests.interop.dhcp_runner COMMAND``:

- ``pxe-client``: a PXE ROM's first steps (DISCOVER with options 60/93/97,
  REQUEST to the address server, then a REQUEST to the boot server on
  udp/4011); prints one JSON object with what it got from whom.
- ``load``: DISCOVER/REQUEST exchanges for fresh MACs, ``--window`` at a
  time, for ``--duration`` seconds, surviving a server that dies and comes
  back; every ACK seen is appended to ``--acks`` as ``mac ip xid``.  With
  ``--renewers N`` the first N clients bound keep their lease: each asks for
  it again every ``--renew-every`` seconds, as REBINDING (broadcast, ciaddr)
  and INIT-REBOOT (option 50) in turn, and each ACK is appended as ``mac ip
  xid form lease-time sent got`` (when the REQUEST left and its ACK came, epoch
  seconds; a REBINDING's ACK is unicast to ciaddr, so the client namespace must
  take the pool's addresses as local).
- ``decline``: issue 18's DECLINE attack: ``--macs`` MACs each take an
  address and DECLINE it from 0.0.0.0, ``--per-mac`` times; prints the ACKs.
- ``release``: a RELEASE of ``--ip`` in ``--mac``'s name, sent from
  ``--source`` (the holder's own address, or an attacker's).
- ``flood``: ``--count`` DISCOVERs from one MAC back to back; prints how many
  were offered an address.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import socket
import sys
import time
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from tests.interop.load_window import add_load_arguments, run_window

REPO = Path(__file__).resolve().parents[2]
TWISTD = REPO / ".venv" / "bin" / "twistd"
PYTHON = REPO / ".venv" / "bin" / "python"

PXE_VENDOR = "PXEClient:Arch:00000:UNDI:002001"
UUID = bytes(range(16))


# --- the server side (used by the tests) ---------------------------------------------------


def write_config(
    path: Path,
    interfaces: str | list[str],
    state_dir: Path,
    subnets: list[dict[str, Any]] | None,
    hosts: list[dict[str, Any]] | None = None,
    **dhcp: Any,
) -> Path:
    """A pxed config serving DHCP only on ``interfaces``; ``dhcp`` overrides the dhcp section."""
    section: dict[str, Any] = {"mode": "full", "allow_unknown": True}
    if subnets is not None:
        section["subnets"] = subnets
    section.update(dhcp)
    config: dict[str, Any] = {
        "server": {
            "interfaces": [interfaces] if isinstance(interfaces, str) else interfaces,
            "state_dir": str(state_dir),
        },
        "tftp": {"enabled": False},
        "http": {"enabled": False},
        "dhcp": section,
    }
    if hosts:
        config["hosts"] = hosts
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML, and quotes every MAC
    return path


def subnet(network: IPv4Network, first: int, last: int, lease_time: int = 3600) -> dict[str, Any]:
    return {
        "network": str(network),
        "range": [str(network.network_address + first), str(network.network_address + last)],
        "router": str(network.network_address + 1),
        "lease_time": lease_time,
    }


def pxed_argv(config: Path) -> list[str]:
    return [str(TWISTD), "-n", "--pidfile=", "pxed", "--config", str(config)]


def start_pxed(ns: Any, config: Path, log: Path | None = None, timeout: float = 20.0) -> Any:
    """twistd pxed in namespace ``ns``, returned once its DHCP sockets are bound."""
    proc = ns.spawn(pxed_argv(config), log)
    proc.wait_for_output("dhcp: ", timeout=timeout)
    return proc


def runner_argv(*args: str) -> list[str]:
    """argv running this module (from the repo, so ``tests`` imports); wrap it in ``ns.argv``."""
    module = ["env", f"PYTHONPATH={REPO}", str(PYTHON), "-m", "tests.interop.dhcp_runner"]
    return [*module, *args]


def in_namespace(ns: Any, *args: str) -> list[str]:
    return ns.argv(runner_argv(*args))


# --- packets ---------------------------------------------------------------------------------

MAGIC = b"\x63\x82\x53\x63"
ZERO = IPv4Address(0)
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE = 1, 2, 3, 4, 5, 6, 7


def build(
    kind: int,
    mac: bytes,
    xid: int,
    options: list[tuple[int, bytes]],
    ciaddr: IPv4Address = ZERO,
    broadcast: bool = True,
    secs: int = 0,
) -> bytes:
    head = bytes([1, 1, 6, 0]) + xid.to_bytes(4, "big") + secs.to_bytes(2, "big")
    head += (0x8000 if broadcast else 0).to_bytes(2, "big") + ciaddr.packed + bytes(12)
    head += mac + bytes(10) + bytes(64 + 128) + MAGIC
    body = bytes([53, 1, kind])
    for code, value in options:
        body += bytes([code, len(value)]) + value
    packet = head + body + b"\xff"
    return packet + bytes(max(0, 300 - len(packet)))


@dataclass
class Parsed:
    xid: int
    yiaddr: IPv4Address
    siaddr: IPv4Address
    chaddr: bytes
    file: str
    options: dict[int, bytes]

    @property
    def kind(self) -> int:
        return self.options.get(53, b"\0")[0]

    @property
    def server_id(self) -> IPv4Address | None:
        raw = self.options.get(54)
        return IPv4Address(raw) if raw and len(raw) == 4 else None


def parse(data: bytes) -> Parsed | None:
    """Just enough of a reply to follow a conversation; None for anything else."""
    if len(data) < 240 or data[0] != 2 or data[236:240] != MAGIC:
        return None
    options: dict[int, bytes] = {}
    i = 240
    while i < len(data) and data[i] != 255:
        if data[i] == 0:
            i += 1
            continue
        if i + 1 >= len(data):
            break
        code, length = data[i], data[i + 1]
        options[code] = options.get(code, b"") + data[i + 2 : i + 2 + length]
        i += 2 + length
    return Parsed(
        int.from_bytes(data[4:8], "big"),
        IPv4Address(data[16:20]),
        IPv4Address(data[20:24]),
        data[28:34],
        data[108:236].split(b"\0")[0].decode(errors="replace"),
        options,
    )


def client_socket(interface: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
    sock.bind(("0.0.0.0", port))
    return sock


def collect(sock: socket.socket, xid: int, seconds: float) -> list[tuple[Parsed, str]]:
    """Every reply with ``xid`` for ``seconds``, with the sender address."""
    got = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([sock], [], [], left)[0]:
            break
        data, (host, _) = sock.recvfrom(65536)
        reply = parse(data)
        if reply is not None and reply.xid == xid:
            got.append((reply, host))
    return got


# --- pxe-client ------------------------------------------------------------------------------


def pxe_client(args: argparse.Namespace) -> dict[str, Any]:
    mac = bytes.fromhex(args.mac.replace(":", ""))
    xid = random.getrandbits(32)
    pxe = [(60, PXE_VENDOR.encode()), (93, b"\0\0"), (94, b"\x01\x02\x01"), (97, b"\0" + UUID)]
    prl = [(55, bytes([1, 3, 6, 43, 60, 66, 67, 97]))]
    sock = client_socket(args.interface, 68)
    port = args.server_port
    sock.sendto(build(DISCOVER, mac, xid, pxe + prl), ("255.255.255.255", port))
    offers = collect(sock, xid, args.wait)
    result: dict[str, Any] = {"offers": [_describe(o, h) for o, h in offers]}
    leases = [o for o, _ in offers if o.kind == OFFER and o.yiaddr != IPv4Address(0)]
    proxies = [o for o, _ in offers if o.kind == OFFER and o.yiaddr == IPv4Address(0)]
    if not leases:
        return result
    lease = leases[0]
    assert lease.server_id is not None
    chosen = [(50, lease.yiaddr.packed), (54, lease.server_id.packed)]
    sock.sendto(build(REQUEST, mac, xid, pxe + prl + chosen), ("255.255.255.255", port))
    acks = [a for a, _ in collect(sock, xid, args.wait) if a.kind == ACK]
    if not acks:
        return result
    address = acks[0].yiaddr
    result["address"] = str(address)
    result["address_server"] = str(lease.server_id)
    if not proxies:
        return result
    boot_server = proxies[0].siaddr if proxies[0].siaddr != IPv4Address(0) else None
    boot_server = boot_server or proxies[0].server_id
    os.system(f"ip addr add {address}/{args.prefix} dev {args.interface}")
    boot = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    boot.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    boot.bind((str(address), 4011))  # OVMF asks from 4011 and listens only there
    request = build(REQUEST, mac, xid, pxe + prl, ciaddr=address, broadcast=False)
    boot.sendto(request, (str(boot_server), 4011))
    answers = collect(boot, xid, args.wait)
    result["boot"] = [_describe(a, h) for a, h in answers]
    return result


def _describe(reply: Parsed, sender: str) -> dict[str, Any]:
    return {
        "from": sender,
        "type": reply.kind,
        "yiaddr": str(reply.yiaddr),
        "siaddr": str(reply.siaddr),
        "server_id": str(reply.server_id),
        "file": reply.file or reply.options.get(67, b"").rstrip(b"\0").decode(errors="replace"),
        "vendor_class": reply.options.get(60, b"").decode(errors="replace"),
        "uuid": reply.options.get(97, b"").hex(),
    }


# --- retry ---------------------------------------------------------------------------------


def retry(args: argparse.Namespace) -> dict[str, Any]:
    """One DISCOVER sent again unanswered, as firmware does: the same xid, each copy with
    the next of ``--secs``; stops at the first copy that gets an OFFER."""
    mac = bytes.fromhex(args.mac.replace(":", ""))
    xid = random.getrandbits(32)
    pxe = [(60, PXE_VENDOR.encode()), (93, b"\0\0"), (55, bytes([1, 3, 6, 43, 60, 66, 67]))]
    sock = client_socket(args.interface, 68)
    for copy, secs in enumerate(args.secs, 1):
        sock.sendto(build(DISCOVER, mac, xid, pxe, secs=secs), ("255.255.255.255", 67))
        offers = [o for o, _ in collect(sock, xid, args.wait) if o.kind == OFFER]
        if offers:
            return {"copy": copy, "servers": sorted({str(o.server_id) for o in offers})}
    return {"copy": None, "servers": []}


# --- load ------------------------------------------------------------------------------------


@dataclass
class Renewer:
    """A bound client asking for its lease again, on its own schedule."""

    mac: bytes
    ip: IPv4Address
    due: float  # monotonic: when it asks next
    asked: int = 0  # how many times it has asked: odd REBINDING, even INIT-REBOOT


@dataclass
class Exchange:
    mac: bytes
    xid: int
    state: int  # DISCOVER sent, or REQUEST sent
    sent: float
    offer: Parsed | None = None


def load(args: argparse.Namespace) -> dict[str, Any]:
    """Windowed DORA for fresh MACs; ACKs appended to a file as they arrive (flushed each)."""
    sock = client_socket(args.interface, 68)
    sock.setblocking(False)
    port = args.server_port
    prefix = random.getrandbits(24).to_bytes(3, "big")
    serial = 0
    out = open(args.acks, "a", buffering=1)  # noqa: SIM115 - line-buffered for the whole run
    live: dict[int, Exchange] = {}
    renewers: list[Renewer] = []
    renewing: dict[int, tuple[Renewer, str, float]] = {}  # xid: client, form, epoch sent
    acked = 0

    def start() -> None:
        nonlocal serial
        serial += 1
        mac = b"\x02" + prefix[:1] + serial.to_bytes(4, "big")
        xid = random.getrandbits(32)
        live[xid] = Exchange(mac, xid, DISCOVER, time.monotonic())
        sock.sendto(build(DISCOVER, mac, xid, []), ("255.255.255.255", port))

    def answer(data: bytes) -> None:
        nonlocal acked
        reply = parse(data)
        if reply is not None and reply.kind == ACK and reply.xid in renewing:
            renewed(*renewing.pop(reply.xid), reply)
            return
        exchange = live.get(reply.xid) if reply else None
        if reply is None or exchange is None:
            return
        if reply.kind == OFFER and exchange.state == DISCOVER:
            assert reply.server_id is not None
            exchange.state, exchange.offer, exchange.sent = REQUEST, reply, time.monotonic()
            chosen = [(50, reply.yiaddr.packed), (54, reply.server_id.packed)]
            sock.sendto(
                build(REQUEST, exchange.mac, exchange.xid, chosen), ("255.255.255.255", port)
            )
        elif reply.kind == ACK and exchange.state == REQUEST:
            out.write(f"{exchange.mac.hex(':')} {reply.yiaddr} {exchange.xid:08x}\n")
            acked += 1
            del live[reply.xid]
            if len(renewers) < args.renewers:
                due = time.monotonic() + args.renew_every
                renewers.append(Renewer(exchange.mac, reply.yiaddr, due))
        elif reply.kind == NAK:
            del live[reply.xid]

    def renewed(renewer: Renewer, form: str, sent: float, reply: Parsed) -> None:
        lease_time = int.from_bytes(reply.options.get(51, b""), "big")
        fields = (renewer.mac.hex(":"), reply.yiaddr, f"{reply.xid:08x}", form, lease_time)
        out.write(" ".join(map(str, fields)) + f" {sent:.3f} {time.time():.3f}\n")

    def renew() -> None:
        now = time.monotonic()
        for renewer in renewers:
            if renewer.due > now:
                continue
            renewer.asked += 1
            renewer.due = now + args.renew_every
            xid = random.getrandbits(32)
            if renewer.asked % 2:
                asked = build(REQUEST, renewer.mac, xid, [], ciaddr=renewer.ip)
                renewing[xid] = (renewer, "rebinding", time.time())
            else:
                asked = build(REQUEST, renewer.mac, xid, [(50, renewer.ip.packed)])
                renewing[xid] = (renewer, "init-reboot", time.time())
            sock.sendto(asked, ("255.255.255.255", port))

    run_window(sock, args, live, start, answer, renew)
    out.close()
    return {"acked": acked, "clients": serial, "renewals": sum(r.asked for r in renewers)}


# --- decline and release ---------------------------------------------------------------------


def first_reply(sock: socket.socket, xid: int, kind: int, seconds: float) -> Parsed | None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([sock], [], [], left)[0]:
            return None
        reply = parse(sock.recv(65536))
        if reply is not None and reply.xid == xid and reply.kind == kind:
            return reply
    return None


def dora(sock: socket.socket, mac: bytes, port: int, wait: float) -> Parsed | None:
    """DISCOVER, REQUEST what was offered; the ACK, or None."""
    xid = random.getrandbits(32)
    sock.sendto(build(DISCOVER, mac, xid, []), ("255.255.255.255", port))
    offer = first_reply(sock, xid, OFFER, wait)
    if offer is None or offer.server_id is None:
        return None
    chosen = [(50, offer.yiaddr.packed), (54, offer.server_id.packed)]
    sock.sendto(build(REQUEST, mac, xid, chosen), ("255.255.255.255", port))
    return first_reply(sock, xid, ACK, wait)


def decline(args: argparse.Namespace) -> dict[str, Any]:
    sock = client_socket(args.interface, 68)
    acks = []
    for serial in range(args.macs):
        mac = b"\x02\xde\xc1" + serial.to_bytes(3, "big")
        for _ in range(args.per_mac):
            ack = dora(sock, mac, args.server_port, args.wait)
            if ack is None or ack.server_id is None:
                break
            acks.append(str(ack.yiaddr))
            declined = [(50, ack.yiaddr.packed), (54, ack.server_id.packed)]
            sock.sendto(
                build(DECLINE, mac, ack.xid, declined), ("255.255.255.255", args.server_port)
            )
            time.sleep(0.05)  # let the server quarantine it before the next DISCOVER
    return {"acks": acks}


def release(args: argparse.Namespace) -> dict[str, Any]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.source, 68))
    mac = bytes.fromhex(args.mac.replace(":", ""))
    ip = IPv4Address(args.ip)
    packet = build(RELEASE, mac, random.getrandbits(32), [(54, IPv4Address(args.server).packed)],
                   ciaddr=ip, broadcast=False)  # fmt: skip
    sock.sendto(packet, (args.server, args.server_port))
    return {"sent": True}


def flood(args: argparse.Namespace) -> dict[str, Any]:
    sock = client_socket(args.interface, 68)
    mac = bytes.fromhex(args.mac.replace(":", ""))
    xids = {random.getrandbits(32) for _ in range(args.count)}
    for xid in xids:
        sock.sendto(build(DISCOVER, mac, xid, []), ("255.255.255.255", args.server_port))
    offered = set()
    deadline = time.monotonic() + args.wait
    while (left := deadline - time.monotonic()) > 0 and select.select([sock], [], [], left)[0]:
        reply = parse(sock.recv(65536))
        if reply is not None and reply.xid in xids and reply.kind == OFFER:
            offered.add(reply.xid)
    return {"sent": len(xids), "offered": len(offered)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dhcp_runner")
    commands = parser.add_subparsers(dest="command", required=True)
    pxe = commands.add_parser("pxe-client")
    pxe.add_argument("--interface", required=True)
    pxe.add_argument("--mac", default="52:54:00:aa:bb:01")
    pxe.add_argument("--prefix", type=int, default=24)
    pxe.add_argument("--server-port", type=int, default=67)
    pxe.add_argument("--wait", type=float, default=2.0)
    retrying = commands.add_parser("retry")
    retrying.add_argument("--interface", required=True)
    retrying.add_argument("--mac", required=True)
    retrying.add_argument("--secs", type=int, nargs="+", required=True)
    retrying.add_argument("--wait", type=float, default=2.0)
    generator = commands.add_parser("load")
    add_load_arguments(generator)
    generator.add_argument("--server-port", type=int, default=67)
    generator.add_argument("--renewers", type=int, default=0)
    generator.add_argument("--renew-every", type=float, default=1.0)
    declining = commands.add_parser("decline")
    declining.add_argument("--interface", required=True)
    declining.add_argument("--macs", type=int, default=1)
    declining.add_argument("--per-mac", type=int, default=1)
    declining.add_argument("--wait", type=float, default=2.0)
    declining.add_argument("--server-port", type=int, default=67)
    releasing = commands.add_parser("release")
    for option in ("--mac", "--ip", "--server", "--source"):
        releasing.add_argument(option, required=True)
    releasing.add_argument("--server-port", type=int, default=67)
    flooding = commands.add_parser("flood")
    flooding.add_argument("--interface", required=True)
    flooding.add_argument("--mac", default="52:54:00:aa:bb:66")
    flooding.add_argument("--count", type=int, default=100)
    flooding.add_argument("--wait", type=float, default=2.0)
    flooding.add_argument("--server-port", type=int, default=67)
    args = parser.parse_args(argv)
    commands_by_name = {
        "pxe-client": pxe_client,
        "retry": retry,
        "load": load,
        "decline": decline,
        "release": release,
        "flood": flood,
    }
    result = commands_by_name[args.command](args)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
