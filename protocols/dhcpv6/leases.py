"""What the DHCPv6 engine knows about bindings, and the in-memory store behind it.

The engine asks and tells a ``LeaseStore``; ``MemoryLeaseStore`` is the whole
bookkeeping in dicts, so unit tests need no disk, and a durable store only has to
add writes on top of it, as ``pxed.dhcp.leases`` does for DHCPv4.

Decisions:

- A binding is keyed by the client's DUID (option 1's bytes, compared as opaque, as
  RFC 8415 section 11 says) and the IAID of its IA_NA: one address per IA, and a
  client asks one IA per interface.  The MAC, when the engine learnt one, rides
  along for reservations and for ``pxed leases``.
- Offers (what an ADVERTISE promised) are not durable, as in DHCPv4: a SOLICIT costs
  no disk write, and a REQUEST for a free address after a restart is simply granted.
- Writes that must be durable before the reply leaves are ``bind``, ``release`` and
  ``quarantine``.  The engine never commits: the adapter handles a batch, commits
  the store once, then sends the batch's replies.
- Time is always passed in as ``now`` (seconds, the adapter's clock).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import Protocol

BindingKey = tuple[bytes, int]  # (client DUID, IAID)


class LeaseState(enum.Enum):
    OFFERED = "offered"
    BOUND = "bound"


@dataclass(frozen=True)
class Lease:
    client: bytes  # the DUID as the client sent it in option 1
    iaid: int
    address: IPv6Address
    expires: float
    state: LeaseState = LeaseState.BOUND
    mac: str | None = None

    @property
    def key(self) -> BindingKey:
        return self.client, self.iaid

    def active(self, now: float) -> bool:
        return self.expires > now


class LeaseConflict(ValueError):
    """Binding an address another IA holds: a bug in the caller, never client input."""


class LeaseStore(Protocol):
    """The engine's view of the bookkeeping; queries ignore expired entries."""

    def lease_for(self, key: BindingKey, now: float) -> Lease | None:
        """The IA's active bound lease, else its pending offer."""

    def holder_of(self, address: IPv6Address, now: float) -> Lease | None:
        """The active lease or offer on ``address``."""

    def quarantined(self, address: IPv6Address, now: float) -> bool: ...

    def offer(self, lease: Lease, now: float) -> None: ...

    def bind(self, lease: Lease, now: float) -> None:
        """Record a bound lease (replacing the IA's previous one); durable once committed."""

    def release(self, key: BindingKey) -> None:
        """Forget the IA's lease and offer."""

    def quarantine(self, address: IPv6Address, until: float) -> None:
        """Take ``address`` out of use until ``until`` and drop any lease on it."""

    def quarantines(self) -> dict[IPv6Address, float]:
        """Every quarantined address and until when (expired ones may linger until swept)."""
        ...

    @property
    def writable(self) -> bool:
        """Whether a bind made now can be stored.  False while a durable store's database is
        down: the engine then binds nothing and only confirms what ``committed`` returns."""
        ...

    def committed(self, key: BindingKey, now: float) -> Lease | None:
        """The IA's active bound lease as the durable store is known to hold it: committed,
        not merely written to memory, so a reply may promise it while nothing can be
        written."""


class MemoryLeaseStore:
    """Leases and offers in dicts, with an address index so a probe is O(1).

    Nothing lies beyond memory here: it can always be written, and every bound lease is
    as committed as it will ever be.
    """

    writable = True

    def __init__(self) -> None:
        self._bound: dict[BindingKey, Lease] = {}
        self._offers: dict[BindingKey, Lease] = {}
        self._owner: dict[IPv6Address, BindingKey] = {}
        self._offer_owner: dict[IPv6Address, BindingKey] = {}
        self._quarantine: dict[IPv6Address, float] = {}

    def lease_for(self, key: BindingKey, now: float) -> Lease | None:
        for table in (self._bound, self._offers):
            lease = table.get(key)
            if lease is not None and lease.active(now):
                return lease
        return None

    def committed(self, key: BindingKey, now: float) -> Lease | None:
        lease = self._bound.get(key)
        return lease if lease is not None and lease.active(now) else None

    def holder_of(self, address: IPv6Address, now: float) -> Lease | None:
        for owners, table in ((self._owner, self._bound), (self._offer_owner, self._offers)):
            key = owners.get(address)
            if key is not None and table[key].active(now):
                return table[key]
        return None

    def quarantined(self, address: IPv6Address, now: float) -> bool:
        until = self._quarantine.get(address)
        return until is not None and until > now

    def offer(self, lease: Lease, now: float) -> None:
        self._check_free(lease, now)
        self._forget_offer(lease.key)
        self._drop(self._offer_owner, self._offers, lease.address)
        self._offers[lease.key] = lease
        self._offer_owner[lease.address] = lease.key

    def bind(self, lease: Lease, now: float) -> None:
        self._check_free(lease, now)
        self.release(lease.key)
        self._drop(self._owner, self._bound, lease.address)
        self._drop(self._offer_owner, self._offers, lease.address)
        self._bound[lease.key] = lease
        self._owner[lease.address] = lease.key

    def release(self, key: BindingKey) -> None:
        self._forget_offer(key)
        lease = self._bound.pop(key, None)
        if lease is not None:
            del self._owner[lease.address]

    def quarantine(self, address: IPv6Address, until: float) -> None:
        self._quarantine[address] = until
        self._drop(self._owner, self._bound, address)
        self._drop(self._offer_owner, self._offers, address)

    def quarantines(self) -> dict[IPv6Address, float]:
        return dict(self._quarantine)

    def expire(self, now: float) -> list[Lease]:
        """Drop expired leases, offers and quarantines; return the dropped bound leases."""
        gone = [lease for lease in self._bound.values() if not lease.active(now)]
        for lease in gone:
            self.release(lease.key)
        for lease in [offer for offer in self._offers.values() if not offer.active(now)]:
            self._forget_offer(lease.key)
        for address in [a for a, until in self._quarantine.items() if until <= now]:
            del self._quarantine[address]
        return gone

    def leases(self) -> list[Lease]:
        """Every bound lease, expired or not, sorted by address (for ``pxed leases``)."""
        return sorted(self._bound.values(), key=lambda lease: lease.address)

    def _forget_offer(self, key: BindingKey) -> None:
        lease = self._offers.pop(key, None)
        if lease is not None:
            del self._offer_owner[lease.address]

    def _check_free(self, lease: Lease, now: float) -> None:
        holder = self.holder_of(lease.address, now)
        if holder is not None and holder.key != lease.key:
            raise LeaseConflict(f"{lease.address} is held by another IA")

    @staticmethod
    def _drop(
        owners: dict[IPv6Address, BindingKey],
        table: dict[BindingKey, Lease],
        address: IPv6Address,
    ) -> None:
        key = owners.pop(address, None)
        if key is not None:
            del table[key]
