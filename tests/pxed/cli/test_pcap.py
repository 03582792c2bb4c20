"""`pxed pcap` end to end on small hand-built captures: lines, -v, errors, --strict."""

from __future__ import annotations

import subprocess
import sys
from ipaddress import IPv6Address
from pathlib import Path

import pytest

from protocols.errors import MalformedPacket
from pxed.cli.main import main
from pxed.pcap import payload
from pxed.pcap.classify import Protocol
from tests.replay.builders import (
    epb,
    ethernet,
    idb,
    ipv4,
    ipv6,
    ipv6_packet,
    pcap_file,
    shb,
    udp,
)
from tests.replay.corpus import PUBLIC_DHCPV6

CLIENT = "10.213.0.2"
SERVER = "10.213.0.1"
T0 = 1_700_000_000_000_000_000
RRQ = b"\0\x01pxelinux.0\0octet\0tsize\x000\0blksize\x001408\0"
OACK = b"\0\x06tsize\x0026\0blksize\x001408\0"
DATA = b"\0\x03\0\x01" + b"kernel image" * 2 + b"..\n"
ERROR = b"\0\x05\0\x01File not found\0"


def _tftp_frame(src: str, sport: int, dst: str, dport: int, body: bytes) -> bytes:
    return ethernet(ipv4(src, dst, udp(sport, dport, body)))


TRANSFER = [
    (T0, _tftp_frame(CLIENT, 40000, SERVER, 69, RRQ), None),
    (T0 + 1_500_000, _tftp_frame(SERVER, 51000, CLIENT, 40000, OACK), None),
    (T0 + 2_000_000, _tftp_frame(CLIENT, 40000, SERVER, 51000, b"\0\x04\0\0"), None),
    (T0 + 2_250_000_000, _tftp_frame(SERVER, 51000, CLIENT, 40000, DATA), None),
]


def _capture(
    tmp_path: Path, frames: list[tuple[int, bytes, int | None]], name: str = "boot.pcap"
) -> Path:
    path = tmp_path / name
    path.write_bytes(pcap_file(frames))
    return path


def _run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, list[str], str]:
    status = main(["pcap", *map(str, args)])
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


def test_one_aligned_line_per_packet_with_heading_and_tally(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _capture(tmp_path, TRANSFER)
    status, lines, err = _run(capsys, path)
    assert status == 0 and err == ""
    assert lines == [
        f"== {path} ==",
        "    1     0.000000       10.213.0.2:40000 -> 10.213.0.1:69          "
        'TFTP RRQ         "pxelinux.0" octet tsize=0 blksize=1408',
        "    2     0.001500       10.213.0.1:51000 -> 10.213.0.2:40000       "
        "TFTP OACK        tsize=26 blksize=1408",
        "    3     0.002000       10.213.0.2:40000 -> 10.213.0.1:51000       "
        "TFTP ACK         block 0",
        "    4     2.250000       10.213.0.1:51000 -> 10.213.0.2:40000       "
        "TFTP DATA        block 1 (27 bytes)",
        "-- 4 frames: 4 TFTP",
        "",
    ]


def test_absolute_time_prints_utc(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, lines, _ = _run(capsys, "--absolute-time", _capture(tmp_path, TRANSFER[:1]))
    assert lines[1].startswith("    1  2023-11-14 22:13:20.000000     ")


def test_verbose_prints_every_field_under_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, lines, _ = _run(capsys, "-v", _capture(tmp_path, TRANSFER[:1]))
    assert lines[2:8] == [
        "        frame 1: 82 of 82 bytes, Ethernet; UDP payload 40 bytes",
        "        opcode: 1 (RRQ)",
        '        filename: "pxelinux.0"',
        '        mode: "octet"',
        '        option "tsize": "0"',
        '        option "blksize": "1408"',
    ]


def test_tftp_error_shows_code_name_and_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = [TRANSFER[0], (T0, _tftp_frame(SERVER, 51000, CLIENT, 40000, ERROR), None)]
    _, lines, _ = _run(capsys, _capture(tmp_path, frames))
    assert lines[2].endswith('TFTP ERROR       1 (file not found) "File not found"')


def test_malformed_payload_prints_the_reason_and_strict_still_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _tftp_frame(CLIENT, 40000, SERVER, 69, b"\0\x09junk")
    status, lines, _ = _run(capsys, "--strict", _capture(tmp_path, [(T0, bad, None)]))
    assert status == 0
    assert "MALFORMED TFTP: TFTP: unknown opcode 9 (TFTP has 1-6), at offset 0" in lines[1]
    assert lines[2] == "-- 1 frame: 1 TFTP, 1 malformed"


def test_verbose_malformed_payload_gets_a_hex_dump(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _tftp_frame(CLIENT, 40000, SERVER, 69, b"\0\x09junk")
    _, lines, _ = _run(capsys, "-v", _capture(tmp_path, [(T0, bad, None)]))
    assert lines[3:5] == [
        "        payload (6 bytes captured):",
        "          0000  00 09 6a 75 6e 6b",
    ]


def test_payload_cut_by_the_snap_length_is_malformed_truncated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = _tftp_frame(CLIENT, 40000, SERVER, 69, RRQ)
    status, lines, _ = _run(capsys, "--strict", _capture(tmp_path, [(T0, whole[:-10], len(whole))]))
    assert status == 0
    assert lines[1].endswith(
        "MALFORMED TFTP: truncated: 30 of 40 payload bytes captured "
        "(frame cut short by the capture's snap length)"
    )


def test_frames_not_decoded_are_counted_by_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = [
        (T0, ethernet(ipv6_packet(), ethertype=0x86DD), None),
        (T0, ethernet(ipv6_packet(), ethertype=0x86DD), None),
        (T0, ethernet(b"\0" * 28, ethertype=0x0806), None),
        (T0, _tftp_frame(CLIENT, 5353, SERVER, 53, b"dns"), None),
    ]
    _, lines, _ = _run(capsys, _capture(tmp_path, frames))
    assert (
        lines[1]
        == "-- 4 frames: no DHCP/BOOTP/TFTP packets; not decoded: 2 ICMPv6, 1 ARP, 1 other UDP"
    )


def test_pcapng_input_and_extra_tftp_port(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "songokas.pcapng"
    frame = _tftp_frame(CLIENT, 40000, SERVER, 9000, RRQ)
    path.write_bytes(shb() + idb(tsresol=9) + epb(frame, ticks=T0))
    _, lines, _ = _run(capsys, "--tftp-port", "9000", path)
    assert "TFTP RRQ" in lines[1]


def test_broken_file_prints_what_it_could_then_fails_naming_file_and_offset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cut.pcap"
    path.write_bytes(pcap_file(TRANSFER[:2])[:-5])
    status, lines, err = _run(capsys, path)
    assert status == 1
    assert "TFTP RRQ" in lines[1] and lines[2] == "-- 1 frame: 1 TFTP"
    assert f"{path}: file ends inside frame 2" in err and "at byte offset" in err


def test_non_capture_files_and_directories_are_skipped_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "README.md").write_text("# captures\n")
    (tmp_path / "LICENSES").mkdir()
    capture = _capture(tmp_path, TRANSFER[:1])
    status, lines, err = _run(
        capsys, "--strict", tmp_path / "LICENSES", tmp_path / "README.md", capture
    )
    assert status == 0 and lines[0] == f"== {capture} =="
    assert "README.md: not a capture file, skipped" in err
    assert "LICENSES: is a directory, skipped" in err


def test_garbage_named_like_a_capture_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "boot.pcap"
    path.write_bytes(b"<html>not a capture</html>")
    status, _, err = _run(capsys, path)
    assert status == 1 and "not a pcap or pcapng file" in err


def test_missing_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = _run(capsys, tmp_path / "gone.pcap")
    assert status == 1 and "gone.pcap: No such file or directory" in err


def _crashing_decoder(data: bytes) -> object:
    raise IndexError("tuple index out of range")


def _lossy_encoder(message: object) -> bytes:
    return RRQ[:-1]


@pytest.mark.parametrize(
    ("codec", "reason"),
    [
        ((_crashing_decoder, payload.CODECS[Protocol.TFTP][1]), "decoder raised IndexError"),
        (
            (payload.CODECS[Protocol.TFTP][0], _lossy_encoder),
            "re-encodes differently: 39 bytes instead of 40, first difference at byte 39",
        ),
    ],
    ids=["crash", "round-trip"],
)
def test_strict_fails_on_a_decoder_bug_and_names_the_packet(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    codec: tuple[object, object],
    reason: str,
) -> None:
    monkeypatch.setitem(payload.CODECS, Protocol.TFTP, codec)
    path = _capture(tmp_path, TRANSFER[:1])
    status, lines, err = _run(capsys, "--strict", path)
    assert status == 1
    assert lines[1].startswith("    1  ") and f"PXED BUG TFTP: {reason}" in lines[1]
    assert lines[2] == "-- 1 frame: 1 TFTP, 1 PXED BUG"
    assert f"{path}: pxed cannot handle frame(s) 1 (PXED BUG lines above)" in err


def test_without_strict_a_decoder_bug_is_shown_but_the_exit_status_is_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        payload.CODECS, Protocol.TFTP, (_crashing_decoder, payload.CODECS[Protocol.TFTP][1])
    )
    status, lines, _ = _run(capsys, _capture(tmp_path, TRANSFER[:1]))
    assert status == 0 and "PXED BUG TFTP: decoder raised IndexError" in lines[1]


def test_malformed_packet_from_a_truncated_payload_is_not_a_bug(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decoder also sees the short bytes, so a crash on them is caught too."""

    def strict_decoder(data: bytes) -> object:
        raise MalformedPacket("cut short")

    monkeypatch.setitem(payload.CODECS, Protocol.TFTP, (strict_decoder, _lossy_encoder))
    whole = _tftp_frame(CLIENT, 40000, SERVER, 69, RRQ)
    status, lines, _ = _run(capsys, "--strict", _capture(tmp_path, [(T0, whole[:-4], len(whole))]))
    assert status == 0 and "MALFORMED TFTP: truncated: 36 of 40" in lines[1]


def test_verbose_names_vlans_and_reassembled_fragments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = udp(51000, 40000, b"\0\x03\0\x01" + bytes(1500))
    first = ipv4(SERVER, CLIENT, body[:1000], ident=9, flags_offset=0x2000)
    second = ipv4(SERVER, CLIENT, body[1000:], ident=9, flags_offset=1000 // 8)
    frames = [
        TRANSFER[0],
        (T0 + 1, ethernet(first, vlans=((0x8100, 10),)), None),
        (T0 + 2, ethernet(second, vlans=((0x8100, 10),)), None),
    ]
    _, lines, _ = _run(capsys, "-v", _capture(tmp_path, frames))
    data_line = lines.index(next(line for line in lines if "TFTP DATA" in line))
    assert lines[data_line].startswith("    3  ") and "block 1 (1500 bytes)" in lines[data_line]
    assert lines[data_line + 1] == (
        "        frame 3: 550 of 550 bytes, Ethernet; VLAN 10; "
        "reassembled from frames 2, 3; UDP payload 1504 bytes"
    )
    assert lines[-2] == "-- 3 frames: 2 TFTP"


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path: Path) -> None:
    """`pxed pcap big.pcap | head` must end quietly when head exits."""
    ack = _tftp_frame(CLIENT, 40000, SERVER, 69, b"\0\x04\0\x01")
    path = _capture(tmp_path, [TRANSFER[0]] + [(T0, ack, None)] * 3000)
    command = [sys.executable, "-m", "pxed", "pcap", str(path)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as child:
        assert child.stdout is not None and child.stderr is not None
        child.stdout.readline()
        child.stdout.close()
        error = child.stderr.read()
        assert child.wait(timeout=60) == 1
    assert b"Traceback" not in error


def _opt6(code: int, data: bytes) -> bytes:
    return code.to_bytes(2, "big") + len(data).to_bytes(2, "big") + data


V6_CLIENT = "fe80::5054:ff:fe12:3456"
V6_RELAY = "2001:db8:1::1"
V6_SERVER = "2001:db8::1"
V6_SOLICIT = bytes.fromhex("01a1b2c3") + _opt6(1, bytes.fromhex("00030001525400123456"))
V6_ADVERTISE = bytes.fromhex("02a1b2c3") + _opt6(13, b"\0\0")
V6_RELAY_HEAD = bytes([0, *IPv6Address(V6_RELAY).packed, *IPv6Address(V6_CLIENT).packed])


def _v6_frame(src: str, sport: int, dst: str, dport: int, body: bytes) -> bytes:
    return ethernet(ipv6(src, dst, udp(sport, dport, body)), ethertype=0x86DD)


RELAYED_EXCHANGE = [
    (T0, _v6_frame(V6_CLIENT, 546, "ff02::1:2", 547, V6_SOLICIT), None),
    (
        T0 + 1_000_000,
        _v6_frame(
            V6_RELAY,
            547,
            V6_SERVER,
            547,
            b"\x0c" + V6_RELAY_HEAD + _opt6(18, b"eth0/1") + _opt6(9, V6_SOLICIT),
        ),
        None,
    ),
    (
        T0 + 2_000_000,
        _v6_frame(
            V6_SERVER,
            547,
            V6_RELAY,
            547,
            b"\x0d" + V6_RELAY_HEAD + _opt6(18, b"eth0/1") + _opt6(9, V6_ADVERTISE),
        ),
        None,
    ),
]


def test_dhcpv6_and_relayed_dhcpv6_get_a_line_each_with_the_relay_in_front(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, lines, err = _run(capsys, "--strict", _capture(tmp_path, RELAYED_EXCHANGE))
    assert status == 0 and err == ""
    relay = f'hop=0 link={V6_RELAY} peer={V6_CLIENT} interface-id="eth0/1"'
    assert lines[1:5] == [
        f"    1     0.000000  [{V6_CLIENT}]:546 -> [ff02::1:2]:547        "
        "DHCPv6 SOLICIT     xid=0xa1b2c3 client-id=ll:52:54:00:12:34:56",
        f"    2     0.001000    [{V6_RELAY}]:547 -> [{V6_SERVER}]:547      "
        f"DHCPv6 RELAY-FORW  {relay} > SOLICIT xid=0xa1b2c3 client-id=ll:52:54:00:12:34:56",
        f"    3     0.002000      [{V6_SERVER}]:547 -> [{V6_RELAY}]:547    "
        f"DHCPv6 RELAY-REPL  {relay} > ADVERTISE xid=0xa1b2c3 status-code=SUCCESS",
        "-- 3 frames: 3 DHCPv6",
    ]


def test_verbose_dhcpv6_relay_indents_the_message_it_carries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, lines, _ = _run(capsys, "-v", _capture(tmp_path, RELAYED_EXCHANGE[1:2]))
    assert lines[2:] == [
        "        frame 1: 128 of 128 bytes, Ethernet; UDP payload 66 bytes",
        "        msg-type: 12 (RELAY-FORW)",
        "        hop-count: 0",
        f"        link-address: {V6_RELAY}",
        f"        peer-address: {V6_CLIENT}",
        '        option 18 interface-id (6 bytes): "eth0/1"',
        "        option 9 relay-msg (18 bytes), carrying:",
        "          msg-type: 1 (SOLICIT)",
        "          transaction-id: 0xa1b2c3",
        "          option 1 client-id (10 bytes): LL hw 1 52:54:00:12:34:56",
        "-- 1 frame: 1 DHCPv6",
        "",
    ]


def test_strict_passes_on_every_public_dhcpv6_capture(capsys: pytest.CaptureFixture[str]) -> None:
    """The shared DHCPv6 corpus: every message decodes and re-encodes byte for byte."""
    captures = sorted(PUBLIC_DHCPV6.glob("*.pcap")) if PUBLIC_DHCPV6.is_dir() else []
    if not captures:
        pytest.skip(f"{PUBLIC_DHCPV6} not present (the shared public DHCPv6 captures)")
    status, lines, err = _run(capsys, "--strict", *captures)
    assert status == 0 and err == ""
    tallies = [line for line in lines if line.startswith("-- ")]
    assert tallies == [
        "-- 1 frame: 1 DHCPv6",
        "-- 4 frames: 4 DHCPv6",
        "-- 4 frames: 4 DHCPv6",
        "-- 4 frames: 4 DHCPv6",
        "-- 2 frames: 2 DHCPv6",
    ]
    assert not any("MALFORMED" in line or "PXED BUG" in line for line in lines)
