"""pxed.pcap.capture: pcap and pcapng containers read from hand-built bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from pxed.pcap.capture import CaptureError, Frame, NotACapture, read_frames
from tests.replay.builders import (
    BIG,
    LITTLE,
    block,
    epb,
    idb,
    opb,
    pcap_file,
    shb,
    spb,
)

STAMP = 1_700_000_000_123_456_789  # ns since the epoch


def _read(tmp_path: Path, content: bytes, name: str = "c.pcap") -> list[Frame]:
    path = tmp_path / name
    path.write_bytes(content)
    return list(read_frames(path))


@pytest.mark.parametrize("endian", [LITTLE, BIG])
def test_pcap_microsecond_file_in_either_byte_order(tmp_path: Path, endian: str) -> None:
    frames = _read(
        tmp_path, pcap_file([(STAMP, b"abc", None), (STAMP + 1000, b"de", 60)], endian=endian)
    )
    assert [(f.number, f.timestamp_ns, f.link_type, f.data) for f in frames] == [
        (1, STAMP - 789, 1, b"abc"),
        (2, STAMP + 1000 - 789, 1, b"de"),
    ]
    assert not frames[0].truncated


@pytest.mark.parametrize("endian", [LITTLE, BIG])
def test_pcap_nanosecond_magic_keeps_nanoseconds(tmp_path: Path, endian: str) -> None:
    frames = _read(tmp_path, pcap_file([(STAMP, b"x", None)], endian=endian, nanoseconds=True))
    assert frames[0].timestamp_ns == STAMP


def test_pcap_frame_shorter_than_on_the_wire_is_truncated(tmp_path: Path) -> None:
    (frame,) = _read(tmp_path, pcap_file([(0, b"abcd", 1500)]))
    assert frame.truncated and frame.original_length == 1500 and frame.data == b"abcd"


def test_pcap_link_type_ignores_the_fcs_bits(tmp_path: Path) -> None:
    """The upper bits of the header's link-type field say whether frames carry an FCS."""
    (frame,) = _read(tmp_path, pcap_file([(0, b"x", None)], link_type=0x1400_0071))
    assert frame.link_type == 113


def test_pcap_with_no_packets_reads_as_empty(tmp_path: Path) -> None:
    assert _read(tmp_path, pcap_file([])) == []


def test_pcap_cut_inside_a_record_names_the_offset_after_earlier_frames(tmp_path: Path) -> None:
    whole = pcap_file([(0, b"first", None), (0, b"second", None)])
    path = tmp_path / "cut.pcap"
    path.write_bytes(whole[:-3])
    frames: list[Frame] = []
    with pytest.raises(CaptureError) as caught:
        frames.extend(read_frames(path))
    assert [f.data for f in frames] == [b"first"]
    second_record = 24 + 16 + 5
    assert caught.value.offset == second_record + 16
    assert "cut.pcap" in str(caught.value) and "frame 2" in str(caught.value)


def test_pcap_cut_inside_the_file_header(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="file header"):
        _read(tmp_path, pcap_file([])[:10])


def test_pcap_absurd_record_length_is_an_error_not_a_huge_read(tmp_path: Path) -> None:
    broken = bytearray(pcap_file([(0, b"abc", None)]))
    broken[24 + 8 : 24 + 12] = (0x7FFFFFFF).to_bytes(4, "little")
    with pytest.raises(CaptureError, match="claims 2147483647 captured bytes") as caught:
        _read(tmp_path, bytes(broken))
    assert caught.value.offset == 24


def test_a_text_file_is_not_a_capture(tmp_path: Path) -> None:
    with pytest.raises(NotACapture, match="not a pcap or pcapng file"):
        _read(tmp_path, b"# a hex dump\n", "x.hex")


def test_an_empty_file_is_not_a_capture(tmp_path: Path) -> None:
    with pytest.raises(NotACapture):
        _read(tmp_path, b"")


def test_a_missing_file_is_a_capture_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match=r"nothing\.pcap"):
        list(read_frames(tmp_path / "nothing.pcap"))


@pytest.mark.parametrize("endian", [LITTLE, BIG])
def test_pcapng_enhanced_packets_in_either_byte_order(tmp_path: Path, endian: str) -> None:
    content = (
        shb(endian)
        + idb(link_type=1, endian=endian)
        + epb(b"hello", ticks=STAMP // 1000, original=99, endian=endian)
    )
    (frame,) = _read(tmp_path, content, "c.pcapng")
    assert (frame.number, frame.timestamp_ns, frame.link_type, frame.data) == (
        1,
        STAMP - 789,
        1,
        b"hello",
    )
    assert frame.truncated and frame.original_length == 99


@pytest.mark.parametrize(
    ("tsresol", "ticks", "expected"),
    [
        (9, STAMP, STAMP),  # 10^-9: nanoseconds
        (3, 1_700_000_000_123, 1_700_000_000_123_000_000),  # 10^-3: milliseconds
        (0x80 | 10, 3 * 1024 + 512, 3_500_000_000),  # 2^-10 s
    ],
)
def test_pcapng_if_tsresol_scales_timestamps(
    tmp_path: Path, tsresol: int, ticks: int, expected: int
) -> None:
    content = shb() + idb(tsresol=tsresol) + epb(b"x", ticks=ticks)
    assert _read(tmp_path, content)[0].timestamp_ns == expected


def test_pcapng_if_tsoffset_adds_seconds(tmp_path: Path) -> None:
    content = shb() + idb(tsoffset=100) + epb(b"x", ticks=5_000_000)
    assert _read(tmp_path, content)[0].timestamp_ns == 105 * 10**9


def test_pcapng_frames_take_the_link_type_of_their_interface(tmp_path: Path) -> None:
    content = shb() + idb(link_type=1) + idb(link_type=113) + epb(b"a", 0, 1) + epb(b"b", 0, 0)
    assert [(f.link_type, f.data) for f in _read(tmp_path, content)] == [(113, b"a"), (1, b"b")]


def test_pcapng_simple_packet_block_has_no_time_and_obeys_snaplen(tmp_path: Path) -> None:
    content = shb() + idb(link_type=101, snaplen=3) + spb(b"abcdef")
    (frame,) = _read(tmp_path, content)
    assert (frame.timestamp_ns, frame.data, frame.original_length) == (None, b"abc", 6)
    assert frame.truncated


def test_pcapng_obsolete_packet_block_is_read(tmp_path: Path) -> None:
    content = shb() + idb(tsresol=9) + opb(b"old", ticks=42)
    (frame,) = _read(tmp_path, content)
    assert (frame.timestamp_ns, frame.data) == (42, b"old")


def test_pcapng_unknown_blocks_are_skipped(tmp_path: Path) -> None:
    content = shb() + block(0x0BAD, b"whatever") + idb() + block(5, b"stats!") + epb(b"x", 0)
    assert [f.data for f in _read(tmp_path, content)] == [b"x"]


def test_pcapng_new_section_resets_interfaces_and_byte_order(tmp_path: Path) -> None:
    content = (
        shb(LITTLE)
        + idb(link_type=1, endian=LITTLE)
        + epb(b"a", 0, endian=LITTLE)
        + shb(BIG)
        + idb(link_type=113, endian=BIG)
        + epb(b"b", 0, endian=BIG)
    )
    assert [(f.number, f.link_type) for f in _read(tmp_path, content)] == [(1, 1), (2, 113)]


def test_pcapng_packet_for_an_undescribed_interface_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="names interface 3, but the section describes 1"):
        _read(tmp_path, shb() + idb() + epb(b"x", 0, interface=3))


def test_pcapng_block_length_mismatch_is_an_error_with_offset(tmp_path: Path) -> None:
    bad = bytearray(shb() + idb() + epb(b"x", 0))
    bad[-4:] = (999).to_bytes(4, "little")
    with pytest.raises(CaptureError, match="at its start but 999 at its end") as caught:
        _read(tmp_path, bytes(bad))
    assert caught.value.offset == len(shb() + idb())


def test_pcapng_block_length_not_a_multiple_of_four_is_an_error(tmp_path: Path) -> None:
    bad = bytearray(shb() + idb())
    bad[len(shb()) + 4 : len(shb()) + 8] = (21).to_bytes(4, "little")
    with pytest.raises(CaptureError, match="block length 21"):
        _read(tmp_path, bytes(bad))


def test_pcapng_captured_length_overrunning_its_block_is_an_error(tmp_path: Path) -> None:
    bad = bytearray(shb() + idb() + epb(b"x", 0))
    start = len(shb() + idb())
    bad[start + 20 : start + 24] = (500).to_bytes(4, "little")
    with pytest.raises(CaptureError, match="500 captured bytes overrun the block"):
        _read(tmp_path, bytes(bad))


def test_pcapng_bad_byte_order_magic_is_an_error(tmp_path: Path) -> None:
    bad = bytearray(shb())
    bad[8:12] = b"\0\0\0\0"
    with pytest.raises(CaptureError, match="byte-order magic 00000000"):
        _read(tmp_path, bytes(bad))


def test_pcapng_cut_mid_block_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="file ends inside"):
        _read(tmp_path, (shb() + idb() + epb(b"xyz", 0))[:-6])
