"""Issue 18's DHCP attacks sent as real datagrams through a veth to ``twistd -n pxed``.

tests/protocols/test_dhcp_hostile.py pins each limit in the engine; these
show the daemon applies them to what arrives on the wire: a DECLINE loop from
one MAC, DECLINEs from many MACs, a RELEASE in another client's name and a
DISCOVER flood from one MAC.
What pxed decided is read from its SQLite file, the way ``pxed leases`` does.
"""

from __future__ import annotations

import json
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from lab.netns import NetnsLab
from lab.procs import run, wait_until
from pxed.dhcp.leases import DATABASE_NAME, read_quarantine
from tests.interop.dhcp_runner import in_namespace, subnet
from tests.interop.test_dhcp_clients import DhcpLab

pytestmark = [pytest.mark.interop, pytest.mark.netns]

VICTIM = "52:54:00:aa:bb:01"
OTHER = "52:54:00:aa:bb:02"


def runner(lab: DhcpLab, *args: str) -> dict[str, Any]:
    done = run(in_namespace(lab.client, *args), timeout=60)
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def quarantined(lab: DhcpLab) -> list[str]:
    return [ip for ip, _ in read_quarantine(lab.state / DATABASE_NAME)]


def test_one_mac_declining_in_a_loop_quarantines_only_decline_limit_addresses(
    netns_lab: NetnsLab, tmp_path: Path
) -> None:
    lab = DhcpLab(netns_lab, tmp_path)
    lab.start(subnets=[subnet(netns_lab.subnet, 100, 139)])
    result = runner(lab, "decline", "--interface", lab.client_if, "--per-mac", "6")
    assert len(result["acks"]) == 6  # every DECLINE was of an address pxed had just given
    assert sorted(quarantined(lab)) == sorted(result["acks"][:3])  # decline_limit: 3


def test_declines_from_many_macs_take_at_most_a_quarter_of_the_pool(
    netns_lab: NetnsLab, tmp_path: Path
) -> None:
    lab = DhcpLab(netns_lab, tmp_path)
    lab.start(subnets=[subnet(netns_lab.subnet, 100, 139)])  # 40 addresses
    result = runner(lab, "decline", "--interface", lab.client_if, "--macs", "16")
    assert len(result["acks"]) == 16
    assert len(quarantined(lab)) == 10  # max_quarantined_percent: 25
    fresh = runner(lab, "pxe-client", "--interface", lab.client_if, "--mac", VICTIM)
    assert IPv4Address(fresh["address"]) in netns_lab.subnet


def test_a_release_in_another_clients_name_keeps_its_lease_its_own_release_ends_it(
    netns_lab: NetnsLab, tmp_path: Path
) -> None:
    lab = DhcpLab(netns_lab, tmp_path, client_host=50)  # the attacker's own address
    lab.start()
    victim = runner(lab, "pxe-client", "--interface", lab.client_if, "--mac", VICTIM)
    address = victim["address"]
    release = ["release", "--mac", VICTIM, "--ip", address, "--server", str(lab.server_ip)]

    runner(lab, *release, "--source", str(netns_lab.address(50)))
    # A RELEASE gets no answer: a second client's exchange, answered after it, is the fence.
    other = runner(lab, "pxe-client", "--interface", lab.client_if, "--mac", OTHER)
    assert lab.leases() == {VICTIM: IPv4Address(address), OTHER: IPv4Address(other["address"])}

    lab.client.ip("addr", "add", f"{address}/24", "dev", lab.client_if)
    runner(lab, *release, "--source", address)
    wait_until(lambda: VICTIM not in lab.leases(), 10, "pxed to honour the holder's RELEASE")


def test_a_discover_flood_from_one_mac_is_answered_only_up_to_its_burst(
    netns_lab: NetnsLab, tmp_path: Path
) -> None:
    lab = DhcpLab(netns_lab, tmp_path)
    lab.start()
    result = runner(lab, "flood", "--interface", lab.client_if, "--count", "100")
    assert result["sent"] == 100
    # discover_burst 8, then discover_rate 1/s: one refill at most while the flood lasts.
    assert 1 <= result["offered"] <= 10
    other = runner(lab, "pxe-client", "--interface", lab.client_if, "--mac", OTHER)
    assert IPv4Address(other["address"]) in netns_lab.subnet  # another MAC is not held back
