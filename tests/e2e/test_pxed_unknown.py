"""Scenario e: a machine pxed does not know (allow_unknown: false) gets no DHCP answer at all.

The wait is bounded by the refusals themselves: once pxed has logged two refused
DISCOVERs from the VM's MAC, the VM has had time to get any answer there was; a capture on
the bridge then shows no packet from udp/67, and the console no boot file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lab.bootfiles import fill_tftp_root
from lab.bootlab import BootLab
from lab.guest import Guest
from lab.procs import wait_until
from lab.qemu import Machine, missing_firmware
from lab.scenario import HostSpec, Scenario, start_pxed, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.netns, pytest.mark.slow]

KNOWN = "52:54:00:e2:e0:0e"
STRANGER = "52:54:00:e2:e0:ee"
REFUSALS_SEEN = 2
# Time for two iPXE DISCOVERs under TCG (they go at about 0, 1, 3, 7 s after its link).
REFUSAL_TIMEOUT = 180.0


def test_unknown_vm_gets_no_dhcp_answer_and_pxed_logs_the_refusal(
    tmp_path: Path, lab: BootLab, guest: Guest
) -> None:
    """Two DISCOVERs refused in pxed's log, nothing sent from udp/67, no boot file shown."""
    reason = missing_firmware("bios")
    if reason:
        pytest.skip(reason)
    tftp_root = fill_tftp_root(tmp_path / "tftp", guest)
    scenario = Scenario(hosts=(HostSpec(KNOWN, "known"),), allow_unknown=False)
    pxed = start_pxed(lab, write_config(lab, scenario, tftp_root, tmp_path))
    capture = lab.ns.tcpdump(lab.bridge.name, tmp_path / "dhcp.pcap", "udp src port 67")
    refused = re.compile(rf"dhcp DISCOVER from {STRANGER} .*: refused")

    boot = Machine("stranger", STRANGER, "bios", tmp_path / "vm").create().boot(lab)
    wait_until(
        lambda: len(refused.findall(pxed.output())) >= REFUSALS_SEEN,
        REFUSAL_TIMEOUT,
        f"{REFUSALS_SEEN} refused DISCOVERs from {STRANGER} in {pxed.log}",
    )
    boot.stop()

    assert capture.stop() == 0, "pxed answered a MAC it does not know"
    assert "Filename:" not in boot.console
