"""pxed.pcap.dissect: link layers, VLAN tags, IPv4, IPv6, fragments and UDP from hand-built
frames."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest

from pxed.pcap.capture import Frame, read_frames
from pxed.pcap.dissect import Datagram, Dissector, Skipped
from tests.replay.builders import (
    BIG,
    LITTLE,
    bsd_null,
    epb,
    ethernet,
    idb,
    ipv4,
    ipv6,
    ipv6_packet,
    linux_sll,
    linux_sll2,
    openbsd_loop,
    pcap_file,
    shb,
    udp,
)

PAYLOAD = b"\x01\x01\x06\x00" + b"z" * 40
PACKET = ipv4("10.213.0.2", "10.213.0.1", udp(68, 67, PAYLOAD))


def _frame(data: bytes, link_type: int = 1, original: int | None = None, number: int = 1) -> Frame:
    return Frame(number, 0, link_type, data, len(data) if original is None else original)


def _datagram(data: bytes, link_type: int = 1, original: int | None = None) -> Datagram:
    result = Dissector().dissect(_frame(data, link_type, original))
    assert isinstance(result, Datagram), result
    return result


def _skipped(data: bytes, link_type: int = 1) -> str:
    result = Dissector().dissect(_frame(data, link_type))
    assert isinstance(result, Skipped), result
    return result.reason


@pytest.mark.parametrize(
    ("link_type", "frame"),
    [
        (1, ethernet(PACKET)),
        (113, linux_sll(PACKET)),
        (276, linux_sll2(PACKET)),
        (101, PACKET),
        (12, PACKET),
        (14, PACKET),
        (228, PACKET),
        (0, bsd_null(PACKET, endian=LITTLE)),
        (0, bsd_null(PACKET, endian=BIG)),
        (108, openbsd_loop(PACKET)),
    ],
    ids=[
        "ethernet",
        "sll",
        "sll2",
        "raw101",
        "raw12",
        "raw14",
        "ipv4-228",
        "null-le",
        "null-be",
        "loop",
    ],
)
def test_every_supported_link_type_yields_the_udp_datagram(link_type: int, frame: bytes) -> None:
    datagram = _datagram(frame, link_type)
    assert (datagram.src, datagram.sport, datagram.dst, datagram.dport) == (
        IPv4Address("10.213.0.2"),
        68,
        IPv4Address("10.213.0.1"),
        67,
    )
    assert datagram.payload == PAYLOAD and datagram.missing == 0 and datagram.vlans == ()


def test_single_802_1q_tag_is_peeled_and_remembered() -> None:
    assert _datagram(ethernet(PACKET, vlans=((0x8100, 0x2000 | 42),))).vlans == (42,)


def test_stacked_802_1ad_and_802_1q_tags_are_peeled_outermost_first() -> None:
    frame = ethernet(PACKET, vlans=((0x88A8, 100), (0x8100, 200)))
    datagram = _datagram(frame)
    assert datagram.vlans == (100, 200) and datagram.payload == PAYLOAD


def test_vlan_tag_inside_linux_cooked_capture_is_peeled() -> None:
    assert _datagram(linux_sll(b"\x00\x07\x08\x00" + PACKET, protocol=0x8100), 113).vlans == (7,)


@pytest.mark.parametrize(
    ("link_type", "frame"),
    [
        (1, ethernet(ipv6_packet(), ethertype=0x86DD)),
        (101, ipv6_packet()),
        (229, ipv6_packet()),
        (0, bsd_null(ipv6_packet(), family=30)),
        (108, openbsd_loop(ipv6_packet(), family=24)),
        (113, linux_sll(ipv6_packet(), protocol=0x86DD)),
    ],
)
def test_ipv6_without_udp_is_skipped_naming_its_protocol(link_type: int, frame: bytes) -> None:
    assert _skipped(frame, link_type) == "ICMPv6"


V6_PAYLOAD = b"\x01\xa1\xb2\xc3" + b"\x00\x08\x00\x02\x00\x00"
V6_PACKET = ipv6("fe80::5054:ff:fe12:3456", "ff02::1:2", udp(546, 547, V6_PAYLOAD))


@pytest.mark.parametrize(
    ("link_type", "frame"),
    [
        (1, ethernet(V6_PACKET, ethertype=0x86DD)),
        (1, ethernet(V6_PACKET, ethertype=0x86DD, vlans=((0x8100, 9),))),
        (113, linux_sll(V6_PACKET, protocol=0x86DD)),
        (276, linux_sll2(V6_PACKET, protocol=0x86DD)),
        (101, V6_PACKET),
        (229, V6_PACKET),
        (0, bsd_null(V6_PACKET, family=30)),
        (0, bsd_null(V6_PACKET, family=10)),
        (108, openbsd_loop(V6_PACKET, family=24)),
    ],
    ids=[
        "ethernet",
        "vlan",
        "sll",
        "sll2",
        "raw101",
        "ipv6-229",
        "null-macos",
        "null-linux",
        "loop",
    ],
)
def test_udp_over_ipv6_yields_the_datagram_on_every_link_type(link_type: int, frame: bytes) -> None:
    datagram = _datagram(frame, link_type)
    assert (datagram.src, datagram.sport, datagram.dst, datagram.dport) == (
        IPv6Address("fe80::5054:ff:fe12:3456"),
        546,
        IPv6Address("ff02::1:2"),
        547,
    )
    assert datagram.payload == V6_PAYLOAD and datagram.missing == 0


def test_ipv6_hop_by_hop_and_destination_options_are_skipped_down_to_udp() -> None:
    """MLD reports carry hop-by-hop (router alert); relays may add destination options."""
    hop_by_hop = bytes([60, 0]) + bytes([5, 2, 0, 0, 1, 0])  # router alert, then PadN
    destination = bytes([17, 1]) + bytes(14)  # 16 bytes: length 1 means 8 more
    packet = ipv6(
        "2001:db8::1", "2001:db8::2", udp(547, 547, V6_PAYLOAD), 0, hop_by_hop + destination
    )
    datagram = _datagram(ethernet(packet, ethertype=0x86DD))
    assert datagram.payload == V6_PAYLOAD and datagram.dport == 547


def test_ipv6_payload_cut_by_the_snap_length_is_marked_missing() -> None:
    whole = ethernet(V6_PACKET, ethertype=0x86DD)
    datagram = _datagram(whole[:-4], original=len(whole))
    assert datagram.missing == 4 and datagram.payload == V6_PAYLOAD[:-4]


@pytest.mark.parametrize(
    ("link_type", "frame", "reason"),
    [
        (1, ethernet(b"\0" * 28, ethertype=0x0806), "ARP"),
        (1, ethernet(b"\0" * 28, ethertype=0x1234), "ethertype 0x1234"),
        (1, ethernet(b"\0" * 28, ethertype=0x0030), "802.3/LLC frame"),
        (1, b"\0" * 10, "Ethernet header cut short"),
        (1, ethernet(b"", vlans=((0x8100, 1),))[:-2], "VLAN tag cut short"),
        (1, ethernet(ipv4("1.1.1.1", "2.2.2.2", b"\0" * 20, protocol=6)), "TCP"),
        (1, ethernet(ipv4("1.1.1.1", "2.2.2.2", b"\0" * 20, protocol=47)), "IP protocol 47"),
        (1, ethernet(b"\x45\0\0"), "not an IP packet"),
        (1, ethernet(b"\x60\0\0", ethertype=0x86DD), "IPv6 header cut short"),
        (
            1,
            ethernet(ipv6("::1", "::2", b"\x11\x04", 0), ethertype=0x86DD),
            "IPv6 extension header cut short",
        ),
        (
            1,
            ethernet(ipv4("1.1.1.1", "2.2.2.2", b"", total=10)),
            "IPv4 header with impossible lengths",
        ),
        (1, ethernet(ipv4("1.1.1.1", "2.2.2.2", b"\0\x43\0")), "UDP header cut short"),
        (
            1,
            ethernet(ipv4("1.1.1.1", "2.2.2.2", udp(68, 67, b"", length=4))),
            "UDP length 4 is shorter than its header",
        ),
        (0, bsd_null(PACKET, family=7), "address family 7"),
        (0, b"\0\0", "loopback header cut short"),
        (105, b"\0" * 60, "link type 105 is not supported"),
    ],
)
def test_frames_without_udp_over_ipv4_are_skipped_with_a_reason(
    link_type: int, frame: bytes, reason: str
) -> None:
    assert _skipped(frame, link_type) == reason


def test_ethernet_padding_after_the_ip_packet_is_dropped() -> None:
    short = ipv4("1.1.1.1", "2.2.2.2", udp(1000, 69, b"\0\x01a\0octet\0"))
    assert _datagram(ethernet(short) + b"\0" * 20).payload == b"\0\x01a\0octet\0"


def test_ip_options_are_skipped_over() -> None:
    packet = ipv4("1.1.1.1", "2.2.2.2", udp(68, 67, PAYLOAD), options=b"\x94\x04\0\0")
    assert _datagram(ethernet(packet)).payload == PAYLOAD


def test_snap_length_cut_reports_the_missing_payload_bytes() -> None:
    frame = ethernet(PACKET)
    datagram = _datagram(frame[:-10], original=len(frame))
    assert datagram.payload == PAYLOAD[:-10] and datagram.missing == 10
    assert datagram.frame.truncated


def test_ip_length_beyond_the_frame_reports_missing_bytes_even_when_not_cut() -> None:
    packet = ipv4("1.1.1.1", "2.2.2.2", udp(68, 67, PAYLOAD, length=8 + len(PAYLOAD) + 100))
    datagram = _datagram(ethernet(packet))
    assert datagram.missing == 100 and not datagram.frame.truncated


def test_udp_length_zero_means_trust_the_ip_length() -> None:
    packet = ipv4("1.1.1.1", "2.2.2.2", udp(68, 67, PAYLOAD, length=0))
    assert _datagram(ethernet(packet)).payload == PAYLOAD


def _fragments(body: bytes, size: int) -> list[bytes]:
    """IPv4 fragments of a UDP datagram, `size` payload bytes each (a multiple of 8)."""
    pieces = [body[start : start + size] for start in range(0, len(body), size)]
    return [
        ethernet(
            ipv4(
                "10.213.0.1",
                "10.213.0.2",
                piece,
                ident=77,
                flags_offset=(0x2000 if index < len(pieces) - 1 else 0) | index * size // 8,
            )
        )
        for index, piece in enumerate(pieces)
    ]


DATA = b"\0\x03\0\x01" + bytes(range(256)) * 6


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [3, 1, 0, 2]], ids=["in-order", "shuffled"])
def test_ip_fragments_are_reassembled_into_one_datagram(order: list[int]) -> None:
    frames = _fragments(udp(50000, 40000, DATA), 400)
    dissector = Dissector()
    results = [dissector.dissect(_frame(frames[i], number=n + 1)) for n, i in enumerate(order)]
    assert results[:3] == [None, None, None]
    datagram = results[3]
    assert isinstance(datagram, Datagram)
    assert datagram.payload == DATA and (datagram.sport, datagram.dport) == (50000, 40000)
    assert datagram.frames == (1, 2, 3, 4)
    assert dissector.leftovers() == []


def test_fragments_that_never_complete_are_reported_as_leftovers() -> None:
    frames = _fragments(udp(50000, 40000, DATA), 400)
    dissector = Dissector()
    assert dissector.dissect(_frame(frames[0], number=1)) is None
    assert dissector.dissect(_frame(frames[2], number=2)) is None
    left = dissector.leftovers()
    assert [(s.frame.number, s.reason) for s in left] == [
        (1, "IPv4 fragment whose other fragments were not captured"),
        (2, "IPv4 fragment whose other fragments were not captured"),
    ]


def test_cut_short_first_fragment_is_decoded_as_far_as_it_goes() -> None:
    """Like tshark: a first fragment that the snap length cut cannot be completed."""
    whole = ethernet(ipv4("1.1.1.1", "2.2.2.2", udp(16896, 68, PAYLOAD), flags_offset=0x2000))
    datagram = _datagram(whole[:-20], original=len(whole))
    assert datagram.missing == 20 and datagram.dport == 68


@pytest.mark.parametrize(
    ("link_type", "frame"),
    [
        (1, ethernet(PACKET, vlans=((0x8100, 5),))),
        (113, linux_sll(PACKET)),
        (276, linux_sll2(PACKET)),
        (101, PACKET),
        (0, bsd_null(PACKET)),
        (108, openbsd_loop(PACKET)),
    ],
    ids=["ethernet-vlan", "sll", "sll2", "raw", "null", "loop"],
)
@pytest.mark.parametrize("container", ["pcap-be-ns", "pcapng-be"])
def test_link_types_read_from_files_end_to_end(
    tmp_path: Path, link_type: int, frame: bytes, container: str
) -> None:
    """The link type travels from the file header (or interface block) to the dissector."""
    path = tmp_path / "x.cap"
    if container == "pcap-be-ns":
        path.write_bytes(pcap_file([(5, frame, None)], link_type, BIG, nanoseconds=True))
    else:
        path.write_bytes(shb(BIG) + idb(link_type, endian=BIG) + epb(frame, 5, endian=BIG))
    (read,) = read_frames(path)
    datagram = Dissector().dissect(read)
    assert isinstance(datagram, Datagram) and datagram.payload == PAYLOAD


def _v6_fragments(payload: bytes, size: int) -> list[bytes]:
    pieces = [payload[i : i + size] for i in range(0, len(payload), size)]
    return [
        ethernet(
            ipv6(
                "2001:db8::1",
                "2001:db8::2",
                piece,
                44,
                bytes([17, 0])
                + (index * size | (index < len(pieces) - 1)).to_bytes(2, "big")
                + (0x1234).to_bytes(4, "big"),
            ),
            ethertype=0x86DD,
        )
        for index, piece in enumerate(pieces)
    ]


def test_ipv6_fragments_are_reassembled_and_leftovers_named_ipv6() -> None:
    frames = _v6_fragments(udp(50000, 69, DATA), 400)
    dissector = Dissector()
    results = [dissector.dissect(_frame(frame, number=n + 1)) for n, frame in enumerate(frames)]
    assert results[:-1] == [None] * (len(frames) - 1)
    datagram = results[-1]
    assert isinstance(datagram, Datagram) and datagram.payload == DATA
    assert dissector.dissect(_frame(frames[0], number=9)) is None
    assert [s.reason for s in dissector.leftovers()] == [
        "IPv6 fragment whose other fragments were not captured"
    ]
