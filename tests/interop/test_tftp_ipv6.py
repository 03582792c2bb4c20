"""Real TFTP clients fetch from pxed over IPv6 only: tftp-hpa, curl, atftp and busybox.

A veth pair in namespaces of the test's own carries IPv6 addresses only
(``lab.netns.NetnsLab.pair6``: a global /64 and fe80::1/fe80::2, added with
nodad); pxed's TFTP service (``tests/interop/tftp_runner.py``) listens on the
server's global and link-local (``fe80::1%<if>``) addresses on port 69. Every
option (blksize, tsize, timeout, windowsize), path safety, the per-client limit
and refusal sampling are checked over IPv6 as ``test_tftp_clients`` checks them
over IPv4 loopback.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.netns import Background, NetnsLab, Pair6, require_binary, require_netns

pytestmark = [pytest.mark.interop, pytest.mark.netns]

MiB = 1024 * 1024
FILE = "bin-1M"
DATA = random.Random(6).randbytes(MiB + 513)  # past a block boundary, not on one


@dataclass
class Served:
    net: Pair6
    process: Background
    work: Path

    @property
    def global_ip(self) -> str:
        return str(self.net.server_ip)

    def client(self, cmd: list[str], check: bool = True):  # -> CompletedProcess[str]
        return self.net.client.run(cmd, timeout=60.0, check=check)

    def stats(self) -> dict[str, object]:
        self.process.stop()
        return json.loads(self.process.output().split("stats ", 1)[1].splitlines()[0])


def _serve(tmp_path: Path, *extra: str) -> Iterator[Served]:
    require_netns()
    root = tmp_path / "root"
    root.mkdir()
    (root / FILE).write_bytes(DATA)
    with NetnsLab(tmp_path) as lab:
        net = lab.pair6()
        process = net.server.spawn(
            [sys.executable, "-m", "tests.interop.tftp_runner", str(root), "--port", "69",
             "--address", str(net.server_ip), "--address", net.server_ll, *extra],
            tmp_path / "pxed.log",
        )  # fmt: skip
        process.wait_for_output("listening on", timeout=20)
        yield Served(net, process, tmp_path)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from _serve(tmp_path_factory.mktemp("tftp6"))


def _check(out: Path) -> None:
    assert out.exists(), "the client wrote no file"
    assert out.read_bytes() == DATA


@pytest.mark.parametrize("form", ["-6 global", "[global]", "-6 link-local%zone"])
def test_tftp_hpa_fetches_over_ipv6(served: Served, tmp_path: Path, form: str) -> None:
    """tftp-hpa takes a bare IPv6 address with -6, a bracketed one without, and a
    link-local one with the client's own zone."""
    require_binary("tftp")
    host = {
        "-6 global": ["-6", served.global_ip],
        "[global]": [f"[{served.global_ip}]"],
        "-6 link-local%zone": ["-6", served.net.server_ll_from_client()],
    }[form]
    out = tmp_path / "out"
    done = served.client(["tftp", "-m", "binary", *host, "69", "-c", "get", FILE, str(out)])
    assert "Error" not in done.stdout + done.stderr, done.stdout + done.stderr
    _check(out)


@pytest.mark.parametrize("link_local", [False, True])
def test_curl_fetches_over_ipv6_with_blksize_and_tsize(
    served: Served, tmp_path: Path, link_local: bool
) -> None:
    """curl -g asks blksize and tsize; a link-local URL carries the zone as %25<if>."""
    require_binary("curl")
    host = f"fe80::1%25{served.net.client_if}" if link_local else served.global_ip
    out = tmp_path / "out"
    served.client(["curl", "-g", "-sS", "--tftp-blksize", "1468", "-o", str(out),
                   f"tftp://[{host}]/{FILE}"])  # fmt: skip
    _check(out)


@pytest.mark.parametrize(
    ("windowsize", "blksize", "granted"), [("1", "1024", "1024"), ("8", "1024", "1024"),
                                           ("16", "1468", "1448")]
)  # fmt: skip
def test_atftp_negotiates_every_option_over_ipv6(
    served: Served, tmp_path: Path, windowsize: str, blksize: str, granted: str
) -> None:
    """RFC 2347-2349 and 7440 over IPv6: the OACK grants blksize, tsize, timeout and
    windowsize, and the file arrives whole. A block that fills a 1500-byte frame over
    IPv4 (1468) is granted 20 bytes less over IPv6, whose header is 20 bytes longer."""
    atftp = require_binary("atftp")
    out = tmp_path / "out"
    done = served.client(
        [atftp, "--trace", "--option", f"windowsize {windowsize}", "--option", f"blksize {blksize}",
         "--option", "timeout 2", "--option", "tsize", "-g", "-r", FILE, "-l", str(out),
         served.global_ip, "69"]
    )  # fmt: skip
    said = done.stdout + done.stderr
    (oack,) = [line for line in said.splitlines() if line.startswith("received OACK")]
    for option in (f"windowsize: {windowsize}", f"blksize: {granted}", "timeout: 2"):
        assert option in oack, oack
    assert f"tsize: {len(DATA)}" in oack, oack
    _check(out)


@pytest.mark.parametrize("link_local", [False, True])
def test_busybox_fetches_over_ipv6(served: Served, tmp_path: Path, link_local: bool) -> None:
    busybox = require_binary("busybox")
    host = served.net.server_ll_from_client() if link_local else served.global_ip
    out = tmp_path / "out"
    served.client([busybox, "tftp", "-g", "-b", "1468", "-r", FILE, "-l", str(out), host, "69"])
    _check(out)


@pytest.mark.parametrize(
    "name", ["../../../../etc/passwd", "/../etc/passwd", "sub/../../etc/passwd"]
)
@pytest.mark.parametrize("link_local", [False, True])
def test_traversal_is_refused_over_ipv6(
    served: Served, tmp_path: Path, name: str, link_local: bool
) -> None:
    """Refused, and the ERROR reaches the client from the refusal socket on the listener's
    address, link-local included."""
    busybox = require_binary("busybox")
    host = served.net.server_ll_from_client() if link_local else served.global_ip
    out = tmp_path / "out"
    done = served.client(
        [busybox, "tftp", "-g", "-r", name, "-l", str(out), host, "69"], check=False
    )
    assert done.returncode != 0
    assert "server error" in done.stderr, done.stderr
    assert not out.exists() or out.read_bytes() == b""


# A client of the test's own in the client namespace: floods requests for a file that
# does not exist, then holds transfers open without acknowledging them.
_FLOOD_AND_HOLD = """
import socket, sys
server = (sys.argv[1], 69)
def rrq(name):
    return b"\\x00\\x01" + name.encode() + b"\\x00octet\\x00"
def ask(sock, name):
    sock.sendto(rrq(name), server)
    return sock.recvfrom(2048)[0][:4].hex()
flood = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
flood.settimeout(5)
answers = [ask(flood, "missing") for _ in range(40)]
held = [socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) for _ in range(3)]
for sock in held:
    sock.settimeout(5)
    answers.append(ask(sock, "bin-1M"))
print(" ".join(answers))
"""


def test_per_client_limit_and_refusal_sampling_hold_over_ipv6(tmp_path: Path) -> None:
    """max_per_client counts one IPv6 address as one client; a flood of refusals from it
    is answered every time but logged only up to the sampler's burst (32)."""
    for served in _serve(tmp_path, "--max-per-client", "2"):
        done = served.client([sys.executable, "-c", _FLOOD_AND_HOLD, served.global_ip])
        answers = done.stdout.split()
        assert answers[:40] == ["00050001"] * 40  # ERROR 1, file not found, each time
        assert answers[40:42] == ["00030001", "00030001"]  # DATA block 1, twice
        assert answers[42] == "00050000"  # ERROR 0: busy, past max_per_client
        stats = served.stats()
        assert stats["refusals_unlogged"] == 40 - 32
        assert stats["outcomes"]["not-found"] == 40  # type: ignore[index]
