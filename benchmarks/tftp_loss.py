"""TFTP under random loss: how many transfers each client loses to pxed (issue 17, item 4).

    .venv/bin/python benchmarks/tftp_loss.py [--count 100] [--rates 5,10] [--clients atftp,curl]
                                             [--size 131072] [--parallel 4] [--capture DIR]

For each loss rate, pxed runs behind a veth that drops that share of UDP datagrams at
random each way (lab/tftp_loss.py: nftables in private namespaces), and every client
(atftp with and without ``timeout 1``, curl, tftp-hpa, busybox and the firmware-like
tests/support/tftp_client.py, lockstep and at OVMF's windowsize 4) fetches a ``--size``
file ``--count`` times at each block size it can ask for (1468 and 512; tftp-hpa sends
no options, so 512 only), ``--parallel`` at once. A transfer fails when the client exits
non-zero or its file differs. Prints one row per client, rate and block size: failures,
median and slowest transfer time, and what the failures said; then pxed's own outcome
counts per rate (a "timeout" there is a final ACK lost after the client had it all).
``--capture DIR`` keeps a tcpdump of each rate's client end (headers only) to find a
failed transfer in. Needs root, and the clients (``make debs``); missing ones are skipped.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab.tftp_loss import CLIENTS, Lossy, fetch, lossy_server, write_files


@dataclass
class Row:
    client: str
    rate: int
    blksize: int
    seconds: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def run_row(lossy: Lossy, row: Row, name: str, count: int, parallel: int, work: Path) -> None:
    def one(n: int) -> None:
        out = work / f"{row.client}-{row.blksize}-{n}"
        started = time.monotonic()
        failed = fetch(lossy, row.client, name, out, row.blksize)
        row.seconds.append(time.monotonic() - started)
        if failed:
            row.failures.append(f"at {time.strftime('%H:%M:%S')}: {failed}")
        out.unlink(missing_ok=True)

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(one, range(count)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="per client, rate and blksize")
    parser.add_argument("--rates", default="5,10", help="percent dropped each way")
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--size", type=int, default=128 * 1024)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--capture", type=Path)
    args = parser.parse_args()
    clients = [c for c in args.clients.split(",") if shutil.which(CLIENTS[c].binary)]
    skipped = sorted(set(args.clients.split(",")) - set(clients))
    if skipped:
        print(f"skipped (not installed): {', '.join(skipped)}")
    rows: list[Row] = []
    server_outcomes: dict[int, Counter[str]] = {}
    with tempfile.TemporaryDirectory(prefix="pxed-tftp-loss-") as tmp:
        for rate in (int(r) for r in args.rates.split(",")):
            work = Path(tmp) / f"loss{rate}"
            write_files(work / "root", [args.size])
            with lossy_server(work, work / "root", drop_percent=rate) as lossy:
                capture = None
                if args.capture:
                    args.capture.mkdir(parents=True, exist_ok=True)
                    pcap = args.capture.resolve() / f"loss{rate}.pcap"
                    pair = lossy.pair
                    capture = pair.client.tcpdump(pair.client_if, pcap, "udp", snaplen=64)
                for client in clients:
                    for blksize in CLIENTS[client].blksizes:
                        row = Row(client, rate, blksize)
                        run_row(lossy, row, f"f{args.size}", args.count, args.parallel, work)
                        rows.append(row)
                        print(_line(row), flush=True)
                if capture is not None:
                    capture.stop()
                server_outcomes[rate] = Counter(lossy.outcomes())
    print()
    print(_table(rows, args))
    for rate, outcomes in server_outcomes.items():
        print(f"pxed's outcomes at {rate} %: {dict(outcomes)}")
    return 1 if any(row.failures for row in rows) else 0


def _line(row: Row) -> str:
    failed = f"{len(row.failures)} failed" + (f": {row.failures[0]}" if row.failures else "")
    return f"{row.client} {row.rate} % blksize {row.blksize}: {failed}"


def _table(rows: list[Row], args: argparse.Namespace) -> str:
    lines = [
        f"{args.count} transfers of {args.size} bytes per row, {args.parallel} at once",
        f"{'client':<18} {'loss':>5} {'blksize':>7} {'failed':>7} {'median s':>9} {'max s':>7}",
    ]
    for row in rows:
        median = statistics.median(row.seconds)
        lines.append(
            f"{row.client:<18} {row.rate:>4}% {row.blksize:>7} "
            f"{len(row.failures):>3}/{len(row.seconds):<3} {median:>9.2f} {max(row.seconds):>7.2f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
