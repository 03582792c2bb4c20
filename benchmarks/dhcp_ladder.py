"""What benchmarks/dhcp.py and benchmarks/dhcp6.py share: the servers under test, perfdhcp
as the load, the capture it is timed from, and the ladder of rates.

Both run each server afresh for every step in a private network namespace (stopped by the
PID they started), offer perfdhcp's load as a relay agent at a fixed rate, time each
exchange from a tcpdump capture on the relay's link, and climb the rates until fewer than
99 % of the exchanges complete.  What differs by family (the namespaces and addresses, the
configs' subnets, how a capture names a client, the table) stays in the scripts.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import struct
import time
from collections import defaultdict, deque
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from lab.netns import Background, Namespace

REPO = Path(__file__).resolve().parents[1]
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
COMPLETE = 0.99  # a step passes when this share of its exchanges is answered


@dataclass
class Step:
    """One server at one rate: what perfdhcp counted, timed and cost."""

    server: str
    rate: int
    sent: int  # the exchanges perfdhcp began (DISCOVERs, SOLICITs)
    answered: int  # the exchanges that ended in an ACK (a REPLY)
    seconds: float
    latencies: list[float]
    cpu: float
    leases: int

    @property
    def completion(self) -> float:
        return self.answered / self.sent if self.sent else 0.0

    @property
    def per_second(self) -> float:
        return self.answered / self.seconds

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
        """The server's CPU per answered exchange, in ms."""
        return self.cpu / max(self.answered, 1) * 1e3


StepT = TypeVar("StepT", bound=Step)


# --- servers ---------------------------------------------------------------------------------


class Server:
    """One server under test: started fresh for a step, stopped by its PID."""

    name = ""
    port = 0  # the UDP port it is up once it listens on
    startup = 0.0  # seconds it may take to listen

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
        self.ns.wait_listening(self.port, timeout=self.startup)
        time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        return cpu_seconds(self.proc.pid)

    def argv(self) -> list[str]:
        raise NotImplementedError

    def leases(self) -> int:
        raise NotImplementedError

    def database_cpu(self) -> float:
        """CPU seconds of the database's processes so far (0 without a database)."""
        return 0.0


ServerT = TypeVar("ServerT", bound=Server)


def cpu_seconds(pid: int) -> float:
    """utime + stime of process ``pid`` so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def twistd_argv(work: Path, config: dict[str, Any]) -> list[str]:
    """`twistd -n pxed` from this checkout's venv on ``config`` (written to work/pxed.yaml)."""
    path = work / "pxed.yaml"
    path.write_text(json.dumps(config))
    twistd = REPO / ".venv" / "bin" / "twistd"
    return [str(twistd), "-n", "--pidfile=", "pxed", "--config", str(path)]


def dnsmasq_argv(work: Path, interface: str, dhcp_range: str, *extra: str) -> list[str]:
    """dnsmasq in the foreground, DHCP alone (no DNS), its lease file in ``work``."""
    return [
        "dnsmasq",
        "-d",
        "--conf-file=/dev/null",
        "--port=0",
        "--user=root",
        f"--interface={interface}",
        "--bind-interfaces",
        *extra,
        f"--dhcp-range={dhcp_range}",
        "--dhcp-lease-max=1000000",
        f"--dhcp-leasefile={work / 'dnsmasq.leases'}",
        f"--pid-file={work / 'dnsmasq.pid'}",
    ]


def kea_argv(
    work: Path,
    version: int,
    interfaces: dict[str, Any],
    subnet: dict[str, Any],
    settings: dict[str, Any],
) -> list[str]:
    """kea-dhcp4 or kea-dhcp6 (``version``) on a memfile lease CSV in ``work``, with its
    ``interfaces`` (interfaces-config), one ``subnet`` (id 1) and the family's ``settings``."""
    name = f"kea-dhcp{version}"
    config = {
        f"Dhcp{version}": {
            "interfaces-config": interfaces,
            "lease-database": {
                "type": "memfile",
                "persist": True,
                "name": str(work / f"kea-leases{version}.csv"),
                "lfc-interval": 0,
            },
            **settings,
            "valid-lifetime": 3600,
            f"subnet{version}": [{"id": 1, **subnet}],
            "loggers": [
                {
                    "name": name,
                    "output_options": [{"output": str(work / "kea.log")}],
                    "severity": "INFO",
                }
            ],
        }
    }
    path = work / f"{name}.conf"
    path.write_text(json.dumps(config))
    env = [f"KEA_PIDFILE_DIR={work}", f"KEA_LOCKFILE_DIR={work}"]
    return ["env", *env, name, "-c", str(path)]


def kea_leases(work: Path, version: int) -> int:
    """Leases in Kea's memfile CSV (its first line is the header)."""
    path = work / f"kea-leases{version}.csv"
    return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


# --- one step --------------------------------------------------------------------------------


def perfdhcp_step(
    client: Namespace,
    family: list[str],
    relay: str,
    target: str,
    rate: int,
    seconds: float,
    exchanges: tuple[str, str],
) -> tuple[int, int]:
    """perfdhcp (``family``: -4, or -6 and its relay options) at ``rate`` for ``seconds``
    (killed if it overruns), relaying from ``relay`` (-l) to ``target``: the first of
    ``exchanges`` sent, the second answered (``("DISCOVER-OFFER", "REQUEST-ACK")``:
    DISCOVERs sent, ACKs received)."""
    clients = int(rate * seconds * 1.2) + 100
    argv = ["perfdhcp", *family, "-r", str(rate), "-R", str(clients), "-p", str(int(seconds))]
    argv += ["-d", "2", "-W", "2000000", "-l", relay, target]
    done = client.run(argv, timeout=seconds + 30, check=False)
    stats = perfdhcp_counts(done.stdout)
    if set(stats) != set(exchanges):
        raise RuntimeError(f"perfdhcp said:\n{done.stdout}\n{done.stderr}")
    first, second = exchanges
    return stats[first][0], stats[second][1]


def perfdhcp_counts(output: str) -> dict[str, tuple[int, int]]:
    """(packets sent, received) by exchange, from perfdhcp's statistics blocks."""
    stats = {}
    for name, block in re.findall(r"Statistics for: ([A-Z-]+)\*+\n(.*?)\n\n", output, re.S):
        sent = int(re.search(r"sent packets: (\d+)", block).group(1))  # type: ignore[union-attr]
        got = int(re.search(r"received packets: (\d+)", block).group(1))  # type: ignore[union-attr]
        stats[name] = (sent, got)
    return stats


@contextmanager
def running(make: Callable[[], ServerT]) -> Iterator[ServerT]:
    """A server made and started for one step, stopped after it."""
    server = make()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class Load:
    """What one step's load did: perfdhcp's counts, the CPU it cost, the capture."""

    sent: int
    answered: int
    cpu: float  # the server's
    database_cpu: float  # its database's (0 without one)
    pcap: Path


def offer_load(
    client: tuple[Namespace, str],
    server: Server,
    snaplen: int,
    perfdhcp: Callable[[], tuple[int, int]],
) -> Load:
    """``perfdhcp`` (a step's run: sent, answered) against the started ``server``, with
    tcpdump of the server's port on the client's veth (``client``: its namespace and
    interface) and the CPU it cost counted."""
    client_ns, client_if = client
    pcap = server.work / "client.pcap"
    capture = client_ns.tcpdump(client_if, pcap, f"udp port {server.port}", snaplen=snaplen)
    before, database_before = server.cpu_seconds(), server.database_cpu()
    sent, answered = perfdhcp()
    cpu = server.cpu_seconds() - before
    database_cpu = server.database_cpu() - database_before
    capture.stop(timeout=10.0)
    time.sleep(0.5)  # let a lease file written after the answer (dnsmasq, Kea) land
    return Load(sent, answered, cpu, database_cpu, pcap)


def pcap_frames(pcap: Path) -> Iterator[tuple[bytes, float]]:
    """(frame, time) of every record of a classic pcap file, as tcpdump writes it."""
    data = pcap.read_bytes()
    offset = 24
    while offset + 16 <= len(data):
        sec, usec, length, _ = struct.unpack_from("<IIII", data, offset)
        yield data[offset + 16 : offset + 16 + length], sec + usec / 1e6
        offset += 16 + length


def latencies(messages: Iterable[tuple[int, bytes, float]], begin: int, end: int) -> list[float]:
    """Message type ``begin`` sent -> ``end`` received per client, in ms, from (message type,
    client, time) in capture order."""
    begun: dict[bytes, deque[float]] = defaultdict(deque)
    out = []
    for kind, client, stamp in messages:
        if kind == begin:
            begun[client].append(stamp)
        elif kind == end and begun[client]:
            out.append((stamp - begun[client].popleft()) * 1000)
    return out


# --- the ladder --------------------------------------------------------------------------------


def ladder(
    makers: dict[str, Callable[[], ServerT]],
    rates: list[int],
    budget: float,
    run: Callable[[Callable[[], ServerT], int], StepT],
    line: Callable[[StepT], str],
    every_rate: Collection[str] = (),
) -> dict[str, list[StepT]]:
    """Every server at each rate in turn (so background load hits them alike) until it
    completes fewer than 99 % (those in ``every_rate``: every rate given, for a rate-by-rate
    table), or the time budget (seconds) is spent.  ``run`` does one step of a fresh server
    at one rate; ``line`` is the step's progress line."""
    results: dict[str, list[StepT]] = {name: [] for name in makers}
    climbing = set(makers)
    started = time.monotonic()
    for rate in rates:
        for name, make in makers.items():
            if name not in climbing:
                continue
            if time.monotonic() - started > budget:
                print(f"time budget of {budget:g} s spent; the ladder stops here", flush=True)
                return results
            step = run(make, rate)
            results[name].append(step)
            print(line(step), flush=True)
            if step.completion < COMPLETE and name not in every_rate:
                climbing.discard(name)
        if not climbing:
            break
    return results


def best(steps: list[StepT]) -> StepT | None:
    """The fastest step that passed, the server's sustained rate (None: none passed)."""
    passing = [step for step in steps if step.completion >= COMPLETE]
    return max(passing, key=lambda step: step.per_second) if passing else None


def progress(step: Step, answers: str, exchanges: str) -> str:
    """How a step went, the start of its progress line (``answers``: ACKed or REPLYs,
    ``exchanges``: DORA or exchanges, counted per second)."""
    return (
        f"{step.server:8} {step.rate:6}/s: {step.answered}/{step.sent} {answers} "
        f"({step.completion:.1%}), {step.per_second:.0f} {exchanges}/s, "
        f"avg {step.average:.1f} ms p99 {step.p99:.1f} ms, "
        f"{step.cpu_ms:.3f} ms CPU/exchange"
    )


def summary_header(exchanges: str, baseline: str, leases: str, answer: str) -> list[str]:
    """The summary table's head: ``exchanges`` counted per second, the ``baseline`` server
    the ratio is against, the ``leases`` column's title, the ``answer`` leases are durable
    before."""
    return [
        f"| server | sustained {exchanges}/s | vs {baseline} | avg latency | p99 latency "
        f"| server CPU / exchange | {leases} | durable before {answer} |",
        "|---|---|---|---|---|---|---|---|",
    ]


def summary_row(name: str, top: Step, ratio: str, durable: str) -> str:
    """Server ``name``'s row of the summary table: its best step, that against the
    baseline's (``ratio``), and when its leases are durable."""
    return (
        f"| {name} | {top.per_second:.0f} (at {top.rate}/s) | {ratio} "
        f"| {top.average:.1f} ms | {top.p99:.1f} ms | {top.cpu_ms:.3f} ms "
        f"| {top.leases}/{top.answered} | {durable} |"
    )


# --- the command line ------------------------------------------------------------------------


def add_arguments(
    parser: argparse.ArgumentParser, rates: tuple[int, ...], servers: Iterable[str]
) -> None:
    """The options both ladders take."""
    parser.add_argument("--seconds", type=int, default=3, help="length of each step")
    parser.add_argument("--rates", default=",".join(map(str, rates)))
    parser.add_argument("--only", action="append", choices=sorted(servers))
    parser.add_argument("--budget", type=float, default=600.0, help="seconds in all, at most")


def unmet_need() -> str | None:
    """Why this machine cannot run a ladder (root for the namespaces, the tools), or None."""
    if os.geteuid() != 0:
        return "needs root (private network namespaces)"
    for tool in ("perfdhcp", "tcpdump", "ip"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None
