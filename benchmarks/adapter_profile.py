"""What benchmarks/dhcp_profile.py and benchmarks/dhcp6_profile.py share: a DHCP adapter
driven over a fake UDP reactor with only its own CPU timed, the daemon's logging, and the
runs, the cProfile report and the summary line.

Each reactor turn hands the adapter a batch of datagrams, then ends (the group commit,
the replies sent); ``time.process_time`` around the turn counts user + system CPU, as
the socket benchmarks read from /proc, so the driver's own packet building and the
machine's other load do not count.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from twisted.logger import globalLogBeginner

from pxed.ops.logsink import pxed_observer
from tests.support.fake_udp import FakeUDPReactor


class AdapterRun:
    """One adapter started over ``reactor``; ``exchange`` has a batch of fresh clients
    complete their exchanges and keeps the CPU the batch cost."""

    def __init__(self, reactor: FakeUDPReactor, service: Any) -> None:
        self.reactor = reactor
        self.service = service
        service.privilegedStartService()
        service.startService()
        (self.port,) = reactor.open_ports
        self.cpu = 0.0
        self.batches: list[float] = []  # CPU seconds per batch of exchanges
        self.next_client = 0

    def exchange(self, batch: int) -> None:
        first = self.next_client
        self.next_client += batch
        before = self.cpu
        self.exchanges(range(first, first + batch))
        self.batches.append(self.cpu - before)

    def exchanges(self, clients: range) -> None:
        """The whole exchange of each of ``clients`` (client numbers), turn by turn."""
        raise NotImplementedError

    def turn(self, datagrams: list[bytes], source: tuple[str, int]) -> list[bytes]:
        """One reactor turn: ``datagrams`` from ``source`` in, the replies it sent out."""
        self.reactor.sent.clear()
        receive = self.port.protocol.datagramReceived
        started = time.process_time()
        for datagram in datagrams:
            receive(datagram, source)
        self.reactor.advance(0)
        self.cpu += time.process_time() - started
        return [data for _, data, _ in self.reactor.sent]


class NoSocket:
    """Stands in for the adapter's bound socket: the fake reactor does the sending."""

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


def add_arguments(parser: argparse.ArgumentParser, exchanges: str, firsts: str) -> None:
    """The options both profiles take (``exchanges``: what a run counts, ``firsts``: the
    client messages that begin one)."""
    parser.add_argument("--clients", type=int, default=4000, help=f"{exchanges} per run")
    parser.add_argument("--batch", type=int, default=8, help=f"{firsts} (REQUESTs) per turn")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", type=int, metavar="N", help="cProfile one run, top N")


def one_run(
    run: AdapterRun, args: argparse.Namespace, profiler: cProfile.Profile | None
) -> tuple[float, float]:
    """CPU seconds per exchange over ``args.clients`` clients: the mean, and the tenth
    percentile over the batches (what a batch costs when nothing else ran on its CPU)."""
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
    quick = statistics.quantiles(run.batches, n=10)[0] if len(run.batches) > 1 else mean
    return mean, quick / args.batch


def profile(
    args: argparse.Namespace,
    make: Callable[[Path], AdapterRun],
    prefix: str,
    what: str,
    unit: str,
) -> None:
    """``args.runs`` runs, each on a fresh adapter ``make`` builds on a state directory
    (``prefix``: the temporary directory's), and their CPU per ``unit`` (DORA, exchange)
    after ``what`` (what a run did); with ``args.profile``, one run under cProfile and its
    top functions instead."""

    def fresh(name: str) -> AdapterRun:
        work = Path(tmp) / name
        work.mkdir()
        return make(work)

    with (
        tempfile.TemporaryDirectory(prefix=prefix) as tmp,
        daemon_logging(Path(tmp) / "pxed.log"),
    ):
        if args.profile:
            profiler = cProfile.Profile()
            one_run(fresh("profiled"), args, profiler)
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats("tottime").print_stats(args.profile)
            stats.sort_stats("cumulative").print_stats(args.profile)
            print(out.getvalue())
            return
        runs = [one_run(fresh(f"run{n}"), args, None) for n in range(args.runs)]
    means, quick = [mean for mean, _ in runs], [p10 for _, p10 in runs]
    print(
        f"{what}: CPU per {unit}"
        f" median {statistics.median(means) * 1e6:.0f} µs, batch p10 median"
        f" {statistics.median(quick) * 1e6:.0f} µs"
        f" (runs, mean/p10: {', '.join(f'{m * 1e6:.0f}/{q * 1e6:.0f}' for m, q in runs)})"
    )
