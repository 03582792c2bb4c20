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


def test_forged_sources_that_never_answer_hold_their_slots_only_for_one_timeout(
    tmp_path: Path,
) -> None:
    """Issue 18: RRQs from forged addresses fill max_sessions; a real client waits one timeout.

    Its first RRQ finds every slot held and is deferred, unanswered (issue 17: an ERROR
    would end a firmware download); curl repeats it after 5 s, and by then the forged
    transfers have gone unanswered past tftp.timeout, so one gives up its slot."""
    if shutil.which("curl") is None:
        pytest.skip("needs curl (Debian package curl)")
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "pxelinux.0").write_bytes(bytes(100_000))
    port = _free_udp_port()
    config = tmp_path / "pxed.yaml"
    config.write_text(
        "server: {address: 127.0.0.1, state_dir: state}\n"
        f"tftp: {{root: root, listen: [127.0.0.1], port: {port}, max_sessions: 4,"
        " max_per_client: 2, timeout: 1, retries: 5}\n"
        'dhcp: {mode: "off"}\n'
        "http: {enabled: false}\n"
    )
    twistd = str(Path(sys.executable).with_name("twistd"))
    daemon = Background(
        [twistd, "-n", "--pidfile=", "pxed", "--config", str(config)], tmp_path / "twistd.log"
    )
    forgers = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(4)]
    fetch = ["curl", "-sS", "-o", str(tmp_path / "out"), f"tftp://127.0.0.1:{port}/pxelinux.0"]
    try:
        wait_until(lambda: _bound(port) or not daemon.running(), 20, f"pxed on udp/{port}")
        for number, forger in enumerate(forgers):
            forger.bind((f"127.0.0.{11 + number}", 0))  # sockets that will never ACK
            forger.sendto(b"\x00\x01pxelinux.0\x00octet\x00", ("127.0.0.1", port))
        wait_until(lambda: all(forger.recv(4096) for forger in forgers), 10, "first blocks")
        run(fetch)
        assert (tmp_path / "out").read_bytes() == bytes(100_000)
    finally:
        for forger in forgers:
            forger.close()
        daemon.stop()
    assert "tftp busy" in daemon.output()
    assert "tftp evicted" in daemon.output()
