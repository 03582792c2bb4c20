"""The validated configuration: frozen objects every pxed service reads its settings from.

Nothing here touches the network or the disk. One value is left for start-up
to fill in: ``ServerConfig.address`` is None when the file leaves it out,
meaning "the first IPv4 address of ``server.interfaces[0]``", which only the
running host can know (the socket layer resolves it with
``dataclasses.replace``).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from pxed.config.problems import ConfigProblem

DhcpMode = Literal["full", "proxy", "off"]
Netboot = Literal["once", "always", "never"]
DefaultArch = Literal["none", "bios", "uefi"]
LogLevel = Literal["debug", "info", "warn", "error"]
# Answer-file families, by the profile key that names the template (Kickstart first: the
# default, and the only one before preseed).
AnswerFamily = Literal["kickstart", "preseed"]
ANSWER_FAMILIES: tuple[AnswerFamily, ...] = ("kickstart", "preseed")
# Each family's answer-file URL as a profile's append and the templates name it.
ANSWER_URLS: Mapping[AnswerFamily, str] = MappingProxyType(
    {"kickstart": "ks_url", "preseed": "preseed_url"}
)

_MAC_FORMS = (
    re.compile(
        r"([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})"
    ),
    re.compile(
        r"([0-9a-f]{2})([0-9a-f]{2})\.([0-9a-f]{2})([0-9a-f]{2})\.([0-9a-f]{2})([0-9a-f]{2})"
    ),
    re.compile(r"([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})"),
)


def parse_mac(text: str) -> str:
    """``52:54:00:12:34:56`` from any common spelling (colons, hyphens, Cisco dots, bare hex).

    Lowercase with colons is the one form pxed compares, logs and puts in
    file names (pxelinux probes ``01-<mac>`` in lowercase).
    """
    lowered = text.strip().lower()
    for form in _MAC_FORMS:
        match = form.fullmatch(lowered)
        if match:
            return ":".join(match.groups())
    raise ValueError(
        f"not a MAC address: {text!r} (expected six hex pairs, like 52:54:00:12:34:56)"
    )


@dataclass(frozen=True)
class ServerConfig:
    address: IPv4Address | None  # None: the first IPv4 address of interfaces[0], found at start-up
    interfaces: tuple[str, ...]
    state_dir: Path
    database: str | None = None  # a postgresql:// URL; None: SQLite files in state_dir
    notice: str | None = None  # shown atop the status page (the appliance's "no configuration")
    name: str | None = None  # in the rows this pxed shares in server.database; None: host name
    # The IPv6 address in URLs for clients that came over IPv6; None: pxed.netif chooses one
    address6: IPv6Address | None = None
    # Seconds without a heartbeat in server.database before a peer's clients are taken over
    peer_timeout: int = 3
    # A live peer's client whose secs field reaches this is answered here too (docs/ha.md)
    peer_ack_delay: int = 10

    @property
    def label(self) -> str:
        """This pxed's name in shared rows: ``server.name``, else the machine's host name."""
        return self.name or socket.gethostname()


@dataclass(frozen=True)
class TftpConfig:
    enabled: bool
    root: Path
    listen: tuple[IPv4Address, ...]  # empty: the addresses of server.interfaces
    port: int
    max_blksize: int
    max_windowsize: int
    max_sessions: int
    max_per_client: int  # concurrent transfers from one client IP
    timeout: int  # seconds before a retransmission, unless the client negotiates one
    retries: int  # patience: (retries + 1) x timeout of resends, then 16 s of silence
    listen6: tuple[IPv6Address, ...] = ()  # link-local ones carry their zone (fe80::1%br0)


@dataclass(frozen=True)
class Subnet:
    network: IPv4Network
    range: tuple[IPv4Address, IPv4Address] | None  # None: reservations only
    router: IPv4Address | None
    dns: tuple[IPv4Address, ...]
    domain: str | None
    lease_time: int


@dataclass(frozen=True)
class Loaders:
    """Boot files per client kind; a profile's unset ones fall back to ``dhcp.boot``."""

    bios: str | None = None
    uefi: str | None = None
    ipxe: str | None = None
    uefi_http: str | None = None
    uefi32: str | None = None
    arm32: str | None = None
    arm64: str | None = None
    riscv64: str | None = None
    loongarch64: str | None = None
    arm64_http: str | None = None


# The per-architecture keys of dhcp.boot and a profile's loader, beside bios/uefi/ipxe/uefi_http.
ARCH_LOADERS = ("uefi32", "arm32", "arm64", "riscv64", "loongarch64", "arm64_http")
HOST_ARCHES = ("bios", "uefi", "uefi_http", *ARCH_LOADERS)  # what a host's ``arch:`` may say


@dataclass(frozen=True)
class DhcpBoot:
    bios: str
    uefi: str
    ipxe: str
    uefi_http: str
    default_arch: DefaultArch  # what a client whose option 93 pxed has no loader for gets
    uefi32: str | None = None  # an architecture without a loader gets no boot file
    arm32: str | None = None
    arm64: str | None = None
    riscv64: str | None = None
    loongarch64: str | None = None
    arm64_http: str | None = None

    def with_profile(self, loader: Loaders) -> DhcpBoot:
        """These defaults overridden by whatever a profile's ``loader`` sets."""
        return DhcpBoot(
            bios=loader.bios or self.bios,
            uefi=loader.uefi or self.uefi,
            ipxe=loader.ipxe or self.ipxe,
            uefi_http=loader.uefi_http or self.uefi_http,
            default_arch=self.default_arch,
            **{key: getattr(loader, key) or getattr(self, key) for key in ARCH_LOADERS},
        )


@dataclass(frozen=True)
class DhcpConfig:
    mode: DhcpMode
    authoritative: bool
    allow_unknown: bool
    unknown_hosts: str  # "ignore", "local" (boot the local disk) or a profile name
    server_port: int
    client_port: int
    subnets: tuple[Subnet, ...]
    boot: DhcpBoot
    deny: frozenset[str]  # MACs never answered, in parse_mac form
    decline_quarantine: int  # seconds an address stays unused after a DHCPDECLINE
    decline_limit: int  # DECLINEs one MAC may send per decline_quarantine seconds
    max_quarantined_percent: int  # of a subnet's pool that DECLINEs may take out of use
    discover_burst: int  # DISCOVERs one MAC may send at once ...
    discover_rate: int  # ... and then per second
    bootp_lease_time: int  # seconds a dynamic BOOTP lease lasts (a reservation: for ever)
    relays: tuple[IPv4Address, ...]  # relay sources trusted with giaddr; empty: any

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    @property
    def unknown_profile(self) -> str | None:
        """The profile unknown MACs install, when ``unknown_hosts`` names one."""
        return None if self.unknown_hosts in ("ignore", "local") else self.unknown_hosts

    def subnet_for(self, address: IPv4Address) -> Subnet | None:
        return next((s for s in self.subnets if address in s.network), None)


@dataclass(frozen=True)
class Dhcp6Subnet:
    """One ``dhcp6.subnets`` entry: a link's prefix, its pool, and its options."""

    prefix: IPv6Network
    range: tuple[IPv6Address, IPv6Address] | None  # None: reservations only
    dns: tuple[IPv6Address, ...]
    domains: tuple[str, ...]
    lease_time: int  # valid and preferred lifetime; T1 and T2 are 0.5 and 0.8 of it


@dataclass(frozen=True)
class Dhcp6Boot:
    """Boot file URLs (option 59) by client kind, as templates of {server6}, {http_port}
    and {mac}; a kind left None gets an address and no URL."""

    uefi: str | None = None
    uefi_http: str | None = None
    ipxe: str | None = None
    uefi32: str | None = None
    arm32: str | None = None
    arm64: str | None = None
    riscv64: str | None = None
    loongarch64: str | None = None
    arm64_http: str | None = None
    default_arch: DefaultArch = "none"


@dataclass(frozen=True)
class Dhcp6Config:
    mode: DhcpMode
    interfaces: tuple[str, ...]  # empty: server.interfaces
    rapid_commit: bool
    decline_quarantine: int  # seconds an address stays unused after a DECLINE
    release_quarantine: int  # seconds a RELEASEd address stays with its client
    preference: int  # option 7 in ADVERTISEs (255: the client REQUESTs at once)
    max_quarantined_percent: int  # of a subnet's pool that DECLINEs may take out of use
    max_offered_percent: int  # of a subnet's pool ADVERTISEs may hold for a REQUEST
    solicit_burst: int  # SOLICITs one source address may send at once ...
    solicit_rate: int  # ... and then per second
    relays: tuple[IPv6Address, ...]  # relay sources answered; empty: any
    subnets: tuple[Dhcp6Subnet, ...]
    boot: Dhcp6Boot

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def subnet_for(self, address: IPv6Address) -> Dhcp6Subnet | None:
        return next((s for s in self.subnets if address in s.prefix), None)


@dataclass(frozen=True)
class HttpConfig:
    enabled: bool
    listen: tuple[IPv4Address, ...]  # empty: the addresses of server.interfaces
    port: int
    max_connections: int  # open at once, all clients together
    max_per_client: int  # open at once from one client address
    header_timeout: int  # seconds a request's headers may take to arrive, in all
    listen6: tuple[IPv6Address, ...] = ()  # link-local ones carry their zone (fe80::1%br0)


@dataclass(frozen=True)
class InstallConfig:
    kickstart_open: bool  # serve /ks/<mac> and /preseed/<mac> to any client, not only that host
    loop_fetches: int  # more answer-file fetches (any family) than this ...
    loop_window: int  # ... within this many seconds, without a done callback: looping
    # Off-link requesters whose X-RHN-Provisioning-MAC header alone is believed (a trade-off)
    mac_header_networks: tuple[IPv4Network, ...]


@dataclass(frozen=True)
class LoggingConfig:
    json: bool
    level: LogLevel


@dataclass(frozen=True)
class Tree:
    """An install tree served at ``/trees/<name>/``: a directory or an ISO 9660 image."""

    name: str
    path: Path | None = None
    iso: Path | None = None

    @property
    def source(self) -> Path:
        source = self.path or self.iso
        assert source is not None, "validation guarantees exactly one of path and iso"
        return source


@dataclass(frozen=True)
class AnswerFile:
    """A profile's answer-file template and the installer family that reads it."""

    family: AnswerFamily
    template: Path


@dataclass(frozen=True)
class Profile:
    name: str
    tree: str | None
    kernel: str  # relative POSIX path inside the tree, or inside tftp.root without a tree
    initrd: str
    append: str
    answer_file: AnswerFile | None
    loader: Loaders
    vars: Mapping[str, object]
    cpus: Mapping[str, Images] = field(default_factory=lambda: MappingProxyType({}))


# CPUs a profile may give a kernel and initrd of their own (``cpus:``), named as GRUB's
# $grub_cpu names them; the profile's own kernel is x86's. Not i386: GRUB for BIOS and
# iPXE for BIOS say i386 on every x86 machine, 64-bit ones included.
PROFILE_CPUS = ("arm64", "arm", "riscv64", "loongarch64")


@dataclass(frozen=True)
class Images:
    """One CPU's kernel and initrd, paths as the profile's own are."""

    kernel: str
    initrd: str


@dataclass(frozen=True)
class Host:
    mac: str
    hostname: str | None
    ip: IPv4Address | None
    profile: str | None
    netboot: Netboot
    vars: Mapping[str, object]
    duid: bytes | None = None  # the DHCPv6 client identifier its reservation is matched by
    ip6: IPv6Address | None = None  # its DHCPv6 reservation


@dataclass(frozen=True)
class Config:
    """One appliance: every section of the YAML file, validated."""

    path: Path
    server: ServerConfig
    tftp: TftpConfig
    dhcp: DhcpConfig
    dhcp6: Dhcp6Config
    http: HttpConfig
    install: InstallConfig
    logging: LoggingConfig
    trees: Mapping[str, Tree]
    profiles: Mapping[str, Profile]
    hosts: tuple[Host, ...]
    vars: Mapping[str, object]
    warnings: tuple[ConfigProblem, ...] = ()
    _by_mac: Mapping[str, Host] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_mac = MappingProxyType({host.mac: host for host in self.hosts})
        object.__setattr__(self, "_by_mac", by_mac)

    def host(self, mac: str) -> Host | None:
        """The host entry for ``mac`` in any common spelling, or None for an unknown MAC."""
        try:
            return self._by_mac.get(parse_mac(mac))
        except ValueError:
            return None
