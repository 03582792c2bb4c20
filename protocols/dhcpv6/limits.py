"""How much of a pool un-confirmed offers may hold, sans-I/O.

A SOLICIT costs the sender nothing, and an attacker on the link can send them
from as many DUIDs and link-local sources as it likes: the per-source
``RateLimit`` (protocols/dhcp/limits.py) slows one source, not a thousand. Each
ADVERTISE held its address for ``offer_time`` seconds, so such a flood could hold
a whole pool and starve real clients. RFC 8415 binds nothing before the REQUEST
(an ADVERTISE commits no lease), so a server may advertise an address without
reserving it. Past ``max_offered`` of a link's pool an ADVERTISE still names a
free address but holds none; the client's REQUEST then gets that address if it
is still free, else another.

The count is kept here rather than asked of the lease store: every offer is made
and dropped through the engine, offers all last ``offer_time`` (so insertion
order is expiry order and the expired fall off the front), and a count that is
briefly too high only makes offers unheld sooner, which is safe.
"""

from __future__ import annotations

from collections import OrderedDict

from protocols.dhcpv6.allocation import Link
from protocols.dhcpv6.leases import BindingKey


class OfferHolds:
    """The offers held on each link, by IA, with when each expires."""

    def __init__(self, max_offered: float) -> None:
        self.max_offered = max_offered
        self._held: dict[Link, OrderedDict[BindingKey, float]] = {}

    def room(self, link: Link, key: BindingKey, now: float) -> bool:
        """Whether the IA ``key`` may hold an offer on ``link`` (one it holds already may
        be renewed)."""
        held = self._live(link, now)
        return key in held or len(held) + 1 <= self.max_offered * link.pool_size

    def hold(self, link: Link, key: BindingKey, expires: float) -> None:
        held = self._held.setdefault(link, OrderedDict())
        held.pop(key, None)
        held[key] = expires

    def drop(self, key: BindingKey) -> None:
        """The IA's offer is gone (bound, released)."""
        for held in self._held.values():
            held.pop(key, None)

    def _live(self, link: Link, now: float) -> OrderedDict[BindingKey, float]:
        held = self._held.setdefault(link, OrderedDict())
        while held:
            key, expires = next(iter(held.items()))
            if expires > now:
                break
            del held[key]
        return held
