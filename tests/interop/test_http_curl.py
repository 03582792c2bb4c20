"""curl against pxed's HTTP trees: a directory tree, an ISO-backed tree and /tftp/.

The server runs in a subprocess (tests/support/http_server.py) on 127.0.0.1,
so curl talks to it over real TCP and the sendfile path serves the bytes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.isoimage import make_iso

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]
DATA = os.urandom(3 * 1024 * 1024 + 7)


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    binary = shutil.which("curl")
    if binary is None:
        pytest.skip("curl not installed (apt-get install -y curl)")
    return subprocess.run(
        [binary, "--silent", "--show-error", "--max-time", "30", *args],
        capture_output=True,
        timeout=60,
        check=True,
    )


def status(*args: str) -> int:
    return int(curl("--output", "/dev/null", "--write-out", "%{http_code}", *args).stdout)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    top = tmp_path_factory.mktemp("curl")
    tree = top / "tree"
    (tree / "images" / "pxeboot").mkdir(parents=True)
    (tree / "images" / "pxeboot" / "initrd.img").write_bytes(DATA)
    (tree / "ks.cfg").write_text("text\nreboot\n")
    (tree / "vmlinuz").symlink_to("images/pxeboot/initrd.img")
    (top / "secret").write_text("not for you\n")
    (tree / "leak").symlink_to(top / "secret")
    make_iso(tree, top / "tree.iso")
    (top / "tftp").mkdir()
    (top / "tftp" / "snponly.efi").write_bytes(b"MZ" + bytes(1000))
    return top


@pytest.fixture(scope="module")
def base(files: Path) -> Iterator[str]:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.http_server",
            "--tree",
            f"dir={files / 'tree'}",
            "--tree",
            f"iso={files / 'tree.iso'}",
            "--tftp",
            str(files / "tftp"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = server.stdout.readline().strip()
        assert port.isdigit(), "the HTTP runner did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


TREES = ["dir", "iso"]


@pytest.mark.parametrize("tree", TREES)
def test_curl_gets_the_whole_file(base: str, tree: str) -> None:
    assert curl(f"{base}/trees/{tree}/images/pxeboot/initrd.img").stdout == DATA


@pytest.mark.parametrize("tree", TREES)
@pytest.mark.parametrize(
    ("spec", "expected"),
    [("0-0", slice(0, 1)), ("1000-2000000", slice(1000, 2000001)),
     ("3000000-", slice(3000000, None)), ("-77", slice(-77, None))],
)  # fmt: skip
def test_curl_range_returns_exactly_those_bytes(
    base: str, tree: str, spec: str, expected: slice
) -> None:
    body = curl("--range", spec, f"{base}/trees/{tree}/images/pxeboot/initrd.img").stdout
    assert body == DATA[expected]


@pytest.mark.parametrize("tree", TREES)
def test_curl_resumes_a_partial_download(base: str, tree: str, tmp_path: Path) -> None:
    target = tmp_path / "initrd.img"
    target.write_bytes(DATA[:123456])
    curl("--continue-at", "-", "--output", str(target), f"{base}/trees/{tree}/vmlinuz")
    assert target.read_bytes() == DATA


@pytest.mark.parametrize("tree", TREES)
def test_curl_multipart_ranges(base: str, tree: str) -> None:
    result = curl("--include", "--range", "0-9,-9", f"{base}/trees/{tree}/ks.cfg")
    assert b"206 Partial Content" in result.stdout
    assert b"multipart/byteranges" in result.stdout
    assert b"text\nreboo" in result.stdout and b"\r\n\r\nt\nreboot\n\r\n--" in result.stdout


@pytest.mark.parametrize("tree", TREES)
def test_curl_head_gives_content_length(base: str, tree: str) -> None:
    head = curl("--head", f"{base}/trees/{tree}/images/pxeboot/initrd.img").stdout.lower()
    assert b"content-length: %d" % len(DATA) in head


def test_curl_head_on_an_efi_loader_in_the_tftp_root(base: str) -> None:
    head = curl("--head", f"{base}/tftp/snponly.efi").stdout.lower()
    assert b"200 ok" in head
    assert b"content-type: application/efi" in head
    assert b"content-length: 1002" in head


@pytest.mark.parametrize("tree", TREES)
def test_curl_if_modified_since_gives_304(base: str, tree: str) -> None:
    url = f"{base}/trees/{tree}/ks.cfg"
    assert status("--header", "If-Modified-Since: Tue, 19 Jan 2038 03:14:07 GMT", url) == 304
    assert status("--header", "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT", url) == 200


@pytest.mark.parametrize("tree", TREES)
def test_curl_gets_no_directory_listing(base: str, tree: str) -> None:
    result = curl("--write-out", "%{http_code}", f"{base}/trees/{tree}/images/pxeboot/")
    assert result.stdout.endswith(b"403")
    assert b"initrd" not in result.stdout


@pytest.mark.parametrize(
    "path",
    [
        "/trees/dir/../../secret",
        "/trees/dir/%2e%2e/secret",
        "/trees/dir/%2e%2e%2fsecret",
        "/trees/dir/leak",
        "/trees/iso/../../../secret",
        "/tftp/../secret",
        "/trees/dir/%2fetc%2fpasswd",
    ],
)
def test_curl_traversal_is_refused(base: str, path: str) -> None:
    result = curl("--path-as-is", "--write-out", "%{http_code}", base + path)
    assert result.stdout.endswith(b"404")
    assert b"not for you" not in result.stdout and b"root:" not in result.stdout
