"""Issue 4's crash test: SIGKILL pxed under DHCP load again and again; no ACKed lease is lost.

A load generator in the client namespace runs DISCOVER/REQUEST exchanges for
fresh MACs the whole time and appends every ACK it sees to a file.  pxed is
killed with SIGKILL at a random moment (0-400 ms after it is up), restarted,
and after every restart each ACK the clients have seen so far must be a lease
in the database with the same address.  The order of the check (read the ACK
file, then the database) makes it exact: an ACK can only have been seen after
its batch was committed.
"""

from __future__ import annotations

import os
import random
import signal
import time
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from lab.netns import NetnsLab
from pxed.dhcp.leases import DATABASE_NAME, read_leases
from tests.interop.dhcp_runner import runner_argv, start_pxed, subnet, write_config

pytestmark = [pytest.mark.interop, pytest.mark.netns, pytest.mark.slow]

KILLS = 50
# A /18 so that every exchange of the whole run gets a fresh address (no reuse hides a loss).
NETWORK = IPv4Network("10.213.192.0/18")


def acked(path: Path) -> dict[str, IPv4Address]:
    if not path.exists():
        return {}
    seen = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:  # a line being written has fewer fields; the next check sees it
            seen[parts[0]] = IPv4Address(parts[1])
    return seen


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
    checked = 0
    for kill in range(1, KILLS + 1):
        time.sleep(rng.uniform(0.0, 0.4))
        os.kill(pxed.pid, signal.SIGKILL)
        pxed.wait(10)
        pxed = start_pxed(server, config, tmp_path / f"pxed-{kill}.log")
        seen = acked(acks)  # first the ACKs, then the database: see the module docstring
        leases = {mac: IPv4Address(ip) for mac, ip, _, _ in read_leases(state / DATABASE_NAME)}
        missing = {mac: ip for mac, ip in seen.items() if leases.get(mac) != ip}
        assert not missing, f"after kill {kill}: {len(missing)} ACKed leases lost: {missing}"
        checked = len(seen)
    assert load.running(), load.output()[-2000:]
    load.stop()
    pxed.stop()
    # Under load: the generator kept completing exchanges between kills.
    assert checked >= 10 * KILLS, f"only {checked} ACKs in {KILLS} kills; was pxed under load?"
    print(f"{KILLS} SIGKILLs, {checked} ACKed leases checked after each restart, none lost")
