"""The validated config, as the DHCPv6 engine's ``Settings`` (no sockets: tests and tools
build what the daemon runs with).

- Links are ``dhcp6.subnets``; the engine picks one per client by the receiving
  interface's address or the relay's link-address.
- Hosts are those with a ``duid`` or an ``ip6``: a host with neither has nothing
  DHCPv6 would treat differently.  A profile's ``loader`` holds DHCPv4 file names,
  not URLs, so DHCPv6 hosts boot by ``dhcp6.boot`` alone.
- ``server_address`` is left None: {server6} is the address of the interface the
  request came in on, the one the client can reach.
"""

from __future__ import annotations

from protocols.dhcp.policy import BootFamily
from protocols.dhcp.server import Mode
from protocols.dhcpv6.allocation import Host, Link
from protocols.dhcpv6.boot import BootSettings
from protocols.dhcpv6.duid import Duid
from protocols.dhcpv6.server import Settings
from pxed.config import Config, Dhcp6Boot, Dhcp6Subnet


def engine_settings6(config: Config, server_duid: Duid) -> Settings:
    dhcp6 = config.dhcp6
    return Settings(
        server_duid=server_duid,
        boot=boot_settings6(dhcp6.boot, config.http.port),
        mode=Mode(dhcp6.mode),
        links=tuple(_link(subnet) for subnet in dhcp6.subnets),
        hosts=tuple(
            Host(mac=host.mac, duid=host.duid, address=host.ip6)
            for host in config.hosts
            if host.duid is not None or host.ip6 is not None
        ),
        rapid_commit=dhcp6.rapid_commit,
        decline_time=float(dhcp6.decline_quarantine),
        release_time=float(dhcp6.release_quarantine),
        preference=dhcp6.preference,
        max_quarantined=dhcp6.max_quarantined_percent / 100,
        max_offered=dhcp6.max_offered_percent / 100,
        solicit_burst=dhcp6.solicit_burst,
        solicit_rate=float(dhcp6.solicit_rate),
        relays=frozenset(dhcp6.relays),
    )


def boot_settings6(boot: Dhcp6Boot, http_port: int) -> BootSettings:
    urls = {
        family: getattr(boot, family.value)
        for family in BootFamily
        if getattr(boot, family.value, None)
    }
    unknown = BootFamily.UEFI if boot.default_arch == "uefi" else None
    return BootSettings(urls=urls, http_port=http_port, unknown_arch=unknown)


def _link(subnet: Dhcp6Subnet) -> Link:
    return Link(
        subnet.prefix,
        pool=subnet.range,
        lease_time=subnet.lease_time,
        dns=subnet.dns,
        domains=subnet.domains,
    )
