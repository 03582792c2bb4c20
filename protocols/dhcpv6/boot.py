"""Who is asking over DHCPv6 and which boot file URL (option 59, RFC 5970) it gets.

The boot loader table is DHCPv4's (``BootFamily``, ``family_of`` in
protocols/dhcp/policy.py), keyed here by option 61 and read from a DHCPv6 message;
the values are URL templates (``tftp://[{server6}]/grubx64.efi``), since option 59
carries a URL where DHCPv4 had a file name and next-server.

What UEFI firmware does with the answer (EDK2 NetworkPkg, PxeBcDhcp6.c and
HttpBootDhcp6.c, read in the source):

- PXE over IPv6 takes an offer that echoes vendor class ``PXEClient`` for a "BINL"
  offer and then asks again on udp/4011 for its boot file; an offer without it but
  with option 59 is booted from directly.  So a full-mode reply never echoes
  ``PXEClient`` (as DHCPv4 never does without option 43), while a proxy offer must.
- HTTP Boot takes only offers that echo vendor class ``HTTPClient`` with option 59.
- iPXE sends user class ``iPXE`` (and option 61 of its firmware, 0 under BIOS): it
  gets the iPXE script URL (docs/firmware.md, iPXE over IPv6).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv6Address

from protocols.dhcp.policy import (
    HTTP_CLIENT,
    IPXE_USER_CLASS,
    PXE_CLIENT,
    BadBootTemplate,
    BootFamily,
    Client,
    architecture_name,
    family_of,
)
from protocols.dhcpv6.options import (
    BOOTFILE_PARAM,
    BOOTFILE_URL,
    ENTERPRISE_INTEL,
    VENDOR_CLASS,
    Option,
    VendorClass,
)
from protocols.dhcpv6.wire import Dhcpv6Message

TEMPLATE_FIELDS = frozenset({"server6", "http_port", "mac"})


def check_template(template: str) -> None:
    """Raise BadBootTemplate unless ``template`` fills only {server6}, {http_port} and
    {mac}, with the address in brackets as a URL needs (RFC 3986, RFC 5970)."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name]
    except ValueError as error:
        raise BadBootTemplate(f"boot URL {template!r}: {error}") from error
    unknown = set(fields) - TEMPLATE_FIELDS
    if unknown:
        raise BadBootTemplate(
            f"boot URL {template!r} uses {', '.join(repr(f) for f in sorted(unknown))}; "
            "only {server6}, {http_port} and {mac} are filled in"
        )
    if template.count("{server6}") != template.count("[{server6}]"):
        raise BadBootTemplate(f"boot URL {template!r}: write the address as [{{server6}}]")
    try:
        template.format(server6=IPv6Address(0), http_port=80, mac="00:00:00:00:00:00")
    except (ValueError, IndexError) as error:
        raise BadBootTemplate(f"boot URL {template!r}: {error}") from error


@dataclass(frozen=True)
class BootSettings:
    """``dhcp6.boot``: a URL template per family, option 60 parameters per family, and
    the family an unknown option 61 value gets (None: no URL at all)."""

    urls: Mapping[BootFamily, str]
    params: Mapping[BootFamily, tuple[str, ...]] = field(default_factory=dict)
    http_port: int = 80
    unknown_arch: BootFamily | None = None

    def __post_init__(self) -> None:
        for template in [*self.urls.values(), *(p for ps in self.params.values() for p in ps)]:
            check_template(template)


@dataclass(frozen=True)
class BootChoice:
    family: BootFamily
    url: str
    options: tuple[Option, ...]  # 59, then 60 and the vendor class echo when due


def classify(message: Dhcpv6Message) -> Client:
    """What the message says about the firmware: vendor class (the first class string
    of the first option 16), option 61, and iPXE's user class."""
    vendors = message.vendor_class
    vendor = vendors[0].data[0] if vendors and vendors[0].data else None
    return Client(
        vendor_class=vendor,
        architectures=tuple(int(arch) for arch in message.client_arch),
        ipxe=IPXE_USER_CLASS in message.user_class,
    )


def choose_boot(
    message: Dhcpv6Message,
    mac: str | None,
    server: IPv6Address,
    settings: BootSettings,
    loader: Mapping[BootFamily, str] | None = None,
    *,
    proxy: bool = False,
) -> BootChoice | None:
    """The boot options for a netboot client, or None (not booting, or nothing fits).

    ``proxy`` marks an answer beside another server (or on udp/4011), which must echo
    ``PXEClient`` for EDK2 to take it.
    """
    client = classify(message)
    if not client.netboot:
        return None
    family = family_of(client, settings.unknown_arch)
    template = None if family is None else (loader or {}).get(family) or settings.urls.get(family)
    if family is None or not template or ("{mac}" in template and mac is None):
        return None
    fill = {"server6": server, "http_port": settings.http_port, "mac": mac}
    url = template.format(**fill)
    options = [Option.of(BOOTFILE_URL, url)]
    params = settings.params.get(family)
    if params:
        options.append(Option.of(BOOTFILE_PARAM, tuple(p.format(**fill) for p in params)))
    echo = _echo(message, client, proxy)
    if echo is not None:
        options.append(echo)
    return BootChoice(family, url, tuple(options))


def no_boot_url(message: Dhcpv6Message, mac: str | None, settings: BootSettings) -> str | None:
    """Why a booting client gets no URL (for the log and ``pxed explain``), or None."""
    client = classify(message)
    if not client.netboot:
        return None
    family = family_of(client, settings.unknown_arch)
    code = client.architectures[0] if client.architectures else None
    name = "iPXE" if client.ipxe else architecture_name(code) if code is not None else "x86 BIOS"
    if family is None:
        return f"no dhcp6.boot key fits {name}"
    template = settings.urls.get(family)
    if not template:
        return f"no boot URL for {name}: set dhcp6.boot.{family.value}"
    if "{mac}" in template and mac is None:
        return f"dhcp6.boot.{family.value} needs {{mac}} and the client's MAC is unknown"
    return None


def _echo(message: Dhcpv6Message, client: Client, proxy: bool) -> Option | None:
    """Option 16 as the firmware looks for it, under the enterprise number it sent."""
    enterprise = message.vendor_class[0].enterprise if message.vendor_class else ENTERPRISE_INTEL
    if client.http:
        return Option.of(VENDOR_CLASS, VendorClass(enterprise, (HTTP_CLIENT,)))
    if client.pxe and proxy:
        return Option.of(VENDOR_CLASS, VendorClass(enterprise, (PXE_CLIENT,)))
    return None
