"""HTTP semantics of /trees/ and /tftp/, driven synchronously through an in-memory transport.

An in-memory transport is not a TCP socket, so these tests exercise the
pread() body path; tests/pxed/web/test_sendfile.py covers sendfile over TCP.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactor, StringTransport
from twisted.web import http
from twisted.web.server import Site

from pxed.web.trees import HttpService, build_site, content_type

DATA = bytes(range(256)) * 40  # 10240 bytes, every offset distinguishable


@dataclass
class Response:
    status: int
    headers: dict[bytes, bytes]
    body: bytes


def fetch(site: Site, path: str, method: str = "GET", **headers: str) -> Response:
    """One request through a real HTTPChannel; the whole response is written synchronously."""
    channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    transport = StringTransport()
    channel.makeConnection(transport)
    lines = [f"{method} {path} HTTP/1.1", "Host: pxed", "Connection: close"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    channel.dataReceived(("\r\n".join(lines) + "\r\n\r\n").encode())
    head, _, body = transport.value().partition(b"\r\n\r\n")
    status_line, *header_lines = head.split(b"\r\n")
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(b":")
        parsed[name.strip().lower()] = value.strip()
    channel.connectionLost(None)
    return Response(int(status_line.split()[1]), parsed, body)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / "images" / "pxeboot").mkdir(parents=True)
    (root / "images" / "pxeboot" / "vmlinuz").write_bytes(DATA)
    (root / "EFI").mkdir()
    (root / "EFI" / "grubx64.efi").write_bytes(b"MZ efi")
    (root / "repodata").mkdir()
    (root / "repodata" / "primary.xml.gz").write_bytes(b"\x1f\x8b gz")
    (root / "ks.cfg").write_text("text\n")
    (root / "empty").write_bytes(b"")
    (root / "evil.rpy").write_text("resource = None\n")
    (root / "inside").symlink_to("images/pxeboot/vmlinuz")
    (tmp_path / "secret").write_text("outside the tree\n")
    (root / "outside").symlink_to(tmp_path / "secret")
    (root / "up").symlink_to("..")
    (root / "loop").symlink_to("loop")
    os.mkfifo(root / "fifo")
    return root


@pytest.fixture
def tftp_root(tmp_path: Path) -> Path:
    root = tmp_path / "tftp"
    root.mkdir()
    (root / "snponly.efi").write_bytes(b"MZ ipxe")
    return root


@pytest.fixture
def site(tree: Path, tftp_root: Path) -> Site:
    return build_site(Clock(), {"centos": tree}, tftp_root)


VMLINUZ = "/trees/centos/images/pxeboot/vmlinuz"


def test_get_returns_the_file_with_validators(site: Site) -> None:
    response = fetch(site, VMLINUZ)
    assert response.status == 200
    assert response.body == DATA
    assert response.headers[b"content-length"] == b"10240"
    assert response.headers[b"accept-ranges"] == b"bytes"
    assert response.headers[b"etag"].startswith(b'"')
    assert b"last-modified" in response.headers


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [("bytes=0-0", 0, 1), ("bytes=100-299", 100, 300), ("bytes=10000-", 10000, 10240),
     ("bytes=-40", 10200, 10240), ("bytes=10200-99999", 10200, 10240)],
)  # fmt: skip
def test_single_range_returns_exactly_those_bytes(
    site: Site, header: str, start: int, stop: int
) -> None:
    response = fetch(site, VMLINUZ, Range=header)
    assert response.status == 206
    assert response.body == DATA[start:stop]
    assert response.headers[b"content-range"] == b"bytes %d-%d/10240" % (start, stop - 1)
    assert response.headers[b"content-length"] == b"%d" % (stop - start)


def test_multiple_ranges_come_as_multipart_byteranges(site: Site) -> None:
    response = fetch(site, VMLINUZ, Range="bytes=0-9,5000-5009,-3")
    assert response.status == 206
    kind = response.headers[b"content-type"]
    assert kind.startswith(b"multipart/byteranges; boundary=")
    boundary = kind.partition(b"boundary=")[2]
    assert int(response.headers[b"content-length"]) == len(response.body)
    parts = response.body.split(b"--" + boundary)[1:-1]
    bodies = [part.partition(b"\r\n\r\n")[2].removesuffix(b"\r\n") for part in parts]
    assert bodies == [DATA[0:10], DATA[5000:5010], DATA[-3:]]
    assert b"Content-Range: bytes 5000-5009/10240" in parts[1]
    assert response.body.endswith(b"--" + boundary + b"--\r\n")


def test_unsatisfiable_range_is_416_with_the_size(site: Site) -> None:
    response = fetch(site, VMLINUZ, Range="bytes=20000-")
    assert response.status == 416
    assert response.headers[b"content-range"] == b"bytes */10240"


def test_malformed_range_is_ignored_and_the_whole_file_sent(site: Site) -> None:
    response = fetch(site, VMLINUZ, Range="bytes=abc")
    assert response.status == 200
    assert response.body == DATA


def test_head_gives_length_and_type_without_body(site: Site) -> None:
    response = fetch(site, "/tftp/snponly.efi", method="HEAD")
    assert response.status == 200
    assert response.headers[b"content-length"] == b"7"
    assert response.headers[b"content-type"] == b"application/efi"
    assert response.body == b""


def test_if_modified_since_later_than_the_file_gives_304(site: Site) -> None:
    later = http.datetimeToString(2**31).decode()
    response = fetch(site, VMLINUZ, If_Modified_Since=later)
    assert response.status == 304
    assert response.body == b""


def test_304_carries_validators_but_no_zero_content_length(site: Site) -> None:
    later = http.datetimeToString(2**31).decode()
    response = fetch(site, VMLINUZ, If_Modified_Since=later)
    assert response.headers.get(b"content-length") in (None, b"10240")
    assert b"etag" in response.headers


@pytest.mark.parametrize("date", ["", "x", "a b c d e", "Mon, 99 Foo 2020 00:00:00 GMT"])
def test_an_unparsable_if_modified_since_is_ignored(site: Site, date: str) -> None:
    assert fetch(site, VMLINUZ, If_Modified_Since=date).status == 200


def test_if_modified_since_earlier_than_the_file_gives_the_file(site: Site) -> None:
    response = fetch(site, VMLINUZ, If_Modified_Since="Thu, 01 Jan 1970 00:00:00 GMT")
    assert response.status == 200
    assert response.body == DATA


def test_matching_if_none_match_gives_304(site: Site) -> None:
    etag = fetch(site, VMLINUZ, method="HEAD").headers[b"etag"].decode()
    assert fetch(site, VMLINUZ, If_None_Match=f'"x", {etag}').status == 304


def test_if_none_match_takes_precedence_over_if_modified_since(site: Site) -> None:
    later = http.datetimeToString(2**31).decode()
    response = fetch(site, VMLINUZ, If_None_Match='"stale"', If_Modified_Since=later)
    assert response.status == 200


def test_if_match_with_another_etag_is_412_and_with_the_current_one_the_file(
    site: Site,
) -> None:
    """RFC 9110 13.1.1: a server MUST evaluate If-Match; a client guarding a resumed or
    multi-part download with it must not get bytes of a file that changed."""
    etag = fetch(site, VMLINUZ, method="HEAD").headers[b"etag"].decode()
    refused = fetch(site, VMLINUZ, If_Match='"old"')
    assert (refused.status, refused.body) == (412, b"")
    assert fetch(site, VMLINUZ, If_Match=f'"old", {etag}').status == 200
    assert fetch(site, VMLINUZ, If_Match="*").status == 200
    assert fetch(site, VMLINUZ, If_Match=f"W/{etag}").status == 412, "If-Match compares strongly"


def test_if_unmodified_since_before_the_file_changed_is_412(site: Site) -> None:
    """RFC 9110 13.1.4 (curl --time-cond -DATE sends it); If-Match, when present, decides."""
    old = "Thu, 01 Jan 1970 00:00:00 GMT"
    assert fetch(site, VMLINUZ, If_Unmodified_Since=old).status == 412
    later = http.datetimeToString(2**31).decode()
    assert fetch(site, VMLINUZ, If_Unmodified_Since=later).status == 200
    assert fetch(site, VMLINUZ, If_Unmodified_Since="garbage").status == 200
    assert fetch(site, VMLINUZ, If_Match="*", If_Unmodified_Since=old).status == 200


def test_if_range_with_the_current_etag_honours_the_range(site: Site) -> None:
    etag = fetch(site, VMLINUZ, method="HEAD").headers[b"etag"].decode()
    response = fetch(site, VMLINUZ, Range="bytes=0-3", If_Range=etag)
    assert (response.status, response.body) == (206, DATA[:4])


def test_if_range_with_a_stale_etag_sends_the_whole_file(site: Site) -> None:
    response = fetch(site, VMLINUZ, Range="bytes=0-3", If_Range='"old"')
    assert (response.status, response.body) == (200, DATA)


@pytest.mark.parametrize("path", ["/trees/centos/", "/trees/centos", "/trees/centos/images/"])
def test_directories_are_forbidden_not_listed(site: Site, path: str) -> None:
    response = fetch(site, path)
    assert response.status == 403
    assert b"pxeboot" not in response.body and b"vmlinuz" not in response.body


@pytest.mark.parametrize(
    "path",
    [
        "/trees/centos/../../secret",
        "/trees/centos/%2e%2e/secret",
        "/trees/centos/images/%2E%2E/%2e%2e/secret",
        "/trees/centos/%2fetc%2fpasswd",
        "/trees/centos//etc/passwd",
        "/trees/centos/outside",
        "/trees/centos/up/secret",
        "/trees/centos/ks.cfg%00.png",
        "/tftp/../tree/ks.cfg",
        "/tftp/%2e%2e/secret",
    ],
)
def test_nothing_outside_the_tree_is_readable(site: Site, path: str) -> None:
    response = fetch(site, path)
    assert response.status == 404
    assert b"outside the tree" not in response.body
    assert b"root:" not in response.body


def test_symlink_inside_the_tree_to_a_file_inside_is_served(site: Site) -> None:
    assert fetch(site, "/trees/centos/inside").body == DATA


@pytest.mark.parametrize("path", ["/trees/centos/loop", "/trees/centos/" + "n" * 5000])
def test_symlink_loops_and_overlong_names_are_not_found(site: Site, path: str) -> None:
    assert fetch(site, path).status == 404


def test_fifo_in_the_tree_is_not_found_and_does_not_block(site: Site) -> None:
    assert fetch(site, "/trees/centos/fifo").status == 404


def test_rpy_files_are_bytes_not_code(site: Site) -> None:
    response = fetch(site, "/trees/centos/evil.rpy")
    assert response.body == b"resource = None\n"
    assert response.headers[b"content-type"] == b"application/octet-stream"


def test_gz_files_are_served_as_gzip_bytes_without_content_encoding(site: Site) -> None:
    response = fetch(site, "/trees/centos/repodata/primary.xml.gz")
    assert response.headers[b"content-type"] == b"application/gzip"
    assert b"content-encoding" not in response.headers


def test_empty_file_is_200_with_zero_length_and_any_range_is_416(site: Site) -> None:
    response = fetch(site, "/trees/centos/empty")
    assert (response.status, response.headers[b"content-length"], response.body) == (200, b"0", b"")
    assert fetch(site, "/trees/centos/empty", Range="bytes=0-").status == 416


def test_a_file_with_a_trailing_slash_is_not_found(site: Site) -> None:
    assert fetch(site, "/trees/centos/ks.cfg/").status == 404


@pytest.mark.parametrize("path", ["/", "/trees/", "/trees/nope/ks.cfg", "/nothing"])
def test_unknown_paths_are_404(site: Site, path: str) -> None:
    assert fetch(site, path).status == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_only_get_and_head_are_allowed(site: Site, method: str) -> None:
    response = fetch(site, "/trees/centos/ks.cfg", method=method)
    assert response.status in (405, 501)
    assert b"text\n" not in response.body


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (b"grubx64.efi", b"application/efi"),
        (b"BOOTX64.EFI", b"application/efi"),
        (b"ks.cfg", b"text/plain; charset=utf-8"),
        (b"anaconda.ks", b"text/plain; charset=utf-8"),
        (b"repomd.xml", b"application/xml"),
        (b"install.img", b"application/vnd.efi-img"),
        (b"Fedora-netinst.iso", b"application/vnd.efi-iso"),
        (b"bash-5.2.rpm", b"application/x-rpm"),
        (b".treeinfo", b"text/plain; charset=utf-8"),
        (b"vmlinuz", b"application/octet-stream"),
        (b"odd\xff", b"application/octet-stream"),
    ],
)
def test_content_types_do_not_depend_on_the_host(name: bytes, expected: bytes) -> None:
    assert content_type(name) == expected


def test_http_service_binds_each_address_before_privileges_are_dropped(site: Site) -> None:
    reactor = MemoryReactor()
    service = HttpService(reactor, site, 80, ["10.213.0.1", "10.213.1.1"])
    service.privilegedStartService()
    assert [(port, factory, interface) for port, factory, _, interface in reactor.tcpServers] == [
        (80, site, "10.213.0.1"),
        (80, site, "10.213.1.1"),
    ]
    service.startService()
    service.stopService()
    assert service.listening == []
