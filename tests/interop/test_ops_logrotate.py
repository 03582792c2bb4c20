"""A real ``twistd pxed --logfile`` keeps logging across logrotate's rename + SIGUSR1."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest

from lab.procs import Background, wait_until
from tests.interop.test_provision_lifecycle import TWISTD, Pxed, free_port, write_config

pytestmark = pytest.mark.interop


def test_sigusr1_after_logrotate_moved_the_file_opens_a_new_one(tmp_path: Path):
    http_port, tftp_port = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
    config = write_config(tmp_path, http_port, tftp_port)
    log = tmp_path / "pxed.log"
    argv = [str(TWISTD), "-n", "--pidfile=", f"--logfile={log}", "pxed", "--config", str(config)]
    proc = Background(argv, tmp_path / "stdout.log")
    try:
        wait_until(lambda: log.exists() and "Site starting" in log.read_text(), 30, "the log")
        pxed = Pxed(tmp_path, config, http_port, tftp_port, proc)
        log.rename(tmp_path / "pxed.log.1")  # what logrotate does first
        os.kill(proc.pid, signal.SIGUSR1)  # then its postrotate
        wait_until(log.exists, 10, "a new log file")
        assert pxed.curl(f"{pxed.base}/healthz")[0] == 200
        wait_until(lambda: "/healthz" in log.read_text(), 10, "the request in the new log")
        assert proc.running
    finally:
        proc.stop()
