"""The IPv6 neighbour table over rtnetlink: complete entries only, one MAC or none."""

from __future__ import annotations

import socket
import struct

from pxed.provisioning import ndp
from pxed.provisioning.ndp import COMPLETE, NDA_DST, NDA_LLADDR, NLMSG_DONE, RTM_NEWNEIGH

REACHABLE, STALE, INCOMPLETE, FAILED = 0x02, 0x04, 0x01, 0x20


def _attr(kind: int, value: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(value), kind) + value
    return raw + bytes(-len(raw) % 4)


def _message(kind: int, body: bytes) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), kind, 2, 1, 0) + body


def entry(address: str, mac: str | None, state: int = REACHABLE, ifindex: int = 2) -> bytes:
    body = struct.pack("=BxxxiHBB", socket.AF_INET6, ifindex, state, 0, 1)
    body += _attr(NDA_DST, socket.inet_pton(socket.AF_INET6, address))
    if mac is not None:
        body += _attr(NDA_LLADDR, bytes.fromhex(mac.replace(":", "")))
    return _message(RTM_NEWNEIGH, body)


DONE = _message(NLMSG_DONE, struct.pack("=i", 0))


def test_complete_entries_give_their_mac_and_incomplete_ones_nothing():
    dump = (
        entry("2001:db8::2", "52:54:00:12:34:56")
        + entry("2001:db8::3", "52:54:00:12:34:57", STALE)
        + entry("2001:db8::4", None, INCOMPLETE)
        + entry("2001:db8::5", "52:54:00:12:34:59", FAILED)
        + DONE
    )
    assert [(str(a), mac) for a, mac in ndp.entries(dump)] == [
        ("2001:db8::2", "52:54:00:12:34:56"),
        ("2001:db8::3", "52:54:00:12:34:57"),
    ]
    assert ndp.mac_of("2001:db8::2", lambda: dump) == "52:54:00:12:34:56"
    assert ndp.mac_of("2001:0db8::0003", lambda: dump) == "52:54:00:12:34:57"
    assert ndp.mac_of("2001:db8::4", lambda: dump) is None
    assert ndp.mac_of("2001:db8::5", lambda: dump) is None
    assert STALE & COMPLETE and not (INCOMPLETE | FAILED) & COMPLETE


def test_a_link_local_address_on_two_links_with_two_macs_gives_no_answer():
    agree = entry("fe80::2", "52:54:00:12:34:56", ifindex=2) + entry(
        "fe80::2", "52:54:00:12:34:56", ifindex=3
    )
    disagree = entry("fe80::2", "52:54:00:12:34:56", ifindex=2) + entry(
        "fe80::2", "52:54:00:aa:bb:cc", ifindex=3
    )
    assert ndp.mac_of("fe80::2%veth0", lambda: agree + DONE) == "52:54:00:12:34:56"
    assert ndp.mac_of("fe80::2", lambda: disagree + DONE) is None


def test_a_table_that_cannot_be_read_or_a_non_address_gives_no_answer():
    def refused() -> bytes:
        raise PermissionError("netlink")

    assert ndp.mac_of("2001:db8::2", refused) is None
    assert ndp.mac_of("not an address", lambda: DONE) is None


def test_the_live_dump_ends_and_parses():
    """The kernel's own table (this namespace's; empty or not): the request is well formed."""
    list(ndp.entries(ndp.dump()))
