"""``pxed explain`` against a real ``twistd -n pxed``: the boot configs it prints are, byte for
byte, the files curl fetches from the daemon over TFTP and HTTP.

The fixture is the goldens' (tests/pxed/configs/explain/) with free ports and
DHCP off (the DHCP answer is checked against the DHCP adapter in
tests/pxed/cli/test_explain.py).
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.procs import Background
from tests.interop.test_provision_lifecycle import ROOT, TWISTD, Pxed, free_port

pytestmark = pytest.mark.interop

FIXTURE = ROOT / "tests/pxed/configs/explain"
MACS = ("52:54:00:12:34:56", "52:54:00:12:34:57", "52:54:00:12:34:58")


@pytest.fixture
def pxed(tmp_path: Path) -> Iterator[Pxed]:
    http_port, tftp_port = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
    root = tmp_path / "explain"
    shutil.copytree(FIXTURE, root)
    config = root / "pxed.yaml"
    text = config.read_text().replace("port: 8080", f"port: {http_port}")
    text = text.replace("port: 6969", f"port: {tftp_port}").replace("mode: full", "mode: off")
    config.write_text(text)
    argv = [str(TWISTD), "-n", "--pidfile=", "pxed", "--config", str(config)]
    proc = Background(argv, tmp_path / "pxed.log")
    try:
        proc.wait_for_output(f"Site starting on {http_port}", timeout=30)
        yield Pxed(root, config, http_port, tftp_port, proc)
    finally:
        proc.stop()


def explained(config: Path, mac: str) -> dict[str, str]:
    """Each boot config section of ``pxed explain``, by the name it is printed under."""
    done = subprocess.run(
        [sys.executable, "-m", "pxed", "explain", "--config", str(config), "--mac", mac],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in done.stdout.splitlines():
        if line.endswith(" (TFTP):") or line.endswith(" (HTTP):"):
            current = sections.setdefault(line.rsplit(" ", 1)[0], [])
        elif current is not None and line.startswith("  |"):
            current.append(line.removeprefix("  |").removeprefix(" "))
        else:
            current = None
    return {name: "\n".join(lines) + "\n" for name, lines in sections.items()}


@pytest.mark.parametrize("mac", MACS)
def test_explained_boot_configs_are_what_the_daemon_serves(pxed: Pxed, mac: str) -> None:
    shown = explained(pxed.config, mac)
    dashed = mac.replace(":", "-")
    tftp = f"tftp://127.0.0.1:{pxed.tftp_port}"
    assert set(shown) == {f"pxelinux.cfg/01-{dashed}", f"grub.cfg-01-{dashed}", f"/boot/{mac}.ipxe"}
    for name in (f"pxelinux.cfg/01-{dashed}", f"grub.cfg-01-{dashed}"):
        _, body = pxed.curl(f"{tftp}/{name}")
        assert unsigned(body) == shown[name], name
    code, body = pxed.curl(f"{pxed.base}/boot/{mac}.ipxe")
    assert code == 200 and unsigned(body) == shown[f"/boot/{mac}.ipxe"]


def unsigned(config: str) -> str:
    """A served boot config as explain shows it: the Kickstart URL's signature elided."""
    return re.sub(r"(/ks/[0-9a-f:]{17}/)[0-9a-f]{32}", r"\1<signature>", config)
