"""DHCPv6 exchanges per second: pxed vs kea-dhcp6 vs dnsmasq, perfdhcp -6 as a relay.

    .venv/bin/python benchmarks/dhcp6.py [--seconds 3] [--rates 250,500,1000,...] [--only pxed]

Needs root (private network namespaces), perfdhcp (kea-admin), tcpdump, and for the
comparisons kea-dhcp6 (kea-dhcp6-server) and dnsmasq (dnsmasq-base).  Writes its table
to benchmarks/results/dhcp6-<date>.md.

Set-up, the same for every server: a server namespace and a client namespace joined by
a veth, fd00:213:6::1 and ::2 on it (``nodad``), and a pool of 65,536 addresses so every
exchange of a step gets a fresh lease.  perfdhcp plays one relay agent (``-A1``): it
wraps each SOLICIT and REQUEST in a RELAY-FORW whose link-address and peer-address are
its own fd00:213:6::2, sends it from port 547 to the server's fd00:213:6::1, and takes
RELAY-REPLs back on 547; every server picks the subnet by that link-address, as it
would behind a real relay.  perfdhcp runs at a fixed rate for ``--seconds``, with as
many simulated clients (DUIDs) as exchanges, waits 2 s for late replies (``-W``), and
counts a reply later than 2 s (``-d``) as dropped.  Each step starts the server afresh
with an empty lease store.  pxed runs with ``dhcp6.solicit_burst`` lifted: its
per-source SOLICIT limit would otherwise take one relay's thousand clients for a flood
(neither peer has such a limit).

The ladder climbs until fewer than 99 % of SOLICITs end in a REPLY; the best passing
step is the server's sustained rate.  The servers take turns at each rate, so load from
elsewhere on the machine (the load average is printed per step) hits them alike.

Per step: exchanges/s (REPLYs over the step), completion, average and p99 latency from
SOLICIT sent to REPLY received (from a capture on the client's veth, matched by client
DUID), the server's CPU time per exchange (utime+stime from /proc/PID/stat), and the
leases the server's store holds afterwards.  Durability differs: pxed commits its SQLite
WAL (synchronous=FULL, one fsync per batch) before the batch's REPLYs leave; Kea's
memfile appends each lease to its CSV with write() and no fsync (it survives a crash of
Kea, not of the machine); dnsmasq sends the REPLY, then rewrites and fsyncs its lease
file (strace, one exchange: unlike its DHCPv4 ACK, benchmarks/dhcp.py), and dumps the
interface addresses over netlink (RTM_GETADDR) for every message it answers.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from ipaddress import IPv6Network
from pathlib import Path

from lab.netns import Background, Namespace, NetnsLab
from lab.procs import wait_until
from pxed.dhcp6.leases import DATABASE_NAME, read_leases6

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"

PREFIX = IPv6Network("fd00:213:6::/64")
SERVER_IP = PREFIX.network_address + 1
RELAY_IP = PREFIX.network_address + 2
POOL = (PREFIX.network_address + 0x1_0000, PREFIX.network_address + 0x1_FFFF)
RATES = (250, 500, 1000, 1500, 2000, 3000, 4000, 5000, 6000, 8000)
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
SOLICIT, REPLY, RELAY_FORW, RELAY_REPL = 1, 7, 12, 13


@dataclass
class Step:
    server: str
    rate: int
    sent: int
    replied: int
    seconds: float
    latencies: list[float]
    cpu: float
    leases: int
    load: float

    @property
    def completion(self) -> float:
        return self.replied / self.sent if self.sent else 0.0

    @property
    def per_second(self) -> float:
        return self.replied / self.seconds

    @property
    def p99(self) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]

    @property
    def average(self) -> float:
        return statistics.fmean(self.latencies) if self.latencies else float("nan")

    @property
    def cpu_ms(self) -> float:
        return self.cpu / max(self.replied, 1) * 1e3


# --- servers ---------------------------------------------------------------------------------


class Server:
    """One server under test: started fresh for a step, stopped by its PID."""

    name = ""
    durable = ""

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
        self.ns.wait_listening(547, timeout=20.0)
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
    durable = "yes (SQLite WAL, fsync per batch)"

    def argv(self) -> list[str]:
        subnet = {"prefix": str(PREFIX), "range": [str(a) for a in POOL], "lease_time": 3600}
        config = {
            # No server.interfaces: the veth has no IPv4 address, which they need.
            "server": {"address": "192.0.2.1", "state_dir": str(self.work / "state")},
            "tftp": {"enabled": False},
            "http": {"enabled": False},
            "logging": {"level": "info"},
            "dhcp6": {
                "mode": "full",
                "interfaces": [self.interface],
                "solicit_burst": 1_000_000,
                "subnets": [subnet],
            },
        }
        path = self.work / "pxed.yaml"
        path.write_text(json.dumps(config))
        twistd = REPO / ".venv" / "bin" / "twistd"
        return [str(twistd), "-n", "--pidfile=", "pxed", "--config", str(path)]

    def leases(self) -> int:
        path = self.work / "state" / DATABASE_NAME
        return len(read_leases6(path)) if path.exists() else 0


class Kea(Server):
    name = "kea"
    durable = "no (memfile: write, no fsync)"

    def argv(self) -> list[str]:
        config = {
            "Dhcp6": {
                # interface/address: Kea takes unicast (the relay's packets) only on an
                # address named so.
                "interfaces-config": {"interfaces": [f"{self.interface}/{SERVER_IP}"]},
                "lease-database": {
                    "type": "memfile",
                    "persist": True,
                    "name": str(self.work / "kea-leases6.csv"),
                    "lfc-interval": 0,
                },
                "server-id": {"type": "LL", "persist": False},
                "preferred-lifetime": 3600,
                "valid-lifetime": 3600,
                "subnet6": [
                    {
                        "id": 1,
                        "subnet": str(PREFIX),
                        "pools": [{"pool": f"{POOL[0]} - {POOL[1]}"}],
                    }
                ],
                "loggers": [
                    {
                        "name": "kea-dhcp6",
                        "output_options": [{"output": str(self.work / "kea.log")}],
                        "severity": "INFO",
                    }
                ],
            }
        }
        path = self.work / "kea-dhcp6.conf"
        path.write_text(json.dumps(config))
        env = [f"KEA_PIDFILE_DIR={self.work}", f"KEA_LOCKFILE_DIR={self.work}"]
        return ["env", *env, "kea-dhcp6", "-c", str(path)]

    def leases(self) -> int:
        path = self.work / "kea-leases6.csv"
        return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


class Dnsmasq(Server):
    name = "dnsmasq"
    durable = "after the REPLY (lease file fsynced once it is sent)"

    def argv(self) -> list[str]:
        return [
            "dnsmasq",
            "-d",
            "--conf-file=/dev/null",
            "--port=0",
            "--user=root",
            f"--interface={self.interface}",
            "--bind-interfaces",
            f"--dhcp-range={POOL[0]},{POOL[1]},{PREFIX.prefixlen},1h",
            "--dhcp-lease-max=1000000",
            f"--dhcp-leasefile={self.work / 'dnsmasq.leases'}",
            f"--pid-file={self.work / 'dnsmasq.pid'}",
        ]

    def leases(self) -> int:
        path = self.work / "dnsmasq.leases"
        if not path.exists():
            return 0
        # "duid <server DUID>", then "<expiry> <IAID> <address> <name> <client DUID>" a lease
        rows = [line.split() for line in path.read_text().splitlines()]
        return sum(1 for row in rows if len(row) >= 3 and ":" in row[2])


SERVERS: dict[str, type[Server]] = {"pxed": Pxed, "kea": Kea, "dnsmasq": Dnsmasq}
BINARIES = {"pxed": None, "kea": "kea-dhcp6", "dnsmasq": "dnsmasq"}


# --- one step --------------------------------------------------------------------------------


def perfdhcp_step(
    client: Namespace, interface: str, rate: int, seconds: float
) -> dict[str, tuple[int, int]]:
    """perfdhcp -6 as one relay agent at ``rate`` for ``seconds`` (killed if it overruns)."""
    clients = int(rate * seconds * 1.2) + 100
    argv = ["perfdhcp", "-6", "-A1", "-r", str(rate), "-R", str(clients), "-p", str(int(seconds))]
    argv += ["-d", "2", "-W", "2000000", "-l", interface, str(SERVER_IP)]
    done = client.run(argv, timeout=seconds + 30, check=False)
    stats = {}
    for name, block in re.findall(r"Statistics for: ([A-Z-]+)\*+\n(.*?)\n\n", done.stdout, re.S):
        sent = int(re.search(r"sent packets: (\d+)", block).group(1))  # type: ignore[union-attr]
        got = int(re.search(r"received packets: (\d+)", block).group(1))  # type: ignore[union-attr]
        stats[name] = (sent, got)
    if set(stats) != {"SOLICIT-ADVERTISE", "REQUEST-REPLY"}:
        raise RuntimeError(f"perfdhcp said:\n{done.stdout}\n{done.stderr}")
    return stats


def latencies(pcap: Path) -> list[float]:
    """SOLICIT sent -> REPLY received per client DUID, in ms, from a pcap of the relay's link."""
    solicits: dict[bytes, deque[float]] = defaultdict(deque)
    out = []
    for kind, duid, stamp in _messages(pcap):
        if kind == SOLICIT:
            solicits[duid].append(stamp)
        elif kind == REPLY and solicits[duid]:
            out.append((stamp - solicits[duid].popleft()) * 1000)
    return out


def _messages(pcap: Path) -> Iterator[tuple[int, bytes, float]]:
    """(inner message type, client DUID, time) of every relayed DHCPv6 frame in a pcap
    (Ethernet, IPv6 without extension headers, UDP: what perfdhcp and the servers send)."""
    data = pcap.read_bytes()
    offset = 24
    while offset + 16 <= len(data):
        sec, usec, length, _ = struct.unpack_from("<IIII", data, offset)
        frame = data[offset + 16 : offset + 16 + length]
        offset += 16 + length
        if frame[12:14] != b"\x86\xdd" or len(frame) < 14 + 40 + 8 + 34:
            continue
        relay = frame[14 + 40 + 8 :]
        if relay[0] not in (RELAY_FORW, RELAY_REPL):
            continue
        inner = _option(relay, 34, 9)
        if inner is None:
            continue
        duid = _option(inner, 4, 1)
        if duid is not None:
            yield inner[0], duid, sec + usec / 1e6


def _option(message: bytes, start: int, code: int) -> bytes | None:
    i = start
    while i + 4 <= len(message):
        found, size = struct.unpack_from("!HH", message, i)
        if found == code:
            return message[i + 4 : i + 4 + size]
        i += 4 + size
    return None


def run_step(
    client: tuple[Namespace, str],
    make: Callable[[], Server],
    rate: int,
    seconds: float,
) -> Step:
    client_ns, client_if = client
    server = make()
    server.start()
    try:
        pcap = server.work / "client.pcap"
        capture = client_ns.tcpdump(client_if, pcap, "udp port 547", snaplen=300)
        before = server.cpu_seconds()
        stats = perfdhcp_step(client_ns, client_if, rate, seconds)
        cpu = server.cpu_seconds() - before
        capture.stop(timeout=10.0)
        time.sleep(0.5)  # let a lease file written after the REPLY (dnsmasq, Kea) land
        sent, _ = stats["SOLICIT-ADVERTISE"]
        _, replied = stats["REQUEST-REPLY"]
        return Step(
            server.name, rate, sent, replied, seconds, latencies(pcap), cpu, server.leases(),
            os.getloadavg()[0],
        )  # fmt: skip
    finally:
        server.stop()


def ladder(
    client: tuple[Namespace, str],
    makers: dict[str, Callable[[], Server]],
    rates: list[int],
    seconds: int,
    budget: float,
) -> dict[str, list[Step]]:
    """Every server at each rate in turn (so background load hits them alike) until it
    completes fewer than 99 %, or the time budget is spent."""
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
        f"{step.server:8} {step.rate:6}/s: {step.replied}/{step.sent} REPLYs "
        f"({step.completion:.1%}), {step.per_second:.0f} exchanges/s, "
        f"avg {step.average:.1f} ms p99 {step.p99:.1f} ms, "
        f"{step.cpu_ms:.3f} ms CPU/exchange, {step.leases} leases, "
        f"load average {step.load:.2f}"
    )


def best(steps: list[Step]) -> Step | None:
    passing = [step for step in steps if step.completion >= 0.99]
    return max(passing, key=lambda step: step.per_second) if passing else None


def report(results: dict[str, list[Step]]) -> str:
    baseline = best(results.get("kea", []))
    lines = [
        "| server | sustained exchanges/s | vs Kea | avg latency | p99 latency "
        "| server CPU / exchange | leases stored / REPLYs | durable before REPLY |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, steps in results.items():
        durable = SERVERS[name].durable
        top = best(steps)
        if top is None:
            first = steps[0] if steps else None
            failed = f"< {first.rate} ({first.completion:.1%} at {first.rate})" if first else "-"
            lines.append(f"| {name} | {failed} | | | | | | {durable} |")
            continue
        ratio = f"{top.per_second / baseline.per_second:.2f}x" if baseline else "-"
        lines.append(
            f"| {name} | {top.per_second:.0f} (at {top.rate}/s) | {ratio} "
            f"| {top.average:.1f} ms | {top.p99:.1f} ms | {top.cpu_ms:.3f} ms "
            f"| {top.leases}/{top.replied} | {durable} |"
        )
    return "\n".join(lines)


def steps_table(results: dict[str, list[Step]]) -> str:
    lines = [
        "| server | offered /s | completed | exchanges/s | avg ms | p99 ms | CPU ms / exchange "
        "| load average |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for rate in sorted({step.rate for steps in results.values() for step in steps}):
        for steps in results.values():
            for s in (s for s in steps if s.rate == rate):
                lines.append(
                    f"| {s.server} | {s.rate} | {s.completion:.1%} | {s.per_second:.0f} "
                    f"| {s.average:.1f} | {s.p99:.1f} | {s.cpu_ms:.3f} | {s.load:.2f} |"
                )
    return "\n".join(lines)


def _ready(ns: Namespace, interface: str) -> bool:
    """Both addresses usable (the kernel's own link-local one past DAD: perfdhcp binds it)."""
    shown = ns.run(["ip", "-6", "addr", "show", "dev", interface]).stdout
    return "fe80::" in shown and "tentative" not in shown


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
    names = []
    for name in args.only or SERVERS:
        binary = BINARIES[name]
        if binary is None or shutil.which(binary):
            names.append(name)
        else:
            print(f"skipping {name}: {binary} is not installed", file=sys.stderr)
    rates = [int(r) for r in args.rates.split(",")]
    started = datetime.datetime.now(datetime.UTC)
    with tempfile.TemporaryDirectory(prefix="pxed-bench-dhcp6-") as tmp:
        work = Path(tmp)
        with NetnsLab(work) as lab:
            server_ns, client_ns = lab.namespace("srv"), lab.namespace("cli")
            link = lab.veth(server_ns, client_ns)
            for ns, iface, address in (
                (server_ns, link.a_if, SERVER_IP),
                (client_ns, link.b_if, RELAY_IP),
            ):
                ns.ip("-6", "addr", "add", f"{address}/{PREFIX.prefixlen}", "dev", iface, "nodad")
                wait_until(partial(_ready, ns, iface), 10, f"{iface}'s link-local address")
            makers: dict[str, Callable[[], Server]] = {
                name: partial(SERVERS[name], server_ns, link.a_if, work / name) for name in names
            }
            client = (client_ns, link.b_if)
            results = ladder(client, makers, rates, args.seconds, args.budget)
    summary, steps = report(results), steps_table(results)
    print()
    print(summary)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"dhcp6-{started:%Y-%m-%d}.md"
    out.write_text(
        f"# DHCPv6, perfdhcp -6 -A1 (one relay), {started:%Y-%m-%d %H:%M} UTC\n\n"
        f"{args.seconds} s a step, {os.cpu_count()} CPUs, commit {_commit()}.\n\n"
        f"{summary}\n\nEvery step:\n\n{steps}\n"
    )
    print(f"\nwritten to {out}")
    return 0


def _commit() -> str:
    done = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
