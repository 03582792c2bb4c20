"""A rack powers on at once: N PXE clients boot to their Kickstart, pxed vs dnsmasq + nginx.

    .venv/bin/python benchmarks/storm.py [--clients 50,200,500] [--only pxed] [--ramp 0] [--relayed]

Needs root (private network namespaces), dnsmasq (dnsmasq-base), nginx (nginx-light) and
the syslinux loaders (pxelinux, syslinux-common, syslinux-efi).

Set-up, the same for both sides: a server namespace and a client namespace joined by one
veth on 10.213.0.0/16 (server .0.1, the client namespace's own address .0.2). Both sides
serve the same TFTP root (pxelinux.0 + ldlinux.c32 for BIOS, syslinux.efi + ldlinux.e64
for UEFI, a kernel of 8 MiB and an initrd of 32 MiB of random bytes) and lease from the
same pool. pxed runs with its defaults (tftp.max_per_client, max_sessions, HTTP limits,
the ARP check on Kickstart fetches); it knows every client as a host with one Kickstart
profile. dnsmasq answers DHCP and TFTP (``--tftp-max`` raised from 50 to pxed's
max_sessions, 1000; ``--no-ping``: with its ping check each offer waits, and a storm's
DHCP p50 went from 7 s to 29 s at N = 500, with as many NAKs); nginx serves a static
Kickstart per MAC and a stub callback. The servers are pinned to CPU 1, the clients to
CPU 0.

``--relayed``: the clients have a segment of their own, 10.214.0.0/16 (pool
10.214.4.0/22), behind a router namespace at 10.213.0.254 / 10.214.0.1 that forwards
between the two and relays DHCP (``dnsmasq --dhcp-relay``, giaddr 10.214.0.1). Both
sides serve that network with the relay as router (option 3); pxed trusts only that relay
(``dhcp.relays``). A client whose TFTP server lies off its network routes through the
ACK's router, so TFTP and HTTP cross the router, and the server's neighbour entry is the
router's, not the client's: pxed hands the Kickstart out by the signed URL of the
client's pxelinux config.

The clients are one asyncio process (500 processes on 2 CPUs would measure the
scheduler). Each client is a machine of a rack: a macvlan of its own on the client's
veth, carrying its MAC, and its own address from DHCP, which the client puts on that
macvlan (``ip addr add``) when the ACK comes; its TFTP and HTTP sockets are bound to that
interface and address, so the server sees each client's MAC in its ARP table (pxed hands
a Kickstart only to the machine its neighbour entry names) and each its own source
address (per-client TFTP limits see what a rack makes them see). DHCP goes out of one
UDP socket on port 68 on the veth itself (broadcast flag set, as many ROMs do, so the
replies come back broadcast): the servers key on chaddr, so a packet socket forging a
source MAC per DISCOVER would add nothing they look at.

Each client, as firmware and pxelinux do:

1. dhcp: DISCOVER with option 93 (arch 0 BIOS or 7 UEFI, alternating), 60 PXEClient, 94,
   97; retried at 4, 8, 16, 32 s; then REQUEST for the offer, retried the same way;
2. loader: RRQ for the offered boot file with tsize=0 and blksize=1468, ERROR 8 after the
   OACK (the ROM's size probe), the RRQ again, then ldlinux.c32 (or .e64);
3. config: pxelinux.cfg/01-<mac>; its ``inst.ks=`` URL is where step 6 goes;
4. kernel: vmlinuz, 5. initrd: initrd.gz (TFTP, blksize 1468);
6. kickstart: GET of that URL (HTTP/1.1, from the client's own address);
7. callback: the POST the Kickstart's %post would run (its URL and token).

A TFTP transfer resends its last packet after ``--tftp-timeout`` s without progress, at
most ``--tftp-retries`` times in a row (RFC 1350). Per N and server: time until the last
client has its Kickstart, p50/p99 of each phase, failures, server CPU seconds
(utime+stime of the server processes) and peak RSS (VmHWM, summed over them). Results go
to benchmarks/results/storm-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lab.netns import Background, Namespace, NetnsLab  # noqa: E402

NETWORK = ipaddress.IPv4Network("10.213.0.0/16")
SERVER_IP = "10.213.0.1"
CLIENT_IP = "10.213.0.2"
POOL = ipaddress.IPv4Network("10.213.4.0/22")  # routed locally in the client namespace
# --relayed: the clients' own segment, behind a router that relays their DHCP.
REMOTE = ipaddress.IPv4Network("10.214.0.0/16")
REMOTE_POOL = ipaddress.IPv4Network("10.214.4.0/22")
RELAY_IP = "10.214.0.1"  # the router on the clients' segment: giaddr, and their option 3
RELAY_HOST = 254  # the router on the servers' segment, their route to the clients
RELAY_UPLINK = str(NETWORK.network_address + RELAY_HOST)
REMOTE_CLIENT_IP = "10.214.0.2"
PXED_HTTP, NGINX_HTTP = 80, 8080
MIB = 1024 * 1024
PHASES = ("dhcp", "loader", "config", "kernel", "initrd", "kickstart", "callback")
LOADERS = {
    0: ("pxelinux.0", "ldlinux.c32"),
    7: ("syslinux.efi", "ldlinux.e64"),
}
LOADER_FILES = {
    "pxelinux.0": Path("/usr/lib/PXELINUX/pxelinux.0"),
    "ldlinux.c32": Path("/usr/lib/syslinux/modules/bios/ldlinux.c32"),
    "syslinux.efi": Path("/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi"),
    "ldlinux.e64": Path("/usr/lib/syslinux/modules/efi64/ldlinux.e64"),
}
DHCP_TIMEOUTS = (4.0, 8.0, 16.0, 32.0)
SERVER_CPU, CLIENT_CPU = "1", "0"
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Segment:
    """Where the clients are: on the servers' link, or on their own behind the relay."""

    network: ipaddress.IPv4Network
    pool: ipaddress.IPv4Network
    router: str | None  # the relay, named to the clients as option 3; None on the servers' link

    @property
    def pool_range(self) -> tuple[str, str]:
        return str(self.pool.network_address + 1), str(self.pool.broadcast_address - 1)


DIRECT = Segment(NETWORK, POOL, None)
RELAYED = Segment(REMOTE, REMOTE_POOL, RELAY_IP)


# --- accounting (pure) ---------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least `fraction` of them at or below."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil without float surprises at .99
    return ordered[min(len(ordered), int(rank)) - 1]


def summarize(clients: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per-phase p50/p99 over the clients that finished the phase; the last Kickstart time.

    A client record holds `phases` {name: [start, end]} in seconds since the storm
    began and `failure` (None or why); a failed client still counts in the phases it
    finished, and the storm's "last Kickstart" is only defined when nobody failed.
    """
    phases: dict[str, dict[str, float | int | None]] = {}
    for name in PHASES:
        spans = [c["phases"][name] for c in clients if name in c["phases"]]
        durations = [end - start for start, end in spans]
        phases[name] = {
            "done": len(durations),
            "p50_s": percentile(durations, 0.50),
            "p99_s": percentile(durations, 0.99),
        }
    failures = [c for c in clients if c["failure"] is not None]
    kickstarts = [c["phases"]["kickstart"][1] for c in clients if "kickstart" in c["phases"]]
    reasons: dict[str, int] = {}
    for client in failures:
        reason = re.sub(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}|/[0-9a-f]{16,}|\d+", "N", client["failure"])
        reasons[reason] = reasons.get(reason, 0) + 1
    return {
        "clients": len(clients),
        "failures": len(failures),
        "failure_reasons": reasons,
        "last_kickstart_s": max(kickstarts) if kickstarts and not failures else None,
        "last_kickstart_of_ok_s": max(kickstarts) if kickstarts else None,
        "kickstarts": len(kickstarts),
        "dhcp_naks": sum(c.get("naks", 0) for c in clients),
        "phases": phases,
    }


# --- DHCP (client side) ----------------------------------------------------------------------

MAGIC = b"\x63\x82\x53\x63"


def dhcp_packet(kind: int, xid: int, mac: bytes, arch: int, extra: bytes = b"") -> bytes:
    """A PXE ROM's DISCOVER (1) or REQUEST (3): broadcast flag, PXE options 93/94/97/60."""
    header = struct.pack("!BBBBIHHIIII", 1, 1, 6, 0, xid, 0, 0x8000, 0, 0, 0, 0)
    header += mac + b"\0" * 10 + b"\0" * 192
    vendor = f"PXEClient:Arch:{arch:05d}:UNDI:002001".encode()
    options = bytes([53, 1, kind]) + extra
    options += bytes([55, 9, 1, 3, 43, 60, 66, 67, 128, 129, 130])
    options += bytes([57, 2]) + struct.pack("!H", 1260)
    options += bytes([93, 2]) + struct.pack("!H", arch)
    options += bytes([94, 3, 1, 2, 1])
    options += bytes([97, 17, 0]) + mac + bytes(10)
    options += bytes([60, len(vendor)]) + vendor + b"\xff"
    return header + MAGIC + options


def dhcp_reply(data: bytes) -> tuple[int, int, dict[int, bytes], str, str] | None:
    """(xid, message type, options, yiaddr, file) of a BOOTREPLY, or None if it is not one.

    siaddr, the TFTP server of a BOOTP-style answer, is folded into option 66 unless the
    server sent that option itself (a ROM prefers it to siaddr)."""
    if len(data) < 240 or data[0] != 2 or data[236:240] != MAGIC:
        return None
    xid = struct.unpack_from("!I", data, 4)[0]
    yiaddr = socket.inet_ntoa(data[16:20])
    boot_file = data[108:236].split(b"\0", 1)[0].decode(errors="replace")
    options: dict[int, bytes] = {}
    i = 240
    while i < len(data) and data[i] != 255:
        if data[i] == 0:
            i += 1
            continue
        if i + 1 >= len(data):
            break
        options[data[i]] = data[i + 2 : i + 2 + data[i + 1]]
        i += 2 + data[i + 1]
    if data[20:24] != bytes(4) and 66 not in options:  # siaddr: the TFTP server
        options[66] = socket.inet_ntoa(data[20:24]).encode()
    kind = options.get(53, b"\0")[0]
    return xid, kind, options, yiaddr, boot_file


class DhcpHub(asyncio.DatagramProtocol):
    """One socket on port 68 for every client; replies are routed to their client by xid."""

    def __init__(self) -> None:
        self.waiting: dict[int, asyncio.Queue[tuple[int, dict[int, bytes], str, str]]] = {}
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = dhcp_reply(data)
        if reply is not None and reply[0] in self.waiting:
            self.waiting[reply[0]].put_nowait(reply[1:])

    def send(self, packet: bytes) -> None:
        self.transport.sendto(packet, ("255.255.255.255", 67))


# --- TFTP (client side) ----------------------------------------------------------------------

RRQ, DATA, ACK, ERROR, OACK = 1, 3, 4, 5, 6


class TftpRead(asyncio.DatagramProtocol):
    """One RRQ as a PXE ROM reads: `done` is (bytes, content) or raises TftpFailed."""

    def __init__(self, server: str, name: str, blksize: int, probe: bool, keep: bool) -> None:
        fields = [name, "octet", "blksize", str(blksize)] + (["tsize", "0"] if probe else [])
        self.last = struct.pack("!H", RRQ) + b"".join(f.encode() + b"\0" for f in fields)
        self.target = (server, 69)
        self.peer: tuple[str, int] | None = None
        self.probe, self.keep = probe, keep
        self.blksize, self.expected, self.size = 512, 1, 0
        self.chunks: list[bytes] = []
        self.retries = 0
        self.progress = time.monotonic()
        self.transport: Any = None
        self.done: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.sendto(self.last, self.target)  # type: ignore[attr-defined]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.done.done() or len(data) < 4:
            return
        if self.peer is None:
            self.peer = addr
        elif addr != self.peer:
            return
        opcode, number = struct.unpack_from("!HH", data)
        if opcode == DATA:
            self._data(number, data[4:])
        elif opcode == OACK and self.expected == 1:
            fields = data[2:].split(b"\0")
            options = dict(zip(fields[0::2], fields[1::2], strict=False))
            self.blksize = int(options.get(b"blksize", b"512"))
            if self.probe:  # the ROM only wanted the size: it says so and moves on
                self.transport.sendto(struct.pack("!HH", ERROR, 8) + b"tsize probe\0", addr)
                self._finish(int(options.get(b"tsize", b"0")))
                return
            self._send(struct.pack("!HH", ACK, 0))
        elif opcode == ERROR:
            message = data[4:].rstrip(b"\0").decode(errors="replace")
            self._fail(f"TFTP ERROR {number}: {message}")

    def _data(self, number: int, payload: bytes) -> None:
        if number == self.expected & 0xFFFF:
            self.size += len(payload)
            if self.keep:
                self.chunks.append(payload)
            self.expected += 1
            self._send(struct.pack("!HH", ACK, number))
            if len(payload) < self.blksize:
                self._finish(self.size)
        elif number == (self.expected - 1) & 0xFFFF:
            self._send(struct.pack("!HH", ACK, number))  # our ACK was lost: say it again

    def _send(self, packet: bytes) -> None:
        self.last, self.retries, self.progress = packet, 0, time.monotonic()
        self.transport.sendto(packet, self.peer)

    def _finish(self, size: int) -> None:
        if not self.done.done():
            self.done.set_result((size, b"".join(self.chunks)))
        self.transport.close()

    def _fail(self, why: str) -> None:
        if not self.done.done():
            self.done.set_exception(TftpFailed(why))
        self.transport.close()

    def tick(self, now: float, timeout: float, retries: int) -> None:
        if self.done.done() or now - self.progress < timeout:
            return
        if self.retries >= retries:
            self._fail(f"TFTP timed out at block {self.expected} after {retries} retries")
            return
        self.retries += 1
        self.progress = now
        self.transport.sendto(self.last, self.peer or self.target)


class TftpFailed(Exception):
    """A transfer ended without its file: the server's ERROR or our retries ran out."""


# --- one client --------------------------------------------------------------------------------


@dataclass
class Client:
    index: int
    mac: bytes
    arch: int
    expect: dict[str, int]
    phases: dict[str, list[float]] = field(default_factory=dict)
    failure: str | None = None
    retries: int = 0
    naks: int = 0
    address: str = ""

    @property
    def interface(self) -> str:
        """Its macvlan in the client namespace, made by `one_run` with the client's MAC."""
        return interface_name(self.index)

    @property
    def mac_text(self) -> str:
        return ":".join(f"{b:02x}" for b in self.mac)


class Storm:
    """Every client of one run, their shared DHCP socket and the TFTP retransmit sweeper."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.hub = DhcpHub()
        self.reads: set[TftpRead] = set()
        self.started = 0.0

    def now(self) -> float:
        return time.monotonic() - self.started

    async def run(self, clients: list[Client]) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.args.interface.encode())
        sock.bind(("0.0.0.0", 68))
        await loop.create_datagram_endpoint(lambda: self.hub, sock=sock)
        sweeper = asyncio.create_task(self._sweep())
        self.started = time.monotonic()
        tasks = [asyncio.create_task(self.boot(c)) for c in clients]
        await asyncio.wait(tasks, timeout=self.args.deadline)
        sweeper.cancel()
        for task, client in zip(tasks, clients, strict=True):
            if not task.done():
                task.cancel()
                client.failure = client.failure or f"deadline of {self.args.deadline:g} s"

    async def boot(self, client: Client) -> None:
        await asyncio.sleep(self.args.ramp * client.index / max(1, self.args.count))
        phase = "dhcp"
        try:
            began = self.now()
            server, boot_file = await self.dhcp(client)
            client.phases[phase] = [began, self.now()]
            phase = "loader"
            began = self.now()
            await self.tftp(client, server, boot_file, probe=True)
            await self.tftp(client, server, boot_file)
            await self.tftp(client, server, LOADERS[client.arch][1])
            client.phases[phase] = [began, self.now()]
            phase = "config"
            began = self.now()
            config = await self.tftp(
                client, server, "pxelinux.cfg/01-" + client.mac_text.replace(":", "-"), keep=True
            )
            client.phases[phase] = [began, self.now()]
            found = re.search(rb"inst\.ks=(\S+)", config)
            if found is None:
                raise TftpFailed("the pxelinux config has no inst.ks=")
            for phase in ("kernel", "initrd"):
                began = self.now()
                await self.tftp(client, server, "vmlinuz" if phase == "kernel" else "initrd.gz")
                client.phases[phase] = [began, self.now()]
            phase = "kickstart"
            began = self.now()
            kickstart = await self.http(client, "GET", found.group(1).decode(), b"")
            client.phases[phase] = [began, self.now()]
            callback = re.search(rb"--data (token=\S+) (http://\S+)", kickstart)
            if callback is None:
                raise HttpFailed("the Kickstart has no done callback")
            phase = "callback"
            began = self.now()
            await self.http(client, "POST", callback.group(2).decode(), callback.group(1))
            client.phases[phase] = [began, self.now()]
        except (TftpFailed, HttpFailed, DhcpFailed, OSError) as exc:
            client.failure = f"{phase}: {type(exc).__name__}: {exc}"

    async def dhcp(self, client: Client) -> tuple[str, str]:
        """DORA the way a PXE ROM does; a NAK sends it back to DISCOVER, a few times."""
        for _ in DHCP_TIMEOUTS:
            try:
                return await self.dora(client)
            except DhcpNak:
                client.naks += 1
        raise DhcpFailed(f"NAK after each of {len(DHCP_TIMEOUTS)} DISCOVERs")

    async def dora(self, client: Client) -> tuple[str, str]:
        """One DISCOVER-OFFER-REQUEST-ACK; the lease goes on the client's interface."""
        xid = random.getrandbits(32)
        replies: asyncio.Queue[tuple[int, dict[int, bytes], str, str]] = asyncio.Queue()
        self.hub.waiting[xid] = replies
        try:
            offer = await self._exchange(
                client, replies, dhcp_packet(1, xid, client.mac, client.arch), 2
            )
            _, options, yiaddr, boot_file = offer
            request = bytes([50, 4]) + socket.inet_aton(yiaddr)
            if len(server_id := options.get(54, b"")) == 4:
                request += bytes([54, 4]) + server_id
            ack = await self._exchange(
                client, replies, dhcp_packet(3, xid, client.mac, client.arch, request), 5
            )
        finally:
            del self.hub.waiting[xid]
        _, ack_options, client.address, ack_file = ack
        name = ack_options.get(67, b"").rstrip(b"\0").decode() or ack_file or boot_file
        next_server = ack_options.get(66) or options.get(66, b"")
        tftp_server = next_server.rstrip(b"\0").decode() or socket.inet_ntoa(server_id)
        await self.configure(client, tftp_server, ack_options.get(3, b""))
        return tftp_server, name

    async def configure(self, client: Client, server: str, router: bytes) -> None:
        """Put the lease on the client's own interface, as the ROM's stack takes it.

        A server off the client's network (--relayed) is reached through the router the
        ACK names (option 3), by a default route of the client's interface alone: its
        sockets are bound to that interface, so only its own routes apply to them."""
        network = ipaddress.IPv4Network(self.args.network)
        for argv in lease_commands(client, network, server, router):
            proc = await asyncio.create_subprocess_exec(
                *argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            _, err = await proc.communicate()
            if proc.returncode != 0:
                raise DhcpFailed(f"{' '.join(argv)}: {err.decode().strip()}")

    def socket(self, client: Client, kind: int) -> socket.socket:
        """A socket that leaves from the client's interface and leased address."""
        sock = socket.socket(socket.AF_INET, kind)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, client.interface.encode())
        sock.bind((client.address, 0))
        sock.setblocking(False)
        return sock

    async def _exchange(
        self,
        client: Client,
        replies: asyncio.Queue[tuple[int, dict[int, bytes], str, str]],
        packet: bytes,
        want: int,
    ) -> tuple[int, dict[int, bytes], str, str]:
        for attempt, timeout in enumerate(DHCP_TIMEOUTS):
            client.retries += attempt > 0
            self.hub.send(packet)
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                try:
                    reply = await asyncio.wait_for(replies.get(), left)
                except TimeoutError:
                    break
                if reply[0] == want:
                    return reply
                if reply[0] == 6:
                    raise DhcpNak("NAK")
        raise DhcpFailed(f"no {'OFFER' if want == 2 else 'ACK'} after {len(DHCP_TIMEOUTS)} tries")

    async def tftp(
        self, client: Client, server: str, name: str, probe: bool = False, keep: bool = False
    ) -> bytes:
        loop = asyncio.get_running_loop()
        read = TftpRead(server, name, self.args.blksize, probe, keep)
        sock = self.socket(client, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        await loop.create_datagram_endpoint(lambda: read, sock=sock)
        self.reads.add(read)
        try:
            size, content = await read.done
        finally:
            self.reads.discard(read)
            client.retries += read.retries
        expected = client.expect.get(name)
        if expected is not None and size != expected:
            raise TftpFailed(f"{name}: {size} bytes, expected {expected}")
        return content

    async def http(self, client: Client, method: str, url: str, body: bytes) -> bytes:
        found = re.fullmatch(r"http://([^/:]+)(?::(\d+))?(/\S*)", url)
        if found is None:
            raise HttpFailed(f"cannot fetch {url}")
        host, port, path = found.group(1), int(found.group(2) or 80), found.group(3)
        sock = self.socket(client, socket.SOCK_STREAM)
        try:
            await asyncio.wait_for(
                asyncio.get_running_loop().sock_connect(sock, (host, port)), 30.0
            )
        except BaseException:
            sock.close()
            raise
        reader, writer = await asyncio.open_connection(sock=sock)
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
            "User-Agent: anaconda/36\r\n"
        )
        if method == "POST":
            head += "Content-Type: application/x-www-form-urlencoded\r\n"
            head += f"Content-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"\r\n" + body)
        try:
            response = await asyncio.wait_for(reader.read(), 30.0)
        finally:
            writer.close()
        status = response.split(b"\r\n", 1)[0]
        if not re.match(rb"HTTP/1\.[01] 2\d\d", status):
            raise HttpFailed(f"{method} {path}: {status.decode(errors='replace')}")
        return response.split(b"\r\n\r\n", 1)[1]

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            for read in list(self.reads):
                read.tick(now, self.args.tftp_timeout, self.args.tftp_retries)


def lease_commands(
    client: Client, network: ipaddress.IPv4Network, server: str, router: bytes
) -> list[list[str]]:
    """The `ip` commands that give `client` its lease, and a route to an off-link server."""
    commands = [
        ["ip", "addr", "add", f"{client.address}/{network.prefixlen}", "dev", client.interface]
    ]
    if ipaddress.IPv4Address(server) in network:
        return commands
    if len(router) < 4:
        raise DhcpFailed(f"the ACK names no router (option 3) to reach {server} from {network}")
    gateway = socket.inet_ntoa(router[:4])
    metric = str(client.index + 1)  # `ip route add` refuses a second default of one metric
    commands.append(
        ["ip", "route", "add", "default", "via", gateway, "dev", client.interface, "metric", metric]
    )
    return commands


class HttpFailed(Exception):
    """The Kickstart or the callback did not get a 2xx."""


class DhcpFailed(Exception):
    """No lease: the ROM's retries ran out, or the server kept saying NAK."""


class DhcpNak(DhcpFailed):
    """The server refused the REQUEST: the ROM starts again with a DISCOVER."""


def interface_name(index: int) -> str:
    return f"storm{index}"


def client_mac(index: int) -> bytes:
    return bytes([0x52, 0x54, 0x00, 0x5B, index >> 8, index & 0xFF])


def run_clients(args: argparse.Namespace) -> int:
    """The client side, inside the client namespace: prints one JSON object."""
    expect = json.loads(args.expect)
    clients = [Client(i, client_mac(i), 7 if i % 2 else 0, expect) for i in range(args.count)]
    storm = Storm(args)
    asyncio.run(storm.run(clients))
    records = [
        {
            "mac": c.mac_text,
            "arch": c.arch,
            "address": c.address,
            "phases": c.phases,
            "failure": c.failure,
            "naks": c.naks,
            "retries": c.retries,
        }
        for c in clients
    ]
    print(json.dumps(records))
    return 0


# --- servers -----------------------------------------------------------------------------------

KICKSTART_TEMPLATE = """\
# pxed storm Kickstart for {{ host.hostname }} ({{ mac }})
text
network --bootproto=dhcp --hostname={{ host.hostname }}

{{ pxed_done }}

{{ pxed_failed }}
"""

NGINX_CONF = """\
user root;
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    client_body_temp_path {prefix}/body;
    server {{
        listen {address}:{port};
        root {root};
        location / {{ }}
        location /api/ {{ return 200 "ok\\n"; }}
    }}
}}
"""


def fill_root(root: Path, kernel_mib: int, initrd_mib: int) -> dict[str, int]:
    """The TFTP root both sides serve; returns {file name: size} for the clients to check."""
    (root / "pxelinux.cfg").mkdir(parents=True)
    for name, source in LOADER_FILES.items():
        shutil.copyfile(source, root / name)
    for name, mib in (("vmlinuz", kernel_mib), ("initrd.gz", initrd_mib)):
        with (root / name).open("wb") as f:
            for _ in range(mib):
                f.write(random.randbytes(MIB))
    return {p.name: p.stat().st_size for p in root.iterdir() if p.is_file()}


def hostname(index: int) -> str:
    return f"storm{index:04d}"


class Servers:
    """One side of the comparison, started in `ns` and stopped by its PIDs."""

    name = ""

    def __init__(
        self, ns: Namespace, interface: str, work: Path, root: Path, count: int, segment: Segment
    ) -> None:
        self.ns, self.interface, self.work, self.root, self.count = ns, interface, work, root, count
        self.segment = segment
        self.procs: list[Background] = []
        work.mkdir(parents=True)

    def spawn(self, argv: list[str], log: str) -> Background:
        proc = self.ns.spawn(["taskset", "-c", SERVER_CPU, *argv], self.work / log)
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()

    def pids(self) -> set[int]:
        """Our processes and their descendants (nginx's worker, pxed's threads are in-process)."""
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rpartition(")")[2].split()
                except OSError:
                    continue
                parents[int(entry.name)] = int(fields[1])
        family = {p.pid for p in self.procs}
        for _ in range(4):
            family |= {child for child, parent in parents.items() if parent in family}
        return family

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICK
        return total

    def peak_rss_mib(self) -> float:
        total = 0
        for pid in self.pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            found = re.search(r"VmHWM:\s+(\d+) kB", status)
            total += int(found.group(1)) if found else 0
        return total / 1024


class Pxed(Servers):
    name = "pxed"

    def start(self) -> None:
        template = self.work / "storm.ks.j2"
        template.write_text(KICKSTART_TEMPLATE)
        config = pxed_config(self.work, self.interface, self.root, self.count, self.segment)
        path = self.work / "pxed.yaml"
        path.write_text(json.dumps(config))
        twistd = str(Path(sys.executable).with_name("twistd"))
        self.spawn([twistd, "-n", "--pidfile=", "pxed", "--config", str(path)], "pxed.log")
        self.ns.wait_listening(67, timeout=60.0)
        self.ns.wait_listening(69, timeout=30.0)
        self.ns.wait_listening(PXED_HTTP, "tcp", timeout=30.0)


def pxed_config(
    work: Path, interface: str, root: Path, count: int, segment: Segment
) -> dict[str, Any]:
    """pxed's defaults, one subnet (the clients'), every client a host of one profile.

    Behind the relay, that subnet names the relay as router (option 3), and dhcp.relays
    trusts the relay alone, as etc/pxed.yaml advises for a routed network: by RELAY_IP,
    its address on the clients' segment, which dnsmasq's relay sends from (not from its
    address on the servers' segment; see docs/pitfalls.md)."""
    subnet: dict[str, Any] = {
        "network": str(segment.network),
        "range": list(segment.pool_range),
        "lease_time": 3600,
    }
    dhcp: dict[str, Any] = {"mode": "full", "subnets": [subnet]}
    if segment.router is not None:
        subnet["router"] = segment.router
        dhcp["relays"] = [RELAY_IP]
    return {
        "server": {
            "address": SERVER_IP,
            "interfaces": [interface],
            "state_dir": str(work / "state"),
        },
        "tftp": {"root": str(root), "listen": [SERVER_IP]},
        "dhcp": dhcp,
        "http": {"listen": [SERVER_IP], "port": PXED_HTTP},
        "profiles": {
            "storm": {
                "kernel": "vmlinuz",
                "initrd": "initrd.gz",
                "append": "console=ttyS0,115200",
                "kickstart": str(work / "storm.ks.j2"),
            }
        },
        "hosts": [
            {"mac": client_text(i), "hostname": hostname(i), "profile": "storm"}
            for i in range(count)
        ],
        "logging": {"level": "info"},
    }


def dnsmasq_argv(interface: str, root: Path, stem: Path, segment: Segment) -> list[str]:
    """dnsmasq for DHCP and TFTP; a range on the clients' network, wherever that is.

    A range of a network dnsmasq has no interface on (the relayed one) is served to
    requests whose giaddr lies in it; its router (option 3) is then the relay, since
    dnsmasq's default, its own address, is no gateway for a client across a router."""
    first, last = segment.pool_range
    argv = [
        "dnsmasq", "--keep-in-foreground", "--log-facility=-", "--conf-file=/dev/null",
        "--user=root", "--port=0", f"--interface={interface}", "--bind-interfaces",
        "--no-ping", f"--dhcp-range={first},{last},{segment.network.netmask},1h",
        "--dhcp-lease-max=100000",
        "--dhcp-match=set:efi64,option:client-arch,7",
        "--dhcp-boot=tag:efi64,syslinux.efi", "--dhcp-boot=tag:!efi64,pxelinux.0",
        "--enable-tftp", f"--tftp-root={root}", "--tftp-max=1000",
        f"--pid-file={stem}.pid", f"--dhcp-leasefile={stem}.leases",
    ]  # fmt: skip
    if segment.router is not None:
        argv.append(f"--dhcp-option=option:router,{segment.router}")
    return argv


class DnsmasqNginx(Servers):
    name = "dnsmasq+nginx"

    def start(self) -> None:
        root = self.root
        base = f"http://{SERVER_IP}:{NGINX_HTTP}"
        http = self.work / "http"
        (http / "ks").mkdir(parents=True)
        self.work.chmod(0o755)
        for i in range(self.count):
            mac = client_text(i)
            done = f"{base}/api/hosts/{mac}/done"
            (http / "ks" / mac).write_text(
                f"# storm Kickstart for {hostname(i)} ({mac})\ntext\n"
                f"network --bootproto=dhcp --hostname={hostname(i)}\n\n%post --nochroot\n"
                f"curl -fsS -X POST --data token=static {done}\n%end\n"
            )
            (root / "pxelinux.cfg" / ("01-" + mac.replace(":", "-"))).write_text(
                "DEFAULT install\nPROMPT 0\nLABEL install\n  KERNEL vmlinuz\n  INITRD initrd.gz\n"
                f"  APPEND console=ttyS0,115200 inst.ks={base}/ks/{mac}\n  IPAPPEND 2\n"
            )
        argv = dnsmasq_argv(self.interface, root, self.work / "dnsmasq", self.segment)
        dnsmasq = self.spawn(argv, "dnsmasq.log")
        dnsmasq.wait_for_output("TFTP root is", timeout=10.0)
        prefix = self.work / "nginx"
        prefix.mkdir()
        conf = prefix / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(prefix=prefix, address=SERVER_IP, port=NGINX_HTTP, root=http)
        )
        self.spawn(["nginx", "-p", str(prefix), "-c", str(conf)], "nginx.log")
        self.ns.wait_listening(NGINX_HTTP, "tcp", timeout=10.0)


def client_text(index: int) -> str:
    return ":".join(f"{b:02x}" for b in client_mac(index))


SIDES: dict[str, type[Servers]] = {"pxed": Pxed, "dnsmasq+nginx": DnsmasqNginx}


# --- one run -----------------------------------------------------------------------------------


def one_run(
    side: type[Servers], count: int, args: argparse.Namespace, work: Path
) -> dict[str, Any]:
    """A fresh lab and fresh servers; the storm; the servers' CPU and peak RSS."""
    work.mkdir(parents=True)
    root = work / "tftp"
    shutil.copytree(args.root, root)
    segment = RELAYED if args.relayed else DIRECT
    with NetnsLab(work, subnet=NETWORK) as lab:
        if args.relayed:
            server_ns, server_if, client_ns, client_if = relayed_links(lab, work)
        else:
            server_ns, client_ns = lab.namespace("srv"), lab.namespace("cli")
            link = lab.veth(server_ns, client_ns, 1, 2)
            server_if, client_if = link.a_if, link.b_if
        client_links(client_ns, client_if, count, work)
        servers = side(server_ns, server_if, work / "server", root, count, segment)
        try:
            servers.start()
            time.sleep(0.5)
            cpu_before = servers.cpu_seconds()
            fulls_before = neighbour_table_fulls()
            began = time.monotonic()
            argv = ["taskset", "-c", CLIENT_CPU, sys.executable, "-P", str(Path(__file__)),
                    "--client-side", "--interface", client_if, "--count", str(count),
                    "--network", str(segment.network),
                    "--expect", json.dumps(args.sizes), "--ramp", str(args.ramp),
                    "--deadline", str(args.deadline), "--blksize", str(args.blksize),
                    "--tftp-timeout", str(args.tftp_timeout),
                    "--tftp-retries", str(args.tftp_retries)]  # fmt: skip
            done = subprocess.run(
                client_ns.argv(argv), capture_output=True, text=True, timeout=args.deadline + 60
            )
            wall = time.monotonic() - began
            cpu = servers.cpu_seconds() - cpu_before
            fulls = neighbour_table_fulls() - fulls_before
            rss = servers.peak_rss_mib()
        finally:
            servers.stop()
            for logs in (servers.work, work):  # the servers', and the relay's
                keep_logs(logs, args.logs / f"{side.name}-{count}")
    if done.returncode != 0:
        raise RuntimeError(f"the clients failed:\n{done.stderr[-3000:]}")
    records = json.loads(done.stdout.strip().splitlines()[-1])
    summary = summarize(records)
    summary.update(server=side.name, wall_s=wall, server_cpu_s=cpu, server_peak_rss_mib=rss)
    summary["load_average"] = os.getloadavg()[0]
    summary["neighbour_table_fulls"] = fulls
    return {"summary": summary, "clients": records}


def relayed_links(lab: NetnsLab, work: Path) -> tuple[Namespace, str, Namespace, str]:
    """Servers, router, clients: (server namespace, its interface, client namespace, its).

    The router forwards between the servers' segment (RELAY_UPLINK) and the clients'
    (RELAY_IP), and relays DHCP with dnsmasq --dhcp-relay (no DHCP server of its own):
    it hands each broadcast DISCOVER and REQUEST to SERVER_IP with giaddr RELAY_IP, and
    each reply back as a broadcast (the flag is set). The servers reach the clients'
    network through it: replies to giaddr, TFTP and HTTP all cross it.
    """
    server_ns, router, client_ns = (lab.namespace(n) for n in ("srv", "rtr", "cli"))
    uplink = lab.veth(server_ns, router, 1, RELAY_HOST)
    downlink = lab.veth(router, client_ns)
    router.ip("addr", "add", f"{RELAY_IP}/{REMOTE.prefixlen}", "dev", downlink.a_if)
    client_ns.ip("addr", "add", f"{REMOTE_CLIENT_IP}/{REMOTE.prefixlen}", "dev", downlink.b_if)
    server_ns.ip("route", "add", str(REMOTE), "via", RELAY_UPLINK)
    router.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
    relay = router.spawn(
        ["dnsmasq", "--keep-in-foreground", "--log-facility=-", "--conf-file=/dev/null",
         "--user=root", "--port=0", f"--dhcp-relay={RELAY_IP},{SERVER_IP}",
         f"--pid-file={work / 'relay.pid'}"],
        work / "relay.log",
    )  # fmt: skip
    relay.wait_for_output("DHCP relay", timeout=10.0)
    return server_ns, uplink.a_if, client_ns, downlink.b_if


def neighbour_table_fulls() -> int:
    """How often the kernel's ARP table was full, so far: its `table_fulls` counter.

    The table is one for every namespace on the machine, capped by the root
    namespace's gc_thresh3 (1024 by default), and other work on the machine may fill
    it. A client whose neighbour entry (or the router's, for it) cannot be made then
    times out at TFTP block 1 on either server alike ("neighbor table overflow" in the
    kernel log): a count above 0 during a run says its failures are the machine's.
    """
    rows = [line.split() for line in Path("/proc/net/stat/arp_cache").read_text().splitlines()]
    column = rows[0].index("table_fulls")
    return sum(int(row[column], 16) for row in rows[1:])  # a row per CPU, in hex


def keep_logs(work: Path, into: Path) -> None:
    """The servers' logs beside the results: a failed client is explained there."""
    into.mkdir(parents=True, exist_ok=True)
    for log in work.glob("*.log"):
        shutil.copyfile(log, into / log.name)


def client_links(ns: Namespace, parent: str, count: int, work: Path) -> None:
    """A macvlan per client on the veth, with the client's MAC, up, without an address.

    The server then sees each client from its own MAC (pxed hands a Kickstart only to the
    machine its ARP entry names). arp_ignore=1: a broadcast ARP request reaches every
    macvlan, and only the one holding the address may answer it. arp_announce=2: a packet
    the kernel sends for a client without its socket (an ICMP port unreachable for a
    server's late retransmission) leaves by the veth itself, and its ARP request must not
    name the client's address, or the server would file the veth's MAC under it (seen:
    pxed then refused that client's Kickstart, and the client's device-bound TFTP socket
    no longer heard the server).
    """
    for key in ("all", "default"):
        ns.run(["sysctl", "-q", "-w", f"net.ipv4.conf.{key}.arp_ignore=1"])
        ns.run(["sysctl", "-q", "-w", f"net.ipv4.conf.{key}.arp_announce=2"])
    batch = work / "links.batch"
    lines = []
    for i in range(count):
        name = interface_name(i)
        lines.append(
            f"link add link {parent} name {name} address {client_text(i)} type macvlan mode bridge"
        )
        lines.append(f"link set {name} up")
    batch.write_text("\n".join(lines) + "\n")
    ns.run(["ip", "-batch", str(batch)], timeout=120.0)


def _line(s: dict[str, Any]) -> str:
    last = "-" if s["last_kickstart_s"] is None else f"{s['last_kickstart_s']:.1f} s"
    phases = ", ".join(
        f"{name} {_seconds(p['p50_s'])}/{_seconds(p['p99_s'])}" for name, p in s["phases"].items()
    )
    return (
        f"{s['server']:14} N={s['clients']:4}: last Kickstart {last}, "
        f"{s['failures']} failed {s['failure_reasons'] or ''}, {s['dhcp_naks']} NAKs, "
        f"CPU {s['server_cpu_s']:.1f} s, "
        f"peak RSS {s['server_peak_rss_mib']:.0f} MiB, p50/p99 {phases}, "
        f"load {s['load_average']:.1f}"
        + (
            f", ARP table full {s['neighbour_table_fulls']} times (the machine's fault)"
            if s["neighbour_table_fulls"]
            else ""
        )
    )


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(summaries: list[dict[str, Any]]) -> str:
    lines = [
        "| N | server | last Kickstart | vs dnsmasq+nginx | failed | server CPU s | peak RSS MiB "
        "| " + " | ".join(f"{p} p50/p99 s" for p in PHASES) + " |",
        "|---|---|---|---|---|---|---|" + "---|" * len(PHASES),
    ]
    reference = {
        s["clients"]: s["last_kickstart_s"] for s in summaries if s["server"] == "dnsmasq+nginx"
    }
    for s in summaries:
        last, ref = s["last_kickstart_s"], reference.get(s["clients"])
        ratio = f"{last / ref:.2f}x" if last and ref else "-"
        shown = f"{_seconds(last)} s"
        if last is None and s["last_kickstart_of_ok_s"] is not None:
            shown = f"- ({s['kickstarts']} ok by {s['last_kickstart_of_ok_s']:.1f} s)"
        phases = " | ".join(
            f"{_seconds(s['phases'][p]['p50_s'])}/{_seconds(s['phases'][p]['p99_s'])}"
            for p in PHASES
        )
        lines.append(
            f"| {s['clients']} | {s['server']} | {shown} | {ratio} | {s['failures']} "
            f"| {s['server_cpu_s']:.1f} | {s['server_peak_rss_mib']:.0f} | {phases} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="50,200,500", help="comma-separated N to run")
    parser.add_argument("--only", action="append", choices=sorted(SIDES))
    parser.add_argument("--ramp", type=float, default=0.0, help="spread the starts over s")
    parser.add_argument("--kernel-mib", type=int, default=8)
    parser.add_argument("--initrd-mib", type=int, default=32)
    parser.add_argument("--deadline", type=float, default=900.0, help="per run, in seconds")
    parser.add_argument("--blksize", type=int, default=1468)
    parser.add_argument("--tftp-timeout", type=float, default=1.0)
    parser.add_argument("--tftp-retries", type=int, default=5)
    parser.add_argument(
        "--relayed", action="store_true", help="clients on their own segment behind a DHCP relay"
    )
    # The client side, run by the above in the client namespace.
    parser.add_argument("--client-side", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--interface", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--expect", help=argparse.SUPPRESS)
    parser.add_argument("--network", default=str(NETWORK), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client_side:
        return run_clients(args)
    if os.geteuid() != 0:
        print("needs root (private network namespaces)", file=sys.stderr)
        return 2
    for tool, package in (
        ("dnsmasq", "dnsmasq-base"),
        ("nginx", "nginx-light"),
        ("ip", "iproute2"),
    ):
        if shutil.which(tool) is None:
            print(f"needs {tool} (Debian package {package})", file=sys.stderr)
            return 2
    for path in LOADER_FILES.values():
        if not path.exists():
            print(
                f"needs {path} (Debian packages pxelinux, syslinux-common, syslinux-efi)",
                file=sys.stderr,
            )
            return 2
    counts = [int(n) for n in args.clients.split(",")]
    sides = [SIDES[n] for n in (args.only or SIDES)]
    summaries, runs = [], []
    stamp = time.strftime("%Y%m%dT%H%M%S")
    results = REPO / "benchmarks" / "results"
    args.logs = results / f"storm-{stamp}-logs"
    with tempfile.TemporaryDirectory(prefix="pxed-bench-storm-") as tmp:
        args.root = Path(tmp) / "root"
        args.sizes = fill_root(args.root, args.kernel_mib, args.initrd_mib)
        for count in counts:
            for side in sides:  # alternate, so drifting load hits both alike
                run = one_run(side, count, args, Path(tmp) / f"{side.name}-{count}")
                summaries.append(run["summary"])
                runs.append(run)
                print(_line(run["summary"]), flush=True)
    print()
    print(table(summaries))
    out = results / f"storm-{stamp}.json"
    settings = {k: v for k, v in vars(args).items() if k not in ("root", "sizes", "expect", "logs")}
    out.write_text(json.dumps({"settings": settings, "runs": runs}, indent=1))
    print(f"\n(raw: {out.relative_to(REPO)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
