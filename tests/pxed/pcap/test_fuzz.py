"""Random bytes never crash the capture reader or the dissector: a damaged capture from a
failing boot must give a readable error, not a traceback."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.dhcpv6.wire import decode_dhcpv6
from protocols.errors import MalformedPacket
from pxed.pcap import dhcpv6_view
from pxed.pcap.capture import CaptureError, Frame, read_frames
from pxed.pcap.classify import Classifier
from pxed.pcap.dissect import LINK_NAMES, Datagram, Dissector
from tests.replay.builders import ethernet, ipv4, ipv6, pcap_file, shb, udp
from tests.support.fuzz import FUZZ_EXAMPLES, fuzz_settings

# Not a grammar: a few thousand examples find what there is to find in the framing code.
framing_fuzz = settings(fuzz_settings, max_examples=min(FUZZ_EXAMPLES, 2000))

HEADERS = [pcap_file([]), pcap_file([], endian=">", nanoseconds=True), shb(), shb(">")]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One file rewritten per example: a module-scoped fixture keeps Hypothesis happy."""
    return tmp_path_factory.mktemp("fuzz") / "fuzz.pcap"


@framing_fuzz
@given(header=st.sampled_from(HEADERS), tail=st.binary(max_size=512))
def test_reader_yields_frames_or_raises_capture_error(
    scratch: Path, header: bytes, tail: bytes
) -> None:
    scratch.write_bytes(header + tail)
    try:
        frames = list(read_frames(scratch))
    except CaptureError:
        return
    assert all(len(frame.data) <= frame.original_length for frame in frames)


@framing_fuzz
@given(st.sampled_from([*sorted(LINK_NAMES), 105]), st.binary(max_size=200))
def test_dissector_never_raises_on_random_frames(link_type: int, data: bytes) -> None:
    dissector = Dissector()
    dissector.dissect(Frame(1, 0, link_type, data, len(data)))
    dissector.leftovers()


@framing_fuzz
@given(
    st.integers(0, 0xFFFF),
    st.integers(0, 0x3FFF),
    st.sampled_from([67, 68, 69, 4011, 9000]),
    st.binary(max_size=64),
    st.integers(0, 64),
)
def test_dissector_and_classifier_cope_with_odd_ip_and_udp_headers(
    total: int, flags_offset: int, port: int, payload: bytes, cut: int
) -> None:
    packet = ipv4("10.0.0.1", "10.0.0.2", udp(1024, port, payload), flags_offset=flags_offset)
    packet = packet[:2] + struct.pack("!H", total) + packet[4:]
    frame = ethernet(packet)
    frame = frame[: max(14, len(frame) - cut)]
    result = Dissector().dissect(Frame(1, 0, 1, frame, len(frame) + cut))
    if isinstance(result, Datagram):
        Classifier().classify(result)


@framing_fuzz
@given(
    st.integers(0, 0xFFFF),
    st.sampled_from([0, 17, 43, 44, 58, 60]),
    st.binary(max_size=40),
    st.sampled_from([69, 546, 547, 9000]),
    st.binary(max_size=64),
    st.integers(0, 64),
)
def test_dissector_and_classifier_cope_with_odd_ipv6_headers(
    length: int, next_header: int, extensions: bytes, port: int, payload: bytes, cut: int
) -> None:
    """Any payload length, extension header chain (garbage ones too) and snap length."""
    packet = ipv6("fe80::1", "ff02::1:2", udp(546, port, payload), next_header, extensions, length)
    frame = ethernet(packet, ethertype=0x86DD)
    frame = frame[: max(14, len(frame) - cut)]
    result = Dissector().dissect(Frame(1, 0, 1, frame, len(frame) + cut))
    if isinstance(result, Datagram):
        Classifier().classify(result)


@fuzz_settings
@given(
    st.sampled_from([b"\x01\xa1\xb2\xc3", b"\x0c\x00" + bytes(32), b"\x0d\x01" + bytes(32)]),
    st.binary(max_size=300),
)
def test_dhcpv6_views_show_whatever_decodes(header: bytes, options: bytes) -> None:
    """The line and -v of any message the grammar accepts, never a traceback."""
    try:
        message = decode_dhcpv6(header + options)
    except MalformedPacket:
        return
    assert dhcpv6_view.kind(message)
    dhcpv6_view.summary(message)
    assert dhcpv6_view.detail(message)
