"""The installer scenario's own pieces, checked without the installer's tens of minutes.

The preseed must be selections debconf accepts, and its late_command must really report
done to pxed: it runs here with busybox's nc (the same BusyBox 1.35 as d-i's) from a
namespace whose NIC has the host's MAC, so pxed's identity rule sees the host itself.
"""

from __future__ import annotations

import contextlib
import subprocess
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from lab.bootlab import boot_lab
from lab.debinstall import INITRD, KERNEL, Installee, late_command, render_preseed, write_config
from lab.netns import NetnsLab, require_binary
from lab.scenario import start_pxed
from pxed.provisioning.lifecycle import Lifecycle
from pxed.provisioning.tokens import host_token, load_secret

HOST = Installee("52:54:00:d1:12:02", "debinst02")
TOKEN = "0123456789abcdef0123456789abcdef"


def test_the_preseed_is_selections_debconf_accepts(tmp_path: Path) -> None:
    require_binary("debconf-set-selections")
    preseed = tmp_path / "preseed.cfg"
    preseed.write_text(render_preseed(IPv4Address("10.213.7.1"), HOST, TOKEN))
    checked = subprocess.run(
        ["debconf-set-selections", "--checkonly", str(preseed)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr


def test_the_done_callback_carries_its_token_in_a_header_never_in_the_url() -> None:
    command = late_command(IPv4Address("10.213.7.1"), HOST, TOKEN)
    request_line = command.split("\\r\\n")[0]
    assert request_line.endswith(f"POST /api/hosts/{HOST.mac}/done HTTP/1.0")
    assert f"X-Pxed-Token: {TOKEN}\\r\\n" in command
    assert command.count(TOKEN) == 1


@pytest.mark.netns
def test_the_late_command_marks_the_host_installed_through_busybox_nc(
    tmp_path: Path, netns_lab: NetnsLab
) -> None:
    """pxed in the lab; the late_command run by busybox sh from a NIC with the host's MAC."""
    busybox = Path(require_binary("busybox"))
    require_binary("dnsmasq")
    lab = boot_lab(netns_lab)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    tftp = tmp_path / "tftp"
    tftp.mkdir()
    for name in (KERNEL, INITRD):
        (tftp / name).write_bytes(b"not booted here")
    pxed = start_pxed(lab, write_config(lab, HOST, mirror, tmp_path))
    lab.ns.wait_listening(80, "tcp", timeout=30.0)
    installer = netns_lab.namespace("inst")
    link = netns_lab.attach(lab.bridge, installer, host=150)
    installer.ip("link", "set", link.b_if, "address", HOST.mac)
    applets = tmp_path / "applets"
    applets.mkdir()
    for applet in ("sh", "printf", "nc", "head", "logger"):
        (applets / applet).symlink_to(busybox)
    token = host_token(load_secret(tmp_path / "state"), HOST.mac)
    script = late_command(lab.server_ip, HOST, token)
    installer.run(["env", f"PATH={applets}", "sh", "-c", script], timeout=60.0, check=False)

    assert f'"POST /api/hosts/{HOST.mac}/done HTTP/1.0" 200' in pxed.output()
    with contextlib.closing(Lifecycle.open(tmp_path / "state")) as states:
        assert states.get(HOST.mac).state == "installed"
