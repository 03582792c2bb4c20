"""The DHCPv6 grammar on hand-built vectors: every option pxed types, the DUID types,
nested IA options, relayed messages, the builder API and the error messages.

The vectors are written byte by byte here (``_opt`` only adds code and length), not
made by the encoder, so a round trip shows the grammar reads the RFC's layout."""

from __future__ import annotations

import uuid
from ipaddress import IPv6Address

import pytest

from protocols.dhcp.options import ClientArch, NetworkInterfaceId
from protocols.dhcpv6.duid import DuidEn, DuidLl, DuidLlt, DuidOther, DuidUuid
from protocols.dhcpv6.options import (
    IaAddress,
    IaNa,
    IaPd,
    IaPrefix,
    IaTa,
    LinkLayerAddress,
    Option,
    RemoteId,
    Status,
    StatusCode,
    VendorClass,
    VendorOptions,
    option_name,
)
from protocols.dhcpv6.wire import (
    Dhcpv6Message,
    Dhcpv6Relay,
    EncodeError,
    MessageType,
    decode_dhcpv6,
    encode_dhcpv6,
    make_options,
)
from protocols.errors import MalformedPacket
from protocols.option import InvalidValue

MAC = "525400123456"
UUID_HEX = "8c2a7d6e1f3b4c5d9e0f112233445566"
LINK = IPv6Address("2001:db8:1::1")
PEER = IPv6Address("fe80::5054:ff:fe12:3456")


def _opt(code: int, data: str | bytes) -> bytes:
    raw = bytes.fromhex(data) if isinstance(data, str) else data
    return code.to_bytes(2, "big") + len(raw).to_bytes(2, "big") + raw


def _solicit(*options: bytes, xid: str = "a1b2c3") -> bytes:
    return bytes.fromhex("01" + xid) + b"".join(options)


def _round_trip(wire: bytes) -> Dhcpv6Message:
    message = decode_dhcpv6(wire)
    assert encode_dhcpv6(message) == wire
    assert isinstance(message, Dhcpv6Message)
    return message


def _value(code: int, data: str | bytes) -> object:
    """The typed value of one option, after its message round-trips."""
    return _round_trip(_solicit(_opt(code, data))).option(code)


# Options 1 and 2: DUIDs


@pytest.mark.parametrize(
    ("data", "duid", "mac"),
    [
        (
            f"0001 0001 2b3c4d5e {MAC}",
            DuidLlt(1, 0x2B3C4D5E, bytes.fromhex(MAC)),
            "52:54:00:12:34:56",
        ),
        ("0002 00000009 0c0001", DuidEn(9, bytes.fromhex("0c0001")), None),
        (f"0003 0001 {MAC}", DuidLl(1, bytes.fromhex(MAC)), "52:54:00:12:34:56"),
        (f"0004 {UUID_HEX}", DuidUuid(uuid.UUID(UUID_HEX)), None),
        ("0005 abcd", DuidOther(5, b"\xab\xcd"), None),
        (f"0003 0006 {MAC}", DuidLl(6, bytes.fromhex(MAC)), None),
    ],
    ids=["llt", "en", "ll", "uuid", "unknown-type", "ll-ieee802"],
)
def test_every_duid_type_decodes_typed_and_round_trips(
    data: str, duid: object, mac: str | None
) -> None:
    message = _round_trip(_solicit(_opt(1, data), _opt(2, data)))
    assert message.client_id == duid
    assert message.server_id == duid
    assert message.client_id.mac == mac  # type: ignore[union-attr]
    assert Option.of(1, duid).data == bytes.fromhex(data)


def test_duid_uuid_reads_the_bytes_in_network_order() -> None:
    """RFC 6355 sends the UUID as RFC 4122 bytes, unlike DHCPv4 option 97's SMBIOS order."""
    duid = _value(1, f"0004 {UUID_HEX}")
    assert str(duid) == "UUID 8c2a7d6e-1f3b-4c5d-9e0f-112233445566"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ("0004 " + UUID_HEX[:-2], "DUID type 4 with 15 bytes after the type, expected exactly 16"),
        ("0001 0001 2b3c4d5e", "DUID type 1 with 6 bytes after the type, expected at least 7"),
        ("00", "length 1, expected 3 to 130 (a DUID)"),
        ("0002" + "00" * 129, "length 131, expected 3 to 130 (a DUID)"),
    ],
)
def test_a_duid_that_does_not_fit_its_type_is_invalid_but_kept(data: str, problem: str) -> None:
    message = _round_trip(_solicit(_opt(1, data)))
    found = message.get(1)
    assert found is not None and isinstance(found.value, InvalidValue)
    assert found.error == f"option 1 (client-id): {problem}"
    with pytest.raises(MalformedPacket, match=r"option 1 \(client-id\).*at offset 4$"):
        message.client_id  # noqa: B018


# Options 3, 4, 5, 13, 25, 26: identity associations and what they carry

STATUS_OK = _opt(13, b"\x00\x00All good")
IAADDR = _opt(5, bytes.fromhex("20010db8000000000000000000000101 00001194 00001c20") + STATUS_OK)


def test_ia_na_holds_its_addresses_and_their_status_codes() -> None:
    ia_na = _opt(3, bytes.fromhex("00000001 00000e10 00001518") + IAADDR + _opt(13, "0002"))
    (value,) = _round_trip(_solicit(ia_na)).ia_na
    assert (value.iaid, value.t1, value.t2) == (1, 3600, 5400)
    address, status = (option.value for option in value.options)
    assert address == IaAddress(
        IPv6Address("2001:db8::101"), 4500, 7200, (Option(13, b"\x00\x00All good"),)
    )
    assert address.options[0].value == Status(StatusCode.SUCCESS, "All good")
    assert status == Status(StatusCode.NO_ADDRS_AVAIL)
    assert str(value) == (
        "IAID 1 T1 3600 T2 5400 (iaaddr=2001:db8::101 preferred 4500 valid 7200"
        " (status-code=SUCCESS 'All good')) (status-code=NO_ADDRS_AVAIL)"
    )


def test_ia_ta_has_no_times_only_addresses() -> None:
    (value,) = _round_trip(_solicit(_opt(4, bytes.fromhex("00000007") + IAADDR))).ia_ta
    assert isinstance(value, IaTa) and value.iaid == 7
    assert isinstance(value.options[0].value, IaAddress)


def test_ia_pd_and_its_prefix_are_parsed() -> None:
    prefix = _opt(26, bytes.fromhex("00001194 00001c20 38 2001 0db8 0100 0000 0000 0000 0000 0000"))
    (value,) = _round_trip(
        _solicit(_opt(25, bytes.fromhex("00000002 00000000 00000000") + prefix))
    ).ia_pd
    assert isinstance(value, IaPd)
    (inner,) = value.options
    assert inner.value == IaPrefix(4500, 7200, 56, IPv6Address("2001:db8:100::"))
    assert str(inner.value.network) == "2001:db8:100::/56"  # type: ignore[attr-defined]


def test_a_message_may_carry_several_ia_na_in_order() -> None:
    first, second = _opt(3, "00000001 00000000 00000000"), _opt(3, "00000002 00000000 00000000")
    message = _round_trip(_solicit(first, second))
    assert [ia.iaid for ia in message.ia_na] == [1, 2]
    assert message.get(3) == Option(3, bytes.fromhex("00000001 00000000 00000000"))


def test_an_ia_whose_nested_option_overruns_is_invalid_with_the_byte() -> None:
    bad = _opt(3, bytes.fromhex("00000001 00000000 00000000 0005 0020 00"))
    found = _round_trip(_solicit(bad)).get(3)
    assert found is not None
    assert found.error == (
        "option 3 (ia-na): options inside: option 5 length 32 runs past the end"
        " (1 bytes left) at byte 12 of the option"
    )


def test_nested_spaces_type_only_what_the_rfc_puts_there() -> None:
    """An IA_NA inside an IAADDR stays raw bytes: nesting is at most three levels."""
    inner = _opt(3, "00000001 00000000 00000000")
    address = _opt(5, bytes.fromhex("20010db8000000000000000000000101 00000000 00000000") + inner)
    (value,) = _round_trip(
        _solicit(_opt(3, bytes.fromhex("00000001 00000000 00000000") + address))
    ).ia_na
    (found,) = value.options[0].value.options  # type: ignore[attr-defined]
    assert found.value == bytes.fromhex("00000001 00000000 00000000")


# The other options, one vector each


@pytest.mark.parametrize(
    ("code", "data", "value"),
    [
        (6, "003b 003c 0017 0018", (59, 60, 23, 24)),
        (6, "", ()),
        (7, "ff", 255),
        (8, "0064", 100),
        (12, "20010db8000000000000000000000001", IPv6Address("2001:db8::1")),
        (13, "0004 6e6f74206f6e206c696e6b", Status(StatusCode.NOT_ON_LINK, "not on link")),
        (13, "0099", Status(0x99)),
        (14, "", True),
        (15, "0004 69505845 0003 616263", (b"iPXE", b"abc")),
        (
            16,
            "00000157 0020" + b"PXEClient:Arch:00007:UNDI:003016".hex(),
            VendorClass(343, (b"PXEClient:Arch:00007:UNDI:003016",)),
        ),
        (
            17,
            "0000118b 0001 0002 abcd 0020 0000",
            VendorOptions(4491, ((1, b"\xab\xcd"), (32, b""))),
        ),
        (18, "657468302f31", b"eth0/1"),
        (
            23,
            "20010db8000000000000000000000035 20010db8000000000000000000000036",
            (IPv6Address("2001:db8::35"), IPv6Address("2001:db8::36")),
        ),
        (24, "07 6578616d706c65 03 636f6d 00 03 6c6162 00", ("example.com", "lab")),
        (37, "00000de9 0102030405", RemoteId(3561, bytes.fromhex("0102030405"))),
        (38, "737562736372696265722d37", b"subscriber-7"),
        (59, b"tftp://[2001:db8::1]/ipxe.efi".hex(), "tftp://[2001:db8::1]/ipxe.efi"),
        (60, "0005 72616d3d31 0005 7175696574", ("ram=1", "quiet")),
        (61, "0007 0010 0063", (ClientArch.EFI_BC, ClientArch.HTTP_X64, 0x63)),
        (62, "010310", NetworkInterfaceId(1, 3, 16)),
        (79, f"0001 {MAC}", LinkLayerAddress(1, bytes.fromhex(MAC))),
        (9999, "0102", b"\x01\x02"),
    ],
    ids=lambda item: repr(item)[:24],
)
def test_each_option_decodes_typed_round_trips_and_builds_the_same_bytes(
    code: int, data: str, value: object
) -> None:
    assert _value(code, data) == value
    assert Option.of(code, value).data == bytes.fromhex(data)


@pytest.mark.parametrize(
    ("code", "data", "problem"),
    [
        (8, "000001", "length 3, expected 2 (16-bit number)"),
        (14, "00", "length 1, expected 0 (an empty option)"),
        (23, "20010db8", "length 4, expected a multiple of 16 (IPv6 addresses)"),
        (61, "00", "length 1, expected a multiple of 2 (16-bit architecture types)"),
        (62, "0102", "length 2, expected 3 (network interface identifier)"),
        (16, "000001", "length 3, expected at least 4 (vendor class)"),
    ],
)
def test_bad_option_bytes_give_an_invalid_value_and_strict_access_raises_at_the_offset(
    code: int, data: str, problem: str
) -> None:
    message = _round_trip(_solicit(_opt(8, "0000"), _opt(code, data)))
    found = message.get_all(code)[-1]
    assert found.error == f"option {code} ({option_name(code)}): {problem}"
    with pytest.raises(MalformedPacket, match=r"at offset 10$"):
        message.options_of(code)


def test_unknown_options_keep_their_bytes_and_a_generated_name() -> None:
    message = _round_trip(_solicit(_opt(4242, "deadbeef")))
    assert str(message.options[0]) == "option-4242=de:ad:be:ef"


# Whole messages


def test_uefi_pxe_solicit_reads_like_the_firmware_meant_it() -> None:
    """What OVMF's PXEv6 client sends, as docs/firmware.md will describe it."""
    wire = _solicit(
        _opt(1, f"0004 {UUID_HEX}"),
        _opt(6, "003b 003c 0017 0018"),
        _opt(8, "0000"),
        _opt(3, "d0d0d0d0 00000000 00000000"),
        _opt(61, "0007"),
        _opt(62, "010310"),
        _opt(16, "00000157 0020" + b"PXEClient:Arch:00007:UNDI:003016".hex()),
    )
    message = _round_trip(wire)
    assert message.msg_type is MessageType.SOLICIT
    assert message.transaction_id == 0xA1B2C3
    assert message.oro == (59, 60, 23, 24)
    assert message.elapsed_time == 0
    assert message.client_arch == (ClientArch.EFI_BC,)
    assert message.nii == NetworkInterfaceId(1, 3, 16)
    assert message.vendor_class[0].data == (b"PXEClient:Arch:00007:UNDI:003016",)
    assert not message.rapid_commit
    assert message.boot_file_url is None


def test_every_message_type_keeps_its_number_and_unknown_types_use_the_plain_header() -> None:
    for number in range(1, 12):
        message = _round_trip(bytes([number]) + b"\x00\x00\x01")
        assert message.msg_type == number
        assert isinstance(message.msg_type, MessageType)
    odd = _round_trip(b"\xc8\x01\x02\x03" + _opt(8, "0001"))
    assert odd.msg_type == 200 and odd.elapsed_time == 1


def test_a_reply_built_through_the_api_has_the_rfc_layout() -> None:
    reply = Dhcpv6Message(
        msg_type=MessageType.ADVERTISE,
        transaction_id=0xA1B2C3,
        options=make_options(
            [
                (1, DuidLl(1, bytes.fromhex(MAC))),
                (
                    3,
                    IaNa(
                        1,
                        3600,
                        5400,
                        make_options([(5, IaAddress(IPv6Address("2001:db8::101"), 4500, 7200))]),
                    ),
                ),
                (59, "tftp://[2001:db8::1]/ipxe.efi"),
                (14, True),
            ]
        ),
    )
    expected = bytes.fromhex("02a1b2c3") + b"".join(
        [
            _opt(1, f"0003 0001 {MAC}"),
            _opt(
                3,
                bytes.fromhex("00000001 00000e10 00001518")
                + _opt(5, "20010db8000000000000000000000101 00001194 00001c20"),
            ),
            _opt(59, b"tftp://[2001:db8::1]/ipxe.efi"),
            _opt(14, ""),
        ]
    )
    assert encode_dhcpv6(reply) == expected
    assert decode_dhcpv6(expected) == reply


# Relays


def _relay(kind: int, hop: int, inner: bytes, *options: bytes) -> bytes:
    head = bytes([kind, hop]) + LINK.packed + PEER.packed
    return head + b"".join(options) + _opt(9, inner)


def test_relay_forw_carries_the_solicit_and_the_interface_id() -> None:
    solicit = _solicit(_opt(1, f"0003 0001 {MAC}"), _opt(8, "0000"))
    wire = _relay(12, 0, solicit, _opt(18, b"eth0/1"), _opt(79, f"0001 {MAC}"))
    relay = decode_dhcpv6(wire)
    assert encode_dhcpv6(relay) == wire
    assert isinstance(relay, Dhcpv6Relay)
    assert relay.msg_type is MessageType.RELAY_FORW
    assert (relay.hop_count, relay.link_address, relay.peer_address) == (0, LINK, PEER)
    assert relay.interface_id == b"eth0/1"
    assert relay.client_link_layer == LinkLayerAddress(1, bytes.fromhex(MAC))
    assert relay.relayed == decode_dhcpv6(solicit)
    assert relay.client_message.client_id == DuidLl(1, bytes.fromhex(MAC))


def test_nested_relays_decode_down_to_the_client_and_build_back_the_same_bytes() -> None:
    solicit = _solicit(_opt(8, "0000"))
    first = _relay(12, 0, solicit, _opt(18, b"port-1"))
    second = _relay(12, 1, first, _opt(37, "00000de9 0a0b"), _opt(38, b"sub"))
    outer = decode_dhcpv6(second)
    assert isinstance(outer, Dhcpv6Relay) and isinstance(outer.relayed, Dhcpv6Relay)
    assert outer.remote_id == RemoteId(3561, b"\x0a\x0b")
    assert outer.subscriber_id == b"sub"
    assert outer.relayed.interface_id == b"port-1"
    assert outer.client_message.msg_type is MessageType.SOLICIT
    built = Dhcpv6Relay.around(
        Dhcpv6Relay.around(
            decode_dhcpv6(solicit),
            msg_type=MessageType.RELAY_FORW,
            link_address=LINK,
            peer_address=PEER,
            options=[(18, b"port-1")],
        ),
        msg_type=MessageType.RELAY_FORW,
        hop_count=1,
        link_address=LINK,
        peer_address=PEER,
        options=[(37, RemoteId(3561, b"\x0a\x0b")), (38, b"sub")],
    )
    assert encode_dhcpv6(built) == second
    assert built == outer


def test_relay_repl_echoes_the_interface_id_around_an_advertise() -> None:
    advertise = bytes.fromhex("02a1b2c3") + _opt(13, "0000")
    wire = _relay(13, 0, advertise, _opt(18, b"eth0/1"))
    relay = decode_dhcpv6(wire)
    assert isinstance(relay, Dhcpv6Relay) and relay.msg_type is MessageType.RELAY_REPL
    assert relay.interface_id == b"eth0/1"
    assert relay.client_message.msg_type is MessageType.ADVERTISE


def test_relays_nested_deeper_than_nine_are_refused() -> None:
    wire = _solicit()
    for hop in range(9):
        wire = _relay(12, hop, wire)
    assert isinstance(decode_dhcpv6(wire), Dhcpv6Relay)
    with pytest.raises(MalformedPacket, match="RELAY-FORW nested 10 relays deep, more than 9"):
        decode_dhcpv6(_relay(12, 9, wire))


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"", "empty DHCPv6 message"),
        (b"\x01\x00\x00", r"truncated DHCPv6 header: 3 bytes, need 4, at offset 0"),
        (b"\x0c" + bytes(20), r"truncated RELAY-FORW header: 21 bytes, need 34"),
        (
            _solicit(b"\x00\x08\x00"),
            r"options: 3 byte\(s\) left, too few for an option header, at offset 4",
        ),
        (
            _solicit(b"\x00\x08\x00\x05\x00"),
            r"options: option 8 length 5 runs past the end \(1 bytes left\), at offset 4",
        ),
        (
            bytes([12, 0]) + bytes(32) + _opt(18, "00"),
            r"RELAY-FORW without a relay message option \(9\)",
        ),
        (_relay(12, 0, b"\x01\x00"), r"truncated DHCPv6 header: 2 bytes, need 4, at offset 38"),
    ],
    ids=["empty", "short", "short-relay", "short-option", "overrun", "no-option-9", "bad-inner"],
)
def test_framing_errors_raise_malformed_packet_saying_where(wire: bytes, message: str) -> None:
    with pytest.raises(MalformedPacket, match=message):
        decode_dhcpv6(wire)


def test_what_cannot_go_on_the_wire_raises_encode_error() -> None:
    """A builder bug (a 25-bit transaction id, an option over 65535 bytes) is named."""
    with pytest.raises(EncodeError, match=r"SOLICIT header: .*16777216"):
        encode_dhcpv6(Dhcpv6Message(msg_type=MessageType.SOLICIT, transaction_id=1 << 24))
    too_big = Dhcpv6Message(msg_type=MessageType.SOLICIT, options=(Option(18, bytes(65536)),))
    with pytest.raises(EncodeError, match="option 18: 65536 bytes do not fit"):
        encode_dhcpv6(too_big)


def test_every_iana_message_type_has_its_name() -> None:
    assert [str(MessageType(n)) for n in (11, 12, 20, 36)] == [
        "INFORMATION-REQUEST",
        "RELAY-FORW",
        "DHCPV4-QUERY",
        "ADDR-REG-INFORM",
    ]
