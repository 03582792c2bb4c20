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
import json
import sys
from functools import partial
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from benchmarks.adapter_profile import AdapterRun, NoSocket, add_arguments, profile
from protocols.dhcp.options import ClientArch, ClientId, MessageType, NetworkInterfaceId
from protocols.dhcp.wire import DhcpPacket, encode_dhcp, make_options
from pxed.config import parse_config
from pxed.dhcp.leases import SqliteLeaseStore
from pxed.dhcp.service import DhcpService, Interface
from pxed.dhcp.settings import engine_settings
from pxed.events import EventBus
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


class Run(AdapterRun):
    """One adapter with a fresh lease database; ``exchange`` does a batch of DORAs."""

    def __init__(self, state_dir: Path, shape: str) -> None:
        config = parse_config(config_text(state_dir), "bench.yaml")
        interface = Interface("bench0", SERVER_IP)
        reactor = FakeUDPReactor()
        self.shape = shape
        service = DhcpService(
            engine_settings(config, SERVER_IP),
            lambda: SqliteLeaseStore.open(state_dir),
            [interface],
            reactor,
            lambda name, port: NoSocket(),
            events=daemon_events(),
        )
        super().__init__(reactor, service)

    def exchanges(self, clients: range) -> None:
        discovers = [client_request(self.shape, MessageType.DISCOVER, i, None) for i in clients]
        offers = self.turn(discovers, sender(self.shape))
        requests = [
            client_request(self.shape, MessageType.REQUEST, i, IPv4Address(offer[16:20]))
            for i, offer in zip(clients, offers, strict=True)
        ]
        acks = self.turn(requests, sender(self.shape))
        assert all(ack[242] == MessageType.ACK for ack in acks), "not every REQUEST got an ACK"


def daemon_events() -> EventBus:
    """The bus with the subscribers the daemon gives it (pxed.ops.operations)."""
    events = EventBus()
    events.subscribe(TimelineSubscriber(Timeline(known=lambda mac: False), lambda ip: None))
    events.subscribe(Negotiated())
    events.subscribe(HttpStats())
    return events


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, "DORAs", "DISCOVERs")
    parser.add_argument("--shape", choices=("relay", "pxe"), default="relay")
    args = parser.parse_args()
    what = f"{args.shape}, {args.clients} DORAs per run, {args.batch} per turn"
    profile(args, partial(Run, shape=args.shape), "pxed-dhcp-profile-", what, "DORA")
    return 0


if __name__ == "__main__":
    sys.exit(main())
