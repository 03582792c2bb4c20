"""Issue 4's crash test: SIGKILL pxed under DHCP load again and again; no ACKed lease is lost.
The same for DHCPv6 (issue 15): no address a REPLY granted is lost.

A load generator in the client namespace runs DISCOVER/REQUEST exchanges for
fresh MACs the whole time and appends every ACK it sees to a file.  pxed is
killed with SIGKILL at a random moment (0-400 ms after it is up), restarted,
and after every restart each ACK the clients have seen so far must be a lease
in the database with the same address.  The order of the check (read the ACK
file, then the database) makes it exact: an ACK can only have been seen after
its batch was committed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections.abc import Callable
from functools import partial
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path
from typing import Any

import pytest

from lab.netns import NetnsLab
from lab.procs import wait_until
from pxed.dhcp.leases import DATABASE_NAME, read_leases
from pxed.dhcp6.leases import DATABASE_NAME as DATABASE6_NAME
from pxed.dhcp6.leases import read_leases6
from tests.interop.dhcp_runner import (
    PYTHON,
    REPO,
    pxed_argv,
    runner_argv,
    start_pxed,
    subnet,
    write_config,
)

pytestmark = [pytest.mark.interop, pytest.mark.netns, pytest.mark.slow]

KILLS = 50
# A /18 so that every exchange of the whole run gets a fresh address (no reuse hides a loss).
NETWORK = IPv4Network("10.213.192.0/18")


PREFIX6 = IPv6Network("fd00:213:7::/64")
KILLS6 = 20  # each restart costs about 2 s of twistd start-up on a loaded machine
# Up to 1 s between kills, not 0.4 s as for DHCPv4: a DHCPv6 exchange is four messages and
# the generator gives up on its window only after 0.5 s of silence from the dead server.
UPTIME6 = 1.0


def told(path: Path, address: Callable[[str], Any]) -> dict[str, Any]:
    """Client -> address of every ACK or REPLY the load generator wrote to ``path``."""
    if not path.exists():
        return {}
    seen = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:  # a line being written has fewer fields; the next check sees it
            seen[parts[0]] = address(parts[1])
    return seen


def kill_again_and_again(
    pxed: Any,
    start: Callable[[int], Any],
    kills: int,
    uptime: float,
    rng: random.Random,
    granted: Callable[[], dict[str, Any]],
    stored: Callable[[], dict[str, Any]],
) -> tuple[Any, int]:
    """SIGKILL pxed ``kills`` times, 0 to ``uptime`` s after each start; after each restart
    every address a client was told must be stored for it.  The pxed now running, and
    how many grants the last check covered."""
    checked = 0
    for kill in range(1, kills + 1):
        time.sleep(rng.uniform(0.0, uptime))
        os.kill(pxed.pid, signal.SIGKILL)
        pxed.wait(10)
        pxed = start(kill)
        seen = granted()  # first what clients were told, then the database: see the docstring
        held = stored()
        missing = {client: a for client, a in seen.items() if held.get(client) != a}
        assert not missing, f"after kill {kill}: {len(missing)} granted addresses lost: {missing}"
        checked = len(seen)
    return pxed, checked


def test_every_acked_lease_survives_sigkill_under_load(netns_lab: NetnsLab, tmp_path: Path):
    rng = random.Random(4)
    server, client = netns_lab.namespace("srv"), netns_lab.namespace("cli")
    link = netns_lab.veth(server, client)
    server.ip("addr", "add", f"{NETWORK.network_address + 1}/{NETWORK.prefixlen}", "dev", link.a_if)
    state = tmp_path / "state"
    config = write_config(
        tmp_path / "pxed.yaml",
        link.a_if,
        state,
        [subnet(NETWORK, 10, NETWORK.num_addresses - 10)],
    )
    acks = tmp_path / "acks"
    pxed = start_pxed(server, config, tmp_path / "pxed-0.log")
    load = client.spawn(
        runner_argv("load", "--interface", link.b_if, "--acks", str(acks), "--duration", "600"),
        tmp_path / "load.log",
    )
    pxed, checked = kill_again_and_again(
        pxed,
        lambda n: start_pxed(server, config, tmp_path / f"pxed-{n}.log"),
        KILLS,
        0.4,
        rng,
        partial(told, acks, IPv4Address),
        lambda: {mac: IPv4Address(ip) for mac, ip, _, _ in read_leases(state / DATABASE_NAME)},
    )
    assert load.running(), load.output()[-2000:]
    load.stop()
    pxed.stop()
    # Under load: the generator kept completing exchanges between kills.
    assert checked >= 10 * KILLS, f"only {checked} ACKs in {KILLS} kills; was pxed under load?"
    print(f"{KILLS} SIGKILLs, {checked} ACKed leases checked after each restart, none lost")


def test_every_dhcpv6_reply_survives_sigkill_under_load(netns_lab: NetnsLab, tmp_path: Path):
    """As above, for SOLICIT/ADVERTISE/REQUEST/REPLY: every address a REPLY granted is a
    binding in leases6.sqlite3 after every restart (a /64 pool: no address is reused)."""
    rng = random.Random(15)
    server, client = netns_lab.namespace("srv"), netns_lab.namespace("cli")
    link = netns_lab.veth(server, client)
    server.ip("-6", "addr", "add", f"{PREFIX6.network_address + 1}/64", "dev", link.a_if, "nodad")
    for ns, iface in ((server, link.a_if), (client, link.b_if)):
        wait_until(partial(ns.link_local_ready, iface), 10, f"{iface}'s link-local address")
    state = tmp_path / "state"
    pool = [str(PREFIX6.network_address + 0x100), str(PREFIX6.broadcast_address - 1)]
    config = tmp_path / "pxed.yaml"
    config.write_text(
        json.dumps(
            {
                "server": {"address": "192.0.2.1", "state_dir": str(state)},
                "tftp": {"enabled": False},
                "http": {"enabled": False},
                "dhcp6": {
                    "mode": "full",
                    "interfaces": [link.a_if],
                    # The load runner's clients share one link-local address.
                    "solicit_burst": 1_000_000,
                    "subnets": [{"prefix": str(PREFIX6), "range": pool}],
                },
            }
        )
    )

    def start(n: int):
        proc = server.spawn(pxed_argv(config), tmp_path / f"pxed-{n}.log")
        proc.wait_for_output("dhcp6: full mode", timeout=20)
        return proc

    replies = tmp_path / "replies"
    pxed = start(0)
    module = ["env", f"PYTHONPATH={REPO}", str(PYTHON), "-m", "tests.interop.dhcp6_runner"]
    load = client.spawn(
        [*module, "load", "--interface", link.b_if, "--acks", str(replies), "--duration", "600"],
        tmp_path / "load.log",
    )
    pxed, checked = kill_again_and_again(
        pxed,
        start,
        KILLS6,
        UPTIME6,
        rng,
        partial(told, replies, IPv6Address),
        lambda: {
            duid: IPv6Address(address)
            for duid, _, address, _, _ in read_leases6(state / DATABASE6_NAME)
        },
    )
    assert load.running(), load.output()[-2000:]
    load.stop()
    pxed.stop()
    assert checked >= 10 * KILLS6, f"only {checked} REPLYs in {KILLS6} kills; was pxed under load?"
    print(f"{KILLS6} SIGKILLs, {checked} granted addresses checked after each restart, none lost")
