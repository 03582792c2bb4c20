"""pxed's TFTP service behind a lossy veth, and every TFTP client we test through it.

Shared by the loss tests (tests/interop/test_tftp_*loss.py) and benchmarks/tftp_loss.py:
``lossy_server`` starts tests/interop/tftp_runner.py in the server namespace of a fresh
``NetnsLab`` pair and has nftables drop ``drop_percent`` of UDP datagrams each way on the
server's end of the veth; ``fetch`` runs one client (``CLIENTS``) in the client namespace
and says whether the file arrived intact. A client that cannot ask for a block size (tftp-hpa
sends no options) is run at 512 whatever is asked, so callers list ``blksizes(name)``.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lab.netns import NetnsLab, Pair, require_binary, require_netns
from lab.procs import Background

ROOT = Path(__file__).resolve().parent.parent
PORT = 69


@dataclass
class Lossy:
    lab: NetnsLab
    pair: Pair
    root: Path
    server: Background

    @property
    def server_ip(self) -> str:
        return str(self.pair.server_ip)

    def outcomes(self) -> dict[str, int]:
        """The service's counters, printed by tftp_runner once stopped."""
        self.server.stop()
        said = self.server.output()
        return dict(json.loads(said.split("stats ", 1)[1].splitlines()[0])["outcomes"])


def write_files(root: Path, sizes: list[int]) -> None:
    """``f<size>`` of pseudo-random bytes (seeded by the size) for each size."""
    root.mkdir(parents=True, exist_ok=True)
    for size in sizes:
        (root / f"f{size}").write_bytes(random.Random(size).randbytes(size))


@contextmanager
def lossy_server(
    work: Path,
    root: Path,
    drop_percent: int,
    dup_percent: int = 0,
    client_dup_percent: int = 0,
    runner_args: tuple[str, ...] = (),
) -> Iterator[Lossy]:
    """pxed on port 69 of a namespace, ``drop_percent`` loss each way; all removed after."""
    require_netns()
    with NetnsLab(work) as lab:
        pair = lab.pair()
        server = pair.server.spawn(
            [
                "env",
                f"PYTHONPATH={ROOT}",
                sys.executable,
                "-m",
                "tests.interop.tftp_runner",
                str(root),
                "--address",
                str(pair.server_ip),
                "--port",
                str(PORT),
                *runner_args,
            ],
            work / "pxed.log",
        )
        server.wait_for_output("listening on", timeout=20)
        pair.server.impair(pair.server_if, drop_percent=drop_percent, dup_percent=dup_percent)
        if client_dup_percent:
            pair.client.impair(pair.client_if, dup_percent=client_dup_percent)
        yield Lossy(lab, pair, root, server)


Argv = Callable[[str, str, Path, int], list[str]]  # server, file, out, blksize


def _atftp(*options: str) -> Argv:
    def argv(server: str, name: str, out: Path, blksize: int) -> list[str]:
        opts = [*options, "--option", f"blksize {blksize}"]
        return ["atftp", *opts, "-g", "-r", name, "-l", str(out), server]

    return argv


def _curl(server: str, name: str, out: Path, blksize: int) -> list[str]:
    limit = ["--max-time", "300", "--tftp-blksize", str(blksize)]
    return ["curl", "-sS", *limit, "-o", str(out), f"tftp://{server}/{name}"]


def _tftp_hpa(server: str, name: str, out: Path, blksize: int) -> list[str]:
    return ["tftp", "-m", "binary", server, "-c", "get", name, str(out)]


def _busybox(server: str, name: str, out: Path, blksize: int) -> list[str]:
    return ["busybox", "tftp", "-g", "-b", str(blksize), "-r", name, "-l", str(out), server]


def _firmware(*options: str) -> Argv:
    """tests/support/tftp_client.py: tsize probe, a retransmit timer, gap ACKs (a PXE ROM)."""

    def argv(server: str, name: str, out: Path, blksize: int) -> list[str]:
        client = [sys.executable, "-m", "tests.support.tftp_client", server, str(PORT), name]
        return ["env", f"PYTHONPATH={ROOT}", *client, str(out), "--blksize", str(blksize),
                "--patience", "60", *options]  # fmt: skip

    return argv


@dataclass(frozen=True)
class Client:
    binary: str
    argv: Argv
    blksizes: tuple[int, ...] = (1468, 512)


CLIENTS: dict[str, Client] = {
    # atftp's timer is the option it asks for when it asks for one, else its default 5 s.
    "atftp-timeout1": Client("atftp", _atftp("--option", "timeout 1", "--tftp-timeout", "2")),
    "atftp": Client("atftp", _atftp()),
    "curl": Client("curl", _curl),
    "tftp-hpa": Client("tftp", _tftp_hpa, (512,)),  # sends no options
    "busybox": Client("busybox", _busybox),
    "firmware": Client(sys.executable, _firmware()),
    "firmware-window4": Client(sys.executable, _firmware("--windowsize", "4")),  # OVMF's
}


def fetch(lossy: Lossy, client: str, name: str, out: Path, blksize: int) -> str | None:
    """One transfer of ``name``; None when it arrived intact, else what went wrong."""
    spec = CLIENTS[client]
    require_binary(spec.binary)
    done = lossy.pair.client.run(
        spec.argv(lossy.server_ip, name, out, blksize), timeout=320, check=False
    )
    said = (done.stdout + done.stderr).strip()
    if done.returncode != 0 or (client == "tftp-hpa" and "Error" in said):
        return f"exit {done.returncode}: {said[-300:]}"
    expected = (lossy.root / name).read_bytes()
    got = out.read_bytes() if out.exists() else b""
    if got != expected:
        return f"{len(got)} bytes of {len(expected)}, or different: {said[-300:]}"
    return None
