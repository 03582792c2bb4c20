"""Subnets, reservations and the choice of an address for a client.

Allocation order (issue 4): the client's reservation; else the address it
already holds or was offered; else the address it asks for, if free; else a
free pool address, probing from a start point hashed from the MAC so that a
client usually gets the same address back even after its lease is gone.

Servers sharing a lease database (docs/ha.md) probe this server's ``Share`` of the
pool first (``protocols.share`` says why; ``protocols.dhcp.split`` gives it).

A probe of a full pool visits every address (a /16 takes about 0.25 s), so a pool
found full is not probed again for ``FULL_POOL_RETRY`` seconds: a DISCOVER storm
against it cannot stall the reactor that serves TFTP and HTTP too.  An address freed
meanwhile is offered on the client's next retransmission.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from protocols.dhcp.leases import LeaseStore
from protocols.dhcp.policy import BootFamily
from protocols.once import once
from protocols.share import WHOLE_POOL, Share

FULL_POOL_RETRY = 1.0  # seconds


@dataclass(frozen=True)
class Subnet:
    """One ``dhcp.subnets`` entry; ``pool`` is the inclusive ``range`` (None: reservations only)."""

    network: IPv4Network
    pool: tuple[IPv4Address, IPv4Address] | None = None
    routers: tuple[IPv4Address, ...] = ()
    dns: tuple[IPv4Address, ...] = ()
    domain: str | None = None
    lease_time: int = 3600

    def __post_init__(self) -> None:
        if self.pool is not None:
            first, last = self.pool
            if first > last or first not in self.network or last not in self.network:
                raise ValueError(
                    f"subnet {self.network}: range {first} - {last} is not an ascending "
                    "range inside the network"
                )

    def __hash__(self) -> int:
        return self._hash

    @once
    def _hash(self) -> int:
        """The engine's reply caches are keyed by subnet, once per reply, and an
        ``IPv4Address`` hashes through its hex text: the fields are hashed once."""
        return hash((self.network, self.pool, self.routers, self.dns, self.domain, self.lease_time))

    def in_pool(self, ip: IPv4Address) -> bool:
        pool = self._pool_numbers
        return pool is not None and pool[0] <= int(ip) <= pool[1]

    def usable(self, ip: IPv4Address) -> bool:
        """Inside the network and neither its network nor broadcast address."""
        first, last = self._usable_numbers
        return first <= int(ip) <= last

    # Both are asked for each address allocation probes, and IPv4Address compares
    # through a Python method per operator: the bounds are compared as numbers.
    @once
    def _pool_numbers(self) -> tuple[int, int] | None:
        return None if self.pool is None else (int(self.pool[0]), int(self.pool[1]))

    @once
    def _usable_numbers(self) -> tuple[int, int]:
        """From past the network address to before the broadcast (empty for /31, /32)."""
        network = self.network
        return int(network.network_address) + 1, int(network.broadcast_address) - 1


@dataclass(frozen=True)
class Host:
    """A ``hosts`` entry as the DHCP engine needs it; ``ip`` is its reservation."""

    mac: str
    ip: IPv4Address | None = None
    hostname: str | None = None
    loader: Mapping[BootFamily, str] = field(default_factory=dict)


def subnet_for(subnets: tuple[Subnet, ...], address: IPv4Address) -> Subnet | None:
    """The subnet serving ``address`` (giaddr for relayed requests, else the interface's)."""
    for subnet in subnets:
        if address in subnet.network:
            return subnet
    return None


@dataclass(frozen=True)
class Allocator:
    """Decides which address a client may have; reads the lease store, never writes it."""

    store: LeaseStore
    hosts: Mapping[str, Host]
    reserved: Mapping[IPv4Address, str]  # reservation address -> its MAC
    full_since: dict[Subnet, float] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(cls, store: LeaseStore, hosts: Mapping[str, Host]) -> Allocator:
        reserved = {host.ip: mac for mac, host in hosts.items() if host.ip is not None}
        return cls(store, hosts, reserved)

    def acceptable(self, mac: str, ip: IPv4Address, subnet: Subnet, now: float) -> bool:
        """Whether ``mac`` may hold ``ip`` on ``subnet`` right now."""
        host = self.hosts.get(mac)
        if host is not None and host.ip is not None:
            return ip == host.ip and subnet.usable(ip) and self._free_for(mac, ip, now)
        return (
            subnet.in_pool(ip)
            and subnet.usable(ip)
            and self.reserved.get(ip, mac) == mac
            and self._free_for(mac, ip, now)
        )

    def choose(
        self,
        mac: str,
        subnet: Subnet,
        requested: IPv4Address | None,
        now: float,
        share: Share = WHOLE_POOL,
    ) -> IPv4Address | None:
        """The address to offer ``mac``, or None when the pool (or its reservation) cannot
        serve; a free address is probed for in ``share`` first."""
        host = self.hosts.get(mac)
        if host is not None and host.ip is not None:
            return host.ip if self.acceptable(mac, host.ip, subnet, now) else None
        current = self.store.lease_for(mac, now)
        for candidate in (current.ip if current else None, requested):
            if candidate is not None and self.acceptable(mac, candidate, subnet, now):
                return candidate
        return self._probe(mac, subnet, now, share)

    def _probe(self, mac: str, subnet: Subnet, now: float, share: Share) -> IPv4Address | None:
        if subnet.pool is None:
            return None
        full = self.full_since.get(subnet)
        if full is not None and full <= now < full + FULL_POOL_RETRY:
            return None
        first, last = int(subnet.pool[0]), int(subnet.pool[1])
        size = last - first + 1
        for position in share.positions(size, zlib.crc32(mac.encode()) % size):
            ip = IPv4Address(first + position)
            if self.acceptable(mac, ip, subnet, now):
                return ip
        self.full_since[subnet] = now
        return None

    def _free_for(self, mac: str, ip: IPv4Address, now: float) -> bool:
        holder = self.store.holder_of(ip, now)
        return (holder is None or holder == mac) and not self.store.quarantined(ip, now)
