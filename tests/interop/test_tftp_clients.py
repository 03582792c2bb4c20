"""Real TFTP clients fetch from pxed on loopback and get every byte: tftp-hpa, curl, busybox.

The server runs in a subprocess on the real reactor (``tests/interop/tftp_runner.py``),
on 127.0.0.1 and a free high port. Files of 0, 1, 511, 512, 513 bytes, 1 MiB and
40 MiB (past block 65535 at blksize 512, so block numbers wrap) are generated
at test time and compared by sha256.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.procs import Background, run

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parent.parent.parent
MiB = 1024 * 1024
SMALL = [0, 1, 511, 512, 513, MiB]
SIZES = [*SMALL, pytest.param(40 * MiB, marks=pytest.mark.slow)]
# curl 7.88 (Debian 12) refuses an OACK that says tsize 0 ("invalid tsize -:0:- value in
# OACK packet"), as it gets from tftpd-hpa; pxed leaves an empty file's tsize out.
CURL_SIZES = SIZES


def _name(size: int, kind: str = "bin") -> str:
    return f"{kind}-{size}"


def _binary(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def _text(size: int) -> bytes:
    """Text with LF line ends, bare CRs and CR LF pairs: every netascii conversion case."""
    words = [b"kernel", b"initrd", b"append\n", b"\r", b"\r\n", b"label linux\n", b" "]
    rng = random.Random(-size)
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words)
    return bytes(out[:size])


@pytest.fixture(scope="module")
def tftp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tftp-root")
    for size in [*SMALL, 40 * MiB]:
        (root / _name(size)).write_bytes(_binary(size))
        (root / _name(size, "txt")).write_bytes(_text(size))
    return root


class Server:
    def __init__(self, process: Background, port: int) -> None:
        self.process = process
        self.port = port


def _start(root: Path, log: Path, *extra: str) -> Iterator[Server]:
    process = Background(
        [sys.executable, "-m", "tests.interop.tftp_runner", str(root), *extra], log
    )
    try:
        process.wait_for_output("listening on", timeout=20)
        port = int(re.search(r"listening on 127\.0\.0\.1:(\d+)", process.output()).group(1))
        server = Server(process, port)
        yield server
    finally:
        process.stop()
    stats = json.loads(process.output().split("stats ", 1)[1].splitlines()[0])
    # Transfers a client abandoned without an ERROR may still be running ("shutdown");
    # none may have failed inside pxed.
    assert stats["active_sessions"] == 0
    assert "error" not in stats["outcomes"], process.output()


@pytest.fixture(scope="module")
def server(tftp_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _start(tftp_root, tmp_path_factory.mktemp("log") / "pxed.log")


@pytest.fixture(scope="module")
def big_block_server(tftp_root: Path, tmp_path_factory) -> Iterator[Server]:
    """tftp.max_blksize 65464, so a client asking for the RFC 2348 maximum gets it."""
    log = tmp_path_factory.mktemp("log") / "pxed-big.log"
    yield from _start(tftp_root, log, "--max-blksize", "65464")


def _need(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"needs {binary} (Debian package {package})")
    return path


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check(out: Path, expected: bytes) -> None:
    assert out.exists(), "the client wrote no file"
    got = out.read_bytes()
    assert (len(got), _sha(got)) == (len(expected), _sha(expected))


def _timeout(size: int) -> float:
    return 60.0 if size < 40 * MiB else 600.0


@pytest.mark.parametrize("size", CURL_SIZES)
@pytest.mark.parametrize("blksize", ["512", "1468", "8192"])
def test_curl_fetches_with_blksize(server: Server, tmp_path: Path, size: int, blksize: str) -> None:
    """curl asks blksize and tsize; 8192 is clamped to tftp.max_blksize 1468 in the OACK."""
    _need("curl", "curl")
    out = tmp_path / "out"
    run(
        [
            "curl",
            "-sS",
            "--tftp-blksize",
            blksize,
            "-o",
            str(out),
            f"tftp://127.0.0.1:{server.port}/{_name(size)}",
        ],
        timeout=_timeout(size),
    )
    _check(out, _binary(size))


@pytest.mark.parametrize("size", CURL_SIZES)
def test_curl_fetches_at_the_largest_blksize_when_configured(
    big_block_server: Server, tmp_path: Path, size: int
) -> None:
    _need("curl", "curl")
    out = tmp_path / "out"
    run(
        [
            "curl",
            "-sS",
            "--tftp-blksize",
            "65464",
            "-o",
            str(out),
            f"tftp://127.0.0.1:{big_block_server.port}/{_name(size)}",
        ],
        timeout=_timeout(size),
    )
    _check(out, _binary(size))


@pytest.mark.parametrize("size", SIZES)
def test_curl_fetches_without_options(server: Server, tmp_path: Path, size: int) -> None:
    """RFC 1350 only: no OACK, DATA 1 straight away, 512-byte blocks."""
    _need("curl", "curl")
    out = tmp_path / "out"
    run(
        [
            "curl",
            "-sS",
            "--tftp-no-options",
            "-o",
            str(out),
            f"tftp://127.0.0.1:{server.port}/{_name(size)}",
        ],
        timeout=_timeout(size),
    )
    _check(out, _binary(size))


def _tftp_hpa(server: Server, mode: str, name: str, out: Path, size: int) -> None:
    _need("tftp", "tftp-hpa")
    done = run(
        ["tftp", "-m", mode, "127.0.0.1", str(server.port), "-c", "get", name, str(out)],
        timeout=_timeout(size),
    )
    # tftp-hpa exits 0 even on a transfer error; it says so on its output.
    assert "Error" not in done.stdout + done.stderr, done.stdout + done.stderr


@pytest.mark.parametrize("size", SIZES)
def test_tftp_hpa_fetches_in_octet_mode(server: Server, tmp_path: Path, size: int) -> None:
    out = tmp_path / "out"
    _tftp_hpa(server, "binary", _name(size), out, size)
    _check(out, _binary(size))


@pytest.mark.parametrize("size", SMALL)
def test_tftp_hpa_fetches_in_netascii_mode(server: Server, tmp_path: Path, size: int) -> None:
    """The client turns CR LF back into LF and CR NUL into CR: the text arrives unchanged."""
    out = tmp_path / "out"
    _tftp_hpa(server, "ascii", _name(size, "txt"), out, size)
    _check(out, _text(size))


def test_tftp_hpa_is_told_to_ask_for_a_big_file_in_octet(server: Server, tmp_path: Path) -> None:
    """Netascii is sized by reading the file in the reactor: past 4 MiB it is refused."""
    _need("tftp", "tftp-hpa")
    name = _name(40 * MiB, "txt")
    done = run(
        [
            "tftp",
            "-m",
            "ascii",
            "127.0.0.1",
            str(server.port),
            "-c",
            "get",
            name,
            str(tmp_path / "o"),
        ],
        timeout=30,
    )
    assert "ask in octet" in done.stdout + done.stderr


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("blksize", ["512", "1468"])
def test_busybox_fetches_with_blksize(
    server: Server, tmp_path: Path, size: int, blksize: str
) -> None:
    busybox = _need("busybox", "busybox-static")
    out = tmp_path / "out"
    run(
        [
            busybox,
            "tftp",
            "-g",
            "-b",
            blksize,
            "-r",
            _name(size),
            "-l",
            str(out),
            "127.0.0.1",
            str(server.port),
        ],
        timeout=_timeout(size),
    )
    _check(out, _binary(size))


def test_missing_file_is_reported_to_curl_as_not_found(server: Server, tmp_path: Path) -> None:
    _need("curl", "curl")
    done = run(
        ["curl", "-sS", "-o", str(tmp_path / "out"), f"tftp://127.0.0.1:{server.port}/nope"],
        check=False,
    )
    assert done.returncode == 68, done.stderr  # CURLE_TFTP_NOTFOUND


def test_two_misses_in_a_row_are_reported_to_tftp_hpa_and_atftp_as_not_found(
    server: Server, tmp_path: Path
) -> None:
    """Refusals leave from one port per address (issue 18); each client still takes the
    ERROR as the answer to its request, the second time too."""
    _need("tftp", "tftp-hpa")
    atftp = _need("atftp", "atftp")
    port = str(server.port)
    for _ in range(2):
        hpa = run(["tftp", "127.0.0.1", port, "-c", "get", "nope", str(tmp_path / "a")])
        assert "Error code 1" in hpa.stdout + hpa.stderr, hpa.stdout + hpa.stderr
        done = run([atftp, "-g", "-r", "nope", "-l", str(tmp_path / "b"), "127.0.0.1", port],
                   check=False)  # fmt: skip
        assert "file not found" in (done.stdout + done.stderr).lower(), done.stderr


def test_traversal_is_refused_to_a_real_client(server: Server, tmp_path: Path) -> None:
    busybox = _need("busybox", "busybox-static")
    done = run(
        [
            busybox,
            "tftp",
            "-g",
            "-r",
            "../../../../etc/passwd",
            "-l",
            str(tmp_path / "out"),
            "127.0.0.1",
            str(server.port),
        ],
        check=False,
    )
    assert done.returncode != 0
    assert not (tmp_path / "out").exists() or (tmp_path / "out").read_bytes() == b""


def test_stop_with_sigterm_closes_cleanly(tftp_root: Path, tmp_path: Path) -> None:
    """Ends via the same path as twistd: stopService, then the counters are printed."""
    starts = _start(tftp_root, tmp_path / "pxed.log")
    next(starts)
    with pytest.raises(StopIteration):
        next(starts)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("windowsize", ["1", "4", "16"])
def test_atftp_fetches_with_windowsize(
    server: Server, tmp_path: Path, size: int, windowsize: str
) -> None:
    """atftp speaks RFC 7440: windows of 4 and 16 blocks (16 is tftp.max_windowsize)."""
    atftp = _need("atftp", "atftp")
    out = tmp_path / "out"
    done = run(
        [
            atftp,
            "--option",
            f"windowsize {windowsize}",
            "--option",
            "blksize 1468",
            "-g",
            "-r",
            _name(size),
            "-l",
            str(out),
            "127.0.0.1",
            str(server.port),
        ],
        timeout=_timeout(size),
    )
    assert f"windowsize = {windowsize}" in done.stdout + done.stderr  # the OACK granted it
    _check(out, _binary(size))


def test_a_stranger_mid_transfer_gets_error_5_and_the_transfer_completes(
    server: Server, tftp_root: Path
) -> None:
    """The transfer's port is connected to its client, yet a datagram from another port
    still reaches pxed and is answered ERROR 5 (RFC 1350) from the transfer's port."""
    size = MiB  # from tftp_root
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for sock in (client, stranger):
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10.0)
    try:
        rrq = b"\0\1" + _name(size).encode() + b"\0octet\0"
        client.sendto(rrq, ("127.0.0.1", server.port))
        received, block = b"", 1
        while True:
            datagram, tid = client.recvfrom(65536)
            assert datagram[:4] == b"\0\3" + block.to_bytes(2, "big")
            received += datagram[4:]
            if block == 2:
                stranger.sendto(b"\0\4\0\2", tid)
                answer, source = stranger.recvfrom(65536)
                assert (answer[:4], source) == (b"\0\5\0\5", tid)
            client.sendto(b"\0\4" + block.to_bytes(2, "big"), tid)
            if len(datagram) - 4 < 512:
                break
            block += 1
        assert received == _binary(size)
    finally:
        client.close()
        stranger.close()


def test_concurrent_curls_each_get_every_byte(server: Server, tmp_path: Path) -> None:
    """Twelve clients at once: the transfer loop moves between serving one transfer from
    its socket's recv and serving many through epoll as they start and end."""
    _need("curl", "curl")
    fetches = []
    for n in range(12):
        size = MiB if n % 3 else 513
        out = tmp_path / f"out-{n}"
        argv = ["curl", "-sS", "--tftp-blksize", "512" if n % 2 else "1468", "-o", str(out)]
        argv.append(f"tftp://127.0.0.1:{server.port}/{_name(size)}")
        fetches.append((subprocess.Popen(argv, stdin=subprocess.DEVNULL), out, size))
    try:
        for process, _, _ in fetches:
            assert process.wait(timeout=120) == 0
    finally:
        for process, _, _ in fetches:
            if process.poll() is None:
                process.kill()
                process.wait()
    for _, out, size in fetches:
        _check(out, _binary(size))
