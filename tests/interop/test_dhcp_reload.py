"""SIGHUP to a real ``twistd -n pxed`` serving DHCP in a namespace, asked by a scripted PXE ROM.

The boot file changes with the reload, the client keeps its address (the
lease database is not reopened), and a port change in the same file is named
as needing a restart while the rest still applies.
"""

from __future__ import annotations

import json
import os
import signal
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from lab.netns import NetnsLab
from lab.procs import run, wait_until
from tests.interop.dhcp_runner import in_namespace, start_pxed, subnet, write_config
from tests.interop.test_dhcp_clients import DhcpLab

pytestmark = [pytest.mark.interop, pytest.mark.netns]

MAC = "52:54:00:aa:bb:01"


def pxe_offer(lab: DhcpLab) -> dict[str, Any]:
    """The scripted PXE ROM's run: its offers and the address it was ACKed."""
    done = run(
        in_namespace(lab.client, "pxe-client", "--interface", lab.client_if, "--mac", MAC),
        timeout=30,
    )
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_sighup_changes_the_boot_file_offered_and_keeps_the_clients_address(
    netns_lab: NetnsLab, tmp_path: Path
):
    lab = DhcpLab(netns_lab, tmp_path)
    subnets = [subnet(netns_lab.subnet, 100, 200)]
    config = tmp_path / "pxed.yaml"
    write_config(config, lab.server_if, lab.state, subnets, boot={"bios": "first.kpxe"})
    pxed = start_pxed(lab.server, config, tmp_path / "pxed.log")

    before = pxe_offer(lab)
    assert [offer["file"] for offer in before["offers"]] == ["first.kpxe"], before
    assert "address" in before, before

    boot = {"bios": "second.kpxe"}
    write_config(config, lab.server_if, lab.state, subnets, boot=boot, server_port=1067)
    mark = len(pxed.output())
    os.kill(pxed.pid, signal.SIGHUP)
    wait_until(lambda: "] reloaded " in pxed.output()[mark:], 15, "pxed to log the reload")
    log = pxed.output()[mark:]
    assert "dhcp.server_port changed to 1067 in the file, but needs a restart" in log

    after = pxe_offer(lab)  # still on port 67: the socket pxed started with
    assert [offer["file"] for offer in after["offers"]] == ["second.kpxe"], after
    assert after["address"] == before["address"]
    assert lab.leases() == {MAC: IPv4Address(before["address"])}
    assert pxed.running()
