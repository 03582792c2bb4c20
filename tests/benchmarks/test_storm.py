"""The storm benchmark's own arithmetic and packets (benchmarks/storm.py), without a network."""

import socket
import struct

from benchmarks.storm import MAGIC, dhcp_packet, dhcp_reply, percentile, summarize


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
