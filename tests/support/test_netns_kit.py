"""The network-namespace kit itself: links carry traffic, processes stop by PID, nothing leaks."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from lab.netns import (
    Namespace,
    NetnsLab,
    Pair,
    netns_lab,
    netns_pair,
    require_binary,
    require_netns,
)
from lab.procs import ProcessError, run, wait_until

__all__ = ["netns_lab", "netns_pair"]  # fixtures used by the tests below

# Counts the datagrams reaching udp/9999 until none has come for a second.
RECEIVER = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9999))
s.settimeout(1.0)
print("bound", flush=True)
n = 0
try:
    while True:
        s.recv(100)
        n += 1
except TimeoutError:
    print("received", n, flush=True)
"""


def namespaces() -> str:
    return run_root(["ip", "netns", "list"])


def run_root(argv: list[str]) -> str:
    return run(argv, timeout=10).stdout


def alive(pid: int) -> bool:
    """A zombie counts as dead: an orphan's new parent may be a container init that never reaps."""
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


def wait_for_exec(pid: int, comm: str) -> None:
    """`ip netns exec` becomes the command by exec(); wait for that to have happened."""
    wait_until(lambda: Path(f"/proc/{pid}/comm").read_text().strip() == comm, 5, f"exec of {comm}")


def ping(ns: Namespace, address: object) -> None:
    require_binary("busybox")
    ns.run(["busybox", "ping", "-c", "1", "-W", "5", str(address)], timeout=15)


def count_received(pair: Pair, datagrams: int) -> int:
    """Send `datagrams` one-byte UDP datagrams client -> server; how many arrived."""
    receiver = pair.server.spawn([sys.executable, "-c", RECEIVER])
    receiver.wait_for_output("bound")
    sender = (
        "import socket, time\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"for i in range({datagrams}):\n"
        f"    s.sendto(b'x', ('{pair.server_ip}', 9999))\n"
        "    time.sleep(0.001)\n"
    )
    pair.client.run([sys.executable, "-c", sender])
    receiver.wait(timeout=15)
    return int(receiver.output().split("received")[1])


def test_require_binary_skip_names_the_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lab.netns.shutil.which", lambda name: None)
    with pytest.raises(pytest.skip.Exception, match="Debian package dnsmasq-base"):
        require_binary("dnsmasq")


@pytest.mark.netns
def test_veth_pair_carries_traffic_between_namespaces(netns_pair: Pair) -> None:
    ping(netns_pair.client, netns_pair.server_ip)
    ping(netns_pair.server, netns_pair.client_ip)


@pytest.mark.netns
def test_namespace_addresses_never_reach_the_root_namespace(netns_pair: Pair) -> None:
    root = run_root(["ip", "-o", "addr"])
    assert str(netns_pair.server_ip) not in root
    assert netns_pair.server_if not in run_root(["ip", "-o", "link"])


@pytest.mark.netns
def test_spawned_pid_is_the_command_itself_inside_the_namespace(netns_pair: Pair) -> None:
    proc = netns_pair.client.spawn(["sleep", "60"])
    wait_for_exec(proc.pid, "sleep")
    assert Path(f"/proc/{proc.pid}/ns/net").readlink() != Path("/proc/self/ns/net").readlink()
    assert proc.stop() == -signal.SIGTERM
    assert not Path(f"/proc/{proc.pid}").exists()


@pytest.mark.netns
def test_process_ignoring_sigterm_is_killed_after_the_grace_period(netns_pair: Pair) -> None:
    proc = netns_pair.client.spawn(
        ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"]
    )
    proc.wait_for_output("ready")
    assert proc.stop(grace=0.5) == -signal.SIGKILL


@pytest.mark.netns
def test_wait_for_output_fails_with_the_log_when_the_process_exits_first(
    netns_pair: Pair,
) -> None:
    proc = netns_pair.client.spawn(["sh", "-c", "echo bad config; exit 3"])
    with pytest.raises(ProcessError, match="bad config"):
        proc.wait_for_output("ready")


@pytest.mark.netns
def test_run_reports_the_exit_status_and_output_of_a_failing_command(netns_pair: Pair) -> None:
    with pytest.raises(ProcessError, match="exit status 4"):
        netns_pair.client.run(["sh", "-c", "echo oops; exit 4"])


@pytest.mark.netns
def test_wait_listening_sees_a_udp_server(netns_pair: Pair) -> None:
    netns_pair.server.spawn([sys.executable, "-c", RECEIVER])
    netns_pair.server.wait_listening(9999)


@pytest.mark.netns
def test_lab_removes_namespaces_and_processes_even_when_the_test_fails(tmp_path: Path) -> None:
    require_netns()
    with pytest.raises(RuntimeError, match="test body failed"), NetnsLab(tmp_path) as lab:
        pair = lab.pair()
        proc = pair.server.spawn(["sleep", "60"])
        orphan = pair.client.spawn(["sh", "-c", "sleep 60 & echo $!; wait"])
        orphan.wait_for_output("\n")
        raise RuntimeError("test body failed")
    assert lab.prefix not in namespaces()
    assert not proc.running()
    assert not alive(int(orphan.output()))


@pytest.mark.netns
def test_bridge_joins_clients_and_holds_a_tap(netns_lab: NetnsLab) -> None:
    hub = netns_lab.namespace("hub")
    bridge = netns_lab.bridge(hub)
    one, two = netns_lab.namespace("c1"), netns_lab.namespace("c2")
    netns_lab.attach(bridge, one, 11)
    netns_lab.attach(bridge, two, 12)
    tap = netns_lab.tap(hub, "tap0", bridge)
    ping(one, netns_lab.address(12))
    ping(two, netns_lab.address(1))
    assert f"master {bridge.name}" in hub.run(["ip", "-o", "link", "show", tap]).stdout


@pytest.mark.netns
def test_tcpdump_is_listening_before_traffic_and_counts_it(
    netns_pair: Pair, tmp_path: Path
) -> None:
    pcap = tmp_path / "ping.pcap"
    capture = netns_pair.server.tcpdump(netns_pair.server_if, pcap, "icmp")
    ping(netns_pair.client, netns_pair.server_ip)
    assert capture.stop() == 2
    assert pcap.stat().st_size > 24


@pytest.mark.netns
@pytest.mark.parametrize("side", ["sender egress", "receiver ingress"])
def test_impair_drops_every_datagram_at_100_percent(netns_pair: Pair, side: str) -> None:
    if side == "sender egress":
        netns_pair.client.impair(netns_pair.client_if, drop_percent=100)
    else:
        netns_pair.server.impair(netns_pair.server_if, drop_percent=100)
    assert count_received(netns_pair, 20) == 0


@pytest.mark.netns
def test_impair_duplicates_each_datagram_exactly_once_at_100_percent(netns_pair: Pair) -> None:
    netns_pair.client.impair(netns_pair.client_if, dup_percent=100)
    assert count_received(netns_pair, 20) == 40


@pytest.mark.netns
def test_impair_installs_random_drop_rules_both_ways(netns_pair: Pair) -> None:
    netns_pair.client.impair(netns_pair.client_if, drop_percent=10, dup_percent=5)
    rules = netns_pair.client.run(["nft", "list", "ruleset"]).stdout
    assert rules.count("numgen random mod 100 < 10 drop") == 2
    assert "hook ingress" in rules and "hook egress" in rules
    assert "numgen random mod 100 < 5" in rules


def test_impair_rejects_a_percentage_above_100(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a percentage"):
        Namespace("pxed-unused", tmp_path).impair("eth0", drop_percent=150)
