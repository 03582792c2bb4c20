"""Links, reservations, who a client is, and the choice of an address for an IA.

Allocation order for an IA_NA: the host's reservation; else the address the IA
already holds or was offered; else an address the client names in the IA, if
free; else a free pool address, probing from a start hashed from the DUID and IAID,
so that an IA usually gets the same address back even after its lease is gone.

Decisions:

- A reservation is matched by DUID, else by MAC.  The MAC comes from the first relay's
  option 79 (the frame's own source), else the DUID's link-layer part (DUID-LL,
  DUID-LLT), else the EUI-64 interface id of the client's link-local address.  UEFI
  firmware and iPXE send a DUID-UUID, which has no MAC, and pxed's hosts are known by
  MAC: the link-local address, which both build from the MAC, is then the only clue.
- A reserved address held by another DUID of the same host (the firmware's lease,
  then the installer's) is handed over: the old binding is dropped.  Held by anyone
  else it is not given, and the IA gets a pool address like any client's.
- A pool found full is not probed again for ``FULL_POOL_RETRY`` seconds, as in
  DHCPv4 (protocols/dhcp/allocation.py says why).
- Servers sharing a lease database probe this server's ``Share`` of the pool first,
  as in DHCPv4 (``protocols.share`` says why).  Only the free address is split:
  DHCPv6 clients are not split between the servers as DHCPv4's are (RFC 3074).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network

from protocols.dhcp.policy import BootFamily
from protocols.dhcpv6.leases import BindingKey, Lease, LeaseStore
from protocols.share import WHOLE_POOL, Share

FULL_POOL_RETRY = 1.0  # seconds


@dataclass(frozen=True)
class Link:
    """One ``dhcp6.subnets`` entry; ``pool`` is the inclusive ``range`` (None: reservations
    only).  ``lease_time`` is the valid and preferred lifetime; T1 and T2 are 0.5 and
    0.8 of it, as RFC 8415 section 21.4 recommends."""

    prefix: IPv6Network
    pool: tuple[IPv6Address, IPv6Address] | None = None
    lease_time: int = 3600
    dns: tuple[IPv6Address, ...] = ()
    domains: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.pool is not None:
            first, last = self.pool
            if first > last or first not in self.prefix or last not in self.prefix:
                raise ValueError(
                    f"subnet {self.prefix}: range {first} - {last} is not an ascending "
                    "range inside the prefix"
                )

    @property
    def t1(self) -> int:
        return self.lease_time // 2

    @property
    def t2(self) -> int:
        return self.lease_time * 4 // 5

    @property
    def pool_size(self) -> int:
        return 0 if self.pool is None else int(self.pool[1]) - int(self.pool[0]) + 1

    def in_pool(self, address: IPv6Address) -> bool:
        return self.pool is not None and self.pool[0] <= address <= self.pool[1]

    def usable(self, address: IPv6Address) -> bool:
        """On the link, and not its Subnet-Router anycast address (RFC 4291 2.6.1)."""
        return address in self.prefix and address != self.prefix.network_address


@dataclass(frozen=True)
class Host:
    """A host as the DHCPv6 engine needs it: known by DUID (option 1's bytes) or by MAC
    (``aa:bb:...``), with its reserved address and its own boot URLs."""

    mac: str | None = None
    duid: bytes | None = None
    address: IPv6Address | None = None
    loader: Mapping[BootFamily, str] = field(default_factory=dict)

    def matches(self, client: bytes, mac: str | None) -> bool:
        return (self.duid is not None and client == self.duid) or (
            self.mac is not None and mac == self.mac
        )


def link_for(links: Iterable[Link], address: IPv6Address) -> Link | None:
    """The link whose prefix holds ``address`` (a relay's link-address, or ours)."""
    for link in links:
        if address in link.prefix:
            return link
    return None


def mac_from_link_local(address: IPv6Address) -> str | None:
    """The MAC behind a modified EUI-64 link-local address (RFC 4291 appendix A), else
    None (a random or stable-privacy interface id has no ff:fe in its middle)."""
    if not address.is_link_local:
        return None
    iid = address.packed[8:]
    if iid[3:5] != b"\xff\xfe":
        return None
    return bytes([iid[0] ^ 0x02, *iid[1:3], *iid[5:8]]).hex(":")


@dataclass(frozen=True)
class Allocator:
    """Decides which address an IA may have; reads the lease store, never writes it."""

    store: LeaseStore
    by_duid: Mapping[bytes, Host]
    by_mac: Mapping[str, Host]
    reserved: Mapping[IPv6Address, Host]
    full_since: dict[Link, float] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(cls, store: LeaseStore, hosts: tuple[Host, ...]) -> Allocator:
        return cls(
            store,
            by_duid={host.duid: host for host in hosts if host.duid is not None},
            by_mac={host.mac: host for host in hosts if host.mac is not None},
            reserved={host.address: host for host in hosts if host.address is not None},
        )

    def host_for(self, client: bytes, mac: str | None) -> Host | None:
        """The host known by this DUID, else by this MAC."""
        host = self.by_duid.get(client)
        if host is None and mac is not None:
            host = self.by_mac.get(mac)
        return host

    def acceptable(
        self, key: BindingKey, host: Host | None, address: IPv6Address, link: Link, now: float
    ) -> bool:
        """Whether the IA ``key`` (of ``host``, if known) may hold ``address`` on ``link``."""
        if not link.usable(address) or self.store.quarantined(address, now):
            return False
        owner = self.reserved.get(address)
        if owner is not None:
            return owner is host and self._free_for(key, host, address, now)
        return link.in_pool(address) and self._free_for(key, host, address, now)

    def choose(
        self,
        key: BindingKey,
        host: Host | None,
        link: Link,
        hints: Iterable[IPv6Address],
        now: float,
        share: Share = WHOLE_POOL,
    ) -> IPv6Address | None:
        """The address for the IA ``key``, or None when neither reservation nor pool serves;
        a free address is probed for in ``share`` first."""
        current = self.store.lease_for(key, now)
        candidates = [
            host.address if host is not None else None,
            current.address if current is not None else None,
            *hints,
        ]
        for candidate in candidates:
            if candidate is not None and self.acceptable(key, host, candidate, link, now):
                return candidate
        return self._probe(key, host, link, now, share)

    def displaced(self, key: BindingKey, address: IPv6Address, now: float) -> Lease | None:
        """The lease of another DUID of the same host that ``key`` takes ``address`` from."""
        holder = self.store.holder_of(address, now)
        return holder if holder is not None and holder.key != key else None

    def _probe(
        self, key: BindingKey, host: Host | None, link: Link, now: float, share: Share
    ) -> IPv6Address | None:
        if link.pool is None:
            return None
        full = self.full_since.get(link)
        if full is not None and full <= now < full + FULL_POOL_RETRY:
            return None
        first, size = int(link.pool[0]), link.pool_size
        start = zlib.crc32(key[0] + key[1].to_bytes(4, "big")) % size
        for position in share.positions(size, start):
            address = IPv6Address(first + position)
            if self.acceptable(key, host, address, link, now):
                return address
        self.full_since[link] = now
        return None

    def _free_for(
        self, key: BindingKey, host: Host | None, address: IPv6Address, now: float
    ) -> bool:
        holder = self.store.holder_of(address, now)
        if holder is None or holder.key == key:
            return True
        # Another DUID of the same host (firmware, then installer) gives way to it.
        if host is None or holder.client == key[0]:
            return False
        return host.matches(holder.client, holder.mac)
