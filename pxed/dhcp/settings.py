"""The validated config, as the DHCP engine's ``Settings``.

Kept apart from the adapter so ``pxed explain``-style tools and tests can
build the same settings the daemon runs with, without sockets.

- A host's reservation is its ``ip``; its profile's ``loader`` overrides
  ``dhcp.boot`` per client kind.
- ``dhcp.boot.default_arch: none`` becomes no unknown-architecture family:
  an ARM64 or Itanium client gets an address and no boot file.
"""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import IPv4Address

from protocols.dhcp.allocation import Host, Subnet
from protocols.dhcp.leases import normalise_mac
from protocols.dhcp.policy import BootFamily, BootSettings
from protocols.dhcp.server import Mode, Ports, Settings
from pxed.config import Config, DhcpBoot, Loaders
from pxed.config import Subnet as SubnetConfig

PROXY_PORT = 4011  # PXE 2.1 fixes the boot server port; only 67/68 move for tests


def engine_settings(config: Config, server_address: IPv4Address | None = None) -> Settings:
    """``config``'s dhcp, hosts and profiles; ``server_address`` fills a missing server.address."""
    dhcp = config.dhcp
    return Settings(
        boot=boot_settings(dhcp.boot, config.http.port),
        mode=Mode(dhcp.mode),
        authoritative=dhcp.authoritative,
        allow_unknown=dhcp.allow_unknown,
        deny=frozenset(normalise_mac(mac) for mac in dhcp.deny),
        subnets=tuple(_subnet(subnet) for subnet in dhcp.subnets),
        hosts=_hosts(config),
        server_address=config.server.address or server_address,
        decline_time=float(dhcp.decline_quarantine),
        decline_limit=dhcp.decline_limit,
        max_quarantined=dhcp.max_quarantined_percent / 100,
        discover_burst=dhcp.discover_burst,
        discover_rate=float(dhcp.discover_rate),
        bootp_lease_time=float(dhcp.bootp_lease_time),
        relays=frozenset(dhcp.relays),
        ports=Ports(server=dhcp.server_port, client=dhcp.client_port, proxy=PROXY_PORT),
    )


def boot_settings(boot: DhcpBoot, http_port: int) -> BootSettings:
    unknown = {"bios": BootFamily.BIOS, "uefi": BootFamily.UEFI}.get(boot.default_arch)
    files = {family: getattr(boot, family.value) for family in BootFamily}
    return BootSettings(
        files={family: file for family, file in files.items() if file},
        http_port=http_port,
        unknown_arch=unknown,
    )


def loader_files(loader: Loaders) -> Mapping[BootFamily, str]:
    """A profile's loader overrides, keyed as the engine keys boot files (unset ones left out)."""
    files = {family: getattr(loader, family.value) for family in BootFamily}
    return {family: file for family, file in files.items() if file}


def _hosts(config: Config) -> dict[str, Host]:
    hosts = {}
    for host in config.hosts:
        profile = config.profiles.get(host.profile) if host.profile else None
        loader = loader_files(profile.loader) if profile is not None else {}
        mac = normalise_mac(host.mac)
        hosts[mac] = Host(mac, ip=host.ip, hostname=host.hostname, loader=loader)
    return hosts


def _subnet(subnet: SubnetConfig) -> Subnet:
    return Subnet(
        subnet.network,
        pool=subnet.range,
        routers=(subnet.router,) if subnet.router else (),
        dns=subnet.dns,
        domain=subnet.domain,
        lease_time=subnet.lease_time,
    )
