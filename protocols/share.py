"""A server's share of a pool's free addresses, among the live servers (DHCPv4 and DHCPv6).

Servers sharing a lease database (docs/ha.md) each allocate from their own memory,
which learns the others' leases only a poll later: two probes landing on one
address lose one exchange to the database's unique constraint.  So each probes
first the pool positions that fall to its rank among the live servers (a position
``p``, the offset from the range's first address, is the share ``p % count``'s),
and only when its share is full the rest, where the constraint still decides.  A
lone server's share is the whole pool.  The rank comes from the DHCPv4 heartbeat's
live set (``protocols.dhcp.split.Peers.share``); each family's allocator walks the
positions (``protocols.dhcp.allocation``, ``protocols.dhcpv6.allocation``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Share:
    """The pool positions ``p`` with ``p % count == index``: this server's among ``count``."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"share {self.index} of {self.count} does not exist")

    def positions(self, size: int, start: int) -> Iterator[int]:
        """Every position of a pool of ``size``: this share's from about ``start`` on, then
        the others' from ``start`` on."""
        mine = max(0, (size - self.index + self.count - 1) // self.count)
        for step in range(mine):
            yield self.index + (start + step) % mine * self.count
        if self.count > 1:
            for step in range(size):
                position = (start + step) % size
                if position % self.count != self.index:
                    yield position


WHOLE_POOL = Share()
