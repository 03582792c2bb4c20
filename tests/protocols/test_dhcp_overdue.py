"""A live peer's clients that it evidently does not serve are answered here (RFC 3074 s. 5)."""

from __future__ import annotations

from dataclasses import replace

from protocols.dhcp.options import MessageType
from protocols.dhcp.overdue import TRANSMISSIONS, Overdue
from protocols.dhcp.wire import DhcpPacket, decode_dhcp
from tests.protocols.dhcp_engine_support import MAC, request


def discover(mac: str = MAC, secs: int = 0, xid: int = 0x1234) -> DhcpPacket:
    return replace(decode_dhcp(request(MessageType.DISCOVER, mac, xid=xid)), secs=secs)


def test_a_broadcast_whose_secs_reaches_the_ack_delay_is_answered_and_below_it_is_not() -> None:
    overdue = Overdue(ack_delay=10)
    assert overdue.check(discover(secs=9, xid=1)) is None
    assert overdue.check(discover(secs=10, xid=2)) == "secs 10 >= server.peer_ack_delay 10"
    assert overdue.check(discover(secs=65535, xid=3)) is not None


def test_the_third_copy_of_one_exchange_is_answered_though_its_secs_stay_zero() -> None:
    overdue = Overdue(ack_delay=10)
    copies = [overdue.check(discover(secs=0, xid=0xB7C5EA97)) for _ in range(TRANSMISSIONS + 1)]
    assert copies == [None] * (TRANSMISSIONS - 1) + [
        "copy 3 of xid 0xb7c5ea97 unanswered",
        "copy 4 of xid 0xb7c5ea97 unanswered",
    ]


def test_a_new_exchange_counts_its_copies_from_one_again() -> None:
    overdue = Overdue(ack_delay=10)
    for xid in range(1, 10):  # a client that boots again and again, each answered at once
        assert overdue.check(discover(xid=xid)) is None
    assert overdue.check(discover(xid=1)) is None  # one copy of xid 1 since xid 9


def test_clients_count_apart() -> None:
    overdue = Overdue(ack_delay=10)
    for n in range(TRANSMISSIONS - 1):
        assert overdue.check(discover(f"52:54:00:00:00:{n:02x}")) is None
        assert overdue.check(discover(f"52:54:00:00:01:{n:02x}")) is None


def test_the_memory_holds_at_most_limit_clients_and_forgets_the_least_recent() -> None:
    overdue = Overdue(ack_delay=10, limit=8)
    first, kept = discover("52:54:00:00:00:00"), discover("52:54:00:00:00:01")
    for _ in range(TRANSMISSIONS - 1):
        assert overdue.check(first) is None and overdue.check(kept) is None
    for n in range(2, 1000):  # a flood of made-up MACs, and the kept client heard among them
        overdue.check(discover(f"52:54:00:00:{n >> 8:02x}:{n & 0xFF:02x}"))
        if n % 4 == 0:
            overdue.check(replace(kept, secs=1))
    assert len(overdue._copies) == 8
    assert overdue.check(first) is None  # forgotten: it counts from one again
    assert overdue.check(kept) is not None  # still remembered: its copies went on counting
