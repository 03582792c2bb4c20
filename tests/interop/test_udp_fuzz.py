"""Hostile datagrams at pxed's DHCP and TFTP ports: it survives, keeps answering, stays small.

The CI-sized run of lab/udpfuzz.py (`make fuzz` sends a million a port and prints
the memory and latency table). Nothing here is timed: latency is the opt-in
run's to report.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from lab import udpfuzz

pytestmark = pytest.mark.interop

COUNT = 20_000  # per port


def test_twenty_thousand_hostile_datagrams_a_port_leave_pxed_serving(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("DHCP on lo needs root (SO_BINDTODEVICE)")
    runs, proc, ports = udpfuzz.run(tmp_path, COUNT, seed=7)
    try:
        assert [run.sent for run in runs] == [COUNT, COUNT]
        assert proc.running()
        assert udpfuzz.dhcp_answers(ports["dhcp"], ports["client"])
        tftp = subprocess.run(
            # From another address: the fuzzer's own (127.0.0.1) is at max_per_client.
            ["curl", "--silent", "--max-time", "20", "--interface", "127.0.0.2",
             f"tftp://127.0.0.1:{ports['tftp']}/pxelinux.0"],
            capture_output=True, timeout=30, check=False,
        )  # fmt: skip
        assert tftp.stdout == b"loader" * 100
        assert runs[-1].rss_after_kib - runs[0].rss_before_kib < 20 * 1024
        log = proc.output()
        assert "Traceback" not in log and "Unhandled" not in log
    finally:
        proc.stop()
