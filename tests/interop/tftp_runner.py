"""Run pxed's TFTP service alone on the real reactor, for interop tests with real clients.

``python -m tests.interop.tftp_runner ROOT [--address A]... [--port P] [--max-blksize N]
[--max-sessions N]`` prints ``listening on A:P`` once bound (port 0 picks a free one; the
first address's, ``[A]:P`` for IPv6; with several addresses give a port) and, when
stopped with SIGTERM, ``stats {...}`` with the service's counters, so a test can
check that every transfer ended and nothing is left open. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys

from twisted.internet import reactor
from twisted.logger import globalLogBeginner, textFileLogObserver

from pxed.tftp.service import TftpService, TftpSettings
from pxed.tftp.sources import ProviderChain, StaticRoot


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--address", action="append", help="repeatable; default 127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-blksize", type=int, default=1468)
    parser.add_argument("--max-windowsize", type=int, default=16)
    parser.add_argument("--max-per-client", type=int, default=16)
    parser.add_argument("--max-sessions", type=int, default=1000)
    args = parser.parse_args()
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)])
    settings = TftpSettings(
        listen=tuple(args.address or ["127.0.0.1"]),
        port=args.port,
        max_blksize=args.max_blksize,
        max_windowsize=args.max_windowsize,
        max_per_client=args.max_per_client,
        max_sessions=args.max_sessions,
    )
    service = TftpService(settings, ProviderChain([StaticRoot(args.root)]), reactor)
    service.startService()
    host, port = service.addresses[0]
    print(f"listening on {f'[{host}]' if ':' in host else host}:{port}", flush=True)

    def report() -> None:
        stats = service.stats
        summary = {
            "outcomes": dict(stats.outcomes),
            "active_sessions": stats.active_sessions,
            "refusals_unlogged": stats.refusals_unlogged,
        }
        print(f"stats {json.dumps(summary)}", flush=True)

    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    reactor.addSystemEventTrigger("after", "shutdown", report)
    reactor.run()


if __name__ == "__main__":
    main()
