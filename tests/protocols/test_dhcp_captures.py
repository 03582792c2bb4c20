"""Every DHCP/BOOTP payload in the shared public captures decodes (or is rejected with
MalformedPacket, for the ones the README says are broken on purpose) and re-encodes to
exactly the same bytes.

The public captures are read from where tests/replay/corpus.py says (not copied in),
through pxed's own capture reader; the tests skip when that folder is absent.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

import pytest

from protocols.dhcp.options import ClientArch, UserClass
from protocols.dhcp.suboptions import BootItem, BootServer, MenuItem, MenuPrompt, PxeOptions
from protocols.dhcp.wire import decode_dhcp, encode_dhcp
from protocols.errors import MalformedPacket
from pxed.pcap.capture import read_frames
from pxed.pcap.dissect import Datagram, Dissector
from tests.replay.corpus import PUBLIC

DHCP_PORTS = {67, 68, 4011}


def dhcp_payloads(path: Path) -> list[bytes]:
    """UDP payloads to or from the DHCP ports (67, 68, 4011) in one capture, as captured
    (a payload the snap length cut short is kept short: it must be rejected, not crash)."""
    dissector = Dissector()
    payloads = []
    for frame in read_frames(path):
        datagram = dissector.dissect(frame)
        if isinstance(datagram, Datagram) and DHCP_PORTS & {datagram.sport, datagram.dport}:
            payloads.append(datagram.payload)
    return payloads


CAPTURES = sorted(PUBLIC.glob("*.pcap*")) if PUBLIC.is_dir() else []
# Broken on purpose (see the captures README): these must be rejected, not crash.
REJECTED = {"bootp_asan_truncated-garbage.pcap"}


def _payloads(name: str) -> list[bytes]:
    path = PUBLIC / name
    if not path.exists():
        pytest.skip(f"{path} not present (the shared public captures)")
    return dhcp_payloads(path)


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_every_public_dhcp_payload_round_trips_byte_for_byte(path: Path) -> None:
    """decode then encode gives back exactly the captured bytes, padding included."""
    if path.name in REJECTED:
        pytest.skip("malformed on purpose; see the rejection test")
    for payload in dhcp_payloads(path):
        assert encode_dhcp(decode_dhcp(payload)) == payload


def test_truncated_garbage_is_rejected_with_the_header_length() -> None:
    """The fuzzer-found packet cut by the snap length raises MalformedPacket saying why."""
    (payload,) = _payloads("bootp_asan_truncated-garbage.pcap")
    with pytest.raises(MalformedPacket, match=r"truncated BOOTP header: 48 bytes, need 236"):
        decode_dhcp(payload)


def test_static_routes_with_bad_lengths_still_decode_and_say_why() -> None:
    """Option 33 of length 3 and 0 keeps its bytes, carries the reason, and the strict
    accessor raises with the option's offset; the valid lengths decode as routes."""
    packets = [decode_dhcp(p) for p in _payloads("dhcp_opt33-bad-length.pcap")]
    assert [len(p.option(33)) for p in packets[:3]] == [1, 2, 3]  # type: ignore[arg-type]
    bad = packets[3].get(33)
    assert bad is not None and bad.data == b"\x0a\x00\x00"
    assert bad.error == (
        "option 33 (static-routes): length 3, expected a multiple of 8 (destination/router pairs)"
    )
    with pytest.raises(MalformedPacket, match=r"length 3.*at offset \d+"):
        packets[3].option(33)
    empty = packets[4].get(33)
    assert empty is not None and "length 0, expected at least 8" in (empty.error or "")


def test_relay_agent_info_with_overrunning_sub_option_keeps_the_packet() -> None:
    """Kea's bad option 82 (sub-option longer than the option, no End) decodes as an
    invalid value; every other option of the DISCOVER is still typed."""
    (payload,) = _payloads("dhcp_relayed-discover_bad-opt82.pcap")
    packet = decode_dhcp(payload)
    assert packet.message_type == 1
    assert packet.vendor_class == "docsis3.0:"
    option82 = packet.get(82)
    assert option82 is not None and "sub-option 81 length 65 runs past the end" in str(option82)
    with pytest.raises(MalformedPacket):
        packet.relay_agent_info  # noqa: B018


def test_relay_agent_info_sub_options_decode() -> None:
    """The good DOCSIS DISCOVER's option 82 gives circuit-id and remote-id."""
    (payload,) = _payloads("dhcp_relayed-discover_docsis_opt82_opt125.pcap")
    info = decode_dhcp(payload).relay_agent_info
    assert info is not None
    assert info.get(1) == b"\x20\x00\x00\x02"
    assert info.get(2) == bytes.fromhex("20e52ab81514")


def test_options_in_sname_are_decoded_when_option_52_says_so() -> None:
    """An OFFER with overload=sname carries router and DNS in sname; a normal OFFER's
    sname is a server name."""
    packets = [decode_dhcp(p) for p in _payloads("dhcp_option-overload-52_sname.pcap")]
    overloaded = next(p for p in packets if p.overload is not None)
    assert overloaded.option(3) == (IPv4Address("10.100.0.2"),)
    assert overloaded.option(15) == "evil.corp"
    assert overloaded.server_name == ""
    named = next(p for p in packets if p.server_name)
    assert named.server_name == "evil-pxe.attacker.local"


def test_intel_pxe_discover_and_proxy_offer_decode_typed() -> None:
    """The Intel UNDI DISCOVER gives arch BIOS, UNDI 2.1, the SMBIOS UUID; the
    pixiecore proxy OFFER's option 43 decodes as PXE sub-options (vendor class PXEClient)."""
    discover, proxy_offer, *rest = (
        decode_dhcp(p) for p in _payloads("pxe_intel-undi_proxydhcp_4011_tftp-rrq-opts.pcap")
    )
    assert discover.client_arch == (ClientArch.BIOS,)
    assert str(discover.option(94)) == "UNDI 2.1"
    assert discover.client_uuid is not None
    assert str(discover.client_uuid) == "03000200-0400-0500-0006-000700080009"
    assert discover.is_pxe and not discover.is_ipxe
    vendor = proxy_offer.option(43)
    assert isinstance(vendor, PxeOptions)
    assert vendor.discovery_control == 3
    assert vendor.get(8) == (BootServer(0x8000, (IPv4Address("192.168.16.10"),)),)
    assert vendor.get(9) == (MenuItem(0x8000, "Pixiecore"),)
    assert vendor.get(10) == MenuPrompt(0, "Pixiecore")
    boot_request = rest[3]
    assert boot_request.option(43) == PxeOptions(((71, BootItem(0x8000, 0)),), end=True)


def test_plain_bootp_without_cookie_keeps_its_vendor_area() -> None:
    """The 1998 Xyplex BOOTP request has no magic cookie: no options, vend kept raw."""
    packet = next(
        decode_dhcp(p) for p in _payloads("bootp_rfc951_xyplex_no-cookie_plus-tftp-bcast-rrq.pcap")
    )
    assert not packet.is_dhcp
    assert packet.options == ()
    assert packet.vend == bytes(64)
    assert packet.boot_file == "x0a3c45.prm"
    assert packet.message_type is None


def test_rfc3004_user_class_is_a_list_of_classes() -> None:
    """Option 77 in RFC 3004 form gives each class separately, not bare."""
    packet = decode_dhcp(_payloads("dhcp_user-class-opt77_rfc3004.pcap")[0])
    assert packet.user_class == UserClass((b"subopt1", b"subopt2-123456789", b"subopt3-12"))


def test_dnsmasq_offer_keeps_the_nul_in_option_66() -> None:
    """dnsmasq's option 66 carries a trailing NUL; the text keeps it (exact bytes)."""
    packet = decode_dhcp(_payloads("pxe_dnsmasq-offer_pxelinux-opts-209-210.pcap")[0])
    assert packet.option(66) == "10.0.16.129\0"
    assert packet.option(210) == "/arch/"
    assert packet.boot_file == "/arch/boot/sys/inux/lpxelinux.0"
