"""pxed.pcap.classify: DHCP by port, TFTP by following the conversation a request opens."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest

from pxed.pcap.capture import Frame
from pxed.pcap.classify import Classifier, Protocol
from pxed.pcap.dissect import Datagram

CLIENT = "10.213.0.2"
SERVER = "10.213.0.1"
RRQ = b"\0\x01pxelinux.0\0octet\0"
WRQ = b"\0\x02up.bin\0octet\0"
ACK1 = b"\0\x04\0\x01"


def _datagram(src: str, sport: int, dst: str, dport: int, payload: bytes = ACK1) -> Datagram:
    frame = Frame(1, 0, 1, b"", 0)
    return Datagram(frame, IPv4Address(src), sport, IPv4Address(dst), dport, payload)


@pytest.mark.parametrize(
    ("sport", "dport"), [(68, 67), (67, 68), (67, 67), (4011, 4011), (68, 4011), (50000, 67)]
)
def test_dhcp_is_recognised_by_either_port(sport: int, dport: int) -> None:
    datagram = _datagram(CLIENT, sport, SERVER, dport, b"\x01" * 300)
    assert Classifier().classify(datagram) is Protocol.DHCP


@pytest.mark.parametrize(("sport", "dport"), [(546, 547), (547, 546), (547, 547), (50000, 547)])
def test_dhcpv6_is_recognised_by_either_port(sport: int, dport: int) -> None:
    frame = Frame(1, 0, 1, b"", 0)
    client, server = IPv6Address("fe80::1"), IPv6Address("ff02::1:2")
    datagram = Datagram(frame, client, sport, server, dport, b"\x01\0\0\1")
    assert Classifier().classify(datagram) is Protocol.DHCPV6


def test_tftp_over_ipv6_is_followed_from_the_request() -> None:
    frame = Frame(1, 0, 1, b"", 0)
    client, server = IPv6Address("2001:db8::2"), IPv6Address("2001:db8::1")
    classifier = Classifier()
    assert classifier.classify(Datagram(frame, client, 40000, server, 69, RRQ)) is Protocol.TFTP
    reply = Datagram(frame, server, 51000, client, 40000, b"\0\x03\0\x01data")
    assert classifier.classify(reply) is Protocol.TFTP


def test_unrelated_udp_is_not_classified() -> None:
    assert Classifier().classify(_datagram(CLIENT, 5353, SERVER, 53)) is None


@pytest.mark.parametrize("opening", [RRQ, WRQ], ids=["rrq", "wrq"])
def test_transfer_from_a_new_server_port_is_followed_both_ways(opening: bytes) -> None:
    classifier = Classifier()
    assert classifier.classify(_datagram(CLIENT, 40000, SERVER, 69, opening)) is Protocol.TFTP
    assert classifier.classify(_datagram(SERVER, 51234, CLIENT, 40000)) is Protocol.TFTP
    assert classifier.classify(_datagram(CLIENT, 40000, SERVER, 51234)) is Protocol.TFTP


def test_server_answering_from_its_listening_port_is_followed() -> None:
    classifier = Classifier([9000])
    assert classifier.classify(_datagram(CLIENT, 40000, SERVER, 9000, RRQ)) is Protocol.TFTP
    assert classifier.classify(_datagram(SERVER, 9000, CLIENT, 40000)) is Protocol.TFTP
    assert classifier.classify(_datagram(CLIENT, 40000, SERVER, 9000)) is Protocol.TFTP


def test_datagrams_before_any_request_are_not_tftp() -> None:
    assert Classifier().classify(_datagram(SERVER, 51234, CLIENT, 40000)) is None


def test_another_host_talking_to_the_client_port_is_not_the_transfer() -> None:
    classifier = Classifier()
    classifier.classify(_datagram(CLIENT, 40000, SERVER, 69, RRQ))
    assert classifier.classify(_datagram("10.213.0.99", 51234, CLIENT, 40000)) is None


def test_request_to_a_broadcast_address_accepts_any_server() -> None:
    classifier = Classifier()
    classifier.classify(_datagram(CLIENT, 2001, "10.213.255.255", 69, RRQ))
    assert classifier.classify(_datagram("10.213.0.99", 51234, CLIENT, 2001)) is Protocol.TFTP


def test_a_non_request_to_port_69_does_not_open_a_transfer() -> None:
    classifier = Classifier()
    assert classifier.classify(_datagram(CLIENT, 40000, SERVER, 69, ACK1)) is Protocol.TFTP
    assert classifier.classify(_datagram(SERVER, 51234, CLIENT, 40000)) is None


def test_a_new_request_from_the_same_port_moves_the_transfer_to_the_new_server() -> None:
    classifier = Classifier()
    classifier.classify(_datagram(CLIENT, 40000, SERVER, 69, RRQ))
    classifier.classify(_datagram(CLIENT, 40000, "10.213.0.7", 69, RRQ))
    assert classifier.classify(_datagram("10.213.0.7", 50000, CLIENT, 40000)) is Protocol.TFTP
    assert classifier.classify(_datagram(SERVER, 50000, CLIENT, 40000)) is None


def test_a_well_formed_request_to_any_port_opens_a_transfer() -> None:
    classifier = Classifier()
    assert classifier.classify(_datagram(CLIENT, 40000, SERVER, 9000, RRQ)) is Protocol.TFTP
    assert classifier.classify(_datagram(SERVER, 9000, CLIENT, 40000)) is Protocol.TFTP


@pytest.mark.parametrize(
    "payload",
    [b"\0\x01file\0binary\0", b"\0\x01\0octet\0", b"\0\x01file\0octet", b"\0\x03file\0octet\0"],
    ids=["unknown-mode", "no-filename", "no-final-nul", "not-a-request"],
)
def test_only_a_request_shaped_payload_to_another_port_counts(payload: bytes) -> None:
    assert Classifier().classify(_datagram(CLIENT, 40000, SERVER, 9000, payload)) is None


def test_server_port_given_by_option_is_tftp_even_mid_transfer() -> None:
    assert Classifier([9000]).classify(_datagram(SERVER, 9000, CLIENT, 40000)) is Protocol.TFTP
