"""Netboot over DHCPv6: option 59 by architecture, option 60, the vendor class echo as
EDK2's PXE and HTTP Boot drivers look for it, iPXE, proxy mode and the udp/4011 boot
service."""

from __future__ import annotations

from ipaddress import IPv6Address

import pytest

from protocols.dhcp.policy import BadBootTemplate, BootFamily
from protocols.dhcp.server import Mode
from protocols.dhcpv6.boot import BootSettings
from protocols.dhcpv6.leases import MemoryLeaseStore
from protocols.dhcpv6.options import BOOTFILE_PARAM, BOOTFILE_URL, VENDOR_CLASS, VendorClass
from protocols.dhcpv6.server import NoReply, Received, Reply
from tests.protocols.dhcpv6_engine_support import (
    BOOT,
    LINK_LOCAL,
    OTHER_DUID,
    PXE_UEFI,
    SERVER,
    SERVER_DUID,
    UUID_CLIENT,
    M,
    addresses,
    client_reply,
    ia,
    message,
    send,
    server,
    status,
)

HTTP_X64 = ((61, (16,)), (16, VendorClass(343, (b"HTTPClient:Arch:00016:UNDI:003001",))))
IPXE = ((15, (b"iPXE",)),)
PXE_ARM64 = ((61, (11,)), (16, VendorClass(343, (b"PXEClient:Arch:00011:UNDI:003001",))))
BOOT_SERVICE = Received(SERVER, (LINK_LOCAL, 4011), port=4011)


def _solicit(*options: tuple[int, object], **kwargs: object) -> object:
    engine = kwargs.pop("engine", None) or server(**kwargs)
    return send(engine, message(M.SOLICIT, ia(), *options))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "url"),
    [
        (PXE_UEFI, "tftp://[fd00:213:7::1]/syslinux.efi"),
        (PXE_ARM64, "tftp://[fd00:213:7::1]/arm64/grubaa64.efi"),
        (HTTP_X64, "http://[fd00:213:7::1]:8080/tftp/snponly.efi"),
        (IPXE, "http://[fd00:213:7::1]:8080/boot/52:54:00:12:34:56.ipxe"),
    ],
    ids=["uefi-pxe", "arm64-pxe", "uefi-http", "ipxe"],
)
def test_option_59_is_the_url_for_the_clients_architecture(options, url):
    advertise = client_reply(_solicit(*options))
    assert advertise.boot_file_url == url
    assert len(addresses(advertise)) == 1


def test_a_client_that_is_not_booting_gets_an_address_and_no_url():
    advertise = client_reply(_solicit())
    assert advertise.get(BOOTFILE_URL) is None and len(addresses(advertise)) == 1


def test_full_mode_never_echoes_pxeclient_so_edk2_boots_from_the_offer():
    """Echoed, EDK2 would take a 'BINL' offer and ask udp/4011 for its file first."""
    assert client_reply(_solicit(*PXE_UEFI)).get(VENDOR_CLASS) is None


def test_http_boot_gets_httpclient_echoed_in_advertise_and_reply():
    engine = server()
    advertise = client_reply(send(engine, message(M.SOLICIT, ia(), *HTTP_X64)))
    (address,) = addresses(advertise)
    request = message(M.REQUEST, ia(1, address), *HTTP_X64, server_id=SERVER_DUID)
    reply = client_reply(send(engine, request))
    for answer in (advertise, reply):
        assert answer.vendor_class == (VendorClass(343, (b"HTTPClient",)),)
        assert answer.boot_file_url.startswith("http://[fd00:213:7::1]:8080/")


def test_the_reply_to_request_carries_the_url_too():
    engine = server()
    (address,) = addresses(client_reply(send(engine, message(M.SOLICIT, ia(), *PXE_UEFI))))
    request = message(M.REQUEST, ia(1, address), *PXE_UEFI, server_id=SERVER_DUID)
    assert client_reply(send(engine, request)).boot_file_url.endswith("/syslinux.efi")


def test_option_60_when_the_settings_ask_for_it():
    boot = BootSettings(
        urls=BOOT.urls, params={BootFamily.UEFI: ("root=[{server6}]:/srv", "quiet")}
    )
    advertise = client_reply(_solicit(*PXE_UEFI, boot=boot))
    assert advertise.option(BOOTFILE_PARAM) == ("root=[fd00:213:7::1]:/srv", "quiet")
    assert client_reply(_solicit(*HTTP_X64, boot=boot)).get(BOOTFILE_PARAM) is None


def test_server_address_setting_overrides_the_interfaces_address_in_urls():
    advertise = client_reply(_solicit(*PXE_UEFI, server_address=IPv6Address("2001:db8::69")))
    assert advertise.boot_file_url == "tftp://[2001:db8::69]/syslinux.efi"


def test_a_hosts_own_loader_overrides_the_table():
    """The reserved host, known by the EUI-64 link-local address of its MAC."""
    received = Received(SERVER, (IPv6Address("fe80::5054:ff:fe00:21"), 546))
    engine = server()
    solicit = message(M.SOLICIT, ia(), *PXE_UEFI, client=UUID_CLIENT)
    advertise = client_reply(send(engine, solicit, received))
    assert advertise.boot_file_url == "tftp://[fd00:213:7::1]/grubx64.efi"


def test_an_architecture_without_a_url_gets_an_address_and_a_reason():
    riscv = ((61, (27,)), (16, VendorClass(343, (b"PXEClient:Arch:00027",))))
    action = _solicit(*riscv)
    assert isinstance(action, Reply) and action.no_loader
    assert "dhcp6.boot.riscv64" in action.no_loader
    assert client_reply(action).get(BOOTFILE_URL) is None


def test_a_mac_template_for_a_client_whose_mac_is_unknown_gets_no_url():
    unknown = Received(SERVER, (IPv6Address("fe80::1:2:3:4"), 546))
    action = send(server(), message(M.SOLICIT, ia(), *IPXE, client=UUID_CLIENT), unknown)
    assert isinstance(action, Reply) and "MAC is unknown" in action.no_loader


def test_boot_templates_must_bracket_the_address_and_use_known_fields():
    for bad in ("tftp://{server6}/x.efi", "tftp://[{server}]/x.efi", "http://[{server6}]/{0}"):
        with pytest.raises(BadBootTemplate):
            BootSettings(urls={BootFamily.UEFI: bad})


# -- proxy mode ----------------------------------------------------------------


def test_proxy_advertise_has_boot_options_and_no_ia_and_no_status():
    store = MemoryLeaseStore()
    advertise = client_reply(_solicit(*PXE_UEFI, engine=server(store, mode=Mode.PROXY)))
    assert advertise.msg_type == M.ADVERTISE
    assert advertise.ia_na == () and status(advertise) is None
    assert advertise.boot_file_url == "tftp://[fd00:213:7::1]/syslinux.efi"
    assert advertise.vendor_class == (VendorClass(343, (b"PXEClient",)),)
    assert advertise.server_id == SERVER_DUID and store.leases() == []


def test_proxy_mode_ignores_clients_that_are_not_booting():
    action = _solicit(mode=Mode.PROXY)
    assert isinstance(action, NoReply) and "proxy mode" in action.reason


def test_proxy_mode_answers_information_request_with_boot_options():
    engine = server(mode=Mode.PROXY)
    reply = client_reply(send(engine, message(M.INFORMATION_REQUEST, *IPXE)))
    assert reply.msg_type == M.REPLY and reply.boot_file_url.endswith(".ipxe")


def test_proxy_mode_leaves_requests_and_renewals_to_the_other_server():
    engine = server(mode=Mode.PROXY)
    for kind in (M.REQUEST, M.RENEW, M.RELEASE):
        ours = message(kind, ia(), *PXE_UEFI, server_id=SERVER_DUID)
        assert isinstance(send(engine, ours), NoReply)


def test_proxy_mode_works_without_any_subnet():
    advertise = client_reply(_solicit(*HTTP_X64, mode=Mode.PROXY, links=()))
    assert advertise.vendor_class == (VendorClass(343, (b"HTTPClient",)),)


def test_boot_service_on_4011_answers_edk2s_request_with_the_url():
    """EDK2 copies its REQUEST without IAs, adds the proxy's server id, sends it to 4011."""
    request = message(M.REQUEST, *PXE_UEFI, server_id=SERVER_DUID)
    for mode in (Mode.PROXY, Mode.FULL):
        action = send(server(mode=mode), request, BOOT_SERVICE)
        assert isinstance(action, Reply) and action.destination == (LINK_LOCAL, 4011)
        reply = client_reply(action)
        assert reply.msg_type == M.REPLY and reply.ia_na == ()
        assert reply.boot_file_url == "tftp://[fd00:213:7::1]/syslinux.efi"
        assert reply.vendor_class == (VendorClass(343, (b"PXEClient",)),)


def test_boot_service_ignores_other_servers_and_other_messages():
    other = message(M.REQUEST, *PXE_UEFI, server_id=OTHER_DUID)
    assert isinstance(send(server(), other, BOOT_SERVICE), NoReply)
    assert isinstance(send(server(), message(M.SOLICIT, ia(), *PXE_UEFI), BOOT_SERVICE), NoReply)
