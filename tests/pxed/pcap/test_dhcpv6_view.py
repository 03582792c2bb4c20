"""pxed.pcap.dhcpv6_view: what a sysadmin reads for a DHCPv6 message, relayed or not."""

from __future__ import annotations

import uuid
from ipaddress import IPv6Address

from protocols.dhcp.options import ClientArch, NetworkInterfaceId
from protocols.dhcpv6.duid import DuidEn, DuidLl, DuidLlt, DuidOther, DuidUuid
from protocols.dhcpv6.options import (
    IaAddress,
    IaNa,
    IaPd,
    IaPrefix,
    Option,
    Status,
    StatusCode,
    VendorClass,
    make_options,
)
from protocols.dhcpv6.wire import Dhcpv6Message, Dhcpv6Relay, MessageType
from pxed.pcap import dhcpv6_view

MAC = bytes.fromhex("525400123456")
UUID = uuid.UUID("8c2a7d6e-1f3b-4c5d-9e0f-112233445566")
SERVER = IPv6Address("2001:db8::1")
PXE_CLASS = VendorClass(343, (b"PXEClient:Arch:00007:UNDI:003016",))

SOLICIT = Dhcpv6Message(
    msg_type=MessageType.SOLICIT,
    transaction_id=0xA1B2C3,
    options=make_options(
        [
            (1, DuidUuid(UUID)),
            (6, (59, 60, 23)),
            (8, 0),
            (3, IaNa(1, 0, 0)),
            (61, (ClientArch.EFI_BC,)),
            (62, NetworkInterfaceId(1, 3, 16)),
            (16, PXE_CLASS),
            (14, True),
        ]
    ),
)
ADVERTISE = Dhcpv6Message(
    msg_type=MessageType.ADVERTISE,
    transaction_id=0xA1B2C3,
    options=make_options(
        [
            (1, DuidUuid(UUID)),
            (2, DuidLlt(1, 0x2B3C4D5E, MAC)),
            (
                3,
                IaNa(
                    1,
                    3600,
                    5400,
                    make_options(
                        [
                            (5, IaAddress(IPv6Address("2001:db8::101"), 4500, 7200)),
                            (13, Status(StatusCode.SUCCESS)),
                        ]
                    ),
                ),
            ),
            (13, Status(StatusCode.SUCCESS, "ok")),
            (59, f"tftp://[{SERVER}]/snponly.efi"),
            (60, ("console=ttyS0",)),
        ]
    ),
)


def test_solicit_summary_names_the_client_its_ia_and_what_it_boots_as() -> None:
    assert dhcpv6_view.kind(SOLICIT) == "SOLICIT"
    assert dhcpv6_view.summary(SOLICIT) == (
        "xid=0xa1b2c3 client-id=uuid:8c2a7d6e-1f3b-4c5d-9e0f-112233445566 ia-na=1{}"
        ' rapid-commit vendor-class=343:"PXEClient:Arch:00007:UNDI:003016"'
        " client-arch-type=7(EFI BC) oro=59,60,23"
    )


def test_advertise_summary_shows_the_addresses_statuses_and_boot_file_url() -> None:
    assert dhcpv6_view.summary(ADVERTISE) == (
        "xid=0xa1b2c3 client-id=uuid:8c2a7d6e-1f3b-4c5d-9e0f-112233445566"
        " server-id=llt:52:54:00:12:34:56 ia-na=1{2001:db8::101,SUCCESS}"
        ' status-code=SUCCESS "ok" bootfile-url="tftp://[2001:db8::1]/snponly.efi"'
        ' bootfile-param="console=ttyS0"'
    )


def test_every_duid_type_has_a_compact_form() -> None:
    duids = [DuidLl(1, MAC), DuidEn(9, b"\x0c"), DuidOther(7, b"\xab")]
    forms = [
        dhcpv6_view.summary(
            Dhcpv6Message(msg_type=MessageType.REQUEST, options=make_options([(1, duid)]))
        )
        for duid in duids
    ]
    assert forms == [
        "xid=0x000000 client-id=ll:52:54:00:12:34:56",
        "xid=0x000000 client-id=en:9:0c",
        "xid=0x000000 client-id=type7:ab",
    ]


def test_ia_pd_summary_shows_the_prefix() -> None:
    prefix = IaPrefix(4500, 7200, 56, IPv6Address("2001:db8:100::"))
    reply = Dhcpv6Message(
        msg_type=MessageType.REPLY,
        options=make_options([(25, IaPd(2, 0, 0, make_options([(26, prefix)])))]),
    )
    assert dhcpv6_view.summary(reply) == "xid=0x000000 ia-pd=2{2001:db8:100::/56}"


def test_relayed_message_shows_each_relay_then_the_message_it_carries() -> None:
    inner = Dhcpv6Relay.around(
        SOLICIT,
        msg_type=MessageType.RELAY_FORW,
        link_address=IPv6Address("2001:db8:1::1"),
        peer_address=IPv6Address("fe80::5054:ff:fe12:3456"),
        options=[(18, b"eth0/1")],
    )
    outer = Dhcpv6Relay.around(
        inner, msg_type=MessageType.RELAY_FORW, hop_count=1, options=[(18, b"\x00\x01")]
    )
    assert dhcpv6_view.kind(outer) == "RELAY-FORW"
    assert dhcpv6_view.summary(outer).startswith(
        "hop=1 link=:: peer=:: interface-id=00:01 > RELAY-FORW hop=0 link=2001:db8:1::1"
        ' peer=fe80::5054:ff:fe12:3456 interface-id="eth0/1" > SOLICIT xid=0xa1b2c3 client-id='
    )
    lines = dhcpv6_view.detail(inner)
    assert lines[:7] == [
        "msg-type: 12 (RELAY-FORW)",
        "hop-count: 0",
        "link-address: 2001:db8:1::1",
        "peer-address: fe80::5054:ff:fe12:3456",
        'option 18 interface-id (6 bytes): "eth0/1"',
        f"option 9 relay-msg ({len(inner.options[1].data)} bytes), carrying:",
        "  msg-type: 1 (SOLICIT)",
    ]
    assert dhcpv6_view.detail(outer)[2] == "link-address: :: (unspecified)"


def test_detail_lists_every_option_with_nested_ones_indented() -> None:
    assert dhcpv6_view.detail(ADVERTISE) == [
        "msg-type: 2 (ADVERTISE)",
        "transaction-id: 0xa1b2c3",
        "option 1 client-id (18 bytes): UUID 8c2a7d6e-1f3b-4c5d-9e0f-112233445566",
        "option 2 server-id (14 bytes): LLT hw 1 time 725372254 52:54:00:12:34:56",
        "option 3 ia-na (46 bytes): IAID 1 T1 3600 T2 5400",
        "  option 5 iaaddr (24 bytes): 2001:db8::101 preferred 4500 valid 7200",
        "  option 13 status-code (2 bytes): SUCCESS",
        "option 13 status-code (4 bytes): SUCCESS 'ok'",
        'option 59 bootfile-url (32 bytes): "tftp://[2001:db8::1]/snponly.efi"',
        'option 60 bootfile-param (15 bytes): "console=ttyS0"',
    ]


def test_option_that_does_not_fit_its_type_is_flagged_on_the_line_and_dumped_with_v() -> None:
    message = Dhcpv6Message(
        msg_type=MessageType.SOLICIT, options=(Option(8, b"\x00"), Option(9999, bytes(20)))
    )
    assert dhcpv6_view.summary(message) == (
        "xid=0x000000 [option 8 (elapsed-time): length 1, expected 2 (16-bit number)]"
    )
    assert dhcpv6_view.detail(message)[2:] == [
        "option 8 elapsed-time (1 byte): INVALID: length 1, expected 2 (16-bit number)",
        "  0000  00",
        "option 9999 option-9999 (20 bytes):",
        "  0000  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
        "  0010  00 00 00 00",
    ]


def test_unknown_message_type_is_shown_by_number() -> None:
    message = Dhcpv6Message(msg_type=200, transaction_id=1)
    assert dhcpv6_view.kind(message) == "TYPE-200"
    assert dhcpv6_view.detail(message)[0] == "msg-type: 200 (TYPE-200)"
