"""Slowloris against a real ``twistd pxed``: capped, timed out, and TFTP and HTTP keep serving.

Issue 18: ~3,300 connections each sending a header line every 15 s held pxed at
its open-file limit; /healthz reset and TFTP failed with it. Here 60 connections
trickle from one address (a bounded, few-second version of the attack).
"""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

import pytest

from lab.procs import Background, wait_until
from tests.interop.test_provision_lifecycle import TWISTD, Pxed, free_port, write_config

pytestmark = pytest.mark.interop

ATTACK = 60


def test_a_trickling_client_is_capped_and_timed_out_while_others_are_served(tmp_path: Path):
    http_port, tftp_port = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
    config = write_config(tmp_path, http_port, tftp_port)
    text = config.read_text().replace(
        f"port: {http_port}}}", f"port: {http_port}, max_per_client: 20, header_timeout: 2}}"
    )
    config.write_text(text)
    argv = [str(TWISTD), "-n", "--pidfile=", "pxed", "--config", str(config)]
    proc = Background(argv, tmp_path / "pxed.log")
    attackers: list[socket.socket] = []
    try:
        proc.wait_for_output(f"Site starting on {http_port}", timeout=30)
        pxed = Pxed(tmp_path, config, http_port, tftp_port, proc)
        for _ in range(ATTACK):
            sock = socket.create_connection(("127.0.0.1", http_port), timeout=5)
            sock.sendall(b"GET / HTTP/1.1\r\nX-a: 1\r\n")
            attackers.append(sock)
        for n in range(3):  # keep trickling, a line a second
            time.sleep(0.5)
            alive = [s for s in attackers if _still_open(s)]
            for sock in alive:
                with contextlib.suppress(OSError):  # closed by pxed since: as wanted
                    sock.sendall(b"X-%d: 1\r\n" % n)
            if n == 0:
                assert len(alive) <= 20  # past max_per_client, closed at accept
                healthz = pxed.curl("--interface", "127.0.0.2", f"{pxed.base}/healthz")
                assert healthz[0] == 200
                assert pxed.tftp_get("vmlinuz") == "kernel"
        wait_until(lambda: not any(_still_open(s) for s in attackers), 10, "the trickle cut off")
        assert "not complete after 2 s; closed" in proc.output()
    finally:
        for sock in attackers:
            sock.close()
        proc.stop()


def _still_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)
