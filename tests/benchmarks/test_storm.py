"""The storm benchmark's own arithmetic and packets (benchmarks/storm.py), without a network."""

import argparse
import socket
import struct
from ipaddress import IPv4Address

import pytest

from benchmarks.storm import (
    DIRECT,
    LOADER_FILES,
    MAGIC,
    NETWORK,
    RELAY_IP,
    RELAY_UPLINK,
    RELAYED,
    REMOTE,
    REMOTE_POOL,
    SERVER_IP,
    SIDES,
    Client,
    DhcpFailed,
    client_mac,
    client_text,
    dhcp_packet,
    dhcp_reply,
    dnsmasq_argv,
    fill_root,
    lease_commands,
    one_run,
    percentile,
    pxed_config,
    summarize,
)
from lab.netns import require_binary, require_netns


def test_percentile_is_nearest_rank():
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([3.0, 1.0, 2.0], 0.99) == 3.0
    assert percentile([], 0.5) is None


def _client(phases, failure=None):
    return {"phases": phases, "failure": failure}


def test_summary_counts_phase_durations_not_start_times():
    clients = [
        _client({"dhcp": [0.0, 1.0], "kickstart": [5.0, 6.0]}),
        _client({"dhcp": [2.0, 5.0], "kickstart": [9.0, 9.5]}),
    ]
    clients[1]["naks"] = 2
    summary = summarize(clients)
    assert summary["dhcp_naks"] == 2
    assert summary["phases"]["dhcp"] == {"done": 2, "p50_s": 1.0, "p99_s": 3.0}
    assert summary["phases"]["initrd"] == {"done": 0, "p50_s": None, "p99_s": None}
    assert summary["last_kickstart_s"] == 9.5
    assert summary["failures"] == 0


def test_a_failed_client_leaves_no_last_kickstart_and_groups_by_reason():
    clients = [
        _client({"dhcp": [0.0, 1.0], "kickstart": [5.0, 6.0]}),
        _client({"dhcp": [0.0, 1.0]}, "kernel: TFTP timed out at block 17 after 5 retries"),
        _client({"dhcp": [0.0, 2.0]}, "kernel: TFTP timed out at block 4242 after 5 retries"),
    ]
    summary = summarize(clients)
    assert summary["last_kickstart_s"] is None
    assert summary["failures"] == 2
    assert summary["failure_reasons"] == {"kernel: TFTP timed out at block N after N retries": 2}
    assert summary["phases"]["dhcp"]["done"] == 3


def test_discover_carries_the_pxe_options_of_a_uefi_rom():
    mac = bytes.fromhex("525400000001")
    packet = dhcp_packet(1, 0x1234, mac, 7)
    assert packet[10:12] == b"\x80\x00"  # broadcast flag: replies come back broadcast
    assert packet[28:34] == mac
    options = packet[240:]
    assert bytes([53, 1, 1]) in options
    assert bytes([93, 2, 0, 7]) in options
    assert b"PXEClient:Arch:00007:UNDI:002001" in options


def test_reply_gives_xid_type_address_and_boot_file():
    reply = bytearray(240)
    reply[0] = 2
    struct.pack_into("!I", reply, 4, 0xCAFE)
    reply[16:20] = socket.inet_aton("10.213.4.9")
    reply[108:118] = b"pxelinux.0"
    reply[236:240] = MAGIC
    reply += bytes([53, 1, 2, 54, 4, 10, 213, 0, 1, 0, 255])
    xid, kind, options, yiaddr, boot_file = dhcp_reply(bytes(reply))
    assert (xid, kind, yiaddr, boot_file) == (0xCAFE, 2, "10.213.4.9", "pxelinux.0")
    assert options[54] == bytes([10, 213, 0, 1])
    assert dhcp_reply(b"\x01" * 300) is None


# --- the relayed set-up (--relayed) ----------------------------------------------------------


def test_relayed_segment_lies_apart_from_the_servers_with_the_relay_outside_its_pool():
    assert not RELAYED.network.overlaps(NETWORK)
    assert RELAYED.pool.subnet_of(RELAYED.network) and DIRECT.pool.subnet_of(DIRECT.network)
    relay, uplink = IPv4Address(RELAY_IP), IPv4Address(RELAY_UPLINK)
    assert relay in RELAYED.network and relay not in RELAYED.pool
    assert uplink in NETWORK and uplink not in DIRECT.pool and str(uplink) != SERVER_IP
    first, last = (IPv4Address(a) for a in RELAYED.pool_range)
    assert (first, last) == (RELAYED.pool.network_address + 1, RELAYED.pool.broadcast_address - 1)
    assert DIRECT.router is None and RELAYED.router == RELAY_IP


def test_pxed_serves_the_relayed_network_with_the_relay_as_router_and_only_relay(tmp_path):
    config = pxed_config(tmp_path, "veth0", tmp_path / "tftp", 3, RELAYED)
    assert config["dhcp"]["subnets"] == [
        {
            "network": "10.214.0.0/16",
            "range": ["10.214.4.1", "10.214.7.254"],
            "lease_time": 3600,
            "router": RELAY_IP,
        }
    ]
    assert config["dhcp"]["relays"] == [RELAY_IP]  # dnsmasq's relay sends from the giaddr
    assert config["server"]["address"] == SERVER_IP
    assert [h["mac"] for h in config["hosts"]] == [client_text(i) for i in range(3)]


def test_pxed_on_the_servers_link_has_no_router_and_trusts_no_relay(tmp_path):
    dhcp = pxed_config(tmp_path, "veth0", tmp_path / "tftp", 3, DIRECT)["dhcp"]
    assert dhcp["subnets"] == [
        {"network": "10.213.0.0/16", "range": ["10.213.4.1", "10.213.7.254"], "lease_time": 3600}
    ]
    assert "relays" not in dhcp


def test_dnsmasq_leases_on_the_relayed_network_and_names_the_relay_as_router(tmp_path):
    argv = dnsmasq_argv("veth0", tmp_path, tmp_path / "dnsmasq", RELAYED)
    assert "--dhcp-range=10.214.4.1,10.214.7.254,255.255.0.0,1h" in argv
    assert f"--dhcp-option=option:router,{RELAY_IP}" in argv
    direct = dnsmasq_argv("veth0", tmp_path, tmp_path / "dnsmasq", DIRECT)
    assert "--dhcp-range=10.213.4.1,10.213.7.254,255.255.0.0,1h" in direct
    assert not any(a.startswith("--dhcp-option") for a in direct)


def _leased(index, address):
    client = Client(index, client_mac(index), 0, {})
    client.address = address
    return client


def test_a_client_on_the_servers_link_only_takes_its_address():
    client = _leased(0, "10.213.4.9")
    commands = lease_commands(client, NETWORK, SERVER_IP, socket.inet_aton("10.213.0.1"))
    assert commands == [["ip", "addr", "add", "10.213.4.9/16", "dev", "storm0"]]


def test_a_relayed_client_routes_to_its_server_by_the_acks_router_on_its_own_interface():
    client = _leased(7, "10.214.5.3")
    commands = lease_commands(client, REMOTE, SERVER_IP, socket.inet_aton(RELAY_IP))
    assert commands == [
        ["ip", "addr", "add", "10.214.5.3/16", "dev", "storm7"],
        ["ip", "route", "add", "default", "via", RELAY_IP, "dev", "storm7", "metric", "8"],
    ]


def test_a_relayed_client_without_a_router_in_its_ack_fails_dhcp_and_says_why():
    with pytest.raises(DhcpFailed, match="no router"):
        lease_commands(_leased(1, "10.214.5.4"), REMOTE, SERVER_IP, b"")


@pytest.mark.netns
@pytest.mark.interop
@pytest.mark.slow
@pytest.mark.parametrize("side", sorted(SIDES))
def test_a_small_relayed_storm_boots_every_client_through_the_relay(tmp_path, side):
    """10 clients, 1 MiB kernel and 2 MiB initrd, behind the relay: none fails, each
    leases on the relayed network, and the relay says it relayed."""
    require_netns()
    for tool in ("dnsmasq", "nginx", "taskset"):
        require_binary(tool)
    for path in LOADER_FILES.values():
        if not path.exists():
            pytest.skip(f"needs {path} (Debian packages pxelinux, syslinux-common, syslinux-efi)")
    args = argparse.Namespace(
        relayed=True, ramp=0.0, deadline=120.0, blksize=1468, tftp_timeout=1.0,
        tftp_retries=5, root=tmp_path / "root", logs=tmp_path / "logs",
    )  # fmt: skip
    args.sizes = fill_root(args.root, 1, 2)
    run = one_run(SIDES[side], 10, args, tmp_path / "run")
    summary = run["summary"]
    assert (summary["failures"], summary["kickstarts"]) == (0, 10), summary["failure_reasons"]
    assert summary["phases"]["callback"]["done"] == 10
    assert all(IPv4Address(c["address"]) in REMOTE_POOL for c in run["clients"])
    relay_log = (args.logs / f"{side}-10" / "relay.log").read_text()
    assert f"DHCP relay from {RELAY_IP} to {SERVER_IP}" in relay_log
