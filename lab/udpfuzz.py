"""Hostile datagrams at every UDP port of a running pxed, with its memory and latency recorded.

    .venv/bin/python -m lab.udpfuzz [--count 1000000] [--seed 1]   (as root: DHCP binds lo)

Starts ``twistd -n pxed`` on loopback (DHCP on ``lo``, TFTP, HTTP), then sends
``--count`` datagrams to each UDP port: mutations of well-formed DHCP and TFTP
messages (bit flips, cuts, growth, lengths that lie) and plain random bytes,
from many source ports. Before and after each port's run it records pxed's RSS
and the time /healthz takes, and after the run it checks that pxed still
answers a DHCP DISCOVER and a TFTP read. `make fuzz` runs it with a million
datagrams a port; tests/interop/test_udp_fuzz.py runs a CI-sized version.
Every loop is bounded in count and in time; traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import random
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

from lab.procs import Background
from protocols.dhcp.options import MessageType, Option
from protocols.dhcp.wire import DhcpPacket, encode_dhcp, make_options
from protocols.tftp.wire import Ack, Error, ReadRequest, WriteRequest, encode_tftp

TIME_BUDGET = 600.0  # seconds one port's run may take, whatever the count
MAC = "52:54:00:12:34:56"
ANYWHERE = IPv4Address(0)


def dhcp_seeds() -> list[bytes]:
    """Well-formed requests of every kind a client sends, as the mutations' starting points."""
    seeds = []
    for kind in (1, 3, 4, 7, 8):
        options = make_options(
            [
                (53, MessageType(kind)),
                (50, IPv4Address("127.0.0.150")),
                (55, [1, 3, 6, 66, 67]),
                (60, "PXEClient:Arch:00000:UNDI:002001"),
                (93, [0]),
                (12, "fuzz"),
            ]
        )
        seeds.append(_request(0x1234, options))
    return seeds


def _request(
    xid: int, options: tuple[Option, ...], ciaddr: IPv4Address = ANYWHERE, mac: str = MAC
) -> bytes:
    chaddr = bytes.fromhex(mac.replace(":", ""))
    packet = DhcpPacket(xid=xid, chaddr=chaddr, ciaddr=ciaddr, options=options)
    return encode_dhcp(packet, min_size=300)


def tftp_seeds() -> list[bytes]:
    return [
        encode_tftp(ReadRequest("pxelinux.0", "octet", (("tsize", "0"), ("blksize", "1468")))),
        encode_tftp(ReadRequest("pxelinux.cfg/default", "netascii", ())),
        encode_tftp(WriteRequest("up", "octet", ())),
        encode_tftp(Ack(1)),
        encode_tftp(Error(8, "abort")),
    ]


def mutations(seeds: list[bytes], rng: random.Random) -> Iterator[bytes]:
    """Endless hostile datagrams grown from ``seeds``: one in eight is plain random bytes."""
    while True:
        seed = bytearray(rng.choice(seeds))
        move = rng.randrange(8)
        if move == 0:
            yield rng.randbytes(rng.randrange(0, 1500))
            continue
        if move in (1, 2, 3):
            for _ in range(rng.randrange(1, 8)):
                seed[rng.randrange(len(seed))] ^= 1 << rng.randrange(8)
        elif move == 4:
            del seed[rng.randrange(len(seed)) :]
        elif move == 5:
            seed += rng.randbytes(rng.randrange(1, 600))
        elif move == 6:  # a length byte that lies, somewhere in the options area
            seed[rng.randrange(min(len(seed) - 1, 240), len(seed))] = rng.choice((0, 1, 255))
        else:
            seed[rng.randrange(len(seed))] = 0
        yield bytes(seed)


def blast(port: int, datagrams: Iterator[bytes], count: int) -> int:
    """Send up to ``count`` datagrams to 127.0.0.1:``port`` from 64 source ports; return sent."""
    senders = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(64)]
    deadline = time.monotonic() + TIME_BUDGET
    sent = 0
    try:
        for sender in senders:
            sender.bind(("127.0.0.1", 0))
            sender.setblocking(False)
        while sent < count and time.monotonic() < deadline:
            try:
                senders[sent % 64].sendto(next(datagrams), ("127.0.0.1", port))
            except (BlockingIOError, ConnectionRefusedError):
                time.sleep(0.001)  # the socket buffer is full: let pxed read
            sent += 1
            if sent % 2000 == 0:
                time.sleep(0.01)  # bounded rate: ~100,000 a second at most
    finally:
        for sender in senders:
            sender.close()
    return sent


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def healthz_ms(http_port: int) -> float:
    """The time one GET /healthz takes, in milliseconds."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", http_port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.0\r\nHost: pxed\r\n\r\n")
        while sock.recv(65536):
            pass
    return (time.monotonic() - started) * 1000


def dhcp_answers(dhcp_port: int, client_port: int, tries: int = 3) -> bool:
    """A well-formed DISCOVER from 127.0.0.1 gets an OFFER back (sent again, as clients do)."""
    return any(_offered(dhcp_port, client_port) for _ in range(tries))


def _offered(dhcp_port: int, client_port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        client.bind(("", client_port))  # the OFFER goes to ciaddr (127.0.0.2)
        options = make_options([(53, MessageType.DISCOVER)])
        # ciaddr set: answered by unicast to 127.0.0.2, never a broadcast (RFC 2131 4.1).
        # Another MAC than the fuzzed one, which its own flood has rate-limited.
        discover = _request(0x4242, options, IPv4Address("127.0.0.2"), "52:54:00:aa:00:01")
        client.sendto(discover, ("127.0.0.1", dhcp_port))
        deadline = time.monotonic() + 10
        while (left := deadline - time.monotonic()) > 0:
            client.settimeout(left)
            try:
                data = client.recv(4096)
            except TimeoutError:
                return False
            # Replies to the flood's own requests with ciaddr set may still be arriving.
            if data[0] == 2 and data[4:8] == (0x4242).to_bytes(4, "big"):
                return True
        return False


@dataclass
class PortRun:
    port: str
    sent: int
    seconds: float
    rss_before_kib: int
    rss_after_kib: int
    healthz_before_ms: float
    healthz_during_ms: float


def fuzz_port(
    name: str, port: int, seeds: list[bytes], count: int, pid: int, http_port: int, seed: int
) -> PortRun:
    rng = random.Random(seed)
    before, idle = rss_kib(pid), healthz_ms(http_port)
    started = time.monotonic()
    half = blast(port, mutations(seeds, rng), count // 2)
    during = healthz_ms(http_port)
    sent = half + blast(port, mutations(seeds, rng), count - count // 2)
    return PortRun(name, sent, time.monotonic() - started, before, rss_kib(pid), idle, during)


def table(runs: list[PortRun]) -> str:
    lines = [
        "| port | datagrams | seconds | RSS before -> after (MiB) | /healthz idle -> during (ms) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        lines.append(
            f"| {run.port} | {run.sent:,} | {run.seconds:.1f} | "
            f"{run.rss_before_kib / 1024:.1f} -> {run.rss_after_kib / 1024:.1f} | "
            f"{run.healthz_before_ms:.1f} -> {run.healthz_during_ms:.1f} |"
        )
    return "\n".join(lines)


def write_config(root: Path, ports: dict[str, int]) -> Path:
    tftp = root / "tftp"
    tftp.mkdir(exist_ok=True)
    (tftp / "pxelinux.0").write_bytes(b"loader" * 100)
    path = root / "pxed.yaml"
    path.write_text(
        f"""server: {{address: 127.0.0.1, interfaces: [lo], state_dir: {root}/state}}
tftp: {{root: {tftp}, listen: [127.0.0.1], port: {ports["tftp"]}}}
http: {{listen: [127.0.0.1], port: {ports["http"]}}}
dhcp:
  mode: full
  allow_unknown: true
  server_port: {ports["dhcp"]}
  client_port: {ports["client"]}
  subnets: [{{network: 127.0.0.0/8, range: [127.0.0.100, 127.0.0.200]}}]
"""
    )
    return path


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(root: Path) -> tuple[Background, dict[str, int]]:
    """twistd pxed on loopback with DHCP on lo; needs root (SO_BINDTODEVICE)."""
    ports = {
        "http": free_port(socket.SOCK_STREAM),
        "tftp": free_port(socket.SOCK_DGRAM),
        "dhcp": free_port(socket.SOCK_DGRAM),
        "client": free_port(socket.SOCK_DGRAM),
    }
    twistd = Path(sys.executable).parent / "twistd"
    config = write_config(root, ports)
    argv = [str(twistd), "-n", "--pidfile=", "pxed", "--config", str(config)]
    proc = Background(argv, root / "pxed.log")
    proc.wait_for_output(f"Site starting on {ports['http']}", timeout=30)
    return proc, ports


def run(root: Path, count: int, seed: int) -> tuple[list[PortRun], Background, dict[str, int]]:
    proc, ports = start(root)
    runs = [
        fuzz_port("dhcp", ports["dhcp"], dhcp_seeds(), count, proc.pid, ports["http"], seed),
        fuzz_port("tftp", ports["tftp"], tftp_seeds(), count, proc.pid, ports["http"], seed + 1),
    ]
    return runs, proc, ports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="datagrams per port")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="pxed-fuzz-") as work:
        runs, proc, ports = run(Path(work), args.count, args.seed)
        try:
            print(table(runs))
            alive = proc.running()
            answers = dhcp_answers(ports["dhcp"], ports["client"])
            print(f"pxed alive: {alive}; DHCP answers: {answers}")
        finally:
            proc.stop()
        return 0 if alive else 1


if __name__ == "__main__":
    sys.exit(main())
