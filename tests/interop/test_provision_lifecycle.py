"""Provisioning against a real ``twistd -n pxed`` on 127.0.0.1 with real clients.

curl fetches Kickstarts (with and without Anaconda's MAC header, from the
host's reserved address and from another one) and runs the Kickstart's own
done callback; tftp-hpa fetches the generated pxelinux config before and after;
``pxed hosts`` reads and rearms the states; SIGHUP reloads (a new tree is
served under /trees/ at once), and a broken file is refused while the old
config keeps serving.

127.0.0.2 needs no set-up: all of 127.0.0.0/8 is on ``lo`` already, and curl
binds it as a source address with ``--interface``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.procs import Background, wait_until

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]
TWISTD = Path(sys.executable).parent / "twistd"
WEB = "52:54:00:12:34:56"  # netboot once, reserved 127.0.0.2
LOOPY = "52:54:00:12:34:57"  # for the loop breaker
TEMPLATE = """text
network --bootproto=dhcp --hostname={{ host.hostname }}
rootpw --iscrypted {{ vars.hash }}
reboot
{{ pxed_done }}
{{ pxed_failed }}
"""


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_config(
    root: Path, http_port: int, tftp_port: int, hostname: str = "web01", trees: str = "{}"
) -> Path:
    tftp = root / "tftp"
    tftp.mkdir(exist_ok=True)
    (tftp / "vmlinuz").write_bytes(b"kernel")
    (tftp / "initrd.img").write_bytes(b"initrd")
    (root / "web.ks.j2").write_text(TEMPLATE)
    path = root / "pxed.yaml"
    path.write_text(
        f"""server: {{address: 127.0.0.1, state_dir: {root}/state}}
tftp: {{root: {tftp}, listen: [127.0.0.1], port: {tftp_port}}}
http: {{listen: [127.0.0.1], port: {http_port}}}
install: {{loop_fetches: 3, loop_window: 3600, mac_header_networks: [127.0.0.1/32]}}
vars: {{hash: "$6$abc"}}
trees: {trees}
profiles:
  web:
    kernel: vmlinuz
    initrd: initrd.img
    append: "ip=dhcp"
    kickstart: web.ks.j2
hosts:
  - {{mac: "{WEB}", hostname: {hostname}, ip: 127.0.0.2, profile: web}}
  - {{mac: "{LOOPY}", hostname: loopy01, profile: web}}
"""
    )
    return path


@dataclass
class Pxed:
    root: Path
    config: Path
    http_port: int
    tftp_port: int
    proc: Background

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def curl(self, *args: str) -> tuple[int, str]:
        """(HTTP status, body) of a curl run against pxed."""
        done = subprocess.run(
            [curl(), "--silent", "--show-error", "--max-time", "20",
             "--write-out", "\n%{http_code}", *args],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        body, _, code = done.stdout.rpartition("\n")
        return int(code), body

    def tftp_get(self, name: str) -> str:
        """``name`` fetched with tftp-hpa's client (octet mode)."""
        binary = shutil.which("tftp")
        if binary is None:
            pytest.skip("tftp-hpa not installed (apt-get install -y tftp-hpa)")
        target = self.root / "fetched"
        target.unlink(missing_ok=True)
        done = subprocess.run(
            [binary, "-m", "binary", "127.0.0.1", str(self.tftp_port), "-c", "get", name,
             str(target)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert target.exists() and done.returncode == 0, done.stdout + done.stderr
        return target.read_text()

    def hosts(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "pxed", "hosts", "--config", str(self.config), *args],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return done.stdout

    def state(self, mac: str) -> str:
        line = next(line for line in self.hosts().splitlines() if line.startswith(mac))
        return line.split()[4]

    def hangup(self) -> None:
        mark = len(self.proc.output())
        os.kill(self.proc.pid, signal.SIGHUP)
        # The outcome lines, not "SIGHUP: reloading <path>": the path itself holds "reload".
        wait_until(
            lambda: (
                "] reloaded " in self.proc.output()[mark:]
                or "] reload of " in self.proc.output()[mark:]
            ),
            15,
            "pxed to log the reload's outcome",
        )


def curl() -> str:
    binary = shutil.which("curl")
    if binary is None:
        pytest.skip("curl not installed (apt-get install -y curl)")
    return binary


@pytest.fixture
def pxed(tmp_path: Path) -> Iterator[Pxed]:
    http_port, tftp_port = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
    config = write_config(tmp_path, http_port, tftp_port)
    proc = Background(
        [str(TWISTD), "-n", "--pidfile=", "pxed", "--config", str(config)], tmp_path / "pxed.log"
    )
    try:
        proc.wait_for_output(f"Site starting on {http_port}", timeout=30)
        yield Pxed(tmp_path, config, http_port, tftp_port, proc)
    finally:
        proc.stop()


def test_a_kickstart_goes_to_its_host_by_reserved_ip_or_trusted_header_and_nobody_else(pxed: Pxed):
    """Loopback has no neighbour entries: the off-link rules apply (tests/interop/test_identity
    shows the neighbour rule on a real link)."""
    header = f"X-RHN-Provisioning-MAC-0: eth0 {WEB}"
    code, body = pxed.curl("-H", header, f"{pxed.base}/ks/{WEB}")  # 127.0.0.1 is trusted
    assert code == 200 and "network --bootproto=dhcp --hostname=web01\n" in body
    code, body = pxed.curl(f"{pxed.base}/ks/{WEB}")  # from 127.0.0.1, no header
    assert code == 403 and "served only to that host" in body
    code, body = pxed.curl("--interface", "127.0.0.3", "-H", header, f"{pxed.base}/ks/{WEB}")
    assert code == 403  # the header alone, from a network nobody trusts
    code, body = pxed.curl("--interface", "127.0.0.2", f"{pxed.base}/ks/{WEB}")
    assert code == 200 and "rootpw --iscrypted $6$abc\n" in body
    code, body = pxed.curl("-H", header, f"{pxed.base}/ks/")  # the MAC from the header alone
    assert code == 200 and "hostname=web01" in body


def test_the_install_lifecycle_end_to_end_with_the_kickstarts_own_callback(pxed: Pxed):
    assert pxed.state(WEB) == "ready"
    config = pxed.tftp_get("pxelinux.cfg/01-52-54-00-12-34-56")
    assert "  KERNEL ::/vmlinuz\n" in config
    assert f"inst.ks=http://127.0.0.1:{pxed.http_port}/ks/{WEB}" in config
    assert pxed.state(WEB) == "booting"

    code, kickstart = pxed.curl("--interface", "127.0.0.2", f"{pxed.base}/ks/{WEB}")
    assert code == 200
    assert pxed.state(WEB) == "installing"

    # Run the callback line as %post would (curl, real HTTP POST with the token), from the
    # host's own address: the callback is believed only from the installing machine.
    callback = next(
        line for line in kickstart.splitlines() if line.startswith("curl ") and "/done" in line
    )
    from_host = callback.replace("curl ", "curl --interface 127.0.0.2 ", 1)
    subprocess.run(["sh", "-c", from_host], check=True, timeout=30, capture_output=True)
    assert pxed.state(WEB) == "installed"
    assert "LOCALBOOT 0" in pxed.tftp_get("pxelinux.cfg/01-52-54-00-12-34-56")
    code, script = pxed.curl(f"{pxed.base}/boot/{WEB}.ipxe")
    assert code == 200 and "sanboot --no-describe --drive 0x80" in script

    assert pxed.hosts("rearm", WEB).startswith(f"{WEB}: installed -> ready;")
    assert pxed.state(WEB) == "ready"
    assert "  KERNEL ::/vmlinuz\n" in pxed.tftp_get("pxelinux.cfg/01-52-54-00-12-34-56")


def test_a_forged_callback_is_refused(pxed: Pxed):
    code, _ = pxed.curl("-X", "POST", "--data", "token=0000", f"{pxed.base}/api/hosts/{WEB}/done")
    assert code == 403
    assert pxed.state(WEB) == "ready"


def test_the_loop_breaker_stops_reinstalls_and_logs_an_error(pxed: Pxed):
    header = f"X-RHN-Provisioning-MAC-0: eth0 {LOOPY}"
    codes = [pxed.curl("-H", header, f"{pxed.base}/ks/{LOOPY}")[0] for _ in range(4)]
    assert codes == [200, 200, 200, 409]
    assert pxed.state(LOOPY) == "looping"
    assert "LOCALBOOT 0" in pxed.tftp_get("pxelinux.cfg/01-52-54-00-12-34-57")
    assert re.search(
        r"\[pxed\.lifecycle#error\] host 52:54:00:12:34:57 is looping", pxed.proc.output()
    )


def test_reload_swaps_a_good_file_in_and_keeps_the_old_config_on_a_broken_one(pxed: Pxed):
    header = f"X-RHN-Provisioning-MAC-0: eth0 {WEB}"
    tree = pxed.root / "fresh"
    tree.mkdir()
    (tree / ".treeinfo").write_text("[general]\nname = fresh\n")
    assert pxed.curl(f"{pxed.base}/trees/fresh/.treeinfo")[0] == 404
    trees = f"{{fresh: {{path: {tree}}}}}"
    write_config(pxed.root, pxed.http_port, pxed.tftp_port, hostname="web02", trees=trees)
    pxed.hangup()
    assert "hostname=web02" in pxed.curl("-H", header, f"{pxed.base}/ks/{WEB}")[1]
    assert pxed.curl(f"{pxed.base}/trees/fresh/.treeinfo") == (200, "[general]\nname = fresh\n")

    pxed.config.write_text(pxed.config.read_text().replace("profile: web}", "profile: nosuch}", 1))
    pxed.hangup()
    assert "reload of" in pxed.proc.output() and "refused" in pxed.proc.output()
    assert "no profile named 'nosuch'" in pxed.proc.output()
    assert "  KERNEL ::/vmlinuz\n" in pxed.tftp_get("pxelinux.cfg/01-52-54-00-12-34-56")
    assert "hostname=web02" in pxed.curl("-H", header, f"{pxed.base}/ks/{WEB}")[1]
    assert pxed.curl(f"{pxed.base}/trees/fresh/.treeinfo")[0] == 200
    assert pxed.proc.running()
