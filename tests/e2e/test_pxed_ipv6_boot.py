"""OVMF's own "UEFI PXEv6" client boots from pxed over IPv6 alone (docs/firmware.md).

The VM is plain UEFI firmware (virtio NIC, no iPXE ROM). pxed answers DHCPv6 only: its
DHCPv4 is off, so OVMF's PXEv4 attempt, which comes first in its boot order, gets no
answer and gives up before the PXEv6 one starts. pxed's DHCPv6 (full mode) gives the
firmware an address from the lab's ULA /64 and a `tftp://[fd00:213:7::1]/grubx64.efi`
boot file URL (option 59) for its architecture (option 61 = 7); the firmware fetches the
loader over TFTP on IPv6. GRUB (Debian's netboot image, as in the Secure Boot scenario)
then reads pxed's `grub/grub.cfg` and the host's `grub.cfg-01-<mac>` from the server it
came from, over IPv6 too, and loads the kernel and initrd. pxed wrote an IPv6 Kickstart
URL on the kernel command line (the client came over IPv6); the guest takes a SLAAC
address from the lab's router advert (lab/guest.py), fetches its Kickstart and runs the
done callback over IPv6, and pxed has the host installed.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest

from lab.bootfiles import fill_tftp_root, missing_signed_loaders
from lab.bootlab import IPV6_PREFIX, SERVER_IP6, BootLab
from lab.guest import Guest
from lab.qemu import Machine, missing_firmware
from lab.scenario import HTTP_PORT, HostSpec, Scenario, start_pxed, write_config
from pxed.provisioning.lifecycle import Lifecycle

pytestmark = [pytest.mark.e2e, pytest.mark.netns, pytest.mark.slow]

MAC = "52:54:00:e2:e0:6a"
SCENARIO = Scenario(
    hosts=(HostSpec(MAC, "e2e-pxev6"),),
    boot6={"uefi": "tftp://[{server6}]/grubx64.efi"},
)
# OVMF's line when PXEv4 has given up and PXEv6 starts.
PXEV6_STARTED = re.compile(r"Start PXE over IPv6")
# PXEv4 waits about 60 s for a DHCPv4 answer that never comes before PXEv6 gets its
# turn (docs/firmware.md); generous on a loaded machine.
PXEV6_TIMEOUT = 240.0


def test_ovmf_pxev6_installs_from_pxed_over_ipv6_alone(
    tmp_path: Path, lab: BootLab, guest: Guest
) -> None:
    """DHCPv6 lease and option 59, loader, configs, kernel over TFTP/IPv6, then the
    Kickstart and done callback over HTTP/IPv6: the host ends up installed."""
    for reason in (missing_firmware("uefi"), missing_signed_loaders()):
        if reason:
            pytest.skip(reason)
    tftp_root = fill_tftp_root(tmp_path / "tftp", guest)
    pxed = start_pxed(lab, write_config(lab, SCENARIO, tftp_root, tmp_path), port=547)
    machine = Machine("e2e-pxev6", MAC, "uefi", tmp_path / "vm", ipxe=False).create()
    boot = machine.boot(lab, "pxev6")
    try:
        boot.wait_for(PXEV6_STARTED, PXEV6_TIMEOUT)
        boot.installed()
        boot.powered_off()
    finally:
        boot.stop()
    log = pxed.output()
    lease = re.search(rf"REPLY to {MAC}: ({IPV6_PREFIX}[0-9a-f]+) boot uefi (\S+)", log)
    assert lease is not None, f"no DHCPv6 lease with a boot file in pxed's log:\n{log[-3000:]}"
    assert lease.group(2) == f"tftp://[{SERVER_IP6}]/grubx64.efi"
    assert re.search(r"Station IP address is FD00:213:7:", boot.console)
    sent = re.findall(rf"tftp complete: \[{re.escape(lease.group(1))}\]:\d+ (\S+) ", log)
    assert sent == [
        "grubx64.efi", "/grub/grub.cfg", f"/grub.cfg-01-{MAC}", "/vmlinuz", "/initrd.gz"
    ]  # fmt: skip
    assert f"inst.ks=http://[{SERVER_IP6}]:{HTTP_PORT}/ks/{MAC}/" in boot.console
    assert f"/api/hosts/{MAC}/done" in boot.kickstart()
    with contextlib.closing(Lifecycle.open(tmp_path / "state")) as states:
        assert states.get(MAC).state == "installed", "the done callback did not reach pxed"
