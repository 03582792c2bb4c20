"""Debian's iPXE ROMs (ipxe-qemu: BIOS and UEFI) boot from pxed over IPv6 alone
(docs/firmware.md).

pxed answers DHCPv6 only (DHCPv4 off). iPXE starts DHCPv6 only when a router
advertisement says so (with the lab's RA-only dnsmasq, no managed flag, it takes a SLAAC
address, sends no SOLICIT and finds "Nothing to boot"), so the test runs in the managed
lab, whose radvd sets the managed flag (lab/bootlab.py). iPXE's SOLICIT carries user
class ``iPXE``: pxed gives it the host's iPXE script URL over HTTP on IPv6 (option 59),
the script loads kernel and initrd over HTTP on IPv6, and the guest installs over IPv6
as in the OVMF PXEv6 test.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest

from lab.bootfiles import fill_tftp_root
from lab.bootlab import IPV6_PREFIX, SERVER_IP6, BootLab
from lab.guest import Guest
from lab.netns import ProcessError
from lab.qemu import Firmware, Machine, missing_firmware
from lab.scenario import HTTP_PORT, HostSpec, Scenario, start_pxed, write_config
from pxed.provisioning.lifecycle import Lifecycle

pytestmark = [pytest.mark.e2e, pytest.mark.netns, pytest.mark.slow]

MACS = {"bios": "52:54:00:e2:e0:6b", "uefi": "52:54:00:e2:e0:6c"}
BOOT6 = {"ipxe": "http://[{server6}]:{http_port}/boot/{mac}.ipxe"}
BOOT_TIMEOUT = 300.0


@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_ipxe_rom_boots_from_pxed_over_ipv6_alone(
    tmp_path: Path, managed_lab: BootLab, guest: Guest, firmware: Firmware
) -> None:
    """DHCPv6 lease and script URL, script, kernel and initrd over HTTP/IPv6, then the
    Kickstart and done callback over IPv6: the host ends up installed."""
    reason = missing_firmware(firmware)
    if reason:
        pytest.skip(reason)
    lab = managed_lab
    mac = MACS[firmware]
    tftp_root = fill_tftp_root(tmp_path / "tftp", guest)
    scenario = Scenario(hosts=(HostSpec(mac, "e2e-ipxe6"),), boot6=BOOT6)
    pxed = start_pxed(lab, write_config(lab, scenario, tftp_root, tmp_path), port=547)
    try:
        machine = Machine("e2e-ipxe6", mac, firmware, tmp_path / "vm").create()
        boot = machine.boot(lab, "ipxe6")
        try:
            seconds = boot.installed(BOOT_TIMEOUT)
            boot.powered_off()
        finally:
            boot.stop()
    except ProcessError as exc:
        raise ProcessError(f"{exc}\npxed log:\n{pxed.output()[-3000:]}") from None
    print(f"iPXE {firmware} over IPv6: power-on to the done callback {seconds:.1f} s")
    log = pxed.output()
    script = f"http://[{SERVER_IP6}]:{HTTP_PORT}/boot/{mac}.ipxe"
    assert re.search(rf"REPLY to {mac}: {IPV6_PREFIX}[0-9a-f]+ boot ipxe {re.escape(script)}", log)
    assert f"Filename: {script}" in boot.console
    assert re.search(rf"net0: {IPV6_PREFIX}[0-9a-f]+/64", boot.console), "no DHCPv6 address"
    assert f"inst.ks=http://[{SERVER_IP6}]:{HTTP_PORT}/ks/{mac}/" in boot.console
    with contextlib.closing(Lifecycle.open(tmp_path / "state")) as states:
        assert states.get(mac).state == "installed"
