"""CPU per DHCP exchange inside pxed, without sockets: where a DORA's time goes.

    .venv/bin/python benchmarks/dhcp_profile.py [--clients 4000] [--batch 8] [--shape relay]
    .venv/bin/python benchmarks/dhcp_profile.py --profile 30   # cProfile, top 30 by own time

Drives the real adapter (``pxed.dhcp.service.DhcpService``) over a fake UDP
reactor with the SQLite lease store in a temporary directory (WAL,
synchronous=FULL, as the daemon runs it), the daemon's log observer at info
level writing to a file, the event bus with the daemon's subscribers, and the
configuration benchmarks/dhcp.py gives pxed (10.213.0.0/16, a 65,000-address
pool).  Each reactor turn delivers ``--batch``
DISCOVERs from fresh MACs, then the turn ends (group commit, OFFERs sent), then
their ``--batch`` REQUESTs, then the turn ends again (commit, ACKs sent).

``--shape relay`` sends what perfdhcp sends as a relay (giaddr set, a short
parameter request list); ``--shape pxe`` sends iPXE-shaped PXE requests on the
link (benchmarks/codec.py's DISCOVER).  Only the adapter's calls are timed
(``time.process_time``: user + system CPU, as benchmarks/dhcp.py reads from
/proc), so the driver's own packet building and the machine's other load do
not count; the median of ``--runs`` runs is printed, and the median of their tenth
percentiles of CPU per batch, which other processes' load disturbs least.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from twisted.logger import globalLogBeginner

from protocols.dhcp.options import ClientArch, ClientId, MessageType, NetworkInterfaceId
from protocols.dhcp.wire import DhcpPacket, encode_dhcp, make_options
from pxed.config import parse_config
from pxed.dhcp.leases import SqliteLeaseStore
from pxed.dhcp.service import DhcpService, Interface
from pxed.dhcp.settings import engine_settings
from pxed.events import EventBus
from pxed.ops.logsink import pxed_observer
from pxed.ops.metrics import HttpStats, Negotiated
from pxed.ops.timeline import Timeline, TimelineSubscriber
from tests.support.fake_udp import FakeUDPReactor

NETWORK = IPv4Network("10.213.0.0/16")
SERVER_IP = NETWORK.network_address + 1
RELAY_IP = NETWORK.network_address + 2
POOL = (NETWORK.network_address + 256, NETWORK.broadcast_address - 1)
PERFDHCP_PRL = (1, 28, 2, 3, 15, 6, 12)
PXE_PRL = (1, 3, 6, 7, 12, 15, 17, 26, 43, 60, 66, 67, 119, 128, 129, 130, 175, 203)


def config_text(state_dir: Path) -> str:
    """benchmarks/dhcp.py's pxed configuration (the interface name only labels logs)."""
    return json.dumps(
        {
            "server": {"interfaces": ["bench0"], "state_dir": str(state_dir)},
            "tftp": {"enabled": False},
            "http": {"enabled": False},
            "logging": {"level": "info"},
            "dhcp": {
                "mode": "full",
                "allow_unknown": True,
                "subnets": [{"network": str(NETWORK), "range": [str(a) for a in POOL]}],
            },
        }
    )


def client_request(shape: str, kind: MessageType, index: int, offered: IPv4Address | None) -> bytes:
    mac = (0x525400000000 + index).to_bytes(6, "big")
    options: list[tuple[int, object]] = [(53, kind)]
    if offered is not None:
        options += [(50, offered), (54, SERVER_IP)]
    if shape == "relay":
        options.append((55, PERFDHCP_PRL))
        giaddr, hops = RELAY_IP, 1
    else:
        options += [
            (57, 1472),
            (93, (ClientArch.BIOS,)),
            (94, NetworkInterfaceId(1, 2, 1)),
            (60, "PXEClient:Arch:00000:UNDI:002001"),
            (55, PXE_PRL),
            (175, bytes.fromhex("b105018086100eeb03010000170101220101130101")),
            (61, ClientId(1, mac)),
        ]
        giaddr, hops = IPv4Address(0), 0
    packet = DhcpPacket(
        xid=index, chaddr=mac, giaddr=giaddr, hops=hops, options=make_options(options)
    )
    return encode_dhcp(packet, min_size=300)


def sender(shape: str) -> tuple[str, int]:
    return (str(RELAY_IP), 67) if shape == "relay" else ("0.0.0.0", 68)


class Run:
    """One adapter with a fresh lease database; ``exchange`` does a batch of DORAs."""

    def __init__(self, state_dir: Path, shape: str) -> None:
        config = parse_config(config_text(state_dir), "bench.yaml")
        interface = Interface("bench0", SERVER_IP)
        self.reactor = FakeUDPReactor()
        self.shape = shape
        self.service = DhcpService(
            engine_settings(config, SERVER_IP),
            lambda: SqliteLeaseStore.open(state_dir),
            [interface],
            self.reactor,
            lambda name, port: _NoSocket(),
            events=daemon_events(),
        )
        self.service.privilegedStartService()
        self.service.startService()
        (self.port,) = self.reactor.open_ports
        self.cpu = 0.0
        self.batches: list[float] = []  # CPU seconds per batch of DORAs
        self.next_client = 0

    def exchange(self, batch: int) -> None:
        first = self.next_client
        self.next_client += batch
        before = self.cpu
        clients = range(first, first + batch)
        discovers = [client_request(self.shape, MessageType.DISCOVER, i, None) for i in clients]
        offers = self._turn(discovers)
        requests = [
            client_request(self.shape, MessageType.REQUEST, i, IPv4Address(offer[16:20]))
            for i, offer in zip(clients, offers, strict=True)
        ]
        acks = self._turn(requests)
        self.batches.append(self.cpu - before)
        assert all(ack[242] == MessageType.ACK for ack in acks), "not every REQUEST got an ACK"

    def _turn(self, datagrams: list[bytes]) -> list[bytes]:
        self.reactor.sent.clear()
        source = sender(self.shape)
        receive = self.port.protocol.datagramReceived
        started = time.process_time()
        for datagram in datagrams:
            receive(datagram, source)
        self.reactor.advance(0)
        self.cpu += time.process_time() - started
        return [data for _, data, _ in self.reactor.sent]


def daemon_events() -> EventBus:
    """The bus with the subscribers the daemon gives it (pxed.ops.operations)."""
    events = EventBus()
    events.subscribe(TimelineSubscriber(Timeline(known=lambda mac: False), lambda ip: None))
    events.subscribe(Negotiated())
    events.subscribe(HttpStats())
    return events


class _NoSocket:
    def fileno(self) -> int:
        return -1

    def close(self) -> None:
        pass


@contextmanager
def daemon_logging(path: Path) -> Iterator[None]:
    """The daemon's observer at info level, into a file, as twistd -n > file would."""
    with path.open("w") as sink:
        globalLogBeginner.beginLoggingTo(
            [pxed_observer("info", sink=sink)], discardBuffer=True, redirectStandardIO=False
        )
        yield


def one_run(
    work: Path, args: argparse.Namespace, profiler: cProfile.Profile | None
) -> tuple[float, float]:
    """CPU seconds per DORA over ``args.clients`` clients: the mean, and the tenth
    percentile over the batches (what a batch costs when nothing else ran on its CPU)."""
    work.mkdir()
    run = Run(work, args.shape)
    run.exchange(args.batch)  # warm the caches: the first batch is not a steady state
    run.cpu, run.batches = 0.0, []
    if profiler is not None:
        profiler.enable()
    for _ in range(args.clients // args.batch):
        run.exchange(args.batch)
    if profiler is not None:
        profiler.disable()
    run.service.stopService()
    mean = float(run.cpu) / (args.clients // args.batch * args.batch)
    return mean, statistics.quantiles(run.batches, n=10)[0] / args.batch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4000, help="DORAs per run")
    parser.add_argument("--batch", type=int, default=8, help="DISCOVERs (REQUESTs) per turn")
    parser.add_argument("--shape", choices=("relay", "pxe"), default="relay")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", type=int, metavar="N", help="cProfile one run, top N")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="pxed-dhcp-profile-") as tmp,
        daemon_logging(Path(tmp) / "pxed.log"),
    ):
        if args.profile:
            profiler = cProfile.Profile()
            one_run(Path(tmp) / "profiled", args, profiler)
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats("tottime").print_stats(args.profile)
            stats.sort_stats("cumulative").print_stats(args.profile)
            print(out.getvalue())
            return 0
        runs = [one_run(Path(tmp) / f"run{n}", args, None) for n in range(args.runs)]
    means, quick = [mean for mean, _ in runs], [p10 for _, p10 in runs]
    print(
        f"{args.shape}, {args.clients} DORAs per run, {args.batch} per turn: CPU per DORA"
        f" median {statistics.median(means) * 1e6:.0f} µs, batch p10 median"
        f" {statistics.median(quick) * 1e6:.0f} µs"
        f" (runs, mean/p10: {', '.join(f'{m * 1e6:.0f}/{q * 1e6:.0f}' for m, q in runs)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
