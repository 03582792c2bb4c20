"""Run pxed's HTTP site alone on 127.0.0.1 for real-client tests and benchmarks.

    python -m tests.support.http_server --tree NAME=PATH [--tree ...] [--tftp DIR]

Prints the listening port on the first line of stdout, then serves until killed.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--tftp", type=Path)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-per-client", type=int, help="http.max_per_client (default: pxed's)")
    args = parser.parse_args()
    trees = {name: Path(path) for name, _, path in (t.partition("=") for t in args.tree)}

    from twisted.internet import reactor

    from pxed.web.guard import DEFAULT_LIMITS
    from pxed.web.trees import HttpService, build_site

    limits = DEFAULT_LIMITS
    if args.max_per_client is not None:
        limits = replace(limits, max_per_client=args.max_per_client)
    site = build_site(reactor, trees, args.tftp, limits)
    service = HttpService(reactor, site, args.port, ["127.0.0.1"])
    service.privilegedStartService()
    service.startService()
    print(service.listening[0].getHost().port, flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
