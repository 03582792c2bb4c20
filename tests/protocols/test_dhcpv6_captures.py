"""Every DHCPv6 message in the shared public DHCPv6 captures decodes and re-encodes to
exactly the same bytes, and reads as tcpdump reads it.

The captures are read where tests/replay/corpus.py says (never copied in), through
pxed's own capture reader and dissector; the tests skip when that folder is absent.
"""

from __future__ import annotations

import uuid
from ipaddress import IPv6Address
from pathlib import Path

import pytest

from protocols.dhcpv6.duid import DuidLl, DuidLlt, DuidUuid
from protocols.dhcpv6.options import IaAddress, IaPrefix
from protocols.dhcpv6.wire import Dhcpv6Message, MessageType, decode_dhcpv6, encode_dhcpv6
from pxed.pcap.capture import read_frames
from pxed.pcap.classify import DHCPV6_PORTS
from pxed.pcap.dissect import Datagram, Dissector
from tests.replay.corpus import PUBLIC_DHCPV6

CAPTURES = sorted(PUBLIC_DHCPV6.glob("*.pcap*")) if PUBLIC_DHCPV6.is_dir() else []
CLIENT_LL = DuidLl(1, bytes.fromhex("000102030405"))


def dhcpv6_payloads(path: Path) -> list[bytes]:
    """UDP payloads to or from 546/547 in one capture, as captured."""
    dissector = Dissector()
    found = []
    for frame in read_frames(path):
        datagram = dissector.dissect(frame)
        if isinstance(datagram, Datagram) and DHCPV6_PORTS & {datagram.sport, datagram.dport}:
            found.append(datagram.payload)
    return found


def _messages(name: str) -> list[Dhcpv6Message]:
    path = PUBLIC_DHCPV6 / name
    if not path.exists():
        pytest.skip(f"{path} not present (the shared public DHCPv6 captures)")
    messages = [decode_dhcpv6(payload) for payload in dhcpv6_payloads(path)]
    assert all(isinstance(message, Dhcpv6Message) for message in messages)
    return messages  # type: ignore[return-value]


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_every_public_dhcpv6_message_round_trips_byte_for_byte(path: Path) -> None:
    """decode then encode gives back exactly the captured bytes; every option prints."""
    payloads = dhcpv6_payloads(path)
    assert payloads
    for payload in payloads:
        message = decode_dhcpv6(payload)
        assert encode_dhcpv6(message) == payload
        assert all(str(option) and not option.error for option in message.options)


def test_the_corpus_holds_fifteen_messages() -> None:
    """The README's counts, so a capture that stops being read is noticed."""
    if not CAPTURES:
        pytest.skip(f"{PUBLIC_DHCPV6} not present (the shared public DHCPv6 captures)")
    assert sum(len(dhcpv6_payloads(path)) for path in CAPTURES) == 15


def test_ia_na_exchange_reads_like_tcpdump() -> None:
    solicit, advertise, request, reply = _messages("dhcpv6-ia-na.pcap")
    assert [m.msg_type for m in (solicit, advertise, request, reply)] == [
        MessageType.SOLICIT,
        MessageType.ADVERTISE,
        MessageType.REQUEST,
        MessageType.REPLY,
    ]
    assert solicit.transaction_id == advertise.transaction_id == 0x90B45C
    assert solicit.client_id == CLIENT_LL and solicit.client_id.mac == "00:01:02:03:04:05"
    assert solicit.oro == (23, 24) and solicit.elapsed_time == 0
    (ia,) = solicit.ia_na
    assert (ia.iaid, ia.t1, ia.t2, ia.options) == (33752069, 3600, 5400, ())
    assert advertise.server_id == DuidLlt(1, 407259276, bytes.fromhex("001122334455"))
    (address,) = reply.ia_na[0].options
    assert address.value == IaAddress(IPv6Address("2a00:1:1:200:38e6:b22e:c440:acdf"), 4500, 7200)


def test_ia_ta_and_ia_pd_exchanges_are_parsed() -> None:
    advertise = _messages("dhcpv6-ia-ta.pcap")[1]
    assert advertise.ia_ta[0].iaid == 33752069
    reply = _messages("dhcpv6-ia-pd.pcap")[3]
    (prefix,) = reply.ia_pd[0].options
    assert prefix.value == IaPrefix(4500, 7200, 56, IPv6Address("2a00:1:1:100::"))


def test_domain_search_list_decodes_its_names() -> None:
    (reply,) = _messages("dhcpv6-domain-list.pcap")
    assert reply.option(24) == ("example.com", "sales.example.com", "eng.example.com")


def test_duid_uuid_renew_and_reply() -> None:
    """The README calls these INFORMATION-REQUEST and REPLY; tcpdump and pxed read a RENEW."""
    renew, reply = _messages("dhcpv6-rfc6355-duid-uuid.pcap")
    assert renew.msg_type is MessageType.RENEW
    assert renew.client_id == DuidUuid(uuid.UUID("a256e92e-40ab-d0d2-a3ab-3b3ff2ff8998"))
    assert renew.oro == (23, 24, 23, 24, 1)
    assert reply.option(23) == (
        IPv6Address("2a02:2788:fff0:7::3"),
        IPv6Address("2a02:2788:fff0:5::140"),
    )
    assert reply.option(24) == ("voo.be",)
