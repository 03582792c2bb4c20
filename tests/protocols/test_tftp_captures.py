"""Every TFTP datagram in the public captures decodes and re-encodes byte for byte.

The public captures are read at test time from where tests/replay/corpus.py says
(skipped when absent), through pxed's own capture reader.
TFTP is found the way a server sees it: a request to port 69 (9000 in the songokas capture)
marks the client's address and port as a transfer ID, and every later datagram to or from
that endpoint belongs to the transfer, whatever port the server answers from.
"""

from collections import Counter
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from protocols.tftp.wire import Message, ReadRequest, WriteRequest, decode_tftp, encode_tftp
from pxed.pcap.capture import read_frames
from pxed.pcap.dissect import Datagram, Dissector
from tests.replay.corpus import PUBLIC as CAPTURES

REQUEST_PORTS = {69, 9000}

Endpoint = tuple[IPv4Address, int]


def _udp_datagrams(path: Path) -> Iterator[tuple[Endpoint, Endpoint, bytes]]:
    """(source, destination, payload) of every complete UDP/IPv4 datagram in the capture."""
    dissector = Dissector()
    for frame in read_frames(path):
        datagram = dissector.dissect(frame)
        if isinstance(datagram, Datagram) and not datagram.missing:
            source = (datagram.src, datagram.sport)
            yield source, (datagram.dst, datagram.dport), datagram.payload


def _tftp_payloads(path: Path) -> list[bytes]:
    transfers: set[Endpoint] = set()
    payloads = []
    for source, destination, payload in _udp_datagrams(path):
        if destination[1] in REQUEST_PORTS and payload[:2] in (b"\x00\x01", b"\x00\x02"):
            transfers.add(source)
        if source in transfers or destination in transfers:
            payloads.append(payload)
    return payloads


def _kind(message: Message) -> str:
    return type(message).__name__


# file -> datagram kinds, as the captures' README counts them.
EXPECTED = {
    "tftp_rrq_plain_octet.pcap": {"ReadRequest": 1, "Data": 3, "Ack": 3},
    "tftp_rrq_wireshark-sample_rfc1350.pcap": {"ReadRequest": 1, "Data": 49, "Ack": 49},
    "tftp_rrq_blksize-oack_loopback.pcap": {
        "ReadRequest": 1,
        "OptionAck": 1,
        "Ack": 3,
        "Data": 2,
    },
    "tftp_rrq_windowsize4_tsize_blksize1425_oack.pcap": {
        "ReadRequest": 2,
        "OptionAck": 1,
        "Data": 736,
        "Ack": 185,
    },
    "tftp_wrq-netascii_dup-data_and_rrq-no-reply.pcap": {
        "ReadRequest": 1,
        "WriteRequest": 1,
        "Ack": 2,
        "Data": 2,
    },
    "bootp_rfc951_xyplex_no-cookie_plus-tftp-bcast-rrq.pcap": {"ReadRequest": 1},
    "pxe_intel-undi_proxydhcp_4011_tftp-rrq-opts.pcap": {"ReadRequest": 2},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_public_capture_tftp_datagrams_round_trip_byte_for_byte(name: str):
    path = CAPTURES / name
    if not path.exists():
        pytest.skip(f"{path} not present (shared public captures not mounted)")
    kinds: Counter[str] = Counter()
    for payload in _tftp_payloads(path):
        message = decode_tftp(payload)
        assert encode_tftp(message) == payload, message
        kinds[_kind(message)] += 1
    assert dict(kinds) == EXPECTED[name]


def test_real_client_requests_decode_to_the_fields_the_clients_sent():
    """Spot-check against tshark: the Intel UNDI ROM's two RRQs and songokas' windowsize RRQ."""
    intel = CAPTURES / "pxe_intel-undi_proxydhcp_4011_tftp-rrq-opts.pcap"
    songokas = CAPTURES / "tftp_rrq_windowsize4_tsize_blksize1425_oack.pcap"
    if not (intel.exists() and songokas.exists()):
        pytest.skip("shared public captures not mounted")
    requests = [decode_tftp(p) for p in _tftp_payloads(intel)]
    assert requests == [
        ReadRequest("boot", "octet", (("tsize", "0"),)),
        ReadRequest("boot", "octet", (("blksize", "1456"),)),
    ]
    first = decode_tftp(_tftp_payloads(songokas)[0])
    assert first == ReadRequest(
        "server_file", "octet", (("windowsize", "4"), ("tsize", "0"), ("blksize", "1425"))
    )
    assert not isinstance(first, WriteRequest)
