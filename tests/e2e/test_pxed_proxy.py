"""Scenario d: dnsmasq is the LAN's address server, pxed in proxy mode only says what to boot.

The address server (its own namespace on the bridge) hands out addresses with no boot
options; pxed answers the firmware's PXE DISCOVER with a proxy offer naming pxelinux.0 and
never an address, so the guest's own DHCP (udhcpc, not a PXE client) gets its lease from
dnsmasq, and /ks/<mac> knows the host by Anaconda's MAC header (inst.ks.sendmac).
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest

from lab.bootfiles import fill_tftp_root, missing_loaders
from lab.bootlab import BootLab, start_address_server
from lab.guest import Guest
from lab.qemu import Machine, missing_firmware
from lab.scenario import HostSpec, Scenario, start_pxed, write_config
from pxed.provisioning.lifecycle import Lifecycle

pytestmark = [pytest.mark.e2e, pytest.mark.netns, pytest.mark.slow]

MAC = "52:54:00:e2:e0:0d"
HOSTNAME = "e2e-d"


def test_bios_vm_installs_with_pxed_as_proxydhcp_beside_dnsmasq(
    tmp_path: Path, lab: BootLab, guest: Guest
) -> None:
    """Boot file from pxed, address from dnsmasq, Kickstart and done from pxed."""
    for reason in (missing_firmware("bios"), missing_loaders("bios")):
        if reason:
            pytest.skip(reason)
    dnsmasq = start_address_server(lab)
    tftp_root = fill_tftp_root(tmp_path / "tftp", guest)
    scenario = Scenario(
        hosts=(HostSpec(MAC, HOSTNAME),), mode="proxy", loader={"ipxe": "pxelinux.0"}
    )
    pxed = start_pxed(lab, write_config(lab, scenario, tftp_root, tmp_path))

    boot = Machine(HOSTNAME, MAC, "bios", tmp_path / "vm").create().boot(lab)
    boot.installed()
    boot.powered_off()

    assert "Filename: pxelinux.0" in boot.console
    assert f"--hostname={HOSTNAME}" in boot.kickstart()
    assert "DHCPACK(" in dnsmasq.output() and MAC in dnsmasq.output()
    handed_out = re.findall(r": (?:offer|ack) (?!0\.0\.0\.0:)\S+", pxed.output())
    assert handed_out == [], "pxed handed out an address in proxy mode"
    with contextlib.closing(Lifecycle.open(tmp_path / "state")) as states:
        assert states.get(MAC).state == "installed"
