"""What the DHCP engine knows about leases, and the in-memory store behind it.

The engine asks and tells a ``LeaseStore``; ``MemoryLeaseStore`` is the whole
bookkeeping in dicts, so unit tests need no disk and ``pxed.dhcp.leases`` only adds
durability on top of it.

Decisions:

- Leases are keyed by the client hardware address (chaddr, as ``aa:bb:...``),
  never by option 61: OVMF sends no client identifier, and every UEFI phase
  (PXE, then the plain "second DHCP") must get the same address.
- Offers are not durable.  A DISCOVER costs no disk write; an offer lost in a
  crash is harmless because the client's REQUEST for a free address is
  simply granted.  Bound leases are durable before their ACK is sent.
- Time is always passed in as ``now`` (seconds, the adapter's clock); a lease
  whose ``expires`` is ``None`` never expires (BOOTP, RFC 1534).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Protocol


class LeaseState(enum.Enum):
    OFFERED = "offered"
    BOUND = "bound"


@dataclass(frozen=True)
class Lease:
    mac: str
    ip: IPv4Address
    expires: float | None
    state: LeaseState = LeaseState.BOUND
    hostname: str | None = None

    def active(self, now: float) -> bool:
        return self.expires is None or self.expires > now


class LeaseConflict(ValueError):
    """Binding an address another client holds: a bug in the caller, never client input."""


class LeaseStore(Protocol):
    """The engine's view of lease bookkeeping; queries ignore expired entries."""

    def lease_for(self, mac: str, now: float) -> Lease | None:
        """The client's active bound lease, else its pending offer."""

    def holder_of(self, ip: IPv4Address, now: float) -> str | None:
        """The MAC holding ``ip`` by an active lease or offer."""

    def quarantined(self, ip: IPv4Address, now: float) -> bool: ...

    def offer(self, lease: Lease, now: float) -> None: ...

    def bind(self, lease: Lease, now: float) -> None:
        """Record a bound lease; durable once the caller commits."""

    def release(self, mac: str) -> None:
        """Forget the client's lease and offer."""

    def forget_offer(self, mac: str) -> None: ...

    def quarantine(self, ip: IPv4Address, until: float) -> None:
        """Take ``ip`` out of use until ``until`` and drop any lease on it."""

    def quarantines(self) -> dict[IPv4Address, float]:
        """Every quarantined address and until when (expired ones may linger until swept)."""
        ...

    @property
    def writable(self) -> bool:
        """Whether a bind made now can be stored.  False while a durable store's database is
        down: the engine then binds nothing and only confirms what ``committed`` returns."""
        ...

    def committed(self, mac: str, now: float) -> Lease | None:
        """The client's active bound lease as the durable store is known to hold it:
        committed, not merely written to memory (a bind whose commit failed or is still
        pending is not), so a reply may promise it while nothing can be written."""


def normalise_mac(mac: str | bytes) -> str:
    """``52:54:00:AB:...``, ``52-54-...`` or raw chaddr bytes -> ``52:54:00:ab:...``."""
    if isinstance(mac, bytes):
        return ":".join(f"{octet:02x}" for octet in mac)
    return mac.strip().lower().replace("-", ":")


class MemoryLeaseStore:
    """Leases and offers in dicts, with an address index so allocation is O(1) per probe.

    Nothing lies beyond memory here: it can always be written, and every bound lease is
    as committed as it will ever be.
    """

    writable = True

    def __init__(self) -> None:
        self._bound: dict[str, Lease] = {}
        self._offers: dict[str, Lease] = {}
        self._ip_owner: dict[IPv4Address, str] = {}
        self._offer_owner: dict[IPv4Address, str] = {}
        self._quarantine: dict[IPv4Address, float] = {}

    def lease_for(self, mac: str, now: float) -> Lease | None:
        for table in (self._bound, self._offers):
            lease = table.get(mac)
            if lease is not None and lease.active(now):
                return lease
        return None

    def committed(self, mac: str, now: float) -> Lease | None:
        lease = self._bound.get(mac)
        return lease if lease is not None and lease.active(now) else None

    def holder_of(self, ip: IPv4Address, now: float) -> str | None:
        for owners, table in ((self._ip_owner, self._bound), (self._offer_owner, self._offers)):
            mac = owners.get(ip)
            if mac is not None and table[mac].active(now):
                return mac
        return None

    def quarantined(self, ip: IPv4Address, now: float) -> bool:
        until = self._quarantine.get(ip)
        return until is not None and until > now

    def offer(self, lease: Lease, now: float) -> None:
        self._check_free(lease, now)
        self.forget_offer(lease.mac)
        self._drop_owner(self._offer_owner, self._offers, lease.ip)
        self._offers[lease.mac] = lease
        self._offer_owner[lease.ip] = lease.mac

    def bind(self, lease: Lease, now: float) -> None:
        self._check_free(lease, now)
        self.release(lease.mac)
        self._drop_owner(self._ip_owner, self._bound, lease.ip)
        self._bound[lease.mac] = lease
        self._ip_owner[lease.ip] = lease.mac

    def release(self, mac: str) -> None:
        self.forget_offer(mac)
        lease = self._bound.pop(mac, None)
        if lease is not None:
            del self._ip_owner[lease.ip]

    def forget_offer(self, mac: str) -> None:
        lease = self._offers.pop(mac, None)
        if lease is not None:
            del self._offer_owner[lease.ip]

    def quarantine(self, ip: IPv4Address, until: float) -> None:
        self._quarantine[ip] = until
        for owners, table in ((self._ip_owner, self._bound), (self._offer_owner, self._offers)):
            self._drop_owner(owners, table, ip)

    def expire(self, now: float) -> list[Lease]:
        """Drop expired leases, offers and quarantines; return the dropped bound leases."""
        gone = [lease for lease in self._bound.values() if not lease.active(now)]
        for lease in gone:
            self.release(lease.mac)
        for lease in [offer for offer in self._offers.values() if not offer.active(now)]:
            self.forget_offer(lease.mac)
        for ip in [ip for ip, until in self._quarantine.items() if until <= now]:
            del self._quarantine[ip]
        return gone

    def leases(self) -> list[Lease]:
        """Every bound lease, expired or not, sorted by address (for ``pxed leases``)."""
        return sorted(self._bound.values(), key=lambda lease: lease.ip)

    def quarantines(self) -> dict[IPv4Address, float]:
        return dict(self._quarantine)

    def _check_free(self, lease: Lease, now: float) -> None:
        holder = self.holder_of(lease.ip, now)
        if holder is not None and holder != lease.mac:
            raise LeaseConflict(f"{lease.ip} is held by {holder}, cannot give it to {lease.mac}")

    @staticmethod
    def _drop_owner(
        owners: dict[IPv4Address, str], table: dict[str, Lease], ip: IPv4Address
    ) -> None:
        mac = owners.pop(ip, None)
        if mac is not None:
            del table[mac]
