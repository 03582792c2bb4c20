"""`twistd -n pxed --config FILE` serves TFTP from the config's root: the whole path, for real."""

from __future__ import annotations

import hashlib
import shutil
import socket
import sys
from pathlib import Path

import pytest

from lab.procs import Background, run, wait_until

pytestmark = pytest.mark.interop


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def test_twistd_pxed_serves_the_configured_root(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("needs curl (Debian package curl)")
    payload = hashlib.shake_256(b"twistd").digest(300_000)
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "pxelinux.0").write_bytes(payload)
    port = _free_udp_port()
    config = tmp_path / "pxed.yaml"
    config.write_text(
        "server: {address: 127.0.0.1, state_dir: state}\n"
        f"tftp: {{root: root, listen: [127.0.0.1], port: {port}}}\n"
        'dhcp: {mode: "off"}\n'
        "http: {enabled: false}\n"
    )
    twistd = str(Path(sys.executable).with_name("twistd"))
    daemon = Background(
        [twistd, "-n", "--pidfile=", "pxed", "--config", str(config)], tmp_path / "twistd.log"
    )
    try:
        wait_until(lambda: _bound(port) or not daemon.running(), 20, f"pxed on udp/{port}")
        assert daemon.running(), daemon.output()
        out = tmp_path / "out"
        run(
            ["curl", "-sS", "--tftp-blksize", "1468", "-o", str(out),
             f"tftp://127.0.0.1:{port}//pxelinux.0"],
        )  # fmt: skip
        assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(payload).digest()
        missing = run(
            [
                "curl",
                "-sS",
                "--path-as-is",
                "-o",
                str(tmp_path / "x"),
                f"tftp://127.0.0.1:{port}/../pxed.yaml",
            ],
            check=False,
        )
        assert missing.returncode != 0
    finally:
        daemon.stop()
    assert "tftp complete" in daemon.output()
