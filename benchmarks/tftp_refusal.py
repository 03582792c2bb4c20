"""What one refused TFTP request costs pxed's reactor thread (a benchmark, not a test).

    .venv/bin/python benchmarks/tftp_refusal.py [--count 20000] [--profile]

Issue 18's listener load, without the network: the TFTP service is wired as the
daemon wires it (``add_services`` from a YAML config: generated files ahead of
the root, the event bus with its timeline and metrics, pxed's log observer
writing to /dev/null), and ``TftpService.request`` is called ``--count`` times
with an RRQ for a missing file (``--distinct``: a different missing name each time,
as a flood that defeats the listener's cache of decoded requests would send).
The ERRORs really go out, to a socket of ours on 127.0.0.1 that nobody reads
(its buffer fills and the kernel drops the rest, as a flood's would).

Prints µs per refusal (best of ``--runs``); ``--profile`` prints cProfile's
top functions instead, whose call counts do not depend on how busy the
machine is. For instruction counts, run it under
``valgrind --tool=callgrind`` with a small ``--count``.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import socket
import tempfile
import time
from pathlib import Path

from twisted.application.service import MultiService
from twisted.logger import globalLogBeginner

from pxed.config import load_config
from pxed.daemon.services import add_services
from pxed.ops.logsink import pxed_observer
from pxed.tftp.service import TftpService

CONFIG = """\
server: {{address: 127.0.0.1, state_dir: {state}}}
tftp: {{root: {root}, listen: [127.0.0.1], port: 6969}}  # never bound: not started
dhcp: {{mode: "off"}}
http: {{enabled: false}}
"""


def rrq(name: str) -> bytes:
    return b"\x00\x01" + name.encode() + b"\x00octet\x00"


def tftp_service(work: Path) -> TftpService:
    (work / "root").mkdir()
    (work / "root" / "pxelinux.0").write_bytes(b"loader")
    config = work / "pxed.yaml"
    config.write_text(CONFIG.format(state=work / "state", root=work / "root"))
    top = MultiService()
    add_services(top, load_config(config))
    service = top.getServiceNamed("tftp")
    assert isinstance(service, TftpService)
    return service


def refusals(service: TftpService, count: int, sink: int, name: str, distinct: bool) -> float:
    """Seconds ``count`` refusals took; ``distinct``: a name of its own for each request."""
    names = [f"{name}.{n}" for n in range(count)] if distinct else [name] * count
    datagrams, request, client = [rrq(n) for n in names], service.request, ("127.0.0.1", sink)
    began = time.perf_counter()
    for datagram in datagrams:
        request("127.0.0.1", datagram, client)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--name", default="missing.bin")
    parser.add_argument("--distinct", action="store_true", help="a different name each time")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    globalLogBeginner.beginLoggingTo([pxed_observer("info", sink=devnull)], discardBuffer=True,
                                     redirectStandardIO=False)  # fmt: skip
    with (
        tempfile.TemporaryDirectory(prefix="pxed-bench-refusal-") as tmp,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink,
    ):
        sink.bind(("127.0.0.1", 0))
        port = sink.getsockname()[1]
        service = tftp_service(Path(tmp))
        refusals(
            service, 1000, port, args.name, args.distinct
        )  # warm the caches, as a running daemon has
        if args.profile:
            profile = cProfile.Profile()
            profile.runcall(refusals, service, args.count, port, args.name, args.distinct)
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)
            return
        best = min(
            refusals(service, args.count, port, args.name, args.distinct) for _ in range(args.runs)
        )
        print(f"{best / args.count * 1e6:.1f} µs per refusal ({args.count} refusals, best of "
              f"{args.runs}); outcomes {dict(service.stats.outcomes)}")  # fmt: skip


if __name__ == "__main__":
    main()
