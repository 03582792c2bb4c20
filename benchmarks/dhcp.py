"""DHCP exchanges per second: pxed vs dnsmasq vs Kea, perfdhcp as a relay over a veth.

    .venv/bin/python benchmarks/dhcp.py [--seconds 3] [--rates 250,500,1000,...] [--only pxed]

Needs root (private network namespaces), perfdhcp (kea-admin), tcpdump, and
for the comparisons dnsmasq (dnsmasq-base) and kea-dhcp4 (kea-dhcp4-server).

Set-up, the same for every server: a server namespace and a client namespace
joined by one veth, a 10.213.0.0/16 network (server .0.1, relay .0.2) and a
pool of 65,000 addresses so every exchange of a step gets a fresh lease.
perfdhcp runs as a relay (``-l 10.213.0.2``, so giaddr is set and replies come
back unicast to giaddr:67) at a fixed rate for ``--seconds``, with as many
simulated clients as exchanges.  Each step starts the server afresh with an
empty lease database.  The ladder climbs until fewer than 99 % of DISCOVERs
end in an ACK; the best passing step is the server's sustained rate.  The
servers take turns at each rate, so load from elsewhere on the machine (the
load average is printed per step) hits them alike.

Per step: DORA/s (ACKs over the step), completion, average and p99 latency
from DISCOVER sent to ACK received (from a tcpdump capture on the client's
veth, matched by chaddr), the server's CPU time per exchange (utime+stime in
/proc/PID/stat), and how many leases the server's own lease file holds
afterwards.  Durability differs (seen with strace, one exchange each): pxed
fsyncs its SQLite WAL once per batch before the batch's ACKs leave; dnsmasq
rewrites and fsyncs its lease file before every ACK; Kea's memfile appends the
lease to its CSV with write() and never fsyncs, so a Kea lease survives a
crash of Kea but not of the machine.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import sqlite3
import statistics
import struct
import sys
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path

from lab.netns import Background, Namespace, NetnsLab

REPO = Path(__file__).resolve().parents[1]

NETWORK = IPv4Network("10.213.0.0/16")
SERVER_IP = NETWORK.network_address + 1
RELAY_IP = NETWORK.network_address + 2
POOL = (NETWORK.network_address + 256, NETWORK.broadcast_address - 1)
RATES = (250, 500, 1000, 1500, 2000, 2500, 3000, 4000, 5000, 6000, 8000)
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Step:
    server: str
    rate: int
    sent: int
    acked: int
    seconds: float
    latencies: list[float]
    cpu: float
    leases: int

    @property
    def completion(self) -> float:
        return self.acked / self.sent if self.sent else 0.0

    @property
    def dora_per_second(self) -> float:
        return self.acked / self.seconds

    @property
    def p99(self) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]

    @property
    def average(self) -> float:
        return statistics.fmean(self.latencies) if self.latencies else float("nan")


# --- servers ---------------------------------------------------------------------------------


class Server:
    """One server under test: started fresh for a step, stopped by its PID."""

    name = ""

    def __init__(self, ns: Namespace, interface: str, work: Path) -> None:
        self.ns = ns
        self.interface = interface
        self.work = work
        self.proc: Background | None = None

    def start(self) -> None:
        if self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True)
        self.proc = self.ns.spawn(self.argv(), self.work / "server.log")
        self.ns.wait_listening(67, timeout=20.0)
        time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICK

    def argv(self) -> list[str]:
        raise NotImplementedError

    def leases(self) -> int:
        raise NotImplementedError


class Pxed(Server):
    name = "pxed"

    def argv(self) -> list[str]:
        config = {
            "server": {"interfaces": [self.interface], "state_dir": str(self.work / "state")},
            "tftp": {"enabled": False},
            "http": {"enabled": False},
            "logging": {"level": "info"},
            "dhcp": {
                "mode": "full",
                "allow_unknown": True,
                "subnets": [{"network": str(NETWORK), "range": [str(a) for a in POOL]}],
            },
        }
        path = self.work / "pxed.yaml"
        path.write_text(json.dumps(config))
        twistd = REPO / ".venv" / "bin" / "twistd"
        return [str(twistd), "-n", "--pidfile=", "pxed", "--config", str(path)]

    def leases(self) -> int:
        path = self.work / "state" / "leases.sqlite3"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            return int(conn.execute("SELECT count(*) FROM leases").fetchone()[0])


class Dnsmasq(Server):
    name = "dnsmasq"

    def argv(self) -> list[str]:
        return [
            "dnsmasq",
            "-d",
            "--conf-file=/dev/null",
            "--port=0",
            "--user=root",
            f"--interface={self.interface}",
            "--bind-interfaces",
            "--no-ping",
            f"--dhcp-range={POOL[0]},{POOL[1]},{NETWORK.netmask},1h",
            "--dhcp-lease-max=1000000",
            f"--dhcp-leasefile={self.work / 'dnsmasq.leases'}",
            f"--pid-file={self.work / 'dnsmasq.pid'}",
        ]

    def leases(self) -> int:
        path = self.work / "dnsmasq.leases"
        return len(path.read_text().splitlines()) if path.exists() else 0


class Kea(Server):
    name = "kea"

    def argv(self) -> list[str]:
        config = {
            "Dhcp4": {
                "interfaces-config": {"interfaces": [self.interface], "dhcp-socket-type": "udp"},
                "lease-database": {
                    "type": "memfile",
                    "persist": True,
                    "name": str(self.work / "kea-leases4.csv"),
                    "lfc-interval": 0,
                },
                "valid-lifetime": 3600,
                "subnet4": [
                    {
                        "id": 1,
                        "subnet": str(NETWORK),
                        "pools": [{"pool": f"{POOL[0]} - {POOL[1]}"}],
                    }
                ],
                "loggers": [
                    {
                        "name": "kea-dhcp4",
                        "output_options": [{"output": str(self.work / "kea.log")}],
                        "severity": "INFO",
                    }
                ],
            }
        }
        path = self.work / "kea-dhcp4.conf"
        path.write_text(json.dumps(config))
        env = [f"KEA_PIDFILE_DIR={self.work}", f"KEA_LOCKFILE_DIR={self.work}"]
        return ["env", *env, "kea-dhcp4", "-c", str(path)]

    def leases(self) -> int:
        path = self.work / "kea-leases4.csv"
        return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


SERVERS: dict[str, type[Server]] = {"pxed": Pxed, "dnsmasq": Dnsmasq, "kea": Kea}
BINARIES = {"pxed": None, "dnsmasq": "dnsmasq", "kea": "kea-dhcp4"}


# --- one step --------------------------------------------------------------------------------


def perfdhcp_step(client: Namespace, rate: int, seconds: float) -> dict[str, tuple[int, int]]:
    clients = int(rate * seconds * 1.2) + 100
    argv = ["perfdhcp", "-4", "-r", str(rate), "-R", str(clients), "-p", str(int(seconds))]
    argv += ["-d", "2", "-W", "2000000", "-l", str(RELAY_IP), str(SERVER_IP)]
    done = client.run(argv, timeout=seconds + 30, check=False)
    stats = {}
    for name, block in re.findall(r"Statistics for: ([A-Z-]+)\*+\n(.*?)\n\n", done.stdout, re.S):
        sent = int(re.search(r"sent packets: (\d+)", block).group(1))  # type: ignore[union-attr]
        got = int(re.search(r"received packets: (\d+)", block).group(1))  # type: ignore[union-attr]
        stats[name] = (sent, got)
    if set(stats) != {"DISCOVER-OFFER", "REQUEST-ACK"}:
        raise RuntimeError(f"perfdhcp said:\n{done.stdout}\n{done.stderr}")
    return stats


def latencies(pcap: Path) -> list[float]:
    """DISCOVER sent -> ACK received per client, in ms, from a pcap of the relay's link."""
    discovers: dict[bytes, deque[float]] = defaultdict(deque)
    out = []
    data = pcap.read_bytes()
    offset = 24
    while offset + 16 <= len(data):
        sec, usec, length, _ = struct.unpack_from("<IIII", data, offset)
        frame = data[offset + 16 : offset + 16 + length]
        offset += 16 + length
        kind, chaddr = _dhcp_kind(frame)
        stamp = sec + usec / 1e6
        if kind == 1:
            discovers[chaddr].append(stamp)
        elif kind == 5 and discovers[chaddr]:
            out.append((stamp - discovers[chaddr].popleft()) * 1000)
    return out


def _dhcp_kind(frame: bytes) -> tuple[int, bytes]:
    if len(frame) < 14 + 20 + 8 + 240 or frame[12:14] != b"\x08\x00":
        return 0, b""
    ihl = (frame[14] & 0x0F) * 4
    dhcp = frame[14 + ihl + 8 :]
    chaddr = dhcp[28:34]
    i = 240
    while i + 2 < len(dhcp) and dhcp[i] != 255:
        if dhcp[i] == 0:
            i += 1
            continue
        if dhcp[i] == 53:
            return dhcp[i + 2], chaddr
        i += 2 + dhcp[i + 1]
    return 0, chaddr


def run_step(
    client: tuple[Namespace, str], make: Callable[[], Server], rate: int, seconds: float
) -> Step:
    """One rate on a fresh server; ``client`` is perfdhcp's namespace and its veth end."""
    client_ns, client_if = client
    server = make()
    server.start()
    try:
        pcap = server.work / "client.pcap"
        capture = client_ns.tcpdump(client_if, pcap, "udp port 67", snaplen=400)
        before = server.cpu_seconds()
        stats = perfdhcp_step(client_ns, rate, seconds)
        cpu = server.cpu_seconds() - before
        capture.stop(timeout=10.0)
        time.sleep(0.5)  # let a lease file written after the ACK (dnsmasq, Kea) land
        sent, _ = stats["DISCOVER-OFFER"]
        _, acked = stats["REQUEST-ACK"]
        return Step(server.name, rate, sent, acked, seconds, latencies(pcap), cpu, server.leases())
    finally:
        server.stop()


# --- the ladder --------------------------------------------------------------------------------


def ladder(
    client: tuple[Namespace, str],
    makers: dict[str, Callable[[], Server]],
    rates: list[int],
    seconds: int,
    budget: float,
) -> dict[str, list[Step]]:
    """Every server at each rate in turn (so background load hits them alike) until it fails."""
    results: dict[str, list[Step]] = {name: [] for name in makers}
    climbing = set(makers)
    started = time.monotonic()
    for rate in rates:
        for name, make in makers.items():
            if name not in climbing:
                continue
            if time.monotonic() - started > budget:
                print(f"time budget of {budget:g} s spent; the ladder stops here", flush=True)
                return results
            step = run_step(client, make, rate, seconds)
            results[name].append(step)
            print(_line(step), flush=True)
            if step.completion < 0.99:
                climbing.discard(name)
        if not climbing:
            break
    return results


def _line(step: Step) -> str:
    return (
        f"{step.server:8} {step.rate:6}/s: {step.acked}/{step.sent} ACKed "
        f"({step.completion:.1%}), {step.dora_per_second:.0f} DORA/s, "
        f"avg {step.average:.1f} ms p99 {step.p99:.1f} ms, "
        f"{step.cpu / max(step.acked, 1) * 1e3:.3f} ms CPU/exchange, {step.leases} leases, "
        f"load average {os.getloadavg()[0]:.2f}"
    )


def best(steps: list[Step]) -> Step | None:
    passing = [step for step in steps if step.completion >= 0.99]
    return max(passing, key=lambda step: step.dora_per_second) if passing else None


def report(results: dict[str, list[Step]]) -> str:
    baseline = best(results.get("dnsmasq", []))
    lines = [
        "| server | sustained DORA/s | vs dnsmasq | avg latency | p99 latency "
        "| server CPU / exchange | leases in its file | durable before ACK |",
        "|---|---|---|---|---|---|---|---|",
    ]
    durable = {
        "pxed": "yes (fsync per batch)",
        "dnsmasq": "yes (fsync per lease)",
        "kea": "no (memfile: write, no fsync)",
    }
    for name, steps in results.items():
        top = best(steps)
        if top is None:
            lines.append(f"| {name} | < {steps[0].rate} | | | | | | {durable[name]} |")
            continue
        ratio = f"{top.dora_per_second / baseline.dora_per_second:.1f}x" if baseline else "-"
        lines.append(
            f"| {name} | {top.dora_per_second:.0f} (at {top.rate}/s) | {ratio} "
            f"| {top.average:.1f} ms | {top.p99:.1f} ms "
            f"| {top.cpu / max(top.acked, 1) * 1e3:.3f} ms | {top.leases}/{top.acked} "
            f"| {durable[name]} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=3, help="length of each step")
    parser.add_argument("--rates", default=",".join(map(str, RATES)))
    parser.add_argument("--only", action="append", choices=sorted(SERVERS))
    parser.add_argument("--budget", type=float, default=600.0, help="seconds in all, at most")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (private network namespaces)", file=sys.stderr)
        return 2
    for tool in ("perfdhcp", "tcpdump", "ip"):
        if shutil.which(tool) is None:
            print(f"needs {tool}", file=sys.stderr)
            return 2
    names = [n for n in (args.only or SERVERS) if BINARIES[n] is None or shutil.which(BINARIES[n])]
    rates = [int(r) for r in args.rates.split(",")]
    with tempfile.TemporaryDirectory(prefix="pxed-bench-dhcp-") as tmp:
        work = Path(tmp)
        with NetnsLab(work, subnet=NETWORK) as lab:
            server_ns, client_ns = lab.namespace("srv"), lab.namespace("cli")
            link = lab.veth(server_ns, client_ns, 1, 2)
            makers: dict[str, Callable[[], Server]] = {
                name: functools.partial(SERVERS[name], server_ns, link.a_if, work / name)
                for name in names
            }
            results = ladder((client_ns, link.b_if), makers, rates, args.seconds, args.budget)
    print()
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
