"""What one Kickstart fetch and one done callback cost pxed's reactor, without the network.

    .venv/bin/python benchmarks/kickstart_profile.py [--hosts 100] [--per-turn 1] [--profile]

The storm's inventory (benchmarks/storm.py: one profile, its Kickstart template, N
hosts) loaded and checked as the daemon does, an ARP table of N complete entries
(the kernel's /proc/net/arp after a storm's DHCP), then for every host in turn
``GET /ks/<mac>`` from its own address and ``POST /api/hosts/<mac>/done`` with the
token that Kickstart carried, through the real resources (Twisted's DummyRequest,
no sockets). The callbacks arrive ``--per-turn`` at a time in one reactor turn (a
rack finishing together), and are committed together at its end (group commit).
Prints milliseconds per request; ``--profile`` adds cProfile's top
entries, which name where the time goes (Jinja2 compiling, SQLite's fsync, the
ARP table). The host-state database is in a temporary directory on the disk
/tmp is on, so commits pay a real fsync where they ask for one.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import re
import sys
import tempfile
import time
from functools import partial
from io import BytesIO
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from twisted.internet.address import IPv4Address  # noqa: E402
from twisted.internet.task import Clock  # noqa: E402
from twisted.web.resource import Resource, getChildForRequest  # noqa: E402
from twisted.web.server import NOT_DONE_YET  # noqa: E402
from twisted.web.test.requesthelper import DummyRequest  # noqa: E402

from benchmarks.storm import KICKSTART_TEMPLATE, client_text, hostname  # noqa: E402
from pxed.config import load_config  # noqa: E402
from pxed.provisioning.answers import checked  # noqa: E402
from pxed.provisioning.identity import Neighbours  # noqa: E402
from pxed.provisioning.inventory import Inventory  # noqa: E402
from pxed.provisioning.lifecycle import Lifecycle  # noqa: E402
from pxed.provisioning.resources import Provisioning, mount  # noqa: E402
from pxed.provisioning.sqlite_states import SqliteStates  # noqa: E402
from pxed.provisioning.tftp_files import ProvisionFiles  # noqa: E402
from pxed.provisioning.tokens import kickstart_signature  # noqa: E402

SECRET = b"k" * 32
ARP_HEAD = "IP address       HW type     Flags       HW address            Mask     Device\n"
TURNS = Clock()  # the reactor's turns: a callback is answered at the end of its turn


def address(index: int) -> str:
    return f"10.213.{4 + index // 250}.{1 + index % 250}"


def lab(work: Path, hosts: int) -> Resource:
    """The storm's inventory under ``work``, mounted on a root resource."""
    (work / "tftp").mkdir()
    for name in ("vmlinuz", "initrd.gz"):
        (work / "tftp" / name).write_bytes(b"-")
    template = work / "storm.ks.j2"
    template.write_text(KICKSTART_TEMPLATE)
    config = {
        "server": {"address": "10.213.0.1", "state_dir": str(work / "state")},
        "tftp": {"root": str(work / "tftp"), "listen": ["10.213.0.1"]},
        "http": {"listen": ["10.213.0.1"], "port": 80},
        "dhcp": {"subnets": [{"network": "10.213.0.0/16"}]},
        "profiles": {
            "storm": {"kernel": "vmlinuz", "initrd": "initrd.gz", "kickstart": str(template)}
        },
        "hosts": [
            {"mac": client_text(i), "hostname": hostname(i), "profile": "storm"}
            for i in range(hosts)
        ],
    }
    (work / "pxed.yaml").write_text(json.dumps(config))
    loaded = checked(load_config(work / "pxed.yaml"))
    inventory = Inventory(loaded)
    lifecycle = Lifecycle.open(loaded.server.state_dir)
    files = ProvisionFiles(inventory, lifecycle, time.time, partial(kickstart_signature, SECRET))
    arp = work / "arp"
    arp.write_text(
        ARP_HEAD + "".join(f"{address(i)} 0x1 0x2 {client_text(i)} * veth0\n" for i in range(hosts))
    )
    neighbours = Neighbours(arp, ndp_dump=lambda: b"")
    root = Resource()
    states = SqliteStates(lifecycle, TURNS)
    mount(root, Provisioning(inventory, states, SECRET, files, time.time, neighbours))
    for i in range(hosts):
        lifecycle.seen(client_text(i), "dhcp", time.time())  # DHCP has seen them boot
    return root


def request(root: Resource, method: bytes, path: str, client: str, body: bytes = b"") -> bytes:
    req = render(root, method, path, client, body)
    if req.finished == 0:  # a callback: answered when the turn's ends are committed
        TURNS.advance(0)
    return answer(req)


def render(root: Resource, method: bytes, path: str, client: str, body: bytes) -> DummyRequest:
    req = DummyRequest([part.encode() for part in path.strip("/").split("/")])
    req.uri, req.method = path.encode(), method
    req.client = IPv4Address("TCP", client, 40000)
    req.content = BytesIO(body)
    out = getChildForRequest(root, req).render(req)
    if out is not NOT_DONE_YET:
        req.write(out)
        req.finish()
    return req


def answer(req: DummyRequest) -> bytes:
    out = b"".join(req.written)
    if (req.responseCode or 200) != 200 or req.finished == 0:
        raise SystemExit(f"{req.method.decode()} {req.uri.decode()}: {req.responseCode} {out!r}")
    return out


def storm(root: Resource, hosts: int, per_turn: int) -> tuple[float, float]:
    """Milliseconds per Kickstart fetch and per done callback."""
    began = time.perf_counter()
    kickstarts = [request(root, b"GET", f"/ks/{client_text(i)}", address(i)) for i in range(hosts)]
    fetched = time.perf_counter()
    for first in range(0, hosts, per_turn):
        turn = []
        for i in range(first, min(hosts, first + per_turn)):
            found = re.search(rb"--data (token=\S+) ", kickstarts[i])
            assert found is not None, kickstarts[i]
            path = f"/api/hosts/{client_text(i)}/done"
            turn.append(render(root, b"POST", path, address(i), found.group(1)))
        TURNS.advance(0)  # the turn ends: one commit, then every answer
        for req in turn:
            answer(req)
    called = time.perf_counter()
    return 1e3 * (fetched - began) / hosts, 1e3 * (called - fetched) / hosts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--per-turn", type=int, default=1, help="callbacks in one reactor turn")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pxed-bench-ks-", dir="/tmp") as tmp:
        root = lab(Path(tmp), args.hosts)
        profiler = cProfile.Profile() if args.profile else None
        if profiler is not None:
            profiler.enable()
        kickstart, callback = storm(root, args.hosts, args.per_turn)
        if profiler is not None:
            profiler.disable()
    print(
        f"{args.hosts} hosts: Kickstart {kickstart:.2f} ms, done callback {callback:.2f} ms"
        f" ({args.per_turn} a turn)"
    )
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
