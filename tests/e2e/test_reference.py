"""The harness against the reference servers of docs/firmware.md (dnsmasq + http.server), no pxed.

When a pxed scenario fails, this says whether the harness (guest, lab, QEMU, firmware) is
at fault. It doubles a BIOS boot's CI time, so it runs only with PXED_E2E_REFERENCE=1.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lab.bootfiles import fill_tftp_root, missing_loaders
from lab.bootlab import BootLab
from lab.guest import Guest
from lab.qemu import Machine, missing_firmware
from lab.reference import (
    HTTP_PORT,
    LOCALBOOT_CONFIG,
    pxelinux_config_name,
    pxelinux_install_config,
    reference_kickstart,
    start_reference,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.netns,
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("PXED_E2E_REFERENCE") != "1",
        reason="the dnsmasq reference boot is opt-in: set PXED_E2E_REFERENCE=1",
    ),
]

MAC = "52:54:00:e2:e0:01"
HOSTNAME = "ref01"


def test_bios_vm_boots_from_dnsmasq_fetches_its_kickstart_then_boots_its_disk(
    tmp_path: Path, lab: BootLab, guest: Guest
) -> None:
    """Scenario a with dnsmasq + http.server: marker, Kickstart, done GET; then local boot."""
    for reason in (missing_firmware("bios"), missing_loaders("bios")):
        if reason:
            pytest.skip(reason)
    server = f"http://{lab.server_ip}:{HTTP_PORT}"
    done_path = f"/api/hosts/{MAC}/done"
    http_root = tmp_path / "http"
    (http_root / done_path.lstrip("/")).parent.mkdir(parents=True)
    (http_root / done_path.lstrip("/")).write_text("ok\n")
    (http_root / "ks.cfg").write_text(reference_kickstart(HOSTNAME, server + done_path))
    tftp_root = fill_tftp_root(tmp_path / "tftp", guest)
    per_mac = tftp_root / pxelinux_config_name(MAC)
    per_mac.write_text(
        pxelinux_install_config(
            f"console=ttyS0,115200 panic=1 inst.ks={server}/ks.cfg e2e.expect={HOSTNAME}"
        )
    )
    servers = start_reference(lab, tftp_root, http_root)
    machine = Machine("ref01", MAC, "bios", tmp_path / "vm").create()

    first = machine.boot(lab, "install")
    first.installed()
    assert f"--hostname={HOSTNAME}" in first.kickstart()
    assert f"GET {done_path} HTTP/1.1" in servers.requests()
    first.powered_off()

    per_mac.write_text(LOCALBOOT_CONFIG)
    second = machine.boot(lab, "local")
    second.local_boot()
    second.stop()
