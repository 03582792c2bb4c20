"""Every TFTP datagram in the public captures decodes and re-encodes byte for byte.

The captures are read at test time from /work/shared/captures/public (skipped when absent).
TFTP is found the way a server sees it: a request to port 69 (9000 in the songokas capture)
marks the client's address and port as a transfer ID, and every later datagram to or from
that endpoint belongs to the transfer, whatever port the server answers from.
"""

import struct
from collections import Counter
from pathlib import Path

import pytest

from protocols.tftp.wire import Message, ReadRequest, WriteRequest, decode_tftp, encode_tftp

CAPTURES = Path("/work/shared/captures/public")
REQUEST_PORTS = {69, 9000}

Endpoint = tuple[bytes, int]


def _link_payloads(path: Path):
    """(link type, frame bytes) for each record of a classic pcap file."""
    data = path.read_bytes()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        pytest.fail(f"{path.name}: not a classic pcap file")
    linktype = struct.unpack_from(endian + "I", data, 20)[0] & 0x0FFFFFFF
    offset = 24
    while offset + 16 <= len(data):
        caplen = struct.unpack_from(endian + "I", data, offset + 8)[0]
        yield linktype, data[offset + 16 : offset + 16 + caplen]
        offset += 16 + caplen


def _ipv4(linktype: int, frame: bytes) -> bytes | None:
    if linktype == 0:  # BSD loopback: 4-byte address family in host order
        return frame[4:] if frame[:4] in (b"\x02\x00\x00\x00", b"\x00\x00\x00\x02") else None
    if linktype == 1:  # Ethernet, possibly VLAN-tagged
        ethertype, offset = struct.unpack_from("!H", frame, 12)[0], 14
        while ethertype == 0x8100:
            ethertype, offset = struct.unpack_from("!H", frame, offset + 2)[0], offset + 4
        return frame[offset:] if ethertype == 0x0800 else None
    if linktype == 113:  # Linux cooked
        return frame[16:] if struct.unpack_from("!H", frame, 14)[0] == 0x0800 else None
    return None


def _udp_datagrams(path: Path):
    """(source, destination, payload) of every complete UDP/IPv4 datagram in the capture."""
    for linktype, frame in _link_payloads(path):
        ip = _ipv4(linktype, frame)
        if ip is None or len(ip) < 20 or ip[9] != 17:
            continue
        header = (ip[0] & 0x0F) * 4
        sport, dport, length = struct.unpack_from("!HHH", ip, header)
        payload = ip[header + 8 : header + length]
        if len(payload) == length - 8:  # skip frames the snap length cut short
            yield (ip[12:16], sport), (ip[16:20], dport), payload


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
