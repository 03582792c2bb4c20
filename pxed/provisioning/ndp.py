"""The kernel's IPv6 neighbour table (NDP), read over rtnetlink: IPv6's /proc/net/arp.

Linux keeps IPv6 neighbours in no /proc file, so ``pxed.provisioning.identity``
asks rtnetlink for a dump (RTM_GETNEIGH, AF_INET6) at each question, as it reads
/proc/net/arp afresh for IPv4. A dump answers at once from the kernel's memory; an
answer-file fetch is rare enough that no cache is worth its staleness.

Only complete entries count (reachable, stale, delay, probe or permanent: the kernel
has the MAC), as ATF_COM does for ARP. Link-local addresses repeat across links; the
entries of one address that disagree about the MAC give no answer rather than a guess.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Iterator
from ipaddress import IPv6Address

RTM_NEWNEIGH, RTM_GETNEIGH = 28, 30
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NDA_DST, NDA_LLADDR = 1, 2
# NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT (linux/neighbour.h)
COMPLETE = 0x02 | 0x04 | 0x08 | 0x10 | 0x80
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id
_NDMSG = struct.Struct("=BxxxiHBB")  # family, ifindex, state, flags, type
_ATTR = struct.Struct("=HH")  # rtattr: length, type

Dump = Callable[[], bytes]


def dump() -> bytes:
    """Every IPv6 neighbour entry, as the kernel's RTM_NEWNEIGH messages back to back."""
    request = _NDMSG.pack(socket.AF_INET6, 0, 0, 0, 0)
    header = _HEADER.pack(_HEADER.size + len(request), RTM_GETNEIGH,
                          NLM_F_REQUEST | NLM_F_DUMP, 1, 0)  # fmt: skip
    chunks = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.settimeout(2.0)
        sock.sendto(header + request, (0, 0))
        while True:
            chunk = sock.recv(65536)
            chunks.append(chunk)
            if _ends(chunk):
                return b"".join(chunks)


def _ends(chunk: bytes) -> bool:
    """Does this datagram end the dump (NLMSG_DONE, or an error instead of entries)?"""
    return any(kind in (NLMSG_DONE, NLMSG_ERROR) for kind, _ in _messages(chunk))


def _messages(data: bytes) -> Iterator[tuple[int, bytes]]:
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, _, _, _ = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size:
            return
        yield kind, data[offset + _HEADER.size : offset + length]
        offset += (length + 3) & ~3


def entries(data: bytes) -> Iterator[tuple[IPv6Address, str]]:
    """(address, MAC) of each complete IPv6 entry in a dump."""
    for kind, body in _messages(data):
        if kind != RTM_NEWNEIGH or len(body) < _NDMSG.size:
            continue
        family, _, state, _, _ = _NDMSG.unpack_from(body)
        if family != socket.AF_INET6 or not state & COMPLETE:
            continue
        attrs = dict(_attributes(body[_NDMSG.size :]))
        destination, mac = attrs.get(NDA_DST), attrs.get(NDA_LLADDR)
        if destination is not None and len(destination) == 16 and mac is not None and len(mac) == 6:
            yield IPv6Address(destination), ":".join(f"{byte:02x}" for byte in mac)


def _attributes(data: bytes) -> Iterator[tuple[int, bytes]]:
    offset = 0
    while offset + _ATTR.size <= len(data):
        length, kind = _ATTR.unpack_from(data, offset)
        if length < _ATTR.size:
            return
        yield kind, data[offset + _ATTR.size : offset + length]
        offset += (length + 3) & ~3


def mac_of(address: str, read: Dump = dump) -> str | None:
    """The MAC of IPv6 ``address`` if one complete entry (or several that agree) has it."""
    try:
        wanted = IPv6Address(address.partition("%")[0])
    except ValueError:
        return None
    try:
        macs = {mac for found, mac in entries(read()) if found == wanted}
    except OSError:
        return None
    return macs.pop() if len(macs) == 1 else None
