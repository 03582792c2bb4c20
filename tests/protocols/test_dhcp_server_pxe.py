"""PXE answers from the engine, in full and proxy mode, for the clients docs/firmware.md saw."""

from __future__ import annotations

from ipaddress import IPv4Address

from protocols.dhcp.options import MessageType
from protocols.dhcp.policy import BootFamily, BootSettings
from protocols.dhcp.server import BROADCAST, Mode, NoReply, Received
from tests.protocols.dhcp_engine_support import (
    MAC,
    ON_LAB,
    RESERVED_MAC,
    SERVER,
    reply_packet,
    request,
    server,
)

D, R = MessageType.DISCOVER, MessageType.REQUEST
NOW = 1000.0
UUID = bytes([0]) + bytes(range(16))
NDI = bytes([1, 3, 0])
TFTP = IPv4Address("10.213.7.5")

# Options as the firmware sends them (docs/firmware.md "DHCP, as the clients sent it").
OVMF = (
    (57, 1472),
    (55, [1, 3, 6, 66, 67]),
    (97, UUID),
    (94, NDI),
    (93, [7]),
    (60, "PXEClient:Arch:00007:UNDI:003000"),
)
IPXE_BIOS = (
    (57, 1472),
    (93, [0]),
    (94, NDI),
    (60, "PXEClient:Arch:00000:UNDI:002001"),
    (77, b"iPXE"),
    (55, [1, 3, 6, 67]),
    (175, b"\x15\x01\x01"),
    (97, UUID),
)
BIOS_ROM = ((60, "PXEClient:Arch:00000:UNDI:002001"), (93, [0]), (97, UUID))
OVMF_HTTP = ((55, [1, 3, 235]), (93, [16]), (60, "HTTPClient:Arch:00016:UNDI:003000"))
UEFI_SECOND = ((57, 65280), (55, [1, 3, 6]))


def offer_for(options, mac=MAC, **overrides):
    return reply_packet(
        server(**overrides).handle_datagram(request(D, mac, options=options), ON_LAB, NOW)
    )


def test_ovmf_gets_the_uefi_loader_with_pxeclient_and_discovery_control():
    """60 PXEClient must come with 43 = 06 01 08 or OVMF goes to 4011 and fails (PXE-E16)."""
    offer = offer_for(OVMF)
    assert offer.boot_file == "syslinux.efi"
    assert offer.option(67) == "syslinux.efi"
    assert offer.option(66) == str(SERVER)
    assert offer.siaddr == SERVER
    assert offer.get(60).data == b"PXEClient"
    assert offer.get(43).data == bytes([6, 1, 8, 255])
    assert (offer.get(97).data, offer.get(94).data) == (UUID, NDI)


def test_bios_rom_without_prl_gets_the_bios_loader_in_the_file_field():
    offer = offer_for(BIOS_ROM)
    assert offer.boot_file == "pxelinux.0"


def test_ipxe_gets_its_script_url_not_a_loader():
    offer = offer_for(IPXE_BIOS)
    assert offer.boot_file == f"http://{SERVER}:80/boot/{MAC}.ipxe"
    assert offer.option(67) == offer.boot_file


def test_uefi_http_boot_gets_the_url_and_httpclient_echo_in_offer_and_ack():
    engine = server()
    offer = reply_packet(engine.handle_datagram(request(D, options=OVMF_HTTP), ON_LAB, NOW))
    options = (*OVMF_HTTP, (54, SERVER), (50, offer.yiaddr))
    ack = reply_packet(engine.handle_datagram(request(R, options=options), ON_LAB, NOW))
    for reply in (offer, ack):
        assert reply.boot_file == f"http://{SERVER}:80/tftp/snponly.efi"
        assert reply.get(60).data == b"HTTPClient"
        assert reply.get(43) is None


def test_uefi_second_dhcp_gets_a_lease_but_no_boot_information():
    offer = offer_for(UEFI_SECOND)
    assert offer.yiaddr != IPv4Address(0)
    assert offer.boot_file == "" and offer.get(60) is None and offer.get(67) is None


def test_every_uefi_phase_gets_the_same_address_keyed_on_chaddr():
    """OVMF sends no option 61; the PXE phase and the plain second DHCP share the lease."""
    engine = server()
    pxe = reply_packet(engine.handle_datagram(request(D, options=OVMF), ON_LAB, NOW))
    engine.handle_datagram(request(R, options=(*OVMF, (54, SERVER), (50, pxe.yiaddr))), ON_LAB, NOW)
    second = reply_packet(engine.handle_datagram(request(D, options=UEFI_SECOND), ON_LAB, NOW + 20))
    assert second.yiaddr == pxe.yiaddr


def test_host_profile_loader_overrides_the_default():
    assert offer_for(OVMF, RESERVED_MAC).boot_file == "grubx64.efi"


def test_next_server_can_differ_from_the_interface_address():
    offer = offer_for(OVMF, server_address=TFTP)
    assert offer.siaddr == TFTP and offer.server_id == SERVER


def test_boot_url_too_long_for_the_file_field_goes_in_option_67_only():
    long_url = "http://{server}/" + "x" * 150 + ".ipxe"
    boot = BootSettings(files={BootFamily.IPXE: long_url})
    offer = offer_for(IPXE_BIOS, boot=boot)
    assert offer.option(67).endswith("x.ipxe")
    assert offer.boot_file == ""


# -- proxy mode ---------------------------------------------------------------


def test_proxy_offer_has_no_address_and_names_us_as_boot_server():
    action = server(mode=Mode.PROXY).handle_datagram(request(D, options=OVMF), ON_LAB, NOW)
    offer = reply_packet(action)
    assert offer.message_type == MessageType.OFFER
    assert offer.yiaddr == IPv4Address(0)
    assert (offer.siaddr, offer.server_id) == (SERVER, SERVER)
    assert offer.get(60).data == b"PXEClient"
    assert offer.get(97).data == UUID
    assert offer.get(43) is None and offer.boot_file == ""
    assert action.destination == (BROADCAST, 68)


def test_proxy_ignores_non_pxe_clients_and_requests_on_67():
    engine = server(mode=Mode.PROXY)
    assert isinstance(engine.handle_datagram(request(D, options=UEFI_SECOND), ON_LAB, NOW), NoReply)
    other_request = request(R, options=(*OVMF, (54, IPv4Address("10.213.7.2"))))
    assert isinstance(engine.handle_datagram(other_request, ON_LAB, NOW), NoReply)
    assert isinstance(engine.handle_datagram(request(MessageType.INFORM), ON_LAB, NOW), NoReply)


def test_proxy_request_on_4011_gets_the_file_unicast_to_its_source_port():
    """OVMF sends from port 4011 and listens only there."""
    client = IPv4Address("10.213.7.150")
    received = Received(SERVER, (client, 4011), port=4011)
    action = server(mode=Mode.PROXY).handle_datagram(
        request(R, options=OVMF, ciaddr=client), received, NOW
    )
    ack = reply_packet(action)
    assert ack.message_type == MessageType.ACK
    assert (ack.boot_file, ack.siaddr, ack.server_id) == ("syslinux.efi", SERVER, SERVER)
    assert ack.get(60).data == b"PXEClient"
    assert action.destination == (client, 4011)


def test_proxy_request_echoes_the_boot_item_asked_for():
    client = IPv4Address("10.213.7.150")
    received = Received(SERVER, (client, 68), port=4011)
    item = bytes([71, 4, 0x80, 0, 0, 0, 255])
    options = (*BIOS_ROM, (43, item))
    action = server(mode=Mode.PROXY).handle_datagram(request(R, options=options), received, NOW)
    ack = reply_packet(action)
    assert ack.get(43).data == item
    assert ack.boot_file == "pxelinux.0"
    assert action.destination == (client, 68)


def test_proxy_port_ignores_non_pxe_requests():
    received = Received(SERVER, (IPv4Address("10.213.7.150"), 68), port=4011)
    action = server(mode=Mode.PROXY).handle_datagram(request(R), received, NOW)
    assert isinstance(action, NoReply)


def test_proxy_mode_never_hands_out_addresses():
    from protocols.dhcp.leases import MemoryLeaseStore

    store = MemoryLeaseStore()
    engine = server(store, mode=Mode.PROXY)
    engine.handle_datagram(request(D, options=OVMF), ON_LAB, NOW)
    engine.handle_datagram(request(None), ON_LAB, NOW)
    assert store.lease_for(MAC, NOW) is None


def test_proxy_mode_honours_allow_unknown():
    engine = server(mode=Mode.PROXY, allow_unknown=False)
    assert isinstance(engine.handle_datagram(request(D, options=OVMF), ON_LAB, NOW), NoReply)


def test_proxy_ack_with_a_long_url_carries_it_in_option_67():
    long_url = "http://{server}/" + "x" * 150 + ".ipxe"
    boot = BootSettings(files={BootFamily.IPXE: long_url})
    received = Received(SERVER, (IPv4Address("10.213.7.150"), 68), port=4011)
    action = server(mode=Mode.PROXY, boot=boot).handle_datagram(
        request(R, options=IPXE_BIOS), received, NOW
    )
    ack = reply_packet(action)
    assert ack.option(67).endswith("x.ipxe") and ack.boot_file == ""


def test_boot_server_without_a_file_for_the_client_says_so():
    boot = BootSettings(files={BootFamily.BIOS: "pxelinux.0"})
    received = Received(SERVER, (IPv4Address("10.213.7.150"), 4011), port=4011)
    action = server(mode=Mode.PROXY, boot=boot).handle_datagram(
        request(R, options=OVMF), received, NOW
    )
    assert isinstance(action, NoReply) and "no boot file" in action.reason


ARM64_UEFI = ((55, [1, 3, 6, 66, 67]), (93, [11]), (60, "PXEClient:Arch:00011:UNDI:003000"))


def test_an_arm64_server_gets_an_address_and_no_x86_loader_when_arm64_has_none():
    """Issue 13: with dhcp.boot {bios, uefi} only, ARM64 was handed the x86-64 loader."""
    action = server().handle_datagram(request(D, options=ARM64_UEFI), ON_LAB, NOW)
    offer = reply_packet(action)
    assert offer.yiaddr != IPv4Address(0) and offer.boot_file == ""
    assert offer.option(67) is None and offer.get(60) is None and offer.get(43) is None
    assert "no boot file: no loader for ARM 64-bit UEFI: set dhcp.boot.arm64" in action.reason


def test_an_arm64_server_gets_the_arm64_loader_when_there_is_one():
    files = {BootFamily.BIOS: "pxelinux.0", BootFamily.UEFI: "grubx64.efi"}
    files[BootFamily.ARM64] = "grubaa64.efi"
    offer = offer_for(ARM64_UEFI, boot=BootSettings(files=files))
    assert offer.boot_file == "grubaa64.efi" and offer.get(60).data == b"PXEClient"


def test_proxy_mode_stays_silent_for_an_architecture_it_has_no_loader_for():
    action = server(mode=Mode.PROXY).handle_datagram(request(D, options=ARM64_UEFI), ON_LAB, NOW)
    assert isinstance(action, NoReply) and "set dhcp.boot.arm64" in action.reason
