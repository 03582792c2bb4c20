"""Client classification and boot choice, against what docs/firmware.md saw real firmware send."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.dhcp.policy import (
    ARCHITECTURES,
    BadBootTemplate,
    BootFamily,
    BootSettings,
    Client,
    architecture_name,
    check_template,
    choose_boot,
    classify,
    family_of,
    no_loader,
    proxy_ack,
    proxy_offer,
)
from tests.protocols.dhcp_engine_support import BOOT
from tests.support.fuzz import property_settings

SERVER = IPv4Address("10.213.7.1")
MAC = "52:54:00:12:34:56"
UUID = bytes(range(1, 18))
NDI = bytes([1, 3, 16])
SETTINGS = replace(BOOT, http_port=8080)  # the engine tests' boot files, HTTP on 8080


def arch(code: int) -> bytes:
    return code.to_bytes(2, "big")


# The docs/firmware.md table, as option dicts.
IPXE_BIOS = {
    60: b"PXEClient:Arch:00000:UNDI:002001",
    93: arch(0),
    94: NDI,
    77: b"iPXE",
    175: b"\x15\x01\x01",
    97: UUID,
}
IPXE_EFI = {**IPXE_BIOS, 60: b"PXEClient:Arch:00007:UNDI:003010", 93: arch(7)}
OVMF_PXE = {60: b"PXEClient:Arch:00007:UNDI:003000", 93: arch(7), 94: NDI, 97: UUID}
PXELINUX_BIOS = {60: b"PXEClient:Arch:00000:UNDI:002001", 93: arch(0), 97: UUID}
UEFI_SECOND_DHCP: dict[int, bytes] = {}
UDHCPC = {60: b"udhcp 1.35.0"}
OVMF_HTTP = {60: b"HTTPClient:Arch:00016:UNDI:003000", 93: arch(16)}


def boot(options, loader=None):
    return choose_boot(classify(options), MAC, SERVER, SETTINGS, loader)


def test_ipxe_bios_gets_its_script_url_never_a_loader():
    choice = boot(IPXE_BIOS)
    assert choice.family is BootFamily.IPXE
    assert choice.file == "http://10.213.7.1:8080/boot/52:54:00:12:34:56.ipxe"


def test_ipxe_efi_gets_its_script_url():
    assert boot(IPXE_EFI).family is BootFamily.IPXE


def test_ovmf_pxe_gets_the_uefi_loader():
    choice = boot(OVMF_PXE)
    assert (choice.family, choice.file, choice.next_server) == (
        BootFamily.UEFI,
        "syslinux.efi",
        SERVER,
    )


def test_bios_pxe_gets_the_bios_loader():
    assert boot(PXELINUX_BIOS).file == "pxelinux.0"


@pytest.mark.parametrize("options", [UEFI_SECOND_DHCP, UDHCPC], ids=["uefi-second", "udhcpc"])
def test_plain_dhcp_clients_get_no_boot_information(options):
    """UEFI's second DHCP and installers get a lease only: no loader to chainload by mistake."""
    assert boot(options) is None


def test_pxeclient_echo_always_carries_discovery_control_8():
    """OVMF reads 60 PXEClient without 43 sub-option 6 = 8 as proxyDHCP and fails with PXE-E16."""
    for options in (IPXE_BIOS, IPXE_EFI, OVMF_PXE, PXELINUX_BIOS):
        echoed = boot(options).options
        assert echoed[60] == b"PXEClient"
        assert echoed[43] == bytes([6, 1, 8, 255])


def test_pxe_clients_get_options_97_and_94_echoed():
    echoed = boot(OVMF_PXE).options
    assert (echoed[97], echoed[94]) == (UUID, NDI)


def test_pxe_client_without_uuid_gets_no_option_97():
    assert 97 not in boot({60: b"PXEClient", 93: arch(0)}).options


def test_uefi_http_boot_gets_url_and_httpclient_echo_without_option_43():
    choice = boot(OVMF_HTTP)
    assert choice.family is BootFamily.UEFI_HTTP
    assert choice.file == "http://10.213.7.1:8080/tftp/snponly.efi"
    assert choice.options[60] == b"HTTPClient"
    assert 43 not in choice.options


@pytest.mark.parametrize(
    ("user_class", "expected"),
    [
        (b"iPXE", True),
        (b"\x04iPXE", True),  # RFC 3004 length-prefixed
        (b"\x03foo\x04iPXE", True),
        (b"\x03foo", False),
        (b"gPXE", False),
        (b"\x09iPXE", False),  # truncated item is not iPXE
    ],
)
def test_ipxe_detected_from_option_77_in_both_forms(user_class, expected):
    assert classify({77: user_class}).ipxe is expected


def test_ipxe_detected_from_option_175_alone():
    assert classify({175: b""}).ipxe


@pytest.mark.parametrize(
    ("code", "family"),
    [
        (0, BootFamily.BIOS),
        (6, BootFamily.UEFI32),
        (7, BootFamily.UEFI),
        (9, BootFamily.UEFI),
        (10, BootFamily.ARM32),
        (11, BootFamily.ARM64),
        (27, BootFamily.RISCV64),
        (39, BootFamily.LOONGARCH64),
    ],
)
def test_option_93_architecture_picks_the_boot_family(code, family):
    assert family_of(Client(vendor_class=b"PXEClient", architectures=(code,)), None) is family


@pytest.mark.parametrize(
    ("code", "family"), [(16, BootFamily.UEFI_HTTP), (19, BootFamily.ARM64_HTTP)]
)
def test_http_boot_architectures_pick_their_own_url(code, family):
    assert family_of(Client(vendor_class=b"HTTPClient", architectures=(code,)), None) is family


@pytest.mark.parametrize("code", [15, 17, 18, 24, 28, 40])
def test_an_http_boot_architecture_without_a_key_gets_nothing_not_x86s_url(code):
    """An ARM32 or RISC-V HTTP Boot client handed x86-64's snponly.efi could not run it."""
    client = Client(vendor_class=b"HTTPClient", architectures=(code,))
    assert family_of(client, BootFamily.UEFI) is None


ARCH_OF_FAMILY = {
    BootFamily.BIOS: {0},
    BootFamily.UEFI: {7, 9},
    BootFamily.UEFI32: {6},
    BootFamily.ARM32: {10},
    BootFamily.ARM64: {11},
    BootFamily.RISCV64: {27},
    BootFamily.LOONGARCH64: {39},
    BootFamily.UEFI_HTTP: {16},
    BootFamily.ARM64_HTTP: {19},
}
EVERY_LOADER = BootSettings(
    files={family: f"{family.value}.efi" for family in BootFamily if family != BootFamily.IPXE}
    | {BootFamily.UEFI_HTTP: "http://{server}/x64.efi", BootFamily.ARM64_HTTP: "http://{server}/a"},
    unknown_arch=None,
)


def test_no_client_is_ever_offered_a_loader_of_another_architecture():
    """Issue 13: every option 93 code 0-65535, as PXE and as HTTP Boot, with every key set."""
    for code in range(65536):
        for vendor in (b"PXEClient:Arch:00000", b"HTTPClient:Arch:00016"):
            choice = choose_boot(
                Client(vendor_class=vendor, architectures=(code,)), MAC, SERVER, EVERY_LOADER
            )
            if choice is not None:
                assert code in ARCH_OF_FAMILY[choice.family], (code, vendor, choice.family)


def test_an_arm64_server_gets_no_x86_loader_when_arm64_has_none():
    """dhcp.boot with bios and uefi only: ARM64 got the x86-64 GRUB before."""
    settings = BootSettings(files={BootFamily.BIOS: "pxelinux.0", BootFamily.UEFI: "grubx64.efi"})
    arm64 = classify({60: b"PXEClient:Arch:00011:UNDI:003000", 93: arch(11)})
    assert choose_boot(arm64, MAC, SERVER, settings) is None
    assert proxy_offer(arm64, MAC, SERVER, settings) is None  # proxy mode stays silent
    assert no_loader(arm64, settings) == "no loader for ARM 64-bit UEFI: set dhcp.boot.arm64"


@pytest.mark.parametrize("code", [1, 2, 12, 21, 25, 33, 41, 42, 0xFFFF])
def test_unknown_or_unmapped_architecture_falls_to_configured_default(code):
    client = Client(vendor_class=b"PXEClient", architectures=(code,))
    assert family_of(client, BootFamily.UEFI) is BootFamily.UEFI
    assert family_of(client, BootFamily.BIOS) is BootFamily.BIOS


def test_pxe_client_without_option_93_is_bios():
    assert family_of(Client(vendor_class=b"PXEClient"), BootFamily.UEFI) is BootFamily.BIOS


def test_first_architecture_in_option_93_wins():
    assert classify({93: arch(7) + arch(0)}).architectures == (7, 0)
    assert family_of(classify({93: arch(7) + arch(0)}), BootFamily.BIOS) is BootFamily.UEFI


def test_odd_length_option_93_ignores_the_dangling_byte():
    assert classify({93: b"\x00\x07\x00"}).architectures == (7,)


def test_architecture_table_is_complete_and_named():
    assert sorted(ARCHITECTURES) == list(range(42))
    assert architecture_name(11) == "ARM 64-bit UEFI"
    assert architecture_name(500) == "unknown architecture 500"


def test_host_profile_loader_overrides_the_default_per_family():
    loader = {BootFamily.UEFI: "grubx64.efi"}
    assert boot(OVMF_PXE, loader).file == "grubx64.efi"
    assert boot(PXELINUX_BIOS, loader).file == "pxelinux.0"


def test_family_without_a_template_gets_no_boot_answer():
    settings = BootSettings(files={BootFamily.BIOS: "pxelinux.0"})
    assert choose_boot(classify(OVMF_HTTP), MAC, SERVER, settings) is None


def test_proxy_offer_answers_only_pxe_clients_without_file_or_option_43():
    offer = proxy_offer(classify(OVMF_PXE), MAC, SERVER, SETTINGS)
    assert offer.file == ""
    assert offer.next_server == SERVER
    assert offer.options == {60: b"PXEClient", 97: UUID, 94: NDI}
    assert proxy_offer(classify(UDHCPC), MAC, SERVER, SETTINGS) is None
    assert proxy_offer(classify(OVMF_HTTP), MAC, SERVER, SETTINGS) is None


def test_proxy_ack_carries_the_file_by_architecture():
    ack = proxy_ack(classify(OVMF_PXE), MAC, SERVER, SETTINGS)
    assert ack.file == "syslinux.efi"
    assert ack.options[60] == b"PXEClient"
    assert 43 not in ack.options


def test_proxy_ack_echoes_the_boot_item_the_request_named():
    request = {**PXELINUX_BIOS, 43: bytes([71, 4, 0x80, 0x00, 0x00, 0x00, 255])}
    ack = proxy_ack(classify(request), MAC, SERVER, SETTINGS)
    assert ack.options[43] == bytes([71, 4, 0x80, 0, 0, 0, 255])


def test_proxy_ack_ignores_non_pxe_clients():
    assert proxy_ack(classify(UDHCPC), MAC, SERVER, SETTINGS) is None


@pytest.mark.parametrize("template", ["{nope}", "{}", "{server", "{mac!z}", "{0}"])
def test_bad_templates_are_refused_at_configuration_time(template):
    with pytest.raises(BadBootTemplate):
        check_template(template)
    with pytest.raises(BadBootTemplate):
        BootSettings(files={BootFamily.BIOS: template})


options_strategy = st.dictionaries(
    st.sampled_from([43, 60, 77, 93, 94, 97, 175]), st.binary(max_size=40), max_size=7
)


@property_settings
@given(options_strategy, st.sampled_from(list(BootFamily)))
def test_classification_and_boot_choice_never_raise(options, default):
    """Any option bytes at all classify, and yield a boot choice or None."""
    client = classify(options)
    settings = BootSettings(files=SETTINGS.files, unknown_arch=default)
    choose_boot(client, MAC, SERVER, settings)
    proxy_offer(client, MAC, SERVER, settings)
    proxy_ack(client, MAC, SERVER, settings)
    no_loader(client, settings)
