"""The DHCP/BOOTP grammar on hand-made packets: the clients of docs/firmware.md, replies built
through the builder API, long options, overload, padding, and the error messages."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

import pytest

from protocols.dhcp.options import (
    ClasslessRoute,
    ClientArch,
    ClientFqdn,
    ClientId,
    ClientUuid,
    MessageType,
    NetworkInterfaceId,
    Option,
    Overload,
    UserClass,
    option_name,
)
from protocols.dhcp.suboptions import IpxeOptions, PxeOptions, RelayAgentInfo
from protocols.dhcp.values import scan
from protocols.dhcp.wire import (
    BOOTREPLY,
    DhcpPacket,
    EncodeError,
    decode_dhcp,
    encode_dhcp,
    make_options,
)
from protocols.errors import MalformedPacket
from protocols.option import InvalidValue

MAC = bytes.fromhex("525400123456")
SMBIOS_UUID = bytes.fromhex("78563412341278569abcdef012345678")
# iPXE's option 175 as it sends it: bus-id, version 1.0.0, then feature flags, no End.
IPXE_175 = bytes.fromhex(
    "b105018086100e eb03010000 170101 220101 130101 110101 270101 190101 100102 210101"
    " 150101 180101 120101"
)


def _request(options: list[tuple[int, object]], flags: int = 0) -> DhcpPacket:
    return DhcpPacket(xid=0x1234ABCD, flags=flags, chaddr=MAC, options=make_options(options))


IPXE_BIOS_DISCOVER = [
    (53, MessageType.DISCOVER),
    (57, 1472),
    (93, (ClientArch.BIOS,)),
    (94, NetworkInterfaceId(1, 2, 1)),
    (60, "PXEClient:Arch:00000:UNDI:002001"),
    (77, UserClass((b"iPXE",), bare=True)),
    (55, (1, 3, 6, 7, 12, 15, 17, 26, 43, 60, 66, 67, 119, *range(128, 136), 175, 203)),
    (175, IPXE_175),
    (61, ClientId(1, MAC)),
    (97, ClientUuid(0, SMBIOS_UUID)),
]
# OVMF's parameter request list (option 55).
OVMF_ASKS = (
    1, 2, 3, 4, 5, 6, 12, 13, 15, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51, 54, 58, 59, 60,
    66, 67, 97, *range(128, 136),
)  # fmt: skip
OVMF_DISCOVER = [
    (53, MessageType.DISCOVER),
    (57, 1472),
    (55, OVMF_ASKS),
    (97, ClientUuid(0, SMBIOS_UUID)),
    (94, NetworkInterfaceId(1, 3, 0)),
    (93, (ClientArch.EFI_BC,)),
    (60, "PXEClient:Arch:00007:UNDI:003000"),
]
UDHCPC_DISCOVER = [
    (53, MessageType.DISCOVER),
    (57, 576),
    (55, (1, 3, 6, 12, 15, 28, 42)),
    (60, "udhcp 1.35.0"),
    (61, ClientId(1, MAC)),
]


@pytest.mark.parametrize(
    "options",
    [IPXE_BIOS_DISCOVER, OVMF_DISCOVER, UDHCPC_DISCOVER],
    ids=["ipxe-bios", "ovmf", "udhcpc"],
)
def test_client_discovers_keep_option_order_and_round_trip(
    options: list[tuple[int, object]],
) -> None:
    """A DISCOVER shaped like docs/firmware.md's table decodes to the same options in the same
    order, and its bytes re-encode unchanged."""
    wire = encode_dhcp(_request(options))
    packet = decode_dhcp(wire)
    assert [o.code for o in packet.options] == [code for code, _ in options]
    assert [o.value for o in packet.options] == [Option.of(c, v).value for c, v in options]
    assert encode_dhcp(packet) == wire
    assert packet == _request(options)


def test_ipxe_discover_reads_as_ipxe_bios_pxe_client() -> None:
    """iPXE's bare `iPXE` user class, option 175 and arch 0 are all visible."""
    packet = decode_dhcp(encode_dhcp(_request(IPXE_BIOS_DISCOVER)))
    assert packet.is_ipxe and packet.is_pxe
    assert packet.user_class == UserClass((b"iPXE",), bare=True)
    assert packet.get(77) is not None and packet.get(77).data == b"iPXE"  # type: ignore[union-attr]
    assert packet.client_arch == (0,)
    assert packet.max_message_size == 1472
    assert packet.client_id == ClientId(1, MAC)
    assert packet.mac == "52:54:00:12:34:56"
    ipxe = packet.option(175)
    assert isinstance(ipxe, IpxeOptions)
    assert ipxe.get(19) == 1  # http feature
    assert not ipxe.end
    assert "http=1" in str(ipxe)


def test_ovmf_discover_has_no_client_id_and_names_its_arch() -> None:
    packet = decode_dhcp(encode_dhcp(_request(OVMF_DISCOVER, flags=0x8000)))
    assert packet.broadcast
    assert packet.client_id is None
    assert [str(a) for a in packet.client_arch] == ["7 (EFI BC)"]
    assert not packet.is_ipxe


def test_smbios_uuid_reads_little_endian_fields_like_dmidecode() -> None:
    """Option 97's first three UUID fields are little-endian on the wire."""
    value = ClientUuid(0, SMBIOS_UUID)
    assert str(value) == "12345678-1234-5678-9abc-def012345678"


def test_proxy_offer_built_with_pxe_sub_options() -> None:
    """The proxyDHCP OFFER docs/firmware.md asks for: 60 PXEClient with 43 = 06 01 08 (+End)."""
    request = decode_dhcp(encode_dhcp(_request(OVMF_DISCOVER)))
    reply = DhcpPacket.reply(
        request,
        [
            (53, MessageType.OFFER),
            (54, IPv4Address("10.213.0.1")),
            (60, "PXEClient"),
            (43, PxeOptions(((6, 8),), end=True)),
            (97, request.client_uuid),
        ],
        siaddr=IPv4Address("10.213.0.1"),
        file="pxelinux.0",
    )
    wire = encode_dhcp(reply)
    assert bytes([43, 4, 6, 1, 8, 255]) in wire
    back = decode_dhcp(wire)
    assert back.op == BOOTREPLY and back.xid == request.xid and back.chaddr == request.chaddr
    assert back.boot_file == "pxelinux.0"
    assert back.option(43) == PxeOptions(((6, 8),), end=True)
    assert back == reply


def test_option_43_stays_raw_without_pxe_vendor_class() -> None:
    """Option 43 means PXE sub-options only when option 60 says PXEClient."""
    packet = decode_dhcp(encode_dhcp(_request([(43, b"\x06\x01\x08"), (60, "ArubaAP")])))
    assert packet.option(43) == b"\x06\x01\x08"


def test_long_option_is_split_into_255_byte_chunks_and_joined_back() -> None:
    """RFC 3396: a 600-byte value goes out as 255 + 255 + 90 and decodes as one option."""
    names = tuple(f"host{i:03d}.example.org" for i in range(30))
    packet = _request([(53, MessageType.ACK), (119, names)])
    wire = encode_dhcp(packet)
    back = decode_dhcp(wire)
    assert back.option(119) == names
    assert len(back.get(119).data) > 510  # type: ignore[union-attr]
    assert wire.count(bytes([119, 255])) == 2
    assert encode_dhcp(back) == wire


# A DHCP message assembled by hand: the header, the cookie, then `tail`.
def _raw(tail: bytes, sname: bytes = bytes(64), file: bytes = bytes(128)) -> bytes:
    header = bytes([1, 1, 6, 0]) + bytes(4) + bytes(4) + bytes(16) + MAC + bytes(10)
    return header + sname + file + b"\x63\x82\x53\x63" + tail


def test_repeated_code_split_oddly_joins_and_re_encodes_as_it_came() -> None:
    """Option 3 split 4+4 around other options, with Pads between, joins to two routers
    and re-encodes with the same split, Pads and junk after End."""
    tail = (
        bytes([53, 1, 5, 3, 4, 10, 0, 0, 1, 0, 0, 12, 2])
        + b"pc"
        + bytes([3, 4, 10, 0, 0, 2, 255])
        + b"junk after end"
    )
    wire = _raw(tail)
    packet = decode_dhcp(wire)
    assert packet.option(3) == (IPv4Address("10.0.0.1"), IPv4Address("10.0.0.2"))
    assert [o.code for o in packet.options] == [53, 3, 12]
    assert encode_dhcp(packet) == wire


def test_changed_options_are_laid_out_afresh() -> None:
    """Once an option's size changes the old layout no longer applies: the encoder
    writes the options in order, one run, End, and no leftover junk."""
    wire = _raw(bytes([53, 1, 5, 0, 0, 12, 2]) + b"pc" + bytes([255, 9, 9]))
    packet = decode_dhcp(wire)
    changed = replace(packet, options=make_options([(53, MessageType.ACK), (12, "longer")]))
    assert encode_dhcp(changed)[240:] == bytes([53, 1, 5, 12, 6]) + b"longer" + bytes([255])


def test_options_without_end_decode() -> None:
    """A packet whose options run to the last byte with no End still decodes and round-trips."""
    wire = _raw(bytes([53, 1, 1]))
    assert decode_dhcp(wire).message_type == MessageType.DISCOVER
    assert encode_dhcp(decode_dhcp(wire)) == wire


def test_options_in_file_and_sname_decode_in_rfc_3396_order() -> None:
    """With overload=both a long option continued from options into file then sname
    joins in that order."""
    file = (bytes([12, 3]) + b"abc" + bytes([255])).ljust(128, b"\0")
    sname = (bytes([12, 3]) + b"def" + bytes([15, 1]) + b"x" + bytes([255])).ljust(64, b"\0")
    wire = _raw(bytes([52, 1, 3, 12, 2]) + b"-+" + bytes([255]), sname=sname, file=file)
    packet = decode_dhcp(wire)
    assert packet.hostname == "-+abcdef"
    assert packet.option(15) == "x"
    assert packet.overload == Overload.BOTH
    assert packet.boot_file == "" and packet.server_name == ""
    assert encode_dhcp(packet) == wire


def test_max_size_overflows_options_into_file_then_sname() -> None:
    """A reply too big for max_size moves options into file and sname with option 52,
    and decodes back to the same options."""
    options = [(53, MessageType.OFFER)] + [(200 + i, bytes(40)) for i in range(7)]
    packet = _request(options)
    wire = encode_dhcp(packet, max_size=400)
    assert len(wire) <= 400
    back = decode_dhcp(wire)
    assert back.overload == Overload.BOTH
    assert {o.code: o.data for o in back.options if o.code != 52} == {
        o.code: o.data for o in packet.options
    }
    assert encode_dhcp(back) == wire


def _main_area_codes(wire: bytes) -> list[int]:
    """Option codes in the options field proper (not file/sname), in wire order, no Pads."""
    return [item.code for item in scan(wire[240:], 240, "options").items if item.code != 0]


def test_overflow_keeps_option_82_last_in_the_options_field() -> None:
    """RFC 3046 2.2: the server echoes option 82 as the last option of the options field.
    A relay strips it from there on the way back and does not look into file/sname, so
    overload moves other options out, never 82."""
    agent = RelayAgentInfo(((1, b"port-7"), (2, b"switch")))
    options = [(53, MessageType.OFFER), *((200 + i, bytes(40)) for i in range(7)), (82, agent)]
    wire = encode_dhcp(_request(options), max_size=400)
    assert len(wire) <= 400
    back = decode_dhcp(wire)
    assert back.overload == Overload.BOTH
    assert _main_area_codes(wire)[-1] == 82
    assert back.relay_agent_info == agent
    assert encode_dhcp(back) == wire


def test_option_82_too_big_for_the_options_field_is_refused_not_moved() -> None:
    """If the options field cannot hold 82 beside option 52, the reply cannot be sent,
    even though file would have room for it."""
    agent = RelayAgentInfo(((1, bytes(100)),))
    with pytest.raises(EncodeError, match=r"options need .* option 82"):
        encode_dhcp(_request([(53, MessageType.OFFER), (82, agent)]), max_size=300)


def test_max_size_keeps_a_boot_file_and_uses_sname_only() -> None:
    packet = replace(_request([(200 + i, bytes(20)) for i in range(4)]), file=b"pxelinux.0")
    back = decode_dhcp(encode_dhcp(packet, max_size=300))
    assert back.overload == Overload.SNAME
    assert back.boot_file == "pxelinux.0"


def test_max_size_too_small_says_how_much_is_needed() -> None:
    packet = _request([(200 + i, bytes(100)) for i in range(4)])
    with pytest.raises(EncodeError, match=r"options need 408 bytes"):
        encode_dhcp(packet, max_size=300)


@pytest.mark.parametrize("max_size", [100, 240, 243])
def test_max_size_below_a_bare_message_is_refused(max_size: int) -> None:
    """The header and cookie alone are 240 bytes: nothing smaller can be honoured."""
    with pytest.raises(EncodeError, match="max_size"):
        encode_dhcp(_request([(53, MessageType.OFFER)]), max_size=max_size)


def test_bootp_packet_is_encoded_with_its_vendor_area_and_no_options() -> None:
    """A reply to a plain BOOTP client carries vend; options it couldn't read are left out."""
    packet = DhcpPacket(vend=bytes(64), options=make_options([(53, MessageType.OFFER)]))
    assert encode_dhcp(packet)[236:] == bytes(64)


def test_min_size_pads_after_end() -> None:
    """BOOTP relays want at least 300 bytes; padding goes after End."""
    wire = encode_dhcp(_request([(53, MessageType.OFFER)]), min_size=300)
    assert len(wire) == 300 and wire[240:244] == bytes([53, 1, 2, 255])


def test_truncated_header_names_the_sizes() -> None:
    with pytest.raises(MalformedPacket, match=r"^truncated BOOTP header: 120 bytes, need 236$"):
        decode_dhcp(bytes(120))


def test_option_running_past_the_packet_names_option_and_offset() -> None:
    with pytest.raises(
        MalformedPacket,
        match=r"^options: option 51 length 4 runs past the end \(2 bytes left\), at offset 243$",
    ):
        decode_dhcp(_raw(bytes([53, 1, 1, 51, 4, 0, 0])))


def test_option_with_no_length_byte_is_malformed() -> None:
    with pytest.raises(MalformedPacket, match=r"option 51 has no length byte, at offset 243"):
        decode_dhcp(_raw(bytes([53, 1, 1, 51])))


def test_bad_lease_time_length_decodes_with_a_note_and_strict_access_raises() -> None:
    """Option 51 with 3 bytes: the packet decodes, the option keeps its bytes, and the
    strict accessor raises "option 51: length 3, expected 4" with the offset."""
    wire = _raw(bytes([53, 1, 1, 51, 3, 1, 2, 3, 255]))
    packet = decode_dhcp(wire)
    value = packet.get(51).value  # type: ignore[union-attr]
    assert isinstance(value, InvalidValue) and value.data == b"\x01\x02\x03"
    with pytest.raises(
        MalformedPacket,
        match=r"^option 51 \(lease-time\): length 3, expected 4 \(32-bit seconds\), at offset 243$",
    ):
        packet.option(51)
    assert encode_dhcp(packet) == wire


def test_bad_overload_value_is_not_followed() -> None:
    """Option 52 = 7 is invalid: file and sname stay plain fields."""
    packet = decode_dhcp(_raw(bytes([52, 1, 7, 255]), file=b"boot".ljust(128, b"\0")))
    assert packet.overload is None and packet.boot_file == "boot"
    assert packet.get(52).error is not None  # type: ignore[union-attr]


def test_broken_options_in_file_are_malformed() -> None:
    file = bytes([12, 200]).ljust(128, b"\0")
    with pytest.raises(MalformedPacket, match=r"options in file \(option 52\).*at offset 108"):
        decode_dhcp(_raw(bytes([52, 1, 1, 255]), file=file))


def test_unknown_message_type_is_a_plain_int() -> None:
    packet = decode_dhcp(_raw(bytes([53, 1, 200, 255])))
    assert packet.message_type == 200 and not isinstance(packet.message_type, MessageType)


def test_sname_and_file_text_stop_at_the_first_nul() -> None:
    """Bytes after the first NUL are not part of the name (pitfall 8: not PaddedString)."""
    packet = DhcpPacket(sname=b"srv\0junk", file=b"pxelinux.0\0\xff\xfe")
    back = decode_dhcp(encode_dhcp(packet))
    assert back.server_name == "srv"
    assert back.boot_file == "pxelinux.0"
    assert back.file.startswith(b"pxelinux.0\0\xff\xfe")


@pytest.mark.parametrize(
    ("code", "value", "text"),
    [
        (1, IPv4Address("255.255.255.0"), "subnet-mask=255.255.255.0"),
        (3, (IPv4Address("10.0.0.1"), IPv4Address("10.0.0.2")), "router=10.0.0.1,10.0.0.2"),
        (53, MessageType.REQUEST, "message-type=REQUEST"),
        (61, ClientId(1, MAC), "client-id=01:52:54:00:12:34:56"),
        (93, (ClientArch.EFI_X86_64, 16), "client-arch=9 (EFI x86-64),16 (HTTP x64)"),
        (60, "PXEClient:Arch:00000", "vendor-class=PXEClient:Arch:00000"),
        (12, "bad\nname", "hostname=bad\\nname"),
        (
            121,
            (ClasslessRoute(IPv4Network("10.1.0.0/16"), IPv4Address("10.0.0.1")),),
            "classless-static-routes=10.1.0.0/16 via 10.0.0.1",
        ),
        (81, ClientFqdn(0x04, 0, 0, b"\x02pc\x03lab\x00"), "client-fqdn=flags 0x04 pc.lab"),
        (
            82,
            RelayAgentInfo(((1, b"eth0"), (5, IPv4Address("10.1.2.3")))),
            "relay-agent-info=circuit-id=65:74:68:30 link-selection=10.1.2.3",
        ),
        (254, b"\x01\xff", "option-254=01:ff"),
    ],
)
def test_options_print_readably(code: int, value: object, text: str) -> None:
    """What the pcap printer shows: names, dotted IPs, colon hex, arch names."""
    assert str(Option.of(code, value)) == text


def test_client_arch_names_follow_the_iana_table() -> None:
    assert [str(ClientArch(n)) for n in (0, 6, 7, 9, 10, 11, 15, 16, 18, 19)] == [
        "0 (BIOS)",
        "6 (EFI IA32)",
        "7 (EFI BC)",
        "9 (EFI x86-64)",
        "10 (ARM32 UEFI)",
        "11 (ARM64 UEFI)",
        "15 (HTTP IA32)",
        "16 (HTTP x64)",
        "18 (HTTP ARM32)",
        "19 (HTTP ARM64)",
    ]
    packet = decode_dhcp(_raw(bytes([93, 2, 0x12, 0x34, 255])))
    assert packet.client_arch == (0x1234,)


def test_option_names_for_the_printer() -> None:
    assert [option_name(c) for c in (1, 3, 60, 93, 175, 209, 77, 240)] == [
        "subnet-mask",
        "router",
        "vendor-class",
        "client-arch",
        "ipxe-encap",
        "pxelinux-config-file",
        "user-class",
        "option-240",
    ]
