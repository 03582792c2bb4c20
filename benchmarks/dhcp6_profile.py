"""CPU per DHCPv6 exchange inside pxed, without sockets: where a relayed SARR's time goes.

    .venv/bin/python benchmarks/dhcp6_profile.py [--clients 4000] [--batch 8]
    .venv/bin/python benchmarks/dhcp6_profile.py --profile 30    # cProfile, top 30 by own time
    .venv/bin/python benchmarks/dhcp6_profile.py --instructions  # callgrind, per exchange

The DHCPv6 twin of benchmarks/dhcp_profile.py: the real adapter
(``pxed.dhcp6.service.Dhcp6Service``) over a fake UDP reactor, with the SQLite lease
store in a temporary directory (WAL, synchronous=FULL, as the daemon runs it), the
daemon's log observer at info level writing to a file, and the configuration
benchmarks/dhcp6.py gives pxed (fd00:213:6::/64, a 65,536-address pool, the SOLICIT
limit lifted).  The datagrams are perfdhcp -6 -A1's, byte for byte: a RELAY-FORW
whose link and peer address are fd00:213:6::2, carrying a SOLICIT (DUID-LLT, IA_NA 1,
ORO 23+24, elapsed time), then one carrying a REQUEST with the ADVERTISE's server-id
and IA_NA.  Each reactor turn delivers ``--batch`` SOLICITs from fresh DUIDs, then
the turn ends (commit, ADVERTISEs sent), then their ``--batch`` REQUESTs, then the
turn ends again (commit, REPLYs sent).

Only the adapter's calls are timed (``time.process_time``); the median of ``--runs``
runs is printed, and the median of their tenth percentiles of CPU per batch, which
other processes' load disturbs least.  Timings on a loaded machine wander; callgrind's
instruction count does not: ``--instructions`` runs this script under valgrind with
8 and then 208 clients and prints the difference over 200 (start-up cancels out; the
driver's own building of two datagrams an exchange is inside the count, a few
thousand instructions).  ``--engine`` drives ``Dhcpv6Server.handle_datagram`` alone on
a MemoryLeaseStore (decode, decide, encode): the rest of a full count is the adapter,
SQLite and the log.
"""

from __future__ import annotations

import argparse
import json
import re
import struct
import subprocess
import sys
import tempfile
import time
from functools import partial
from ipaddress import IPv6Network
from pathlib import Path

from benchmarks.adapter_profile import AdapterRun, NoSocket, add_arguments, profile
from protocols.dhcp.server import Mode
from protocols.dhcpv6.leases import MemoryLeaseStore
from protocols.dhcpv6.server import Dhcpv6Server, Received, Reply
from pxed.config import parse_config
from pxed.dhcp6.duid import server_duid
from pxed.dhcp6.leases import Sqlite6LeaseStore
from pxed.dhcp6.service import Dhcp6Service, Interface
from pxed.dhcp6.settings import engine_settings6
from tests.support.fake_udp import FakeUDPReactor

PREFIX = IPv6Network("fd00:213:6::/64")
SERVER_IP = PREFIX.network_address + 1
RELAY_IP = PREFIX.network_address + 2
POOL = (PREFIX.network_address + 0x1_0000, PREFIX.network_address + 0x1_FFFF)
SOLICIT, ADVERTISE, REQUEST, REPLY, RELAY_FORW, RELAY_REPL = 1, 2, 3, 7, 12, 13


def config_text(state_dir: Path) -> str:
    """benchmarks/dhcp6.py's pxed configuration (the interface name only labels logs)."""
    subnet = {"prefix": str(PREFIX), "range": [str(a) for a in POOL], "lease_time": 3600}
    return json.dumps(
        {
            "server": {"address": "192.0.2.1", "state_dir": str(state_dir)},
            "tftp": {"enabled": False},
            "http": {"enabled": False},
            "logging": {"level": "info"},
            "dhcp6": {
                "mode": "full",
                "interfaces": ["bench0"],
                "solicit_burst": 1_000_000,
                "subnets": [subnet],
            },
        }
    )


def _option(code: int, data: bytes) -> bytes:
    return struct.pack("!HH", code, len(data)) + data


def relayed(kind: int, index: int, extra: bytes) -> bytes:
    """perfdhcp -6 -A1's RELAY-FORW around a SOLICIT or REQUEST of client ``index``."""
    mac = (0x000C01020304 + index).to_bytes(6, "big")
    duid = struct.pack("!HHI", 1, 1, 849994581) + mac  # DUID-LLT, as perfdhcp's
    inner = bytes([kind]) + (2 * index + (kind == REQUEST)).to_bytes(3, "big")
    inner += _option(1, duid)
    if kind == SOLICIT:
        inner += _option(3, struct.pack("!III", 1, 3600, 5400))
        inner += _option(6, struct.pack("!HH", 23, 24))
    inner += extra + _option(8, b"\x00\x00")
    return bytes([RELAY_FORW, 0]) + RELAY_IP.packed * 2 + _option(9, inner)


def _find(message: bytes, start: int, code: int) -> bytes:
    i = start
    while i + 4 <= len(message):
        found, size = struct.unpack_from("!HH", message, i)
        if found == code:
            return message[i : i + 4 + size]
        i += 4 + size
    raise ValueError(f"option {code} not in {message.hex()}")


class Run(AdapterRun):
    """One adapter with a fresh lease database (or, ``engine_only``, the engine alone on
    a MemoryLeaseStore); ``exchange`` does a batch of SARRs."""

    def __init__(self, state_dir: Path, engine_only: bool = False) -> None:
        config = parse_config(config_text(state_dir), "bench.yaml")
        settings = engine_settings6(config, server_duid(state_dir))
        assert settings.mode is Mode.FULL
        self.engine = Dhcpv6Server(settings, MemoryLeaseStore()) if engine_only else None
        reactor = FakeUDPReactor()
        service = Dhcp6Service(
            settings,
            lambda: Sqlite6LeaseStore.open(state_dir),
            [Interface("bench0", SERVER_IP, 2)],
            reactor,
            lambda name, port: NoSocket(),
        )
        super().__init__(reactor, service)

    def exchanges(self, clients: range) -> None:
        source = (str(RELAY_IP), 547)
        advertises = self.turn([relayed(SOLICIT, i, b"") for i in clients], source)
        requests = []
        for i, advertise in zip(clients, advertises, strict=True):
            inner = _find(advertise, 34, 9)[4:]
            assert inner[0] == ADVERTISE, inner.hex()
            requests.append(relayed(REQUEST, i, _find(inner, 4, 2) + _find(inner, 4, 3)))
        replies = self.turn(requests, source)
        assert all(_find(r, 34, 9)[4] == REPLY for r in replies), "not every REQUEST got a REPLY"

    def turn(self, datagrams: list[bytes], source: tuple[str, int]) -> list[bytes]:
        if self.engine is not None:
            return self._engine_turn(self.engine, datagrams)
        return super().turn(datagrams, source)

    def _engine_turn(self, engine: Dhcpv6Server, datagrams: list[bytes]) -> list[bytes]:
        received = Received(SERVER_IP, (RELAY_IP, 547), 547, "bench0")
        started = time.process_time()
        actions = [engine.handle_datagram(d, received, self.reactor.seconds()) for d in datagrams]
        self.cpu += time.process_time() - started
        return [action.data for action in actions if isinstance(action, Reply)]


def instructions(clients: int, batch: int, engine: bool) -> int:
    """User-space instructions of this script with ``clients`` exchanges, under callgrind."""
    with tempfile.TemporaryDirectory(prefix="pxed-dhcp6-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
        argv += [sys.executable, __file__, "--runs", "1", "--clients", str(clients)]
        argv += ["--batch", str(batch), *(["--engine"] if engine else [])]
        subprocess.run(argv, check=True, capture_output=True, timeout=1800)
        found = re.search(r"^summary: (\d+)", out.read_text(errors="replace"), re.M)
        assert found, "callgrind wrote no summary"
        return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, "exchanges", "SOLICITs")
    parser.add_argument("--instructions", action="store_true", help="callgrind, per exchange")
    parser.add_argument(
        "--engine", action="store_true", help="the engine alone: no adapter, SQLite or logs"
    )
    args = parser.parse_args()
    if args.instructions:
        small, large = instructions(8, 8, args.engine), instructions(208, 8, args.engine)
        print(f"{(large - small) / 200:,.0f} instructions per relayed exchange (callgrind)")
        return 0
    what = f"{args.clients} relayed exchanges per run, {args.batch} per turn"
    make = partial(Run, engine_only=args.engine)
    profile(args, make, "pxed-dhcp6-profile-", what, "exchange")
    return 0


if __name__ == "__main__":
    sys.exit(main())
