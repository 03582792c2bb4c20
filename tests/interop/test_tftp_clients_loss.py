"""Every client we know gets every file through 5 % and 10 % random loss each way.

atftp (with and without asking for ``timeout 1``), curl, tftp-hpa, busybox and the
firmware-like client (tests/support/tftp_client.py, lockstep and with OVMF's windowsize
4) each fetch ``PXED_LOSS_FETCHES`` files (default 4, alternating blksize 1468 and 512
where the client can ask for one) from pxed behind a veth that drops datagrams at random
each way (lab/tftp_loss.py). No failure of any kind is allowed, and pxed must
count none either. benchmarks/tftp_loss.py runs 100 per client, rate and block size.

atftp is the demanding one: it aborts on a second OACK ("tftp: unexpected OACK"), so
pxed never resends an OACK on its own timer (protocols/tftp/session.py), and it answers
a repeated block only once, so pxed lingers after its last resend.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lab.netns import require_binary
from lab.tftp_loss import CLIENTS, Lossy, fetch, lossy_server, write_files

pytestmark = [pytest.mark.interop, pytest.mark.netns, pytest.mark.slow]

SIZE = 32 * 1024
FETCHES = int(os.environ.get("PXED_LOSS_FETCHES", "4"))  # per client and loss rate


@pytest.fixture(scope="module", params=[5, 10], ids=lambda p: f"{p}pct")
def lossy(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Lossy]:
    work = tmp_path_factory.mktemp(f"loss{request.param}")
    write_files(work / "root", [SIZE])
    with lossy_server(work, work / "root", drop_percent=request.param) as lossy:
        yield lossy
        # A client whose final ACK is lost is done; pxed cannot know, and times out.
        outcomes = lossy.outcomes()
        assert set(outcomes) <= {"complete", "timeout", "shutdown"}, outcomes


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_client_loses_no_transfer_to_random_loss(lossy: Lossy, tmp_path: Path, client: str) -> None:
    require_binary(CLIENTS[client].binary)
    sizes = CLIENTS[client].blksizes

    def one(n: int) -> str | None:
        return fetch(lossy, client, f"f{SIZE}", tmp_path / f"out{n}", sizes[n % len(sizes)])

    with ThreadPoolExecutor(max_workers=4) as pool:
        failures = [failed for failed in pool.map(one, range(FETCHES)) if failed]
    assert failures == []
