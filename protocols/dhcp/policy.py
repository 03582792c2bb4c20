"""Who is asking (BIOS, UEFI, iPXE, UEFI HTTP Boot) and what to tell it to boot.

Pure functions over the request's raw options, so ``pxed explain`` and the
engine reach the same answer.  What real firmware sends and needs is in
docs/firmware.md; the rules that matter most:

- Never echo option 60 ``PXEClient`` without option 43 sub-option 6 = 8 in a
  full-mode reply: OVMF then takes the offer for proxyDHCP, asks siaddr:4011
  and fails (PXE-E16).  We send both, which also saves iPXE about 2 s.
- UEFI HTTP Boot ignores an offer that does not echo option 60 ``HTTPClient``.
- iPXE gets the iPXE script URL, never a loader, so it cannot chainload
  itself in a loop.
- Clients that are not network-booting (no PXEClient/HTTPClient, no option 93,
  not iPXE: udhcpc, the UEFI "second DHCP", the installer) get a lease and no
  boot information.
"""

from __future__ import annotations

import enum
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address

OPT_VENDOR_SPECIFIC = 43
OPT_TFTP_SERVER = 66
OPT_BOOTFILE = 67
OPT_USER_CLASS = 77
OPT_VENDOR_CLASS = 60
OPT_ARCH = 93
OPT_NDI = 94
OPT_UUID = 97
OPT_IPXE_ENCAP = 175

PXE_CLIENT = b"PXEClient"
HTTP_CLIENT = b"HTTPClient"
IPXE_USER_CLASS = b"iPXE"
# Option 43, PXE sub-option 6 (PXE_DISCOVERY_CONTROL) = 8: "the boot file is in
# this offer, do not look for a boot server".
PXE_DISCOVERY_CONTROL_DIRECT = bytes([6, 1, 8, 255])
PXE_BOOT_ITEM = 71


class BootFamily(enum.Enum):
    """The ``dhcp.boot`` (and profile ``loader``) key that names a client's boot file.

    One key per CPU architecture and boot method, so a client is only ever offered a
    loader built for its own architecture: an ARM64 server handed an x86-64 GRUB
    cannot run it.
    """

    BIOS = "bios"  # x86 BIOS PXE
    UEFI = "uefi"  # x86-64 UEFI
    UEFI32 = "uefi32"  # IA32 UEFI
    ARM32 = "arm32"
    ARM64 = "arm64"
    RISCV64 = "riscv64"
    LOONGARCH64 = "loongarch64"
    IPXE = "ipxe"  # any iPXE, whatever the architecture: it gets its script
    UEFI_HTTP = "uefi_http"  # x86-64 UEFI HTTP Boot
    ARM64_HTTP = "arm64_http"  # ARM64 UEFI HTTP Boot


HTTP_FAMILIES = frozenset({BootFamily.UEFI_HTTP, BootFamily.ARM64_HTTP})


@dataclass(frozen=True)
class Architecture:
    code: int
    name: str
    family: BootFamily | None  # None: known, but no dhcp.boot key fits it


def _arch(code: int, name: str, family: BootFamily | None) -> tuple[int, Architecture]:
    return code, Architecture(code, name, family)


_F = BootFamily

# IANA "Processor Architecture Types" (RFC 4578, RFC 5970 registry).  RFC 4578
# printed 7 = EFI BC and 9 = EFI x86-64, the registry swapped them; firmware
# sends either for x86-64 (OVMF sends 7), so both are x86-64 UEFI here.  A code
# whose architecture has no key gets ``dhcp.boot.default_arch`` (none by
# default: an address and no boot file).
ARCHITECTURES: Mapping[int, Architecture] = dict(
    [
        _arch(0, "x86 BIOS", _F.BIOS),
        _arch(1, "NEC/PC98", None),
        _arch(2, "Itanium", None),
        _arch(3, "DEC Alpha", None),
        _arch(4, "Arc x86", None),
        _arch(5, "Intel Lean Client", None),
        _arch(6, "x86 UEFI (IA32)", _F.UEFI32),
        _arch(7, "x64 UEFI (EFI BC)", _F.UEFI),
        _arch(8, "EFI Xscale", None),
        _arch(9, "EBC (EFI x86-64)", _F.UEFI),
        _arch(10, "ARM 32-bit UEFI", _F.ARM32),
        _arch(11, "ARM 64-bit UEFI", _F.ARM64),
        _arch(12, "PowerPC Open Firmware", None),
        _arch(13, "PowerPC ePAPR", None),
        _arch(14, "POWER OPAL v3", None),
        _arch(15, "x86 UEFI HTTP", None),
        _arch(16, "x64 UEFI HTTP", _F.UEFI_HTTP),
        _arch(17, "EBC HTTP", None),
        _arch(18, "ARM 32-bit UEFI HTTP", None),
        _arch(19, "ARM 64-bit UEFI HTTP", _F.ARM64_HTTP),
        _arch(20, "PC/AT BIOS HTTP", None),
        _arch(21, "ARM 32-bit U-Boot", None),
        _arch(22, "ARM 64-bit U-Boot", None),
        _arch(23, "ARM 32-bit U-Boot HTTP", None),
        _arch(24, "ARM 64-bit U-Boot HTTP", None),
        _arch(25, "RISC-V 32-bit UEFI", None),
        _arch(26, "RISC-V 32-bit UEFI HTTP", None),
        _arch(27, "RISC-V 64-bit UEFI", _F.RISCV64),
        _arch(28, "RISC-V 64-bit UEFI HTTP", None),
        _arch(29, "RISC-V 128-bit UEFI", None),
        _arch(30, "RISC-V 128-bit UEFI HTTP", None),
        _arch(31, "s390 Basic", None),
        _arch(32, "s390 Extended", None),
        _arch(33, "MIPS 32-bit UEFI", None),
        _arch(34, "MIPS 64-bit UEFI", None),
        _arch(35, "Sunway 32-bit UEFI", None),
        _arch(36, "Sunway 64-bit UEFI", None),
        _arch(37, "LoongArch 32-bit UEFI", None),
        _arch(38, "LoongArch 32-bit UEFI HTTP", None),
        _arch(39, "LoongArch 64-bit UEFI", _F.LOONGARCH64),
        _arch(40, "LoongArch 64-bit UEFI HTTP", None),
        _arch(41, "ARM rpiboot", None),
    ]
)


def architecture_name(code: int) -> str:
    known = ARCHITECTURES.get(code)
    return known.name if known else f"unknown architecture {code}"


@dataclass(frozen=True)
class Client:
    """What a request says about the firmware that sent it."""

    vendor_class: bytes | None = None
    architectures: tuple[int, ...] = ()
    ipxe: bool = False
    uuid: bytes | None = None
    ndi: bytes | None = None
    boot_item: bytes | None = None  # option 43 sub-option 71, for the 4011 ACK

    @property
    def pxe(self) -> bool:
        return self.vendor_class is not None and self.vendor_class.startswith(PXE_CLIENT)

    @property
    def http(self) -> bool:
        return self.vendor_class is not None and self.vendor_class.startswith(HTTP_CLIENT)

    @property
    def netboot(self) -> bool:
        """Whether the request comes from boot firmware (else: lease only, no boot file)."""
        return self.pxe or self.http or self.ipxe or bool(self.architectures)


def classify(options: Mapping[int, bytes]) -> Client:
    """Read a request's options (raw values by code); never raises on odd values."""
    vendor = options.get(OPT_VENDOR_CLASS)
    arch_bytes = options.get(OPT_ARCH, b"")
    architectures = tuple(
        int.from_bytes(arch_bytes[i : i + 2], "big") for i in range(0, len(arch_bytes) - 1, 2)
    )
    return Client(
        vendor_class=vendor,
        architectures=architectures,
        ipxe=_is_ipxe(options),
        uuid=options.get(OPT_UUID),
        ndi=options.get(OPT_NDI),
        boot_item=_sub_option(options.get(OPT_VENDOR_SPECIFIC, b""), PXE_BOOT_ITEM),
    )


def _is_ipxe(options: Mapping[int, bytes]) -> bool:
    if OPT_IPXE_ENCAP in options:
        return True
    user_class = options.get(OPT_USER_CLASS)
    if user_class is None:
        return False
    # iPXE sends the bare string (docs/firmware.md); RFC 3004 wants length-prefixed items.
    return user_class == IPXE_USER_CLASS or IPXE_USER_CLASS in _rfc3004_items(user_class)


def _rfc3004_items(data: bytes) -> list[bytes]:
    """The complete items of an RFC 3004 user class; a truncated tail is not an item."""
    items, offset = [], 0
    while offset < len(data) and offset + 1 + data[offset] <= len(data):
        items.append(data[offset + 1 : offset + 1 + data[offset]])
        offset += 1 + data[offset]
    return items


def _sub_option(data: bytes, code: int) -> bytes | None:
    offset = 0
    while offset + 1 < len(data):
        sub, length = data[offset], data[offset + 1]
        if sub == code:
            return data[offset + 2 : offset + 2 + length]
        offset += 2 + length
    return None


def family_of(client: Client, unknown_arch: BootFamily | None) -> BootFamily | None:
    """iPXE first (it must get its script), then option 93's first entry.

    An architecture no ``dhcp.boot`` key fits gets ``unknown_arch``; None means
    no boot file at all (``default_arch: none``), so it tries its next device.
    A UEFI HTTP Boot client gets an HTTP family only (its URL), never a TFTP
    loader; one without option 93 is taken for x86-64, as firmware before
    RFC 5970's codes was.
    """
    if client.ipxe:
        return BootFamily.IPXE
    if not client.architectures:
        # PXE before RFC 4578 meant x86 BIOS.
        return BootFamily.UEFI_HTTP if client.http else BootFamily.BIOS
    known = ARCHITECTURES.get(client.architectures[0])
    family = known.family if known is not None else None
    if family is None:
        return None if client.http else unknown_arch
    if client.http != (family in HTTP_FAMILIES):
        return None  # an HTTPClient naming a PXE architecture, or the reverse
    return family


TEMPLATE_FIELDS = frozenset({"server", "http_port", "mac"})


class BadBootTemplate(ValueError):
    """A boot template uses a placeholder pxed does not fill; a config error."""


def check_template(template: str) -> None:
    """Raise BadBootTemplate unless ``template`` uses only {server}, {http_port}, {mac}."""
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as error:
        raise BadBootTemplate(f"boot template {template!r}: {error}") from error
    unknown = fields - TEMPLATE_FIELDS
    if unknown:
        raise BadBootTemplate(
            f"boot template {template!r} uses {', '.join(repr(f) for f in sorted(unknown))}; "
            f"only {{server}}, {{http_port}} and {{mac}} are filled in"
        )
    try:
        render(template, IPv4Address(0), 80, "00:00:00:00:00:00")
    except (ValueError, IndexError) as error:
        raise BadBootTemplate(f"boot template {template!r}: {error}") from error


def render(template: str, server: IPv4Address, http_port: int, mac: str) -> str:
    return template.format(server=server, http_port=http_port, mac=mac)


@dataclass(frozen=True)
class BootSettings:
    """``dhcp.boot``: a template per family, plus the family for unknown option 93 values."""

    files: Mapping[BootFamily, str]
    http_port: int = 80
    unknown_arch: BootFamily | None = BootFamily.BIOS  # None: no boot file (default_arch: none)

    def __post_init__(self) -> None:
        for template in self.files.values():
            check_template(template)


@dataclass(frozen=True)
class BootChoice:
    family: BootFamily
    file: str
    next_server: IPv4Address
    options: Mapping[int, bytes] = field(default_factory=dict)  # sent whatever the PRL says


def choose_boot(
    client: Client,
    mac: str,
    server: IPv4Address,
    settings: BootSettings,
    loader: Mapping[BootFamily, str] | None = None,
) -> BootChoice | None:
    """The boot answer for a full-mode OFFER/ACK, or None for a client that is not booting.

    ``loader`` is the host profile's per-family override of ``settings.files``.
    """
    if not client.netboot:
        return None
    family = family_of(client, settings.unknown_arch)
    if family is None:
        return None
    template = (loader or {}).get(family) or settings.files.get(family)
    if not template:
        return None
    file = render(template, server, settings.http_port, mac)
    return BootChoice(family, file, server, _echo(client, direct=True))


def proxy_offer(
    client: Client,
    mac: str,
    server: IPv4Address,
    settings: BootSettings,
    loader: Mapping[BootFamily, str] | None = None,
) -> BootChoice | None:
    """proxyDHCP answer to a DISCOVER: identify as PXE server, file comes on 4011.

    Observed to boot BIOS iPXE and OVMF alike (docs/firmware.md): no option 43 and no
    file, so the client sends its REQUEST to siaddr:4011. A client pxed has no loader
    for gets no answer at all: beside another DHCP server, silence lets it boot from
    whoever does.
    """
    if not client.pxe:
        return None
    choice = choose_boot(client, mac, server, settings, loader)
    if choice is None:
        return None
    return BootChoice(choice.family, "", server, _echo(client, direct=False))


def no_loader(client: Client, settings: BootSettings) -> str | None:
    """Why a booting client gets no boot file (for the log and ``pxed explain``), or None."""
    if not client.netboot or client.ipxe:
        return None
    family = family_of(client, settings.unknown_arch)
    code = client.architectures[0] if client.architectures else None
    name = architecture_name(code) if code is not None else "x86 BIOS"
    if family is None:
        return f"no dhcp.boot key fits {name} (dhcp.boot.default_arch: none)"
    if not settings.files.get(family):
        return f"no loader for {name}: set dhcp.boot.{family.value}"
    return None


def proxy_ack(
    client: Client,
    mac: str,
    server: IPv4Address,
    settings: BootSettings,
    loader: Mapping[BootFamily, str] | None = None,
) -> BootChoice | None:
    """proxyDHCP answer on udp/4011: the boot file, 43 echoing the boot item asked for."""
    if not client.pxe:
        return None
    choice = choose_boot(client, mac, server, settings, loader)
    if choice is None:
        return None
    options = dict(_echo(client, direct=False))
    if client.boot_item is not None:
        item = client.boot_item
        options[OPT_VENDOR_SPECIFIC] = bytes([PXE_BOOT_ITEM, len(item)]) + item + b"\xff"
    return BootChoice(choice.family, choice.file, server, options)


def _echo(client: Client, *, direct: bool) -> dict[int, bytes]:
    options: dict[int, bytes] = {}
    if client.http:
        options[OPT_VENDOR_CLASS] = HTTP_CLIENT
    elif client.pxe:
        options[OPT_VENDOR_CLASS] = PXE_CLIENT
        if direct:
            options[OPT_VENDOR_SPECIFIC] = PXE_DISCOVERY_CONTROL_DIRECT
    if client.pxe or client.http:
        if client.uuid is not None:
            options[OPT_UUID] = client.uuid
        if client.ndi is not None:
            options[OPT_NDI] = client.ndi
    return options
