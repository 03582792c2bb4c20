"""Type=notify: READY=1 reaches systemd's socket, and only once every socket is bound."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from lab.procs import Background
from pxed.daemon.notify import notify
from tests.interop.test_provision_lifecycle import TWISTD, free_port, write_config

ROOT = Path(__file__).resolve().parents[3]
UNIT = ROOT / "etc/systemd/pxed.service"


def listening_at(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + path[1:] if path.startswith("@") else path)
    sock.settimeout(30)
    return sock


def test_ready_goes_to_the_notify_socket_abstract_or_not(tmp_path: Path):
    for path in (str(tmp_path / "notify"), f"@pxed-test-{os.getpid()}"):
        with listening_at(path) as systemd:
            assert notify("READY=1", path)
            assert systemd.recv(64) == b"READY=1"
    assert not notify("READY=1", "")  # not under systemd: nothing to tell


@pytest.mark.interop
def test_twistd_pxed_says_ready_only_with_its_ports_bound(tmp_path: Path):
    http_port, tftp_port = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
    config = write_config(tmp_path, http_port, tftp_port)
    path = str(tmp_path / "notify")
    with listening_at(path) as systemd:
        argv = ["env", f"NOTIFY_SOCKET={path}", str(TWISTD), "-n", "--pidfile="]
        proc = Background([*argv, "pxed", "--config", str(config)], tmp_path / "pxed.log")
        try:
            assert systemd.recv(64) == b"READY=1"
            socket.create_connection(("127.0.0.1", http_port), timeout=5).close()  # bound
        finally:
            proc.stop()


def test_the_systemd_unit_verifies_and_scores_ok_for_exposure(tmp_path: Path):
    """`systemd-analyze security` rates 2.5 or lower "OK"; the unit scored 1.9 when written."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed (apt-get install -y systemd)")
    twistd = str(TWISTD)
    unit = tmp_path / "pxed.service"  # verify wants ExecStart's program to exist here
    unit.write_text(UNIT.read_text().replace("/usr/bin/twistd", twistd))
    verified = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
    security = subprocess.run(
        [analyze, "security", "--offline=true", str(unit)], capture_output=True, text=True
    )
    score = float(security.stdout.rsplit("exposure level for pxed.service: ", 1)[1].split()[0])
    assert score <= 2.5, security.stdout
