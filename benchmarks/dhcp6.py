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
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from ipaddress import IPv6Network
from pathlib import Path

from benchmarks import dhcp_ladder
from lab.netns import Namespace, NetnsLab
from lab.procs import wait_until
from pxed.dhcp6.leases import DATABASE_NAME, read_leases6

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"

PREFIX = IPv6Network("fd00:213:6::/64")
SERVER_IP = PREFIX.network_address + 1
RELAY_IP = PREFIX.network_address + 2
POOL = (PREFIX.network_address + 0x1_0000, PREFIX.network_address + 0x1_FFFF)
RATES = (250, 500, 1000, 1500, 2000, 3000, 4000, 5000, 6000, 8000)
SOLICIT, REPLY, RELAY_FORW, RELAY_REPL = 1, 7, 12, 13


@dataclass
class Step(dhcp_ladder.Step):
    """One server at one rate (``answered``: the REPLYs)."""

    load: float  # the machine's load average after the step


# --- servers ---------------------------------------------------------------------------------


class Server(dhcp_ladder.Server):
    """One server under test at fd00:213:6::1 (``durable``: when its leases are)."""

    durable = ""
    port = 547
    startup = 20.0


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
        return dhcp_ladder.twistd_argv(self.work, config)

    def leases(self) -> int:
        path = self.work / "state" / DATABASE_NAME
        return len(read_leases6(path)) if path.exists() else 0


class Kea(Server):
    name = "kea"
    durable = "no (memfile: write, no fsync)"

    def argv(self) -> list[str]:
        # interface/address: Kea takes unicast (the relay's packets) only on an address
        # named so.
        interfaces = {"interfaces": [f"{self.interface}/{SERVER_IP}"]}
        subnet = {"subnet": str(PREFIX), "pools": [{"pool": f"{POOL[0]} - {POOL[1]}"}]}
        settings = {"server-id": {"type": "LL", "persist": False}, "preferred-lifetime": 3600}
        return dhcp_ladder.kea_argv(self.work, 6, interfaces, subnet, settings)

    def leases(self) -> int:
        return dhcp_ladder.kea_leases(self.work, 6)


class Dnsmasq(Server):
    name = "dnsmasq"
    durable = "after the REPLY (lease file fsynced once it is sent)"

    def argv(self) -> list[str]:
        dhcp_range = f"{POOL[0]},{POOL[1]},{PREFIX.prefixlen},1h"
        return dhcp_ladder.dnsmasq_argv(self.work, self.interface, dhcp_range)

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


def latencies(pcap: Path) -> list[float]:
    """SOLICIT sent -> REPLY received per client DUID, in ms, from a pcap of the relay's link."""
    return dhcp_ladder.latencies(_messages(pcap), SOLICIT, REPLY)


def _messages(pcap: Path) -> Iterator[tuple[int, bytes, float]]:
    """(inner message type, client DUID, time) of every relayed DHCPv6 frame in a pcap
    (Ethernet, IPv6 without extension headers, UDP: what perfdhcp and the servers send)."""
    for frame, stamp in dhcp_ladder.pcap_frames(pcap):
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
            yield inner[0], duid, stamp


def _option(message: bytes, start: int, code: int) -> bytes | None:
    i = start
    while i + 4 <= len(message):
        found, size = struct.unpack_from("!HH", message, i)
        if found == code:
            return message[i + 4 : i + 4 + size]
        i += 4 + size
    return None


def run_step(
    client: tuple[Namespace, str], make: Callable[[], Server], rate: int, seconds: float
) -> Step:
    """One rate on a fresh server; ``client`` is perfdhcp's namespace and its veth end."""
    client_ns, client_if = client
    with dhcp_ladder.running(make) as server:
        relay = partial(
            dhcp_ladder.perfdhcp_step, client_ns, ["-6", "-A1"], client_if, str(SERVER_IP),
            rate, seconds, ("SOLICIT-ADVERTISE", "REQUEST-REPLY"),
        )  # fmt: skip
        load = dhcp_ladder.offer_load(client, server, 300, relay)
        return Step(
            server.name, rate, load.sent, load.answered, seconds, latencies(load.pcap), load.cpu,
            server.leases(), os.getloadavg()[0],
        )  # fmt: skip


def _line(step: Step) -> str:
    return (
        dhcp_ladder.progress(step, "REPLYs", "exchanges")
        + f", {step.leases} leases, load average {step.load:.2f}"
    )


def report(results: dict[str, list[Step]]) -> str:
    baseline = dhcp_ladder.best(results.get("kea", []))
    leases = "leases stored / REPLYs"
    lines = dhcp_ladder.summary_header("exchanges", "Kea", leases, "REPLY")
    for name, steps in results.items():
        durable = SERVERS[name].durable
        top = dhcp_ladder.best(steps)
        if top is None:
            first = steps[0] if steps else None
            failed = f"< {first.rate} ({first.completion:.1%} at {first.rate})" if first else "-"
            lines.append(f"| {name} | {failed} | | | | | | {durable} |")
            continue
        ratio = f"{top.per_second / baseline.per_second:.2f}x" if baseline else "-"
        lines.append(dhcp_ladder.summary_row(name, top, ratio, durable))
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
    dhcp_ladder.add_arguments(parser, RATES, SERVERS)
    args = parser.parse_args()
    need = dhcp_ladder.unmet_need()
    if need is not None:
        print(need, file=sys.stderr)
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
            step = partial(run_step, client, seconds=args.seconds)
            results = dhcp_ladder.ladder(makers, rates, args.budget, step, _line)
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
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
