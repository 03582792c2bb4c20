"""DHCP exchanges per second: pxed (SQLite, PostgreSQL, two on one PostgreSQL) vs dnsmasq
vs Kea, perfdhcp as a relay on a bridge.

    .venv/bin/python benchmarks/dhcp.py [--seconds 3] [--rates 250,500,1000,...] [--only pxed]

Needs root (private network namespaces), perfdhcp (kea-admin), tcpdump, and
for the comparisons dnsmasq (dnsmasq-base), kea-dhcp4 (kea-dhcp4-server) and
PostgreSQL 15 (postgresql; ``lab/postgres.py`` runs a throwaway cluster on a Unix
socket, as the postgres user).

Set-up, the same for every server: a switch namespace with a bridge, two server
namespaces (.0.1 and .0.3) and a client namespace (the relay, .0.2) each on it by
a veth, a 10.213.0.0/16 network and a pool of 65,000 addresses so every exchange
of a step gets a fresh lease.  perfdhcp runs as a relay (``-l 10.213.0.2``, so
giaddr is set and replies come back unicast to giaddr:67) at a fixed rate for
``--seconds``, with as many simulated clients as exchanges.  Each step starts the
server afresh with an empty lease database (for PostgreSQL, a fresh database on
the one cluster the run starts).  The single servers (``pxed``: SQLite,
``pxed-pg``: PostgreSQL, ``dnsmasq``, ``kea``) run at .0.1 and the relay sends to
that address.  ``pxed-pg2`` is two pxed at .0.1 and .0.3 sharing one PostgreSQL
database (docs/ha.md), and the relay sends to 10.213.0.100, an address both
servers hold on their loopback and whose neighbour entry at the relay is the
broadcast MAC (``share``): the bridge floods each relayed packet to both
servers, as each DHCP helper of a real relay gets it, and each answers the clients
of its RFC 3074 bucket (docs/ha.md).  (The subnet's broadcast address would do the
same, but perfdhcp's socket lacks SO_BROADCAST: sendmsg() fails with EACCES.)  After
each ``pxed-pg2`` step the run counts, by SQL, the addresses the database holds for
two MACs, and from the capture the addresses ACKed last to two MACs (both must be 0).

Takeover (``--takeover RATE``, with ``pxed-pg2``): one more ``pxed-pg2`` run at RATE
for ``--takeover-seconds``, pxe1 killed with SIGKILL a third of the way in; from the
capture, the exchanges (DISCOVER sent, no ACK) lost by second from the kill, and
how many of those begun more than 5 s after it (the target: none); then every ACK
of the capture against the lease table: rows, ACKs, addresses ever ACKed to two
MACs, ACKs the table does not hold, addresses the table holds for two MACs (issue
16: none over at least 20,000 leases; ``--budget 0`` runs the takeover alone).

The ladder climbs until fewer than 99 % of DISCOVERs end in an ACK (``pxed-pg``
and ``pxed-pg2`` run every rate given, for a table rate by rate with the
two-server/one-server ratio); the best passing step is the server's sustained
rate.  The servers take turns at each rate, so load from elsewhere on the
machine (the load average is printed per step) hits them alike.

Per step: DORA/s (ACKs over the step), completion, average and p99 latency
from DISCOVER sent to ACK received (from a tcpdump capture on the client's
veth, matched by chaddr), the server's CPU time per exchange (utime+stime in
/proc/PID/stat; both servers' for ``pxed-pg2``), and how many leases the
server's own lease file (or database) holds afterwards.  Durability differs
(seen with strace, one exchange each): pxed fsyncs its SQLite WAL once per batch
before the batch's ACKs leave (on PostgreSQL, one COMMIT per batch with
synchronous_commit on); dnsmasq rewrites and fsyncs its lease file before every
ACK; Kea's memfile appends the lease to its CSV with write() and never fsyncs, so
a Kea lease survives a crash of Kea but not of the machine.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import psycopg

from benchmarks import dhcp_ladder
from lab import postgres
from lab.netns import Namespace, NetnsLab
from lab.postgres import PostgresServer, PostgresUnavailable

NETWORK = IPv4Network("10.213.0.0/16")
SERVER_IP = NETWORK.network_address + 1
RELAY_IP = NETWORK.network_address + 2
SHARED_IP = NETWORK.network_address + 100  # both servers' (pxed-pg2), on every port
POOL = (NETWORK.network_address + 256, NETWORK.broadcast_address - 1)
RATES = (250, 500, 1000, 1500, 2000, 2500, 3000, 4000, 5000, 6000, 8000)
STARTUP = 60.0  # seconds a server may take to listen (a loaded machine is slow)


@dataclass
class Step(dhcp_ladder.Step):
    """One server at one rate (``answered``: the ACKs)."""

    doubles: tuple[int, int] | None = None  # pxed-pg2: (in the database, ACKed last)
    by_server: str = ""  # pxed-pg2: leases each server bound, binds refused
    database_cpu: float = 0.0  # PostgreSQL's backends, over the step


# --- servers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """Where the servers run: namespaces and bridge ports at .0.1 and .0.3, and the
    PostgreSQL cluster the run started (None without PostgreSQL)."""

    first: tuple[Namespace, str]
    second: tuple[Namespace, str]
    database: PostgresServer | None


class Server(dhcp_ladder.Server):
    """One server under test at .0.1 (``target``: where the relay sends)."""

    target = SERVER_IP
    climbs_past_failure = False  # True: every rate given, for a rate-by-rate table
    port = 67
    startup = STARTUP

    def __init__(self, site: Site, work: Path) -> None:
        super().__init__(*site.first, work)
        self.site = site

    def doubles(self, pcap: Path) -> tuple[int, int] | None:
        """Addresses held by two MACs, where two servers share a pool; None elsewhere."""
        return None

    def by_server(self) -> str:
        """Leases each server bound, where two servers share a pool; "" elsewhere."""
        return ""


def pxed_argv(work: Path, interface: str, server: dict[str, str]) -> list[str]:
    config = {
        "server": {"interfaces": [interface], "state_dir": str(work / "state"), **server},
        "tftp": {"enabled": False},
        "http": {"enabled": False},
        "logging": {"level": "info"},
        "dhcp": {
            "mode": "full",
            "allow_unknown": True,
            "subnets": [{"network": str(NETWORK), "range": [str(a) for a in POOL]}],
        },
    }
    return dhcp_ladder.twistd_argv(work, config)


class Pxed(Server):
    name = "pxed"

    def argv(self) -> list[str]:
        return pxed_argv(self.work, self.interface, {})

    def leases(self) -> int:
        path = self.work / "state" / "leases.sqlite3"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            return int(conn.execute("SELECT count(*) FROM leases").fetchone()[0])


_databases = itertools.count(1)


class PxedPg(Server):
    """pxed with its leases in PostgreSQL; each step on a database of its own."""

    name = "pxed-pg"
    climbs_past_failure = True

    def start(self) -> None:
        self.database = f"bench_{os.getpid()}_{next(_databases)}"
        with self._connect("postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')
        super().start()

    def _connect(self, database: str, autocommit: bool = False) -> psycopg.Connection[Any]:
        assert self.site.database is not None
        return psycopg.connect(self.site.database.url(database), autocommit=autocommit)

    def argv(self) -> list[str]:
        assert self.site.database is not None
        settings = {"database": self.site.database.url(self.database), "name": "pxe1"}
        return pxed_argv(self.work, self.interface, settings)

    def database_cpu(self) -> float:
        """The backends' CPU: every child of the postmaster (its own is idle)."""
        assert self.site.database is not None
        parent = str(self.site.database.pid)
        total = 0.0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:  # the process is gone
                continue
            if fields[1] == parent:
                total += (int(fields[11]) + int(fields[12])) / dhcp_ladder.CLOCK_TICK
        return total

    def leases(self) -> int:
        with self._connect(self.database) as conn:
            return int(conn.execute("SELECT count(*) FROM leases").fetchone()[0])  # type: ignore[index]


class PxedPgPair(PxedPg):
    """Two pxed on one PostgreSQL database, both sent every relayed packet (broadcast)."""

    name = "pxed-pg2"
    target = SHARED_IP

    def start(self) -> None:
        super().start()
        ns, interface = self.site.second
        work = self.work / "second"
        work.mkdir()
        assert self.site.database is not None
        settings = {"database": self.site.database.url(self.database), "name": "pxe2"}
        self.peer = ns.spawn(pxed_argv(work, interface, settings), work / "server.log")
        ns.wait_listening(67, timeout=STARTUP)
        assert self.proc is not None
        for proc in (self.proc, self.peer):  # each sees the other live: the split is on
            proc.wait_for_output("servers answering clients now: pxe1, pxe2", timeout=STARTUP)

    def stop(self) -> None:
        try:
            self.peer.stop()
        finally:
            super().stop()

    def cpu_seconds(self) -> float:
        return super().cpu_seconds() + dhcp_ladder.cpu_seconds(self.peer.pid)

    def doubles(self, pcap: Path) -> tuple[int, int]:
        """(addresses the database holds for two MACs, addresses ACKed last to two MACs)."""
        with self._connect(self.database) as conn:
            row = conn.execute(
                "SELECT count(*) FROM (SELECT ip FROM leases GROUP BY ip"
                " HAVING count(DISTINCT mac) > 1) AS shared"
            ).fetchone()
        last: dict[bytes, bytes] = {}
        for kind, chaddr, yiaddr, _ in _frames(pcap):
            if kind == 5:
                last[chaddr] = yiaddr
        told = sum(1 for n in Counter(last.values()).values() if n > 1)
        return int(row[0]) if row else 0, told

    def audit(self, pcap: Path) -> str:
        """Every ACK the relay saw against the lease table: no address ACKed to two MACs
        at any time, none ACKed and not stored, none held twice."""
        with self._connect(self.database) as conn:
            stored = dict(conn.execute("SELECT mac, host(ip) FROM leases").fetchall())
            row = conn.execute(
                "SELECT count(*) FROM (SELECT ip FROM leases GROUP BY ip"
                " HAVING count(DISTINCT mac) > 1) AS shared"
            ).fetchone()
        macs_of: dict[bytes, set[bytes]] = defaultdict(set)
        acks = 0
        for kind, chaddr, yiaddr, _ in _frames(pcap):
            if kind == 5:
                acks += 1
                macs_of[yiaddr].add(chaddr)
        ever_two = sum(1 for macs in macs_of.values() if len(macs) > 1)
        unstored = sum(
            1
            for yiaddr, macs in macs_of.items()
            for mac in macs
            if stored.get(mac.hex(":")) != str(IPv4Address(yiaddr))
        )
        return (
            f"{len(stored)} leases ({len(set(stored.values()))} addresses), {acks} ACKs to"
            f" {sum(map(len, macs_of.values()))} MACs; addresses ever ACKed to two MACs:"
            f" {ever_two}; ACKed (MAC, address) not in the table: {unstored}; addresses"
            f" the table holds for two MACs: {int(row[0]) if row else 0}"
        )

    def by_server(self) -> str:
        """Leases per server, and the binds the unique constraint refused (two servers'
        memories picked one address for two clients: that exchange is lost)."""
        with self._connect(self.database) as conn:
            rows = conn.execute("SELECT server, count(*) FROM leases GROUP BY server ORDER BY 1")
            split = " / ".join(f"{server} {count}" for server, count in rows)
        assert self.proc is not None
        logs = (self.proc.output(), self.peer.output())
        refused = sum(log.count("was bound meanwhile") for log in logs)
        return f"{split}; binds refused by the database: {refused}"


class Dnsmasq(Server):
    name = "dnsmasq"

    def argv(self) -> list[str]:
        dhcp_range = f"{POOL[0]},{POOL[1]},{NETWORK.netmask},1h"
        return dhcp_ladder.dnsmasq_argv(self.work, self.interface, dhcp_range, "--no-ping")

    def leases(self) -> int:
        path = self.work / "dnsmasq.leases"
        return len(path.read_text().splitlines()) if path.exists() else 0


class Kea(Server):
    name = "kea"

    def argv(self) -> list[str]:
        interfaces = {"interfaces": [self.interface], "dhcp-socket-type": "udp"}
        subnet = {"subnet": str(NETWORK), "pools": [{"pool": f"{POOL[0]} - {POOL[1]}"}]}
        return dhcp_ladder.kea_argv(self.work, 4, interfaces, subnet, {})

    def leases(self) -> int:
        return dhcp_ladder.kea_leases(self.work, 4)


SERVERS: dict[str, type[Server]] = {
    "pxed": Pxed,
    "pxed-pg": PxedPg,
    "pxed-pg2": PxedPgPair,
    "dnsmasq": Dnsmasq,
    "kea": Kea,
}
BINARIES = {
    "pxed": None,
    "pxed-pg": None,
    "pxed-pg2": None,
    "dnsmasq": "dnsmasq",
    "kea": "kea-dhcp4",
}
ON_POSTGRES = {"pxed-pg", "pxed-pg2"}


# --- one step --------------------------------------------------------------------------------


def latencies(pcap: Path) -> list[float]:
    """DISCOVER sent -> ACK received per client, in ms, from a pcap of the relay's link."""
    by_chaddr = ((kind, chaddr, stamp) for kind, chaddr, _, stamp in _frames(pcap))
    return dhcp_ladder.latencies(by_chaddr, 1, 5)


def _frames(pcap: Path) -> Iterator[tuple[int, bytes, bytes, float]]:
    """(message type, chaddr, yiaddr, time) of every DHCP frame in a pcap."""
    for frame, stamp in dhcp_ladder.pcap_frames(pcap):
        if len(frame) < 14 + 20 + 8 + 240 or frame[12:14] != b"\x08\x00":
            continue
        dhcp = frame[14 + (frame[14] & 0x0F) * 4 + 8 :]
        yield _dhcp_kind(dhcp), dhcp[28:34], dhcp[16:20], stamp


def _dhcp_kind(dhcp: bytes) -> int:
    i = 240
    while i + 2 < len(dhcp) and dhcp[i] != 255:
        if dhcp[i] == 0:
            i += 1
            continue
        if dhcp[i] == 53:
            return dhcp[i + 2]
        i += 2 + dhcp[i + 1]
    return 0


def run_step(
    client: tuple[Namespace, str], make: Callable[[], Server], rate: int, seconds: float
) -> Step:
    """One rate on a fresh server; ``client`` is perfdhcp's namespace and its veth end."""
    with dhcp_ladder.running(make) as server:
        relay = functools.partial(
            dhcp_ladder.perfdhcp_step, client[0], ["-4"], str(RELAY_IP), str(server.target),
            rate, seconds, ("DISCOVER-OFFER", "REQUEST-ACK"),
        )  # fmt: skip
        load = dhcp_ladder.offer_load(client, server, 400, relay)
        return Step(
            server.name, rate, load.sent, load.answered, seconds, latencies(load.pcap), load.cpu,
            server.leases(), server.doubles(load.pcap), server.by_server(), load.database_cpu,
        )  # fmt: skip


# --- the ladder --------------------------------------------------------------------------------


def _line(step: Step) -> str:
    return (
        dhcp_ladder.progress(step, "ACKed", "DORA")
        + (
            f" (PostgreSQL {step.database_cpu / max(step.answered, 1) * 1e3:.3f} ms)"
            if step.database_cpu
            else ""
        )
        + f", {step.leases} leases, "
        f"load average {os.getloadavg()[0]:.2f}"
        + (
            f"; addresses for two MACs: {step.doubles[0]} in the database, "
            f"{step.doubles[1]} ACKed last; leases by server: {step.by_server}"
            if step.doubles is not None
            else ""
        )
    )


def report(results: dict[str, list[Step]]) -> str:
    baseline = dhcp_ladder.best(results.get("dnsmasq", []))
    lines = dhcp_ladder.summary_header("DORA", "dnsmasq", "leases in its file", "ACK")
    durable = {
        "pxed": "yes (fsync per batch)",
        "pxed-pg": "yes (COMMIT per batch, synchronous_commit on)",
        "pxed-pg2": "yes (COMMIT per batch, synchronous_commit on)",
        "dnsmasq": "yes (fsync per lease)",
        "kea": "no (memfile: write, no fsync)",
    }
    for name, steps in results.items():
        if not steps:  # the budget was spent before its first step
            continue
        top = dhcp_ladder.best(steps)
        if top is None:
            lines.append(f"| {name} | < {steps[0].rate} | | | | | | {durable[name]} |")
            continue
        ratio = f"{top.per_second / baseline.per_second:.1f}x" if baseline else "-"
        lines.append(dhcp_ladder.summary_row(name, top, ratio, durable[name]))
    return "\n".join(lines)


def postgres_report(results: dict[str, list[Step]]) -> str:
    """pxed on SQLite, on PostgreSQL, and two on one PostgreSQL, rate by rate (issue 16:
    one on PostgreSQL >= 1,000 DORA/s at 99 %, two >= 1.6x one)."""
    names = [name for name in ("pxed", "pxed-pg", "pxed-pg2") if results.get(name)]
    rates = sorted({step.rate for name in names for step in results[name]})
    at = {(step.server, step.rate): step for name in names for step in results[name]}
    lines = [
        "| offered /s | " + " | ".join(f"{name} DORA/s (completed)" for name in names)
        + " | pxed-pg2 / pxed-pg | pxed-pg2 addresses for two MACs (SQL, ACKed last) "
        "| pxed-pg2 leases by server |",
        "|---" * (len(names) + 4) + "|",
    ]  # fmt: skip
    for rate in rates:
        cells = []
        for name in names:
            step = at.get((name, rate))
            cells.append(f"{step.per_second:.0f} ({step.completion:.1%})" if step else "-")
        one, two = at.get(("pxed-pg", rate)), at.get(("pxed-pg2", rate))
        ratio = f"{two.per_second / one.per_second:.2f}x" if one and two else "-"
        doubles = f"{two.doubles[0]}, {two.doubles[1]}" if two and two.doubles else "-"
        split = two.by_server if two else "-"
        lines.append(f"| {rate} | " + " | ".join(cells) + f" | {ratio} | {doubles} | {split} |")
    one_best, two_best = (
        dhcp_ladder.best(results.get("pxed-pg", [])),
        dhcp_ladder.best(results.get("pxed-pg2", [])),
    )
    if one_best and two_best:
        lines.append(
            f"\nSustained (best step with >= 99 % completed): pxed-pg "
            f"{one_best.per_second:.0f}, pxed-pg2 {two_best.per_second:.0f} DORA/s, "
            f"{two_best.per_second / one_best.per_second:.2f}x"
        )
    return "\n".join(lines)


def takeover(
    client: tuple[Namespace, str], make: Callable[[], Server], rate: int, seconds: int
) -> str:
    """Two servers at ``rate``, pxe1 killed with SIGKILL a third of the way in: what the
    relay lost around the kill and after it, from a capture of its link."""
    client_ns, client_if = client
    pair = make()
    assert isinstance(pair, PxedPgPair)
    pair.start()
    try:
        pcap = pair.work / "takeover.pcap"
        capture = client_ns.tcpdump(client_if, pcap, "udp port 67", snaplen=400)
        # -n: every exchange begun has until -p to finish (a -p cut would drop the last ones).
        count = rate * seconds
        argv = ["perfdhcp", "-4", "-r", str(rate), "-R", str(count), "-n", str(count)]
        argv += ["-p", str(seconds + 15), "-d", "2", "-W", "10000000"]  # 10 s for late ones
        argv += ["-l", str(RELAY_IP), str(pair.target)]
        load = client_ns.spawn(argv, pair.work / "perfdhcp.log")
        time.sleep(seconds / 3)
        assert pair.proc is not None
        os.kill(pair.proc.pid, signal.SIGKILL)
        killed = time.time()
        load.wait(seconds + 60)
        capture.stop(timeout=10.0)
    finally:
        pair.stop()
    audit = f"{pair.audit(pcap)}; leases by server: {pair.by_server()}"
    started: dict[bytes, float] = {}
    acked: set[bytes] = set()
    for kind, chaddr, _, stamp in _frames(pcap):
        if kind == 1:
            started.setdefault(chaddr, stamp)
        elif kind == 5:
            acked.add(chaddr)
    lost = Counter(int(at - killed) for mac, at in started.items() if mac not in acked)
    after = sum(1 for mac, at in started.items() if at > killed + 5 and mac not in acked)
    later = sum(1 for at in started.values() if at > killed + 5)
    return (
        f"Takeover at {rate}/s (pxe1 killed with SIGKILL {seconds / 3:.0f} s into"
        f" {seconds} s): {len(acked)}/{len(started)} exchanges ACKed; lost begun more than"
        f" 5 s after the kill: {after} of {later}; lost by second from the kill:"
        f" {dict(sorted(lost.items()))}; {audit}"
    )


def share(client: Namespace, interface: str, servers: tuple[Namespace, ...]) -> None:
    """Every packet the relay sends to SHARED_IP reaches each server: the client's
    neighbour entry for it is the broadcast MAC, so the bridge floods it, and each server
    holds the address on its loopback, so its kernel takes it in.  (perfdhcp cannot send
    to a broadcast address: its socket lacks SO_BROADCAST.)"""
    for ns in servers:
        ns.ip("addr", "add", f"{SHARED_IP}/32", "dev", "lo")
    client.ip(
        "neigh", "replace", str(SHARED_IP), "lladdr", "ff:ff:ff:ff:ff:ff",
        "dev", interface, "nud", "permanent",
    )  # fmt: skip


@contextmanager
def database(names: list[str]) -> Iterator[PostgresServer | None]:
    """The run's PostgreSQL cluster if a server in ``names`` needs one, stopped afterwards."""
    if not ON_POSTGRES & set(names):
        yield None
        return
    with postgres.cluster() as made:
        yield made.start()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    dhcp_ladder.add_arguments(parser, RATES, SERVERS)
    parser.add_argument(
        "--takeover", type=int, default=500, help="pxed-pg2 kill -9 run at this rate (0: none)"
    )
    parser.add_argument("--takeover-seconds", type=int, default=30)
    args = parser.parse_args()
    need = dhcp_ladder.unmet_need()
    if need is not None:
        print(need, file=sys.stderr)
        return 2
    names = [
        n for n in (args.only or SERVERS) if (binary := BINARIES[n]) is None or shutil.which(binary)
    ]
    try:
        postgres.require()
    except PostgresUnavailable as missing:
        print(f"skipping {', '.join(sorted(ON_POSTGRES))}: {missing}", file=sys.stderr)
        names = [n for n in names if n not in ON_POSTGRES]
    rates = [int(r) for r in args.rates.split(",")]
    with tempfile.TemporaryDirectory(prefix="pxed-bench-dhcp-") as tmp:
        work = Path(tmp)
        with NetnsLab(work, subnet=NETWORK) as lab, database(names) as db:
            bridge = lab.bridge(lab.namespace("sw"), host=None)
            first, client_ns, second = (lab.namespace(role) for role in ("srv", "cli", "srv2"))
            ports = [
                lab.attach(bridge, ns, host)
                for ns, host in ((first, 1), (client_ns, 2), (second, 3))
            ]
            share(client_ns, ports[1].b_if, (first, second))
            site = Site((first, ports[0].b_if), (second, ports[2].b_if), db)
            makers: dict[str, Callable[[], Server]] = {
                name: functools.partial(SERVERS[name], site, work / name) for name in names
            }
            client = (client_ns, ports[1].b_if)
            # The PostgreSQL ones climb every rate, for the rate-by-rate figures.
            every_rate = {name for name in makers if SERVERS[name].climbs_past_failure}
            step = functools.partial(run_step, client, seconds=args.seconds)
            results = dhcp_ladder.ladder(makers, rates, args.budget, step, _line, every_rate)
            took = ""
            if "pxed-pg2" in makers and args.takeover:
                took = takeover(client, makers["pxed-pg2"], args.takeover, args.takeover_seconds)
                print(took, flush=True)
    if any(results.values()):  # --budget 0: the takeover alone
        print()
        print(report(results))
        if ON_POSTGRES & set(results):
            print()
            print(postgres_report(results))
    if took:
        print()
        print(took)
    return 0


if __name__ == "__main__":
    sys.exit(main())
