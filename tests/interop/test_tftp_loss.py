"""Under 10 % loss each way and duplicated datagrams, every file still arrives intact.

pxed runs in one private namespace, the clients in another, joined by a veth.
nftables on the server's end of the veth drops 10 % of UDP datagrams in each
direction and duplicates 5 % of what the server sends; on the client's end it
duplicates 5 % of what the client sends (duplicate ACKs must never cause
resends). Lockstep with curl and tftp-hpa; windowed (RFC 7440) with
tests/support/tftp_client.py, first checked against atftpd under the same loss
(dnsmasq 2.90 does not offer windowsize; atftpd does). The atftpd package
conflicts with tftpd-hpa, so it is not installed: those two tests skip unless
an atftpd is on PATH, for example one unpacked with
`apt-get download atftpd && dpkg-deb -x atftpd_*.deb DIR` (then DIR/usr/sbin).
The atftp client speaks windowsize but stalls under loss (see tftp_client.py),
so it is only in the loopback interop tests.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.netns import NetnsLab, Pair, require_binary
from lab.tftp_loss import ROOT, lossy_server, write_files

pytestmark = [pytest.mark.interop, pytest.mark.netns, pytest.mark.slow]

SIZES = [0, 1, 511, 512, 513, 1024 * 1024]


@dataclass
class Lossy:
    pair: Pair
    root: Path
    reference_ip: str


@pytest.fixture(scope="module")
def lossy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lossy]:
    work = tmp_path_factory.mktemp("loss")
    root = work / "root"
    write_files(root, SIZES)
    with lossy_server(work, root, drop_percent=10, dup_percent=5, client_dup_percent=5) as lossy:
        pair = lossy.pair
        reference_ip = str(lossy.lab.address(3))
        if shutil.which("atftpd"):
            _start_atftpd(lossy.lab, pair, root, reference_ip, work)
        yield Lossy(pair, root, reference_ip)
        assert "error" not in lossy.outcomes(), lossy.server.output()


def _start_atftpd(lab: NetnsLab, pair: Pair, root: Path, address: str, work: Path) -> None:
    """atftpd (RFC 7440 windowsize) on a second address of the server namespace."""
    pair.server.ip("addr", "add", f"{address}/{lab.subnet.prefixlen}", "dev", pair.server_if)
    pair.server.spawn(
        [
            "atftpd",
            "--daemon",
            "--no-fork",
            "--user",
            "root.root",
            "--bind-address",
            address,
            "--port",
            "69",
            "--logfile",
            "-",
            str(root),
        ],
        work / "atftpd.log",
    )
    pair.server.wait_listening(69)


def _check(lossy: Lossy, out: Path, size: int) -> None:
    expected = (lossy.root / f"f{size}").read_bytes()
    got = out.read_bytes()
    assert (len(got), hashlib.sha256(got).hexdigest()) == (
        len(expected),
        hashlib.sha256(expected).hexdigest(),
    )


@pytest.mark.parametrize("size", SIZES[1:])  # curl 7.88 refuses tsize 0 (see test_tftp_clients)
def test_curl_lockstep_survives_loss_and_duplicates(
    lossy: Lossy, tmp_path: Path, size: int
) -> None:
    require_binary("curl")
    out = tmp_path / "out"
    lossy.pair.client.run(
        [
            "curl",
            "-sS",
            "--max-time",
            "300",
            "--tftp-blksize",
            "1468",
            "-o",
            str(out),
            f"tftp://{lossy.pair.server_ip}/f{size}",
        ],
        timeout=320,
    )
    _check(lossy, out, size)


@pytest.mark.parametrize("size", SIZES)
def test_tftp_hpa_lockstep_without_options_survives_loss(
    lossy: Lossy, tmp_path: Path, size: int
) -> None:
    require_binary("tftp")
    out = tmp_path / "out"
    done = lossy.pair.client.run(
        ["tftp", "-m", "binary", str(lossy.pair.server_ip), "-c", "get", f"f{size}", str(out)],
        timeout=320,
    )
    assert "Error" not in done.stdout + done.stderr
    _check(lossy, out, size)


def _windowed(lossy: Lossy, server_ip: str, size: int, windowsize: int, tmp_path: Path) -> str:
    out = tmp_path / "out"
    done = lossy.pair.client.run(
        [
            "env",
            f"PYTHONPATH={ROOT}",
            sys.executable,
            "-m",
            "tests.support.tftp_client",
            server_ip,
            "69",
            f"f{size}",
            str(out),
            "--blksize",
            "1468",
            "--windowsize",
            str(windowsize),
            "--patience",
            "60",
        ],
        timeout=320,
    )
    _check(lossy, out, size)
    return done.stdout


@pytest.mark.parametrize("windowsize", [4, 16])
def test_windowed_client_is_sound_against_atftpd_under_loss(
    lossy: Lossy, tmp_path: Path, windowsize: int
) -> None:
    """The reference: the test client gets atftpd's files intact through the same loss."""
    require_binary("atftpd")
    said = _windowed(lossy, lossy.reference_ip, 1024 * 1024, windowsize, tmp_path)
    assert f"'windowsize': '{windowsize}'" in said


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("windowsize", [4, 16])
def test_windowed_transfer_survives_loss_and_duplicates(
    lossy: Lossy, tmp_path: Path, size: int, windowsize: int
) -> None:
    said = _windowed(lossy, str(lossy.pair.server_ip), size, windowsize, tmp_path)
    assert f"'windowsize': '{windowsize}'" in said
