"""The installer scenario's own pieces, checked without the installer's tens of minutes.

pxed must accept the lab's preseed profile (debconf-set-selections checks every line),
and the preseed it serves must do what d-i would do with it: fetched with busybox's wget
and its late_command run by busybox sh and nc (the same BusyBox 1.35 as d-i's) from a
namespace whose NIC has the host's MAC, so pxed's identity rule sees the host itself.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest

from lab.bootlab import boot_lab
from lab.debinstall import INITRD, KERNEL, Installee, write_config
from lab.netns import NetnsLab, require_binary
from lab.scenario import HTTP_PORT, start_pxed
from pxed.config import load_config
from pxed.provisioning.answers import checked
from pxed.provisioning.lifecycle import Lifecycle

pytestmark = pytest.mark.netns

HOST = Installee("52:54:00:d1:12:02", "debinst02")


def _tftp_root(workdir: Path) -> None:
    tftp = workdir / "tftp"
    tftp.mkdir()
    for name in (KERNEL, INITRD):
        (tftp / name).write_bytes(b"not booted here")


def test_pxed_accepts_the_lab_preseed_profile(tmp_path: Path, netns_lab: NetnsLab) -> None:
    require_binary("debconf-set-selections")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    _tftp_root(tmp_path)
    config = checked(load_config(write_config(boot_lab(netns_lab), HOST, mirror, tmp_path)))
    assert config.host(HOST.mac) is not None


def test_the_served_preseed_reports_done_through_busybox_as_d_i_runs_it(
    tmp_path: Path, netns_lab: NetnsLab
) -> None:
    """pxed in the lab; busybox wget fetches /preseed/<mac>, busybox sh runs late_command."""
    busybox = Path(require_binary("busybox"))
    require_binary("dnsmasq")
    lab = boot_lab(netns_lab)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    _tftp_root(tmp_path)
    pxed = start_pxed(lab, write_config(lab, HOST, mirror, tmp_path))
    lab.ns.wait_listening(HTTP_PORT, "tcp", timeout=30.0)
    installer = netns_lab.namespace("inst")
    link = netns_lab.attach(lab.bridge, installer, host=150)
    installer.ip("link", "set", link.b_if, "address", HOST.mac)
    applets = tmp_path / "applets"
    applets.mkdir()
    for applet in ("sh", "wget", "printf", "nc", "head", "awk", "sleep"):
        (applets / applet).symlink_to(busybox)
    as_installer = ["env", f"PATH={applets}", "sh", "-c"]
    url = f"http://{lab.server_ip}:{HTTP_PORT}/preseed/{HOST.mac}"
    preseed = installer.run([*as_installer, f"wget -q -O - {url}"], timeout=60.0).stdout
    late = re.search(r"^d-i preseed/late_command string (.*)$", preseed, re.MULTILINE)
    assert late is not None, preseed

    done = installer.run([*as_installer, late[1]], timeout=60.0, check=False)

    assert done.returncode == 0, done.stdout + done.stderr
    assert f'"POST /api/hosts/{HOST.mac}/done HTTP/1.0" 200' in pxed.output()
    with contextlib.closing(Lifecycle.open(tmp_path / "state")) as states:
        assert states.get(HOST.mac).state == "installed"
