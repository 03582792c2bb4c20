"""pxed.pcap.dhcp_view and pxed.pcap.tftp_view: what a sysadmin reads for each kind of packet."""

from __future__ import annotations

from ipaddress import IPv4Address

from protocols.dhcp.options import MessageType
from protocols.dhcp.wire import BOOTREPLY, DhcpPacket, decode_dhcp, encode_dhcp, make_options
from protocols.tftp.wire import Data, Error, OptionAck, ReadRequest
from pxed.pcap import dhcp_view, tftp_view
from pxed.pcap.textview import hex_lines
from pxed.text import quoted

MAC = bytes.fromhex("525400123456")


def _offer(**fields: object) -> DhcpPacket:
    options = make_options(
        [
            (53, MessageType.OFFER),
            (54, IPv4Address("10.213.0.1")),
            (51, 3600),
            (60, "PXEClient"),
            (93, (7,)),
            (67, "snponly.efi"),
        ]
    )
    return DhcpPacket(op=BOOTREPLY, xid=0xDEADBEEF, chaddr=MAC, options=options, **fields)  # type: ignore[arg-type]


def test_dhcp_summary_has_type_xid_mac_addresses_and_boot_options_by_name() -> None:
    packet = _offer(
        yiaddr=IPv4Address("10.213.0.50"), siaddr=IPv4Address("10.213.0.1"), file=b"x.0"
    )
    assert dhcp_view.kind(packet) == "OFFER"
    assert dhcp_view.summary(packet) == (
        "xid=0xdeadbeef chaddr=52:54:00:12:34:56 yiaddr=10.213.0.50 siaddr=10.213.0.1 "
        'file="x.0" server-id=10.213.0.1 lease-time=3600 vendor-class="PXEClient" '
        'client-arch=7(EFI BC) bootfile="snponly.efi"'
    )


def test_plain_bootp_is_named_by_its_op() -> None:
    request = DhcpPacket(op=1, chaddr=MAC, vend=bytes(64))
    assert dhcp_view.kind(request) == "BOOTREQUEST"
    assert dhcp_view.kind(DhcpPacket(op=2, chaddr=MAC, vend=bytes(64))) == "BOOTREPLY"
    assert (
        dhcp_view.detail(request)[-1]
        == "no magic cookie: plain BOOTP, vendor area 64 bytes, all zero"
    )


def test_bootp_vendor_area_with_data_is_dumped_in_hex() -> None:
    vend = b"\x63\x82\x53" + bytes(61)
    lines = dhcp_view.detail(DhcpPacket(op=1, chaddr=MAC, vend=vend))
    assert lines[-5:] == ["no magic cookie: plain BOOTP, vendor area 64 bytes:"] + [
        "  " + line for line in hex_lines(vend)
    ]


def _with_raw_options(raw: bytes) -> DhcpPacket:
    """A request whose options area is exactly `raw` (then End), decoded like a capture."""
    header = encode_dhcp(DhcpPacket(chaddr=MAC))[:236]
    return decode_dhcp(header + b"\x63\x82\x53\x63" + raw + b"\xff")


def test_unknown_message_type_is_shown_by_number() -> None:
    packet = _with_raw_options(b"\x35\x01\x63")
    assert dhcp_view.kind(packet) == "TYPE-99"


def test_option_that_does_not_fit_its_type_is_flagged_on_the_line_and_dumped_with_v() -> None:
    packet = _with_raw_options(b"\x33\x03\x00\x0e\x10")
    assert dhcp_view.summary(packet).endswith(
        "[option 51 (lease-time): length 3, expected 4 (32-bit seconds)]"
    )
    assert dhcp_view.detail(packet)[-2:] == [
        "option 51 lease-time (3 bytes): INVALID: length 3, expected 4 (32-bit seconds)",
        "  0000  00 0e 10",
    ]


def test_detail_lists_every_header_field_then_every_option() -> None:
    lines = dhcp_view.detail(_offer(flags=0x8000, hops=1, giaddr=IPv4Address("10.9.0.1")))
    assert lines[:15] == [
        "op: 2 (BOOTREPLY)",
        "htype: 1 (Ethernet)",
        "hlen: 6",
        "hops: 1",
        "xid: 0xdeadbeef",
        "secs: 0",
        "flags: 0x8000 (broadcast)",
        "ciaddr: 0.0.0.0",
        "yiaddr: 0.0.0.0",
        "siaddr: 0.0.0.0",
        "giaddr: 10.9.0.1",
        "chaddr: 52:54:00:12:34:56:00:00:00:00:00:00:00:00:00:00",
        "sname: (empty)",
        "file: (empty)",
        "magic cookie: 63 82 53 63 (DHCP)",
    ]
    assert lines[15:] == [
        "option 53 message-type (1 byte): OFFER",
        "option 54 server-id (4 bytes): 10.213.0.1",
        "option 51 lease-time (4 bytes): 3600",
        'option 60 vendor-class (9 bytes): "PXEClient"',
        "option 93 client-arch (2 bytes): 7 (EFI BC)",
        'option 67 bootfile (11 bytes): "snponly.efi"',
    ]


def test_bytes_after_the_nul_of_the_file_field_are_shown() -> None:
    packet = _offer(file=b"boot\0junk")
    assert 'file: "boot", then bytes after the NUL: 6a 75 6e 6b' in dhcp_view.detail(packet)


def test_long_parameter_request_list_wraps_without_splitting_names() -> None:
    packet = DhcpPacket(chaddr=MAC, options=make_options([(55, tuple(range(1, 40)))]))
    lines = dhcp_view.detail(packet)
    listed = [line for line in lines if line.startswith("  ")]
    assert len(listed) > 1 and all(len(line) <= 2 + dhcp_view.WRAP_WIDTH for line in listed)
    assert listed[0].startswith("  1 subnet-mask, 2 time-offset, 3 router")
    assert all(line.endswith(",") for line in listed[:-1])


def test_unknown_option_shows_raw_hex() -> None:
    packet = _with_raw_options(b"\xe0\x02\x01\x02")
    assert dhcp_view.detail(packet)[-1] == "option 224 option-224 (2 bytes): 01 02"


def test_tftp_lines() -> None:
    rrq = ReadRequest("pxelinux.cfg/default", "octet", (("tsize", "0"), ("blksize", "1408")))
    assert tftp_view.summary(rrq) == '"pxelinux.cfg/default" octet tsize=0 blksize=1408'
    assert tftp_view.summary(Data(7, b"x" * 1408)) == "block 7 (1408 bytes)"
    assert tftp_view.summary(OptionAck((("blksize", "1408"),))) == "blksize=1408"
    assert tftp_view.summary(Error(8, "User aborted the transfer")) == (
        '8 (option refused) "User aborted the transfer"'
    )
    assert tftp_view.summary(Error(42, "odd")) == '42 (not a standard code) "odd"'


def test_tftp_detail_notes_padding_and_previews_data() -> None:
    padded = ReadRequest("a", "octet", (), padding=3)
    assert tftp_view.detail(padded)[-1] == "trailing NUL padding: 3 bytes"
    assert tftp_view.detail(Data(1, bytes(range(20))))[-1] == (
        "data starts: 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f..."
    )


def test_quoted_names_keep_odd_bytes_visible() -> None:
    assert quoted('a"b\\c\td') == '"a\\"b\\\\c\\x09d"'
    assert quoted(b"caf\xe9".decode("utf-8", "surrogateescape")) == '"caf\\xe9"'
