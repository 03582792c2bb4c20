"""Typed option values one by one: the odd shapes, what they print, and the messages
for bytes that do not fit."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from protocols.dhcp.options import (
    ClientFqdn,
    Option,
    StaticRoute,
    UserClass,
    decode_value,
    encode_value,
)
from protocols.dhcp.suboptions import (
    BootItem,
    BootServer,
    MenuItem,
    MenuPrompt,
    PxeOptions,
    VendorBlock,
)
from protocols.dhcp.wire import DhcpPacket, EncodeError, decode_dhcp, encode_dhcp, make_options
from protocols.option import BadOptionValue, InvalidValue


def _invalid(code: int, data: bytes, pxe: bool = False) -> str:
    value = Option(code, data, pxe).value
    assert isinstance(value, InvalidValue)
    return value.problem


def test_text_that_is_not_utf8_reads_as_latin1() -> None:
    """Every byte stays visible; decoding text never fails."""
    assert decode_value(12, b"caf\xe9") == "café"
    assert decode_value(12, "café".encode()) == "café"


def test_domain_search_follows_compression_pointers() -> None:
    """RFC 3397's example: eng.apple.com and marketing.apple.com, the second compressed."""
    data = b"\x03eng\x05apple\x03com\x00\x09marketing\xc0\x04"
    assert decode_value(119, data) == ("eng.apple.com", "marketing.apple.com")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\x03eng", "domain name runs past the end of the option"),
        (b"\x05ab", "domain label runs past the end of the option"),
        (b"\x01a\xc0", "compression pointer cut short"),
        (b"\x01a\xc0\x05", "compression pointer to 5 does not point back"),
        (b"\x80a", "bad label length byte 0x80"),
    ],
)
def test_broken_domain_search_lists_say_what_is_wrong(data: bytes, problem: str) -> None:
    assert _invalid(119, data) == problem


def test_domain_search_pointer_loops_are_caught() -> None:
    """A pointer back to the label before it points back, yet cycles for ever."""
    assert _invalid(119, b"\x01a\xc0\x00") == "domain name compression loops"


def test_domain_names_with_bad_labels_cannot_be_encoded() -> None:
    with pytest.raises(BadOptionValue, match="domain label '' must be 1-63 bytes"):
        encode_value(119, ("a..b",))


def test_fqdn_shows_ascii_or_wire_names_and_survives_bad_wire_names() -> None:
    assert str(ClientFqdn(0, 0, 0, b"pc.lab")) == "flags 0x00 pc.lab"
    assert str(ClientFqdn(4, 0, 0, b"\x02pc\x03lab\x00")) == "flags 0x04 pc.lab"
    assert str(ClientFqdn(4, 0, 0, b"\x09pc")) == "flags 0x04 09:70:63"
    assert ClientFqdn(4, 0, 0, b"").domain == ""


def test_user_class_with_an_empty_item_reads_as_bare() -> None:
    """A zero-length RFC 3004 class is not allowed, so those bytes are one bare class."""
    assert decode_value(77, b"\x00\x01a") == UserClass((b"\x00\x01a",), bare=True)
    assert str(UserClass((b"iPXE", b"x\n"))) == "iPXE,x\\n"


def test_values_print_readably() -> None:
    pxe = PxeOptions(
        (
            (6, 3),
            (8, (BootServer(0x8000, (IPv4Address("10.0.0.1"), IPv4Address("10.0.0.2"))),)),
            (9, (MenuItem(0x8000, "Boot"),)),
            (10, MenuPrompt(5, "Press F8")),
            (71, BootItem(0x8000, 0)),
        ),
        end=True,
    )
    assert str(pxe) == (
        "discovery-control=3 boot-servers=32768:10.0.0.1/10.0.0.2"
        ' boot-menu=32768:"Boot" menu-prompt=5s "Press F8" boot-item=type 32768 layer 0'
    )
    assert str(StaticRoute(IPv4Address("10.0.0.0"), IPv4Address("10.0.0.1"))) == (
        "10.0.0.0 via 10.0.0.1"
    )
    assert str(VendorBlock(4491, ((1, b"\x02"),))) == "enterprise 4491: 1=02"


def test_pxe_options_skip_pads_and_read_the_boot_item() -> None:
    value = decode_value(43, b"\x00\x47\x04\x80\x00\x00\x01\x00\xff", pxe=True)
    assert isinstance(value, PxeOptions)
    assert value.boot_item == BootItem(0x8000, 1)
    assert value.discovery_control is None
    assert value.get(6) is None


def test_pxe_sub_option_of_the_wrong_size_makes_option_43_invalid() -> None:
    assert _invalid(43, b"\x47\x03\x80\x00\x00", pxe=True) == (
        "sub-option 71 (boot-item) at byte 0 of the option: length 3, expected 4 (boot item)"
    )


def test_pxe_sub_options_overrunning_option_43_are_invalid() -> None:
    assert _invalid(43, b"\x06\x05\x08", pxe=True) == (
        "sub-options: sub-option 6 length 5 runs past the end (1 bytes left)"
        " at byte 0 of the option"
    )


def test_a_typed_value_the_option_cannot_carry_is_a_builder_error() -> None:
    with pytest.raises(BadOptionValue, match=r"option 51 \(lease-time\): cannot encode -1"):
        Option.of(51, -1)
    with pytest.raises(BadOptionValue, match=r"option 3 \(router\)"):
        Option.of(3, ("not an address",))


def test_bytes_are_taken_as_raw_option_data_for_any_code() -> None:
    assert Option.of(3, b"\x0a\x00\x00\x01").value == (IPv4Address("10.0.0.1"),)


def test_request_lookups_on_a_decoded_request() -> None:
    request = decode_dhcp(
        encode_dhcp(
            DhcpPacket(
                options=make_options(
                    [
                        (50, IPv4Address("10.0.0.9")),
                        (54, IPv4Address("10.0.0.1")),
                        (55, (1, 3, 6)),
                        (12, "pc"),
                    ]
                )
            )
        )
    )
    assert request.requested_ip == IPv4Address("10.0.0.9")
    assert request.server_id == IPv4Address("10.0.0.1")
    assert request.parameter_request_list == (1, 3, 6)
    assert request.hostname == "pc"
    assert request.option(66) is None
    assert request.client_arch == ()


def test_header_fields_too_big_for_their_field_are_refused() -> None:
    with pytest.raises(ValueError, match="chaddr is 17 bytes, the field holds 16"):
        DhcpPacket(chaddr=bytes(17))
    with pytest.raises(EncodeError, match="BOOTP header"):
        encode_dhcp(DhcpPacket(xid=1 << 32))


def test_max_size_with_a_server_name_uses_file_only() -> None:
    """sname holding a name is not free for options; file is."""
    packet = DhcpPacket(
        sname=b"tftp", options=make_options([(200 + i, bytes(20)) for i in range(4)])
    )
    back = decode_dhcp(encode_dhcp(packet, max_size=300))
    assert back.server_name == "tftp"
    assert back.option(52) == 1


def test_client_id_needs_a_type_and_at_least_one_byte() -> None:
    assert _invalid(61, b"\x01") == "length 1, expected at least 2 (client identifier)"


def test_empty_parameter_request_list_reads_as_asking_for_nothing_and_round_trips() -> None:
    """Real clients send option 55 with length 0; that is a valid (empty) list, not a
    malformed option, and its two bytes come back exactly."""
    wire = encode_dhcp(DhcpPacket(options=make_options([(53, 1), (55, b""), (12, "pc")])))
    packet = decode_dhcp(wire)
    assert packet.get(55) is not None and packet.get(55).error is None
    assert packet.option(55) == ()
    assert packet.parameter_request_list == ()
    assert wire[240:246] == bytes([53, 1, 1, 55, 0, 12])
    assert encode_dhcp(packet) == wire
