"""A boot storm of 50 hosts against a real ``twistd -n pxed``, drawn by the status page
in headless Chromium.

pxed, the clients and Chromium all run in one network namespace of the test's, on its
``lo``: each host is a thread of tests/support/storm_client.py with its reservation as
source address (127.0.1.N), doing DHCP, TFTP of pxelinux.0 and its pxelinux config,
HTTP of the kernel and initrd, its Kickstart and the done callback, all at once. A few
hosts misbehave on purpose (a second DISCOVER, a missing loader first, an initrd
transfer left hanging, no Kickstart, a failed install) so the page has retries and
failures to mark. Chromium's DOM must show 50 rows with their phases; the same run
takes the README's screenshot
(``PXED_UPDATE_GOLDEN=1`` copies it to docs/status-storm.png).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from lab.netns import Namespace, NetnsLab, require_netns
from lab.procs import wait_until
from tests.interop.test_ops_status_page import chromium
from tests.interop.test_provision_lifecycle import ROOT, TEMPLATE, TWISTD

pytestmark = pytest.mark.interop

SCREENSHOT = ROOT / "docs/status-storm.png"
UPDATE = os.environ.get("PXED_UPDATE_GOLDEN") == "1"
HOSTS = 50
HTTP, TFTP, DHCP, CLIENT = 8080, 6969, 6767, 6868  # a namespace of our own: no clashes
QUIRKS = {3: "dhcp-retry", 17: "loader-retry", 23: "initrd-stalls", 31: "dhcp-retry"}
QUIRKS[44] = "install-fails"
QUIRKS[HOSTS] = "no-kickstart"
RETRIED_ONCE = "\u00d72"  # the page's mark: two attempts
ALL = ["dhcp", "loader", "config", "kernel", "initrd", "kickstart", "callback"]


def mac(n: int) -> str:
    return f"52:54:00:aa:00:{n:02x}"


def write_storm_config(root: Path) -> Path:
    """50 hosts reserved 127.0.1.1-50, one tree-less profile; small boot files."""
    tftp = root / "tftp"
    tftp.mkdir()
    (tftp / "pxelinux.0").write_bytes(os.urandom(40_000))
    (tftp / "vmlinuz").write_bytes(os.urandom(300_000))
    (tftp / "initrd.img").write_bytes(os.urandom(1_000_000))
    (root / "web.ks.j2").write_text(TEMPLATE)
    hosts = "".join(
        f'  - {{mac: "{mac(n)}", hostname: rack{n:02d}, ip: 127.0.1.{n}, profile: web}}\n'
        for n in range(1, HOSTS + 1)
    )
    path = root / "pxed.yaml"
    path.write_text(
        f"""server: {{address: 127.0.0.1, interfaces: [lo], state_dir: {root}/state}}
tftp: {{root: {tftp}, listen: [127.0.0.1], port: {TFTP}}}
http: {{listen: [127.0.0.1], port: {HTTP}}}
dhcp:
  mode: full
  server_port: {DHCP}
  client_port: {CLIENT}
  subnets: [{{network: 127.0.0.0/8, range: [127.0.0.100, 127.0.0.200]}}]
vars: {{hash: "$6$abc"}}
profiles:
  web:
    kernel: vmlinuz
    initrd: initrd.img
    append: "ip=dhcp"
    kickstart: web.ks.j2
hosts:
{hosts}"""
    )
    return path


@pytest.fixture
def storm_ns(tmp_path: Path) -> Iterator[Namespace]:
    require_netns()
    chromium()
    with NetnsLab(tmp_path) as lab:
        ns = lab.namespace("storm")
        config = write_storm_config(tmp_path)
        pxed = ns.spawn([str(TWISTD), "-n", "--pidfile=", "pxed", "--config", str(config)])
        pxed.wait_for_output(f"Site starting on {HTTP}", timeout=30)
        yield ns


def run_storm(ns: Namespace, tmp_path: Path) -> list[dict[str, str | None]]:
    hosts = [{"mac": mac(n), "ip": f"127.0.1.{n}", "quirk": QUIRKS.get(n, "")}
             for n in range(1, HOSTS + 1)]  # fmt: skip
    plan = {"server": "127.0.0.1", "dhcp_port": DHCP, "client_port": CLIENT,
            "tftp_port": TFTP, "http_port": HTTP, "hosts": hosts}  # fmt: skip
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    argv = ["env", f"PYTHONPATH={ROOT}", sys.executable, "-m", "tests.support.storm_client"]
    done = ns.run([*argv, str(tmp_path / "plan.json")], timeout=90, check=False)
    return [json.loads(line) for line in done.stdout.splitlines()]


def boots(ns: Namespace) -> list[dict[str, object]]:
    done = ns.run(["curl", "-sS", f"http://127.0.0.1:{HTTP}/api/boots"])
    rows: list[dict[str, object]] = json.loads(done.stdout)["boots"]
    return rows


def browse(ns: Namespace, tmp_path: Path, *mode: str) -> str:
    argv = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=5000",
        "--window-size=1280,1060", *mode, f"http://127.0.0.1:{HTTP}/",
    ]  # fmt: skip
    return ns.run(argv, timeout=120).stdout


class BootRows(HTMLParser):
    """Per boot row of the page's SVG: its MAC, its phases' classes, its texts by first class."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, list[str]]] = {}
        self.row: dict[str, list[str]] | None = None
        self.text: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        classes = (found.get("class") or "").split()
        if tag == "g" and "boot" in classes:
            self.row = self.rows.setdefault(found["data-mac"] or "", {})
        elif self.row is not None and tag == "rect" and found.get("data-phase"):
            self.row.setdefault("phases", []).append(" ".join(classes[1:]))
        elif self.row is not None and tag == "text":
            self.text = classes[0] if classes else ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "text":
            self.text = None

    def handle_data(self, data: str) -> None:
        if self.row is not None and self.text is not None:
            self.row.setdefault(self.text, []).append(data)


def test_a_storm_of_50_boots_is_drawn_as_one_row_of_phases_per_host(
    storm_ns: Namespace, tmp_path: Path
) -> None:
    results = run_storm(storm_ns, tmp_path)
    assert [r for r in results if r["error"]] == [] and len(results) == HOSTS
    wait_until(lambda: sum("callback" in str(b) for b in boots(storm_ns)) == HOSTS - 2, 15,
               "every callback on /api/boots")  # fmt: skip

    page = BootRows()
    page.feed(browse(storm_ns, tmp_path, "--dump-dom"))
    assert sorted(page.rows) == [mac(n) for n in range(1, HOSTS + 1)]
    plain = [page.rows[mac(n)] for n in range(1, HOSTS + 1) if n not in QUIRKS]
    assert all(row["phases"] == ALL for row in plain)
    assert all(row["state-text"][0].startswith("done in ") for row in plain)
    for n in (3, 31):
        assert page.rows[mac(n)]["retry"] == [RETRIED_ONCE] and page.rows[mac(n)]["phases"] == ALL
    assert page.rows[mac(17)]["retry"] == [RETRIED_ONCE] and "failed" not in str(page.rows[mac(17)])
    assert page.rows[mac(44)]["phases"][-1] == "callback failed"
    assert page.rows[mac(44)]["state-text"] == ["callback failed"]
    # pxed gives the hanging transfer up after its retransmits: running or failed by now.
    assert page.rows[mac(23)]["phases"][:4] == ALL[:4]
    assert page.rows[mac(23)]["phases"][4] in ("initrd running", "initrd failed")
    assert page.rows[mac(HOSTS)]["phases"] == ALL[:5]
    assert page.rows[mac(HOSTS)]["state-text"][0].startswith("after initrd ")

    shot = tmp_path / "status-storm.png"
    browse(storm_ns, tmp_path, f"--screenshot={shot}")
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size < 300_000
    if UPDATE:
        shutil.copyfile(shot, SCREENSHOT)
