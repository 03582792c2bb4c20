"""What real firmware sent in the project's own QEMU boot captures (tests/captures/qemu-*.pcap).

These are the evidence behind docs/firmware.md: iPXE's bare option 77, OVMF's DISCOVER without a
client id, the UEFI "second DHCP", OVMF's ERROR 8 size probe and windowsize 4, pxelinux's
probe order, iPXE's proxyDHCP request to udp/4011, AAVMF's arch 11, the files Debian's
signed shim and GRUB ask for on x86 (Secure Boot) and ARM64, and OVMF's PXEv6 client
(DHCPv6 SOLICIT, TFTP over IPv6 at the IPv6 minimum MTU's block size). Each test decodes
the packets with the project's own wire codecs, so a codec change that misreads real
firmware fails here by name.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import TypeVar

import pytest

from lab.qemu import Firmware, Machine
from protocols.dhcp.options import NetworkInterfaceId
from protocols.dhcp.wire import BROADCAST_FLAG, DhcpPacket, decode_dhcp
from protocols.dhcpv6.allocation import mac_from_link_local
from protocols.dhcpv6.duid import DuidUuid
from protocols.dhcpv6.options import ENTERPRISE_INTEL, IaAddress, VendorClass
from protocols.dhcpv6.wire import Dhcpv6Message, MessageType, decode_dhcpv6
from protocols.tftp.wire import (
    Ack,
    Data,
    Error,
    ErrorCode,
    Message,
    OptionAck,
    ReadRequest,
    decode_tftp,
)
from pxed.pcap.classify import Protocol
from pxed.pcap.dissect import Datagram, IPAddress
from tests.captures.trim import trim
from tests.replay.corpus import OWN, replay

IPXE_BIOS = "qemu-ipxe-bios-pxelinux"
IPXE_EFI = "qemu-ovmf-ipxe-efi-syslinux"
OVMF_PXE = "qemu-ovmf-pxe-syslinux-efi"
IPXE_HTTP = "qemu-ipxe-bios-http"
PROXY = "qemu-ipxe-bios-proxydhcp"
UNKNOWN = "qemu-ipxe-bios-unknown-mac"
DNSMASQ = "qemu-ipxe-bios-pxelinux-dnsmasq"
SECURE_BOOT = "qemu-ovmf-secureboot-shim-grub"
ARM64 = "qemu-aavmf-arm64-shim-grub"
OVMF_PXEV6 = "qemu-ovmf-pxev6-grub"
IPXE_HTTP6 = "qemu-ipxe-bios-http-ipv6"
IPXE_EFI_HTTP6 = "qemu-ovmf-ipxe-efi-http-ipv6"
IPXE6_CAPTURES = (IPXE_HTTP6, IPXE_EFI_HTTP6)
SHIM_GRUB_CAPTURES = (SECURE_BOOT, ARM64)
IPXE_CAPTURES = (IPXE_BIOS, IPXE_EFI, IPXE_HTTP, PROXY, UNKNOWN, DNSMASQ)
UEFI_CAPTURES = (IPXE_EFI, OVMF_PXE)
PXELINUX_CAPTURES = (IPXE_BIOS, PROXY, DNSMASQ)
TFTP_CAPTURES = (IPXE_BIOS, IPXE_EFI, OVMF_PXE, PROXY, DNSMASQ, *SHIM_GRUB_CAPTURES, OVMF_PXEV6)
ALL_BOOTS = (*IPXE_CAPTURES, OVMF_PXE, *SHIM_GRUB_CAPTURES, OVMF_PXEV6, *IPXE6_CAPTURES)

IPXE_OPTION_ORDER = [53, 57, 93, 94, 60, 77, 55, 175, 61, 97]
OVMF_OPTION_ORDER = [53, 57, 55, 97, 94, 93, 60]
SECOND_DHCP_OPTION_ORDER = [53, 57, 55]
PXEV6_SOLICIT_OPTION_ORDER = [1, 8, 3, 6, 62, 61, 16]
PXEV6_REQUEST_OPTION_ORDER = [1, 8, 2, 3, 6, 62, 61, 16]
IPXE6_SOLICIT_OPTION_ORDER = [1, 3, 6, 16, 61, 62, 15, 8]

M = TypeVar("M", bound=Message)


def _dhcp(name: str) -> list[tuple[Datagram, DhcpPacket]]:
    return [
        (r.datagram, decode_dhcp(r.datagram.payload))
        for r in replay(OWN / f"{name}.pcap")
        if r.protocol is Protocol.DHCP
    ]


def _data(packet: DhcpPacket, code: int) -> bytes:
    option = packet.get(code)
    assert option is not None, f"no option {code}"
    return option.data


def _dhcp6(name: str) -> list[tuple[Datagram, Dhcpv6Message]]:
    found = []
    for result in replay(OWN / f"{name}.pcap"):
        if result.protocol is Protocol.DHCPV6:
            message = decode_dhcpv6(result.datagram.payload)
            assert isinstance(message, Dhcpv6Message), "no relay on the lab's one link"
            found.append((result.datagram, message))
    return found


def _requests(name: str) -> list[DhcpPacket]:
    return [packet for _, packet in _dhcp(name) if packet.op == 1]


def _ipxe_requests(name: str) -> list[DhcpPacket]:
    return [p for p in _requests(name) if p.get(175) is not None]


@dataclass
class Transfer:
    """One TFTP transfer: the client's endpoint and every message of it, in capture order."""

    client: tuple[IPAddress, int]
    request: ReadRequest
    messages: list[tuple[Datagram, Message]] = field(default_factory=list)

    def of_type(self, kind: type[M]) -> list[M]:
        return [message for _, message in self.messages if isinstance(message, kind)]


def _transfers(name: str) -> list[Transfer]:
    transfers: list[Transfer] = []
    by_client: dict[tuple[IPAddress, int], Transfer] = {}
    for result in replay(OWN / f"{name}.pcap"):
        if result.protocol is not Protocol.TFTP:
            continue
        datagram = result.datagram
        message = decode_tftp(datagram.payload)
        if isinstance(message, ReadRequest):
            client = (datagram.src, datagram.sport)
            by_client[client] = Transfer(client, message)
            transfers.append(by_client[client])
        transfer = (
            by_client.get((datagram.src, datagram.sport))
            or by_client[(datagram.dst, datagram.dport)]
        )
        transfer.messages.append((datagram, message))
    return transfers


# --- DHCP --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", IPXE_CAPTURES)
def test_ipxe_sends_option_77_as_the_bare_4_byte_string_not_rfc3004(name: str) -> None:
    """RFC 3004 would be length-prefixed (04 'iPXE'); iPXE sends the 4 bytes alone."""
    requests = _ipxe_requests(name)
    assert requests
    for packet in requests:
        option = packet.get(77)
        assert option is not None
        assert option.data == b"iPXE"


@pytest.mark.parametrize(
    ("name", "arch", "vendor_class"),
    [
        (IPXE_BIOS, 0, "PXEClient:Arch:00000:UNDI:002001"),
        (IPXE_EFI, 7, "PXEClient:Arch:00007:UNDI:003010"),
    ],
)
def test_ipxe_discover_options_in_order_with_175_client_id_and_no_broadcast_bit(
    name: str, arch: int, vendor_class: str
) -> None:
    discovers = [p for p in _ipxe_requests(name) if p.option(53) == 1]
    assert discovers
    for packet in discovers:
        assert [option.code for option in packet.options] == IPXE_OPTION_ORDER
        assert packet.client_arch == (arch,)
        assert packet.vendor_class == vendor_class
        assert len(_data(packet, 175)) > 0
        assert _data(packet, 61) == b"\x01" + packet.hardware_address
        assert packet.max_message_size == 1472
        assert not packet.flags & BROADCAST_FLAG


@pytest.mark.parametrize(
    ("name", "boots", "arch"), [(OVMF_PXE, 2, 7), (SECURE_BOOT, 1, 7), (ARM64, 1, 11)]
)
def test_ovmf_pxe_discover_has_no_option_61_and_sets_the_broadcast_bit(
    name: str, boots: int, arch: int
) -> None:
    """OVMF's PxeBcDxe, and AAVMF's (the same code built for ARM64), which says arch 11."""
    discovers = [p for p in _requests(name) if p.option(53) == 1 and p.is_pxe]
    assert len(discovers) == boots  # one per boot
    for packet in discovers:
        assert [option.code for option in packet.options] == OVMF_OPTION_ORDER
        assert packet.get(61) is None
        assert packet.flags & BROADCAST_FLAG
        assert packet.client_arch == (arch,)
        assert packet.vendor_class == f"PXEClient:Arch:{arch:05d}:UNDI:003000"
        assert packet.max_message_size == 1472


@pytest.mark.parametrize("name", UEFI_CAPTURES)
def test_uefi_second_dhcp_carries_no_pxe_options_and_gets_the_same_address(name: str) -> None:
    """After the loader starts, UEFI asks again with 53, 57, 55 only: no 60, 61, 93, 97."""
    exchanges = _dhcp(name)
    second = [p for _, p in exchanges if p.op == 1 and p.option(53) == 1 and p.get(60) is None]
    second = [p for p in second if p.get(61) is None]  # udhcpc in the guest sends 60 and 61
    assert second
    for packet in second:
        assert [option.code for option in packet.options] == SECOND_DHCP_OPTION_ORDER
        assert packet.flags & BROADCAST_FLAG
        assert packet.max_message_size == 65280
    xids = {p.xid for p in second}
    offered = {p.yiaddr for _, p in exchanges if p.op == 2 and p.xid in xids}
    pxe_offered = {p.yiaddr for _, p in exchanges if p.op == 2 and p.get(60) is not None}
    assert len(offered) == 1 and offered == pxe_offered


@pytest.mark.parametrize("name", SHIM_GRUB_CAPTURES)
def test_shim_and_grub_ask_for_no_dhcp_of_their_own_unlike_syslinux_efi(name: str) -> None:
    """No UEFI "second DHCP": after the firmware's DORA, only the guest's udhcpc asks."""
    requests = [p for p in _requests(name) if p.option(53) in (1, 3)]
    assert [(p.option(53), p.is_pxe) for p in requests] == [
        (1, True), (3, True), (1, False), (3, False)
    ]  # fmt: skip
    assert requests[2].vendor_class == "udhcp 1.35.0"


def test_proxydhcp_ipxe_requests_the_boot_file_from_port_4011_and_gets_no_address() -> None:
    """iPXE takes its address from dnsmasq, then asks pxed on udp/4011 for the boot file."""
    exchanges = _dhcp(PROXY)
    proxy = [(d, p) for d, p in exchanges if 4011 in (d.sport, d.dport)]
    assert [(d.dport, p.option(53)) for d, p in proxy] == [(4011, 3), (68, 5)]
    (request_dgram, request), (ack_dgram, ack) = proxy
    leased = {p.yiaddr for d, p in exchanges if p.option(53) == 5 and d.sport == 67}
    assert request_dgram.src in leased
    assert request_dgram.dst == ack_dgram.src
    assert _data(request, 77) == b"iPXE"
    assert ack.yiaddr == IPv4Address(0)
    assert ack.vendor_class == "PXEClient"
    proxy_offers = [p for d, p in exchanges if p.option(53) == 2 and d.src == ack_dgram.src]
    assert proxy_offers and all(p.yiaddr == IPv4Address(0) for p in proxy_offers)


def test_unknown_mac_capture_holds_only_the_machines_discovers() -> None:
    exchanges = _dhcp(UNKNOWN)
    assert [(d.sport, p.option(53)) for d, p in exchanges] == [(68, 1), (68, 1)]


# --- DHCPv6 ------------------------------------------------------------------------------


def _pxev6_mac() -> str:
    """The VM's MAC, from GRUB's per-MAC config name (no DHCPv6 message carries it)."""
    (name,) = [
        t.request.filename for t in _transfers(OVMF_PXEV6) if "grub.cfg-01-" in t.request.filename
    ]
    return name.rpartition("grub.cfg-01-")[2]


def test_ovmf_pxev6_solicits_after_pxev4_gave_up_with_four_unanswered_discovers() -> None:
    """PXEv4 goes first in OVMF's boot order; with pxed's DHCPv4 off nothing answers."""
    v4 = _dhcp(OVMF_PXEV6)
    assert [(p.option(53), p.client_arch) for _, p in v4] == [(1, (7,))] * 4
    first_solicit = _dhcp6(OVMF_PXEV6)[0][0]
    assert first_solicit.frame.number > v4[-1][0].frame.number


def test_ovmf_pxev6_solicit_options_oro_arch_7_and_vendor_class() -> None:
    solicits = [(d, m) for d, m in _dhcp6(OVMF_PXEV6) if m.msg_type == MessageType.SOLICIT]
    assert len(solicits) == 1
    ((datagram, solicit),) = solicits
    assert [option.code for option in solicit.options] == PXEV6_SOLICIT_OPTION_ORDER
    assert solicit.oro == (59, 60, 23, 16)
    assert solicit.client_arch == (7,)
    assert solicit.option(62) == NetworkInterfaceId(1, 3, 0)  # UNDI 3.0
    assert solicit.option(16) == VendorClass(
        ENTERPRISE_INTEL, (b"PXEClient:Arch:00007:UNDI:003000",)
    )
    assert not solicit.rapid_commit and solicit.elapsed_time == 0
    (ia,) = solicit.ia_na
    assert (ia.t1, ia.t2, ia.options) == (0xFFFFFFFF, 0xFFFFFFFF, ())
    assert str(datagram.dst) == "ff02::1:2"
    assert isinstance(datagram.src, IPv6Address)
    assert mac_from_link_local(datagram.src) == _pxev6_mac()  # EUI-64 of the MAC


def test_ovmf_pxev6_duid_is_a_uuid_the_smbios_uuid_in_guid_byte_order() -> None:
    """DUID type 4 (RFC 6355), no MAC in it; EDK2 writes the SMBIOS UUID's first three
    fields little-endian, as a GUID, not in RFC 4122 network order."""
    client_ids = {m.client_id for _, m in _dhcp6(OVMF_PXEV6) if m.msg_type != MessageType.ADVERTISE}
    (duid,) = client_ids
    assert isinstance(duid, DuidUuid) and duid.mac is None
    smbios = uuid.UUID(Machine("pxev6", _pxev6_mac(), "uefi", OWN).uuid)
    assert duid.uuid == uuid.UUID(bytes=smbios.bytes_le)


def test_ovmf_pxev6_requests_the_advertised_address_and_releases_it_before_grub() -> None:
    exchange = _dhcp6(OVMF_PXEV6)
    kinds = [m.msg_type for _, m in exchange]
    M = MessageType
    assert kinds == [M.SOLICIT, M.ADVERTISE, M.REQUEST, M.REPLY, M.RELEASE, M.REPLY]
    advertise, request = exchange[1][1], exchange[2][1]
    assert [option.code for option in request.options] == PXEV6_REQUEST_OPTION_ORDER
    assert request.server_id == advertise.server_id
    assert request.ia_na[0].options == advertise.ia_na[0].options
    assert advertise.boot_file_url is not None and advertise.boot_file_url.endswith("/grubx64.efi")
    release = exchange[4][0]
    grub_first = next(t for t in _transfers(OVMF_PXEV6) if t.request.filename.startswith("/grub"))
    loader_last = [t for t in _transfers(OVMF_PXEV6) if t.request.filename == "grubx64.efi"][-1]
    assert loader_last.messages[-1][0].frame.number < release.frame.number
    assert release.frame.number < grub_first.messages[0][0].frame.number
    leased = request.ia_na[0].options[0].value
    assert isinstance(leased, IaAddress)
    assert {t.client[0] for t in _transfers(OVMF_PXEV6)} == {leased.address}


@pytest.mark.parametrize(
    ("name", "firmware", "arch", "undi"),
    [(IPXE_HTTP6, "bios", 0, (2, 1)), (IPXE_EFI_HTTP6, "uefi", 7, (3, 10))],
)
def test_ipxe_solicits_with_user_class_ipxe_rfc_encoded_its_arch_and_its_smbios_uuid(
    name: str, firmware: Firmware, arch: int, undi: tuple[int, int]
) -> None:
    """Debian's iPXE ROMs over DHCPv6: user class 15 carries ``iPXE`` with RFC 8415's
    length prefix (unlike their bare DHCPv4 option 77), option 61 and the vendor class say
    the firmware's arch and UNDI version as over DHCPv4, and the DUID-UUID is the SMBIOS
    UUID in RFC 4122 order (OVMF's is byte-swapped)."""
    exchange = _dhcp6(name)
    M = MessageType
    assert [m.msg_type for _, m in exchange] == [M.SOLICIT, M.ADVERTISE, M.REQUEST, M.REPLY]
    datagram, solicit = exchange[0]
    assert [option.code for option in solicit.options] == IPXE6_SOLICIT_OPTION_ORDER
    user_class = solicit.get(15)
    assert user_class is not None and user_class.data == b"\x00\x04iPXE"
    assert solicit.user_class == (b"iPXE",)
    assert solicit.client_arch == (arch,)
    assert solicit.oro == (23, 24, 59, 60)
    assert solicit.option(62) == NetworkInterfaceId(1, *undi)  # as its DHCPv4 option 94
    vendor = f"PXEClient:Arch:{arch:05d}:UNDI:{undi[0]:03d}{undi[1]:03d}".encode()
    assert solicit.option(16) == VendorClass(ENTERPRISE_INTEL, (vendor,))
    assert not solicit.rapid_commit
    assert isinstance(datagram.src, IPv6Address)
    mac = mac_from_link_local(datagram.src)
    assert mac is not None
    duid = solicit.client_id
    assert isinstance(duid, DuidUuid)
    assert duid.uuid == uuid.UUID(Machine("ipxe6", mac, firmware, OWN).uuid)
    (offered,) = [o.value for o in exchange[1][1].ia_na[0].options]
    (asked,) = [o.value for o in exchange[2][1].ia_na[0].options]
    assert isinstance(offered, IaAddress) and isinstance(asked, IaAddress)
    # the REQUEST names the advertised address with zero lifetimes (OVMF's keeps them)
    assert (asked.address, asked.preferred, asked.valid) == (offered.address, 0, 0)
    url = exchange[3][1].boot_file_url
    assert url is not None and url.startswith("http://[") and url.endswith(f"/boot/{mac}.ipxe")


@pytest.mark.parametrize("name", IPXE6_CAPTURES)
def test_ipxe_runs_dhcpv4_and_dhcpv6_side_by_side_and_has_no_tftp(name: str) -> None:
    """The DISCOVERs (no DHCPv4 server) go on around the DHCPv6 exchange; the script,
    kernel and initrd come over HTTP (TCP, not captured)."""
    v4 = _dhcp(name)
    assert [p.option(53) for _, p in v4] == [1, 1, 1, 1]
    assert _data(v4[0][1], 77) == b"iPXE"
    first_v6 = _dhcp6(name)[0][0].frame.number
    assert v4[0][0].frame.number < first_v6 < v4[-1][0].frame.number
    assert _transfers(name) == []


# --- TFTP --------------------------------------------------------------------------------


def test_ovmf_probes_the_size_with_error_8_after_the_oack_then_rerequests_with_windowsize_4() -> (
    None
):
    transfers = [t for t in _transfers(OVMF_PXE) if t.request.filename == "syslinux.efi"]
    assert len(transfers) == 4  # probe and real fetch, on each of the two boots
    for probe, fetch in zip(transfers[::2], transfers[1::2], strict=True):
        assert probe.request.options == (("tsize", "0"), ("blksize", "1468"), ("windowsize", "4"))
        kinds = [type(message) for _, message in probe.messages]
        assert kinds == [ReadRequest, OptionAck, Error]
        (oack,) = probe.of_type(OptionAck)
        assert dict(oack.options)["tsize"] != "0"
        (error,) = probe.of_type(Error)
        assert error.code == ErrorCode.OPTION_REFUSED
        assert error.message == "User aborted the transfer"
        error_sender = next(d for d, m in probe.messages if isinstance(m, Error))
        assert (error_sender.src, error_sender.sport) == probe.client
        assert fetch.client[1] != probe.client[1], "the new RRQ comes from a new port"
        assert fetch.request.options == (("blksize", "1468"), ("windowsize", "4"))


def test_ovmf_acks_once_per_window_of_four_blocks() -> None:
    fetch = [t for t in _transfers(OVMF_PXE) if t.request.filename == "syslinux.efi"][1]
    sequence = [
        (type(m).__name__, getattr(m, "block", None))
        for _, m in fetch.messages
        if isinstance(m, Data | Ack)
    ]
    assert sequence[:6] == [
        ("Ack", 0), ("Data", 1), ("Data", 2), ("Data", 3), ("Data", 4), ("Ack", 4)
    ]  # fmt: skip


def test_ovmf_pxev6_probes_then_fetches_at_blksize_1228_the_ipv6_minimum_mtu() -> None:
    """1228 = 1280 (IPv6's minimum MTU) - 40 (IPv6) - 8 (UDP) - 4 (TFTP); over IPv4 the
    same firmware asks 1468 (1500 - 20 - 8 - 4). Size probe and window of 4 as over IPv4."""
    probe, fetch = [t for t in _transfers(OVMF_PXEV6) if t.request.filename == "grubx64.efi"]
    assert probe.request.options == (("tsize", "0"), ("blksize", "1228"), ("windowsize", "4"))
    assert [type(m) for _, m in probe.messages] == [ReadRequest, OptionAck, Error]
    assert probe.of_type(Error)[0].message == "User aborted the transfer"
    assert fetch.client[1] != probe.client[1]
    assert fetch.request.options == (("blksize", "1228"), ("windowsize", "4"))
    sequence = [(type(m).__name__, getattr(m, "block", None)) for _, m in fetch.messages[2:8]]
    assert sequence == [("Ack", 0), ("Data", 1), ("Data", 2), ("Data", 3), ("Data", 4), ("Ack", 4)]


def test_ovmf_pxev6_then_grub_fetch_their_files_in_order_over_ipv6() -> None:
    """GRUB over IPv6 asks what it asks over IPv4: lockstep, blksize 1024 and tsize."""
    transfers = _transfers(OVMF_PXEV6)
    lists = [f"/grub/x86_64-efi/{n}.lst" for n in ("command", "fs", "crypto", "terminal")]
    mac = _pxev6_mac()
    asked = [t.request.filename for t in transfers]
    assert asked == [
        "grubx64.efi", "grubx64.efi", *lists, "/grub/grub.cfg", f"/grub.cfg-01-{mac}",
        "/vmlinuz", "/initrd.gz",
    ]  # fmt: skip
    assert [t.request.filename for t in transfers[2:] if t.of_type(Error)] == lists
    assert {t.request.options for t in transfers[2:]} == {(("blksize", "1024"), ("tsize", "0"))}
    assert all(isinstance(t.client[0], IPv6Address) for t in transfers)


@pytest.mark.parametrize(
    ("name", "shim", "grub", "cpu", "kernel"),
    [
        (SECURE_BOOT, "shimx64.efi", "grubx64.efi", "x86_64-efi", "vmlinuz"),
        (ARM64, "shimaa64.efi", "grubaa64.efi", "arm64-efi", "vmlinuz-arm64"),
    ],
)
def test_shim_then_grub_ask_for_their_files_in_debians_order(
    name: str, shim: str, grub: str, cpu: str, kernel: str
) -> None:
    """Shim's optional files, GRUB beside it, GRUB's /grub prefix, pxed's per-MAC config."""
    transfers = _transfers(name)
    mac = _requests(name)[0].mac
    asked = [t.request.filename for t in transfers]
    lists = [f"/grub/{cpu}/{n}.lst" for n in ("command", "fs", "crypto", "terminal")]
    assert asked == [
        shim, shim,  # OVMF's size probe, then the fetch
        "revocations_sku.efi", "revocations_sbat.efi", "shim_certificate_0.efi", grub,
        *lists, "/grub/grub.cfg", f"/grub.cfg-01-{mac}", f"/{kernel}", asked[-1],
    ]  # fmt: skip
    not_found = [t.request.filename for t in transfers if t.of_type(Error)]
    assert not_found[1:] == asked[2:5] + lists  # [0] is the probe's ERROR 8


@pytest.mark.parametrize("name", SHIM_GRUB_CAPTURES)
def test_shim_fetches_grub_at_blksize_512_and_grub_fetches_lockstep_at_1024(name: str) -> None:
    """Shim asks 512 with windowsize 4; GRUB's own TFTP asks 1024 and tsize, no window."""
    transfers = _transfers(name)
    by_shim, by_grub = transfers[2:6], transfers[6:]
    assert {t.request.options for t in by_shim} == {(("blksize", "512"), ("windowsize", "4"))}
    assert {t.request.options for t in by_grub} == {(("blksize", "1024"), ("tsize", "0"))}
    kernel = by_grub[-2]
    sequence = [(type(m).__name__, getattr(m, "block", None)) for _, m in kernel.messages]
    assert sequence[2:7] == [("Ack", 0), ("Data", 1), ("Ack", 1), ("Data", 2), ("Ack", 2)]


def _uuid_name(packet: DhcpPacket) -> str:
    """Option 97's raw UUID bytes in order, as pxelinux prints them (not the SMBIOS text)."""
    raw = _data(packet, 97)[1:].hex()
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"


@pytest.mark.parametrize("name", (PROXY, DNSMASQ))
def test_pxelinux_probes_uuid_then_01_mac_and_the_missing_uuid_gets_error_1(name: str) -> None:
    discover = _ipxe_requests(name)[0]
    dashed = discover.mac.replace(":", "-")
    transfers = _transfers(name)
    names = [t.request.filename.lstrip("/") for t in transfers][:6]
    assert names == [
        "pxelinux.0",
        "ldlinux.c32",
        f"pxelinux.cfg/{_uuid_name(discover)}",
        f"pxelinux.cfg/01-{dashed}",
        "vmlinuz",
        "initrd.gz",
    ]
    (not_found,) = transfers[2].of_type(Error)
    assert not_found.code == ErrorCode.FILE_NOT_FOUND


@pytest.mark.parametrize("name", PXELINUX_CAPTURES)
def test_ipxe_asks_blksize_1432_and_pxelinux_tsize_then_blksize_1408(name: str) -> None:
    transfers = _transfers(name)
    by_ipxe = [t for t in transfers if t.request.filename == "pxelinux.0"]
    by_pxelinux = [t for t in transfers if t.request.filename != "pxelinux.0"]
    assert by_ipxe and by_pxelinux
    assert {t.request.options for t in by_ipxe} == {(("blksize", "1432"), ("tsize", "0"))}
    assert {t.request.options for t in by_pxelinux} == {(("tsize", "0"), ("blksize", "1408"))}


@pytest.mark.parametrize("name", TFTP_CAPTURES)
def test_every_trimmed_transfer_keeps_its_request_answer_and_short_acked_last_block(
    name: str,
) -> None:
    """trim.py kept the edges: each served file ends with a block below blksize, ACKed."""
    transfers = _transfers(name)
    assert transfers
    for transfer in transfers:
        answer = transfer.messages[1][1]
        assert isinstance(answer, OptionAck | Error)
        if isinstance(answer, Error) or transfer.of_type(Error):
            continue
        blksize = int(dict(answer.options).get("blksize", "512"))
        last = transfer.of_type(Data)[-1]
        assert isinstance(last, Data) and len(last.payload) < blksize
        assert transfer.of_type(Ack)[-1] == Ack(last.block)


@pytest.mark.parametrize("name", ALL_BOOTS)
def test_trimming_a_committed_capture_again_changes_no_byte(name: str, tmp_path: Path) -> None:
    """The files are trim.py's output as committed: frames copied byte for byte, nothing lost."""
    again = tmp_path / f"{name}.pcap"
    trim(OWN / f"{name}.pcap", again)
    assert again.read_bytes() == (OWN / f"{name}.pcap").read_bytes()
