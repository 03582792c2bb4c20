"""OVMF's "UEFI HTTPv6" client boots from pxed over an IPv6-only network (docs/firmware.md).

The VM is plain UEFI firmware (virtio NIC, no iPXE ROM) with its PXE entries and IPv4 stack
switched off (fw_cfg), so its "UEFI HTTPv6" entry runs first; pxed's DHCPv4 is off too.
The link's router adverts come from radvd with the managed flag set. pxed's DHCPv6 gives
the firmware an address and, for vendor class ``HTTPClient`` and architecture 16, an
``http://[fd00:213:7::1]:80/tftp/snponly.efi`` boot file URL (option 59) with
``HTTPClient`` echoed (option 16). The firmware fetches iPXE's snponly.efi over HTTP/IPv6;
iPXE sees the managed flag, runs DHCPv6 itself as iPXE (user class) and gets its script
URL, then fetches the script, kernel and initrd from pxed over HTTP/IPv6. The kernel line
carries an IPv6 Kickstart URL; the guest takes a SLAAC address, fetches its Kickstart and
runs the done callback over IPv6, and pxed has the host installed. pxed keeps the address
OVMF RELEASEs after the download (dhcp6.release_quarantine).
"""

from __future__ import annotations

import contextlib
import re
import shutil
from pathlib import Path

import pytest

from lab.bootfiles import fill_tftp_root
from lab.bootlab import IPV6_PREFIX, SERVER_IP6, BootLab
from lab.guest import Guest
from lab.qemu import Machine, missing_firmware
from lab.scenario import HTTP_PORT, HostSpec, Scenario, start_pxed, write_config
from pxed.provisioning.lifecycle import Lifecycle

pytestmark = [pytest.mark.e2e, pytest.mark.netns, pytest.mark.slow]

MAC = "52:54:00:e2:e0:6b"
SCENARIO = Scenario(
    hosts=(HostSpec(MAC, "e2e-httpv6"),),
    boot6={"uefi_http": "http://[{server6}]:{http_port}/tftp/snponly.efi"},
)
SNPONLY = Path("/usr/lib/ipxe/snponly.efi")
# OVMF's line when HTTPv6 starts, about 30 s after power-on under TCG.
HTTPV6_STARTED = re.compile(r"Start HTTP Boot over IPv6")
HTTPV6_TIMEOUT = 120.0


def _missing_snponly() -> str:
    return "" if SNPONLY.exists() else f"needs {SNPONLY} (Debian package ipxe)"


def test_ovmf_http_boot_installs_from_pxed_over_ipv6_alone(
    tmp_path: Path, managed_lab: BootLab, guest: Guest
) -> None:
    """DHCPv6 with option 59 http:// and HTTPClient echoed, snponly.efi over HTTP/IPv6,
    iPXE's own DHCPv6, script, kernel and initrd over HTTP/IPv6, then the Kickstart and
    done callback: the host ends up installed."""
    for reason in (missing_firmware("uefi"), _missing_snponly()):
        if reason:
            pytest.skip(reason)
    lab = managed_lab
    tftp_root = fill_tftp_root(tmp_path / "tftp", guest)
    shutil.copyfile(SNPONLY, tftp_root / SNPONLY.name)
    pxed = start_pxed(lab, write_config(lab, SCENARIO, tftp_root, tmp_path), port=547)
    machine = Machine("e2e-httpv6", MAC, "uefi", tmp_path / "vm", ipxe=False, http_boot_v6=True)
    boot = machine.create().boot(lab, "httpv6")
    try:
        boot.wait_for(HTTPV6_STARTED, HTTPV6_TIMEOUT)
        elapsed = boot.installed()
        boot.powered_off()
    finally:
        boot.stop()
    print(f"power-on to done callback: {elapsed:.1f} s")
    log = pxed.output()
    url = f"http://[{SERVER_IP6}]:{HTTP_PORT}/tftp/snponly.efi"
    firmware = re.search(rf"REPLY to {MAC}: ({IPV6_PREFIX}[0-9a-f]+) boot uefi_http (\S+)", log)
    assert firmware is not None, f"no HTTP boot lease in pxed's log:\n{log[-3000:]}"
    assert firmware.group(2) == url
    kept = rf"RELEASE from {MAC} .*: released {re.escape(firmware.group(1))} \(kept for"
    assert re.search(kept, log), "the address OVMF released went straight back to the pool"
    ipxe = re.search(rf"REPLY to {MAC}: {IPV6_PREFIX}[0-9a-f]+ boot ipxe (\S+)", log)
    assert ipxe is not None, f"iPXE got no script URL over DHCPv6:\n{log[-3000:]}"
    assert ipxe.group(1).startswith(f"http://[{SERVER_IP6}]:{HTTP_PORT}/")
    assert f"inst.ks=http://[{SERVER_IP6}]:{HTTP_PORT}/ks/{MAC}/" in boot.console
    assert f"/api/hosts/{MAC}/done" in boot.kickstart()
    with contextlib.closing(Lifecycle.open(tmp_path / "state")) as states:
        assert states.get(MAC).state == "installed", "the done callback did not reach pxed"
