"""The status page in headless Chromium against a real ``twistd -n pxed`` on loopback.

A DISCOVER and a REQUEST from the host's MAC reach pxed's DHCP socket on
``lo`` (high ports; ciaddr is set, so the replies are unicast to 127.0.0.2,
never broadcast), curl fetches its pxelinux config and its Kickstart, and
Chromium loads ``/``, runs the page's JavaScript and dumps the DOM: the host
from the config is listed with its state, and its timeline shows the DHCP and
the Kickstart events. The same run takes the README's screenshot
(``PXED_UPDATE_GOLDEN=1`` copies it to docs/status-page.png).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from lab.procs import Background, wait_until
from protocols.dhcp.options import MessageType
from tests.interop.test_provision_lifecycle import ROOT, TWISTD, WEB, Pxed, free_port, write_config
from tests.protocols.dhcp_engine_support import request as dhcp_request

pytestmark = pytest.mark.interop

SCREENSHOT = ROOT / "docs/status-page.png"
UPDATE = os.environ.get("PXED_UPDATE_GOLDEN") == "1"
PXE = ((60, "PXEClient:Arch:00000:UNDI:002001"), (93, (0,)))
CLIENT_IP = IPv4Address("127.0.0.2")  # WEB's reservation in write_config


def chromium() -> str:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    return binary


@pytest.fixture
def pxed(tmp_path: Path) -> Iterator[Pxed]:
    if os.geteuid() != 0:
        pytest.skip("DHCP on lo needs root (SO_BINDTODEVICE)")
    http_port, tftp_port = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
    dhcp_port, client_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    config = write_config(tmp_path, http_port, tftp_port)
    text = config.read_text().replace("server: {", "server: {interfaces: [lo], ", 1)
    config.write_text(
        text + f"dhcp:\n  mode: full\n  server_port: {dhcp_port}\n  client_port: {client_port}\n"
        "  subnets: [{network: 127.0.0.0/8, range: [127.0.0.100, 127.0.0.200]}]\n"
    )
    argv = [str(TWISTD), "-n", "--pidfile=", "pxed", "--config", str(config)]
    proc = Background(argv, tmp_path / "pxed.log")
    try:
        proc.wait_for_output(f"Site starting on {http_port}", timeout=30)
        pxed = Pxed(tmp_path, config, http_port, tftp_port, proc)
        pxed.dhcp_port = dhcp_port  # type: ignore[attr-defined]
        yield pxed
    finally:
        proc.stop()


def boot_steps(pxed: Pxed) -> None:
    """DISCOVER and REQUEST from WEB, its pxelinux config, its Kickstart; wait for the timeline."""
    chosen = ((50, CLIENT_IP), (54, IPv4Address("127.0.0.1")), *PXE)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        for kind, options in ((MessageType.DISCOVER, PXE), (MessageType.REQUEST, chosen)):
            # ciaddr set: pxed answers by unicast to 127.0.0.2, never a broadcast (RFC 2131 4.1).
            datagram = dhcp_request(kind, WEB, options=options, ciaddr=CLIENT_IP)
            client.sendto(datagram, ("127.0.0.1", pxed.dhcp_port))  # type: ignore[attr-defined]
    wait_until(lambda: WEB in pxed.curl(f"{pxed.base}/api/leases")[1], 15, "the lease")
    pxed.tftp_get("pxelinux.cfg/01-52-54-00-12-34-56")
    assert pxed.curl("--interface", str(CLIENT_IP), f"{pxed.base}/ks/{WEB}")[0] == 200

    def kinds() -> set[str]:
        body = pxed.curl(f"{pxed.base}/api/hosts/{WEB}/timeline")[1]
        return {event["kind"] for event in json.loads(body)["events"]}

    wait_until(lambda: {"dhcp", "kickstart"} <= kinds(), 15, "the DHCP and Kickstart events")


def browse(pxed: Pxed, tmp_path: Path, *mode: str) -> str:
    done = subprocess.run(
        [
            chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={tmp_path / 'chromium'}",
            "--virtual-time-budget=5000", "--window-size=1280,900", *mode, f"{pxed.base}/",
        ],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return done.stdout


class Rows(HTMLParser):
    """The text of each table row, by table id, with the row's class."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[tuple[str, list[str]]]] = {}
        self.table: str | None = None
        self.row: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table":
            self.table = found.get("id") or ""
            self.tables[self.table] = []
        elif tag == "tr" and self.table is not None:
            self.row = []
            self.tables[self.table].append((found.get("class") or "", self.row))

    def handle_data(self, data: str) -> None:
        if self.row is not None and data.strip():
            self.row.append(data.strip())


def test_the_status_page_lists_the_host_and_its_dhcp_and_kickstart_events(
    pxed: Pxed, tmp_path: Path
) -> None:
    boot_steps(pxed)
    parser = Rows()
    parser.feed(browse(pxed, tmp_path, "--dump-dom"))
    hosts = [cells for _, cells in parser.tables["hosts"][1:]]
    assert hosts[0][:3] == [WEB, "web01", "installing"]
    events = [(kind, cells) for kind, cells in parser.tables["timeline"][1:]]
    kinds = [cells[1] for _, cells in events]
    assert "dhcp" in kinds and "kickstart" in kinds
    assert any("kickstart of 52:54:00:12:34:56 for " in cells[2] for _, cells in events)

    shot = tmp_path / "status-page.png"
    browse(pxed, tmp_path, f"--screenshot={shot}")
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size < 200_000
    if UPDATE:
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)
