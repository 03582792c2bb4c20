"""A storm bigger than tftp.max_sessions: every firmware-like client is served in turn.

pxed runs with ``max_sessions`` 4 on loopback (tests/interop/tftp_runner.py) and twelve
clients (tests/support/tftp_client.py, which repeats an unanswered RRQ every 0.5 s as
firmware does) ask for a 1 MiB file at once at blksize 512, so most of them find every
slot taken. Those are deferred, unanswered (protocols/tftp/server.py): an ERROR, busy or
not, would end a firmware download. All twelve must get the whole file, and pxed must
have deferred some (else the test proved nothing) and ended every transfer complete.
"""

from __future__ import annotations

import json
import random
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lab.procs import Background
from tests.support.tftp_client import fetch

pytestmark = pytest.mark.interop

SIZE = 1024 * 1024
MAX_SESSIONS = 4
CLIENTS = 12


def test_clients_beyond_max_sessions_are_served_once_slots_free(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    expected = random.Random(SIZE).randbytes(SIZE)
    (root / "kernel").write_bytes(expected)
    runner = [sys.executable, "-m", "tests.interop.tftp_runner", str(root)]
    process = Background([*runner, "--max-sessions", str(MAX_SESSIONS)], tmp_path / "pxed.log")
    try:
        process.wait_for_output("listening on", timeout=20)
        found = re.search(r"listening on 127\.0\.0\.1:(\d+)", process.output())
        assert found is not None
        server = ("127.0.0.1", int(found.group(1)))
        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            fetched = list(
                pool.map(
                    lambda _: fetch(server, "kernel", blksize=512, patience=120), range(CLIENTS)
                )
            )
    finally:
        process.stop()
    assert [got.data == expected for got in fetched] == [True] * CLIENTS
    outcomes = json.loads(process.output().split("stats ", 1)[1].splitlines()[0])["outcomes"]
    assert outcomes["complete"] == CLIENTS
    assert outcomes["busy"] > 0
    assert set(outcomes) <= {"complete", "busy"}, outcomes
