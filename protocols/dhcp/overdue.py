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

from collections import OrderedDict

from protocols.dhcp.split import client_key
from protocols.dhcp.wire import DhcpPacket

TRANSMISSIONS = 3  # iPXE's third DISCOVER leaves 3 s after its first, EDK2's 13 s after
LIMIT = 4096  # clients remembered: about 0.7 MB when full


class Overdue:
    """Counts the broadcasts of a live peer's clients and says which to answer here."""

    def __init__(self, ack_delay: int, limit: int = LIMIT) -> None:
        self.ack_delay = ack_delay  # server.peer_ack_delay, in the secs field's seconds
        self.limit = limit
        # client key -> (xid, copies seen), the least recently heard first; OrderedDict:
        # dropping a dict's first entry again and again makes finding the next one slow
        self._copies: OrderedDict[bytes, tuple[int, int]] = OrderedDict()

    def check(self, request: DhcpPacket) -> str | None:
        """For a broadcast the split left to a live peer: why this server answers it after
        all (for the log), or None: the peer answers, as far as anyone can tell."""
        copies = self._count(client_key(request), request.xid)
        if request.secs >= self.ack_delay:
            return f"secs {request.secs} >= server.peer_ack_delay {self.ack_delay}"
        if copies >= TRANSMISSIONS:
            return f"copy {copies} of xid {request.xid:#010x} unanswered"
        return None

    def _count(self, key: bytes, xid: int) -> int:
        """Copies of this exchange seen so far, this one included; the client becomes
        the most recent, and the least recent is forgotten beyond ``limit``."""
        seen, copies = self._copies.pop(key, (xid, 0))
        copies = copies + 1 if seen == xid else 1
        self._copies[key] = (xid, copies)
        if len(self._copies) > self.limit:
            self._copies.popitem(last=False)
        return copies
