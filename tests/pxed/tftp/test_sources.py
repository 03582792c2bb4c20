"""What a transfer reads: path safety, shared descriptors, netascii, the provider chain."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.tftp.wire import ErrorCode
from pxed.tftp.sources import (
    NETASCII_MAX,
    BytesSource,
    FileRefused,
    Netascii,
    ProviderChain,
    StaticRoot,
    normalise,
)
from tests.support.fuzz import property_settings

CLIENT = ("10.213.7.50", 2070)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """/srv/tftp beside /srv/tftp-private (the sibling-prefix trap) and a secret outside both."""
    root = tmp_path / "srv" / "tftp"
    (root / "pxelinux.cfg").mkdir(parents=True)
    (root / "pxelinux.0").write_bytes(b"loader")
    (root / "pxelinux.cfg" / "default").write_bytes(b"DEFAULT linux\n")
    private = tmp_path / "srv" / "tftp-private"
    private.mkdir()
    (private / "x").write_bytes(b"private")
    (tmp_path / "srv" / "x").write_bytes(b"secret")
    (tmp_path / "x").write_bytes(b"secret")
    return root


def _serve(root: Path, path: str) -> bytes:
    source = ProviderChain([StaticRoot(root)]).open(path, CLIENT)
    try:
        return source.read(0, source.size() + 1)
    finally:
        source.close()


def _refusal(root: Path, path: str) -> FileRefused:
    with pytest.raises(FileRefused) as caught:
        _serve(root, path)
    return caught.value


@pytest.mark.parametrize(
    "path",
    ["pxelinux.0", "/pxelinux.0", "//pxelinux.0", "\\pxelinux.0", "./pxelinux.0", "\\\\pxelinux.0"],
)
def test_leading_slashes_and_backslashes_name_the_same_file(tree: Path, path: str) -> None:
    assert _serve(tree, path) == b"loader"


def test_backslash_separated_subdirectory_is_served() -> None:
    """Windows-built pxelinux configs say pxelinux.cfg\\default."""
    assert normalise("\\pxelinux.cfg\\\\default") == "pxelinux.cfg/default"


@pytest.mark.parametrize(
    "path",
    [
        "../x",
        "..\\x",
        "a/../../x",
        "pxelinux.cfg/../../x",
        "..",
        "/..",
        "\\..\\..\\x",
        "../tftp-private/x",
    ],
)
def test_dot_dot_segments_are_access_violations(tree: Path, path: str) -> None:
    assert _refusal(tree, path).code == ErrorCode.ACCESS_VIOLATION


@pytest.mark.parametrize("path", ["/etc/passwd", "//etc/passwd", "\\etc\\passwd", "%2e%2e/x"])
def test_absolute_and_encoded_paths_stay_inside_the_root(tree: Path, path: str) -> None:
    """A leading slash means the root; %2e is not decoded, so it names a file that is not there."""
    assert _refusal(tree, path).code == ErrorCode.FILE_NOT_FOUND


def test_nul_inside_a_name_is_refused_before_any_lookup(tree: Path) -> None:
    assert _refusal(tree, "pxelinux.0\0../../x").code == ErrorCode.ACCESS_VIOLATION


def test_sibling_directory_sharing_the_root_prefix_is_outside(tree: Path) -> None:
    """/srv/tftp-private starts with the string /srv/tftp but is not inside it."""
    (tree / "peek").symlink_to(tree.parent / "tftp-private" / "x")
    assert _refusal(tree, "peek").code == ErrorCode.ACCESS_VIOLATION


def test_symlink_out_of_the_root_is_refused(tree: Path) -> None:
    (tree / "escape").symlink_to(tree.parent.parent / "x")
    (tree / "escape-dir").symlink_to(tree.parent.parent)
    assert _refusal(tree, "escape").code == ErrorCode.ACCESS_VIOLATION
    assert _refusal(tree, "escape-dir/x").code == ErrorCode.ACCESS_VIOLATION


def test_symlink_inside_the_root_is_followed(tree: Path) -> None:
    (tree / "boot.0").symlink_to("pxelinux.0")
    assert _serve(tree, "boot.0") == b"loader"


def test_root_given_through_a_symlink_still_serves(tree: Path, tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(tree)
    assert _serve(tmp_path / "link", "pxelinux.0") == b"loader"


@pytest.mark.parametrize("length", [300, 5000, 70000])
def test_very_long_names_are_not_found(tree: Path, length: int) -> None:
    assert _refusal(tree, "a" * length).code == ErrorCode.FILE_NOT_FOUND
    assert _refusal(tree, "a/" * length).code == ErrorCode.FILE_NOT_FOUND


def test_fifo_inside_the_root_is_refused_without_blocking(tree: Path) -> None:
    """Opening a FIFO for reading blocks until a writer comes: it must not even be opened."""
    os.mkfifo(tree / "pipe")
    assert _refusal(tree, "pipe").code == ErrorCode.ACCESS_VIOLATION


def test_unix_socket_inside_the_root_is_refused(tree: Path) -> None:
    path = tree / "sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        assert _refusal(tree, "sock").code == ErrorCode.ACCESS_VIOLATION


def test_device_file_inside_the_root_is_refused(tree: Path) -> None:
    (tree / "zero").symlink_to("/dev/zero")  # outside anyway; a real node needs CAP_MKNOD
    assert _refusal(tree, "zero").code == ErrorCode.ACCESS_VIOLATION
    try:
        os.mknod(tree / "null", 0o600 | 0o020000, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("mknod needs root")
    assert _refusal(tree, "null").code == ErrorCode.ACCESS_VIOLATION


@pytest.mark.parametrize("path", ["pxelinux.cfg", "pxelinux.cfg/", "/", "."])
def test_directories_and_the_root_itself_are_not_served(tree: Path, path: str) -> None:
    assert _refusal(tree, path).code in (ErrorCode.ACCESS_VIOLATION, ErrorCode.FILE_NOT_FOUND)


def test_unreadable_file_is_an_access_violation(tree: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    (tree / "locked").write_bytes(b"x")
    (tree / "locked").chmod(0)
    assert _refusal(tree, "locked").code == ErrorCode.ACCESS_VIOLATION


@property_settings
@given(st.text(alphabet="./\\ax\0%2e", max_size=40))
def test_no_request_path_ever_reads_outside_the_root(tmp_path_factory, path: str) -> None:
    """Whatever the name, the bytes served are the root's file or a refusal, never the secret."""
    base = tmp_path_factory.getbasetemp() / "fuzz-root"
    root = base / "tftp"
    if not root.exists():
        root.mkdir(parents=True)
        (root / "a").write_bytes(b"inside")
        (base / "x").write_bytes(b"secret")
        (base / "a").write_bytes(b"secret")
    try:
        assert _serve(root, path) == b"inside"
    except FileRefused as refusal:
        assert refusal.code in (ErrorCode.ACCESS_VIOLATION, ErrorCode.FILE_NOT_FOUND)


def test_reads_are_random_access_and_short_only_at_the_end(tree: Path) -> None:
    (tree / "big").write_bytes(bytes(range(256)) * 40)
    source = StaticRoot(tree).open("big", CLIENT)
    assert source.size() == 10240
    assert source.read(512, 4) == bytes([0, 1, 2, 3])
    assert source.read(10238, 512) == bytes([254, 255])
    assert source.read(10240, 512) == b""
    assert source.read(0, 2) == bytes([0, 1])
    source.close()


def test_same_file_for_many_clients_holds_one_descriptor(tree: Path) -> None:
    root = StaticRoot(tree)
    sources = [root.open("pxelinux.0", ("10.0.0.1", port)) for port in range(200)]
    assert root.open_files == 1
    for source in sources[:-1]:
        source.close()
    assert root.open_files == 1
    assert sources[-1].read(0, 6) == b"loader"
    sources[-1].close()
    assert root.open_files == 0


def test_close_twice_releases_once(tree: Path) -> None:
    root = StaticRoot(tree)
    first, second = root.open("pxelinux.0", CLIENT), root.open("pxelinux.0", CLIENT)
    first.close()
    first.close()
    assert root.open_files == 1
    assert second.read(0, 6) == b"loader"
    second.close()


def test_replaced_file_is_a_new_version_and_old_transfers_keep_theirs(tree: Path) -> None:
    """An admin swapping a kernel mid-transfer must not hand one client a mix of both."""
    root = StaticRoot(tree)
    old = root.open("pxelinux.0", CLIENT)
    (tree / "pxelinux.new").write_bytes(b"LOADER-2")
    os.replace(tree / "pxelinux.new", tree / "pxelinux.0")
    new = root.open("pxelinux.0", CLIENT)
    assert (old.read(0, 100), new.read(0, 100)) == (b"loader", b"LOADER-2")
    assert root.open_files == 2
    old.close()
    new.close()
    assert root.open_files == 0


def test_file_truncated_under_a_transfer_reads_short_for_the_engine_to_notice(
    tree: Path,
) -> None:
    """The size stays what the OACK promised; the short read is how the engine sees the change."""
    (tree / "shrinks").write_bytes(b"x" * 4096)
    source = StaticRoot(tree).open("shrinks", CLIENT)
    os.truncate(tree / "shrinks", 100)
    assert source.size() == 4096
    assert source.read(512, 512) == b""
    source.close()


def test_sequential_block_reads_share_one_pread_per_read_ahead(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A syscall per block was the largest cost of a lockstep transfer; the bytes stay exact."""
    data = os.urandom(65536)
    (tree / "kernel").write_bytes(data)
    calls: list[int] = []
    real_pread = os.pread

    def counting_pread(fd: int, length: int, offset: int) -> bytes:
        calls.append(offset)
        return real_pread(fd, length, offset)

    monkeypatch.setattr(os, "pread", counting_pread)
    source = StaticRoot(tree).open("kernel", CLIENT)
    blocks = [source.read(offset, 1468) for offset in range(0, 65536, 1468)]
    assert b"".join(blocks) == data
    assert len(calls) <= 3 < len(blocks) // 10
    source.close()


def test_a_rewind_reads_the_file_again_instead_of_the_read_ahead(tree: Path) -> None:
    """Retransmits and go-backs see the file as it is now, as a plain pread would."""
    (tree / "kernel").write_bytes(b"a" * 4096)
    source = StaticRoot(tree).open("kernel", CLIENT)
    assert source.read(0, 512) == b"a" * 512
    with open(tree / "kernel", "r+b") as rewrite:
        rewrite.write(b"b" * 4096)
    assert source.read(0, 512) == b"b" * 512
    source.close()


def test_a_closed_static_file_refuses_reads_even_where_it_had_read_ahead(tree: Path) -> None:
    (tree / "kernel").write_bytes(b"a" * 4096)
    source = StaticRoot(tree).open("kernel", CLIENT)
    source.read(0, 512)
    source.close()
    with pytest.raises(ValueError, match="closed"):
        source.read(512, 512)


class _Generated:
    """A stand-in for the provisioning issue's generator: one path, per-client content."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, tuple[str, int]]] = []

    def open(self, path: str, client: tuple[str, int]) -> BytesSource | None:
        self.asked.append((path, client))
        if path == "pxelinux.cfg/01-52-54-00-12-34-56":
            return BytesSource(f"# for {client[0]}\n".encode())
        return None


def test_provider_is_asked_first_with_the_normalised_path_and_client(tree: Path) -> None:
    generated = _Generated()
    chain = ProviderChain([generated, StaticRoot(tree)])
    source = chain.open("\\pxelinux.cfg\\01-52-54-00-12-34-56", CLIENT)
    assert source.read(0, source.size()) == b"# for 10.213.7.50\n"
    assert generated.asked == [("pxelinux.cfg/01-52-54-00-12-34-56", CLIENT)]


def test_paths_the_provider_does_not_know_fall_through_to_the_root(tree: Path) -> None:
    chain = ProviderChain([_Generated(), StaticRoot(tree)])
    source = chain.open("pxelinux.cfg/default", CLIENT)
    assert source.read(0, 100) == b"DEFAULT linux\n"


def test_traversal_is_refused_before_any_provider_sees_it(tree: Path) -> None:
    generated = _Generated()
    with pytest.raises(FileRefused):
        ProviderChain([generated, StaticRoot(tree)]).open("../x", CLIENT)
    assert generated.asked == []


def test_chain_without_a_taker_is_file_not_found() -> None:
    with pytest.raises(FileRefused) as caught:
        ProviderChain([_Generated()]).open("nothing", CLIENT)
    assert caught.value.code == ErrorCode.FILE_NOT_FOUND


def _netascii(data: bytes) -> bytes:
    return data.replace(b"\r", b"\r\0").replace(b"\n", b"\r\n")


def test_netascii_converts_line_ends_and_bare_cr() -> None:
    source = Netascii(BytesSource(b"a\nb\r\nc\rd"))
    assert source.read(0, 100) == b"a\r\nb\r\0\r\nc\r\0d"
    assert source.size() == 12


def test_netascii_size_is_the_converted_size_across_chunks() -> None:
    data = (b"line\n" * 30000) + b"\r" * 70000
    source = Netascii(BytesSource(data))
    assert source.size() == len(_netascii(data))


@property_settings
@given(
    st.binary(max_size=300).map(lambda b: b.replace(b"x", b"\n").replace(b"y", b"\r")),
    st.integers(1, 64),
    st.data(),
)
def test_netascii_random_access_matches_whole_conversion(data: bytes, chunk: int, draw) -> None:
    """Any read at any offset (retransmits rewind) equals the same slice of the whole conversion."""
    source = Netascii(BytesSource(data), chunk=chunk)  # small chunks: reads cross boundaries
    whole = _netascii(data)
    assert source.size() == len(whole)
    for _ in range(5):
        offset = draw.draw(st.integers(0, len(whole) + 2))
        length = draw.draw(st.integers(0, 70))
        assert source.read(offset, length) == whole[offset : offset + length]


def test_netascii_closes_the_file_underneath(tree: Path) -> None:
    root = StaticRoot(tree)
    source = Netascii(root.open("pxelinux.cfg/default", CLIENT))
    assert source.read(0, 100) == b"DEFAULT linux\r\n"
    source.close()
    assert root.open_files == 0


def test_netascii_file_truncated_under_a_transfer_reads_short_instead_of_hanging(
    tree: Path,
) -> None:
    """The engine notices a short read and ends the transfer; netascii looped forever on
    the empty slice of the shrunken chunk, which froze the whole reactor."""
    (tree / "shrinks.txt").write_bytes(b"line\n" * 1000)
    source = Netascii(StaticRoot(tree).open("shrinks.txt", CLIENT), chunk=1024)
    os.truncate(tree / "shrinks.txt", 100)
    assert source.size() == 6000
    assert source.read(0, 512) == b"line\r\n" * 20  # the 100 bytes left, converted
    assert source.read(2048, 512) == b""
    source.close()


def test_concurrent_netascii_requests_for_one_file_scan_it_once(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Netascii learns its converted size by reading the whole file in the reactor thread
    (about 60 ms for a 40 MiB kernel); a burst of netascii RRQs for one file, spoofed or
    not, paid that once per request. Transfers sharing the descriptor share the scan."""
    data = b"ab\ncd\r" * 50_000
    (tree / "kernel").write_bytes(data)
    root = StaticRoot(tree)
    first = Netascii(root.open("kernel", CLIENT), chunk=4096)
    reads: list[int] = []
    real = os.pread
    monkeypatch.setattr(
        "pxed.tftp.sources.os.pread", lambda fd, n, at: reads.append(n) or real(fd, n, at)
    )
    second = Netascii(root.open("kernel", CLIENT), chunk=4096)
    assert reads == []
    assert second.size() == first.size() == len(_netascii(data))
    assert second.read(100_000, 700) == _netascii(data)[100_000:100_700]
    first.close()
    second.close()


class _Counted(BytesSource):
    """A source with a version, counting the bytes read from it."""

    def __init__(self, data: bytes, identity: object) -> None:
        super().__init__(data)
        self.identity = identity
        self.read_bytes = 0

    def read(self, offset: int, length: int) -> bytes:
        piece = super().read(offset, length)
        self.read_bytes += len(piece)
        return piece


def test_a_file_version_is_scanned_once_whatever_comes_after_even_from_an_iso() -> None:
    """Issue 18: 66 netascii RRQs in 10 s for one file in an ISO tree scanned it 66 times
    in the reactor thread (ISO sources never kept a layout), stalling DHCP and HTTP."""
    data = b"text\n" * 10_000
    first = _Counted(data, ("iso", "image-v1", ((0, len(data)),)))
    Netascii(first).close()
    assert first.read_bytes == len(data)
    again = _Counted(data, ("iso", "image-v1", ((0, len(data)),)))
    assert Netascii(again).size() == len(_netascii(data)) and again.read_bytes == 0
    changed = _Counted(data, ("iso", "image-v2", ((0, len(data)),)))
    Netascii(changed)
    assert changed.read_bytes == len(data)


def test_a_file_over_the_netascii_limit_is_refused_in_netascii_and_served_in_octet(
    tree: Path,
) -> None:
    big = tree / "big.img"
    with big.open("wb") as out:
        out.truncate(NETASCII_MAX + 1)  # sparse: nothing is written
    root = StaticRoot(tree)
    with pytest.raises(FileRefused, match="up to 4 MiB; ask in octet") as caught:
        Netascii(root.open("big.img", CLIENT))
    assert caught.value.code == ErrorCode.ACCESS_VIOLATION
    assert root.open("big.img", CLIENT).size() == NETASCII_MAX + 1
