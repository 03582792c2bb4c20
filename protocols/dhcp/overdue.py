"""A live peer's clients that it evidently does not serve (RFC 3074 section 5).

The split (``protocols.dhcp.split``) trusts the heartbeat: a peer whose beat is recent
answers its bucket.  A server can beat and still not hear its clients (its LAN link
down, a relay that forwards only to the other server), and then its bucket gets no
answer at all.  The clients say so themselves, as RFC 3074 section 5 and Kea HA's
``max-ack-delay`` read them: a broadcast whose ``secs`` (seconds since the client began
trying) has reached ``ack_delay`` has gone unanswered that long.  Some firmware does not
count ``secs`` up on its retries (docs/ha.md has what each one does), so the
``TRANSMISSIONS``-th copy of one exchange (the same client and xid) is taken over too;
a client that starts a new exchange (a new xid) counts from one again.

Remembering exchanges costs memory, and on a hostile LAN any MAC can be sent: at most
``limit`` clients are remembered, the one heard from longest ago forgotten first.
Forgetting a client only delays its takeover.  Answering a client its live peer also
answers costs two OFFERs, of which the client takes one: the database's unique
constraint still decides every address (docs/ha.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from protocols.dhcp.split import client_key
from protocols.dhcp.wire import DhcpPacket

TRANSMISSIONS = 3  # iPXE's third DISCOVER leaves 3 s after its first, EDK2's 13 s after
LIMIT = 4096  # clients remembered (each memory): about 1 MB in all when full
V = TypeVar("V")


@dataclass(frozen=True)
class Takeover:
    """Why this server answers a live peer's client."""

    reason: str  # for the log: the secs it sent, or which copy of its exchange it is
    first: bool  # not taken over before (as far as the bounded memory knows): log it


class Overdue:
    """Counts the broadcasts of a live peer's clients and says which to answer here."""

    def __init__(self, ack_delay: int, limit: int = LIMIT) -> None:
        self.ack_delay = ack_delay  # server.peer_ack_delay, in the secs field's seconds
        self.limit = limit
        self._copies: dict[bytes, tuple[int, int]] = {}  # client key -> (xid, copies seen)
        self._taken: dict[bytes, None] = {}  # client keys taken over, oldest first

    def check(self, request: DhcpPacket) -> Takeover | None:
        """For a broadcast the split left to a live peer: a Takeover when this server
        answers it after all, else None (the peer answers, as far as anyone can tell)."""
        key = client_key(request)
        copies = self._count(key, request.xid)
        if request.secs >= self.ack_delay:
            reason = f"secs {request.secs} >= server.peer_ack_delay {self.ack_delay}"
        elif copies >= TRANSMISSIONS:
            reason = f"copy {copies} of xid {request.xid:#010x} unanswered"
        else:
            return None
        return Takeover(reason, _remember(self._taken, key, None, self.limit))

    def _count(self, key: bytes, xid: int) -> int:
        seen, copies = self._copies.get(key, (xid, 0))
        copies = copies + 1 if seen == xid else 1
        _remember(self._copies, key, (xid, copies), self.limit)
        return copies


def _remember(memory: dict[bytes, V], key: bytes, value: V, limit: int) -> bool:
    """Put ``key`` last (the most recent) in ``memory``, forgetting the oldest beyond
    ``limit``; True when it was not there before."""
    new = key not in memory
    memory.pop(key, None)
    memory[key] = value
    if len(memory) > limit:
        del memory[next(iter(memory))]
    return new
