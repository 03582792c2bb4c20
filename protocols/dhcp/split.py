"""Load balancing with takeover between pxed servers sharing one lease database (RFC 3074).

Two servers that both answer every broadcast do the work twice and race each other in
the database (docs/ha.md).  Instead each client belongs to one live server: RFC 3074's
Pearson hash of its client identifier (option 61, else chaddr) gives a bucket 0-255,
and with the live servers sorted by name, bucket ``b`` belongs to the ``b % n``-th.
The servers agree without talking, since each reads the same live set from the
database's heartbeat table; when a server is gone its buckets fall to the others at
the next read, and when it returns the split is back.  For the moments two servers
disagree on the live set (a heartbeat read apart), a client may get two answers or
none for a few seconds: the database's unique constraint still decides every address.

The split applies to what a client broadcasts to whoever listens: DISCOVER, INFORM,
BOOTP and the INIT-REBOOT REQUEST (no server identifier, no ciaddr).  A REQUEST that
names a server identifier, a renewal (ciaddr set: the client unicasts it to the
server that leased the address, or broadcasts it when that one is silent), RELEASE
and DECLINE go to the engine as they are.  RFC 3074 leaves to the server a REQUEST
naming a peer that is gone (the peer offered, then died): it is answered here, as
if it had named this server, so the client is bound now instead of starting over
after its REQUEST timeouts.  A peer that beats but does not hear its clients is
the concern of ``protocols.dhcp.overdue``: what ``take`` leaves to a live peer, the
adapter asks it about.

The same live set splits each pool's free addresses (``share``): this server's rank
among the live servers sorted by name picks the pool positions it probes first
(``protocols.share``; DHCPv6's free addresses too), so two live servers' memories, which learn
each other's leases only a poll later, do not pick one address for two clients.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from ipaddress import IPv4Address

from protocols.dhcp.options import CLIENT_ID, SERVER_ID, MessageType
from protocols.dhcp.wire import DhcpPacket, make_options
from protocols.errors import MalformedPacket
from protocols.once import once
from protocols.share import Share

# RFC 3074 section 6: the permutation of 0-255 behind the Pearson hash.
_TABLE = bytes(
    (
        251, 175, 119, 215, 81, 14, 79, 191, 103, 49, 181, 143, 186, 157, 0,
        232, 31, 32, 55, 60, 152, 58, 17, 237, 174, 70, 160, 144, 220, 90, 57,
        223, 59, 3, 18, 140, 111, 166, 203, 196, 134, 243, 124, 95, 222, 179,
        197, 65, 180, 48, 36, 15, 107, 46, 233, 130, 165, 30, 123, 161, 209, 23,
        97, 16, 40, 91, 219, 61, 100, 10, 210, 109, 250, 127, 22, 138, 29, 108,
        244, 67, 207, 9, 178, 204, 74, 98, 126, 249, 167, 116, 34, 77, 193,
        200, 121, 5, 20, 113, 71, 35, 128, 13, 182, 94, 25, 226, 227, 199, 75,
        27, 41, 245, 230, 224, 43, 225, 177, 26, 155, 150, 212, 142, 218, 115,
        241, 73, 88, 105, 39, 114, 62, 255, 192, 201, 145, 214, 168, 158, 221,
        148, 154, 122, 12, 84, 82, 163, 44, 139, 228, 236, 205, 242, 217, 11,
        187, 146, 159, 64, 86, 239, 195, 42, 106, 198, 118, 112, 184, 172, 87,
        2, 173, 117, 176, 229, 247, 253, 137, 185, 99, 164, 102, 147, 45, 66,
        231, 52, 141, 211, 194, 206, 246, 238, 56, 110, 78, 248, 63, 240, 189,
        93, 92, 51, 53, 183, 19, 171, 72, 50, 33, 104, 101, 69, 8, 252, 83, 120,
        76, 135, 85, 54, 202, 125, 188, 213, 96, 235, 136, 208, 162, 129, 190,
        132, 156, 38, 47, 1, 7, 254, 24, 4, 216, 131, 89, 21, 28, 133, 37, 153,
        149, 80, 170, 68, 6, 169, 234, 151,
    )
)  # fmt: skip
_SPLIT = frozenset({MessageType.DISCOVER, MessageType.INFORM, None})


@dataclass(frozen=True)
class Peers:
    """The servers sharing the database, as the heartbeat table last said."""

    me: str  # this server's ``server.name``
    live: frozenset[str]  # the names whose heartbeat is recent (``me`` counts as live)
    gone: frozenset[IPv4Address] = frozenset()  # server identifiers of servers gone

    @once
    def share(self) -> Share:
        """This server's share of each pool's free addresses: its rank among the live."""
        names = sorted(self.live | {self.me})
        return Share(names.index(self.me), len(names))


def bucket(key: bytes) -> int:
    """RFC 3074's hash: the length seeds it, the key's bytes go in from the last."""
    value = len(key) & 0xFF
    for byte in reversed(key):
        value = _TABLE[value ^ byte]
    return value


def owner(key: bytes, live: Iterable[str]) -> str:
    """The live server that answers the client whose identifier is ``key``."""
    names = sorted(set(live))
    return names[bucket(key) % len(names)]


def client_key(request: DhcpPacket) -> bytes:
    """What RFC 3074 hashes: the client identifier (option 61) when sent, else chaddr."""
    identifier = request.get(CLIENT_ID)
    if identifier is not None and identifier.data:
        return identifier.data
    return request.chaddr[: request.hlen]


def take(request: DhcpPacket, peers: Peers, address: IPv4Address) -> DhcpPacket | None:
    """The request for this server's engine (``address``: the server identifier of the
    interface it came in on), or None when a live peer answers it.  A badly typed
    option 53 or 54 goes to the engine, which drops it and says why."""
    try:
        server_id, kind = request.server_id, request.message_type
    except MalformedPacket:
        return request
    if server_id is not None:
        if server_id in peers.gone and server_id != address:
            return adopted(request, address)
        return request
    broadcast = kind in _SPLIT or (kind == MessageType.REQUEST and int(request.ciaddr) == 0)
    if not broadcast or owner(client_key(request), peers.live | {peers.me}) == peers.me:
        return request
    return None


def adopted(request: DhcpPacket, address: IPv4Address) -> DhcpPacket:
    """``request`` as if it had named ``address`` as its server identifier."""
    options = [option for option in request.options if option.code != SERVER_ID]
    return replace(request, options=make_options([*options, (SERVER_ID, address)]), layout=None)
