"""Random conversations with the engine: it never raises, never gives one address to two
clients, and always honours reservations."""

from __future__ import annotations

from ipaddress import IPv4Address

from hypothesis import given
from hypothesis import strategies as st

from protocols.dhcp.leases import MemoryLeaseStore
from protocols.dhcp.options import MessageType
from protocols.dhcp.server import Mode, Received, Reply
from protocols.dhcp.wire import decode_dhcp
from tests.protocols.dhcp_engine_support import (
    LAB,
    ON_LAB,
    OTHER_SERVER,
    RELAY,
    RESERVED_IP,
    RESERVED_MAC,
    SERVER,
    request,
    server,
)
from tests.support.fuzz import fuzz_settings, property_settings

MACS = [RESERVED_MAC] + [f"52:54:00:00:00:{n:02x}" for n in range(1, 14)]  # more than the pool
ADDRESSES = [
    IPv4Address(0),
    RESERVED_IP,
    IPv4Address("10.213.7.100"),
    IPv4Address("10.213.7.101"),
    IPv4Address("10.213.7.109"),
    IPv4Address("10.213.7.255"),
    IPv4Address("10.213.8.100"),
]
M = MessageType
# Client messages (weighted to DORA), BOOTP (None), and two a client never sends.
KINDS = [None, M.DISCOVER, M.DISCOVER, M.REQUEST, M.REQUEST, M.REQUEST, M.DECLINE, M.RELEASE]
KINDS += [M.INFORM, M.OFFER, M.LEASEQUERY]

message = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(KINDS),
        "mac": st.sampled_from(MACS),
        "xid": st.integers(0, 3),
        "requested": st.sampled_from(ADDRESSES),
        "ciaddr": st.sampled_from(ADDRESSES),
        "server_id": st.sampled_from([None, SERVER, OTHER_SERVER]),
        "relayed": st.booleans(),
        "advance": st.floats(0, 2000),
        "pxe": st.booleans(),
    }
)


def build(msg: dict) -> bytes:
    options: list[tuple[int, object]] = []
    if msg["requested"] != IPv4Address(0):
        options.append((50, msg["requested"]))
    if msg["server_id"] is not None:
        options.append((54, msg["server_id"]))
    if msg["pxe"]:
        options += [(60, "PXEClient:Arch:00007:UNDI:003000"), (93, [7])]
    return request(
        msg["kind"],
        msg["mac"],
        xid=msg["xid"],
        options=tuple(options),
        ciaddr=msg["ciaddr"],
        giaddr=RELAY if msg["relayed"] else IPv4Address(0),
    )


def check_invariants(store: MemoryLeaseStore, now: float) -> None:
    holders: dict[IPv4Address, str] = {}
    for mac in MACS:
        lease = store.lease_for(mac, now)
        if lease is None:
            continue
        assert holders.setdefault(lease.ip, mac) == mac, f"{lease.ip} held twice"
        assert (lease.ip == RESERVED_IP) == (mac == RESERVED_MAC)


@property_settings
@given(st.lists(message, max_size=40), st.sampled_from([Mode.FULL, Mode.PROXY]), st.booleans())
def test_random_conversations_keep_addresses_unique_and_reservations_honoured(
    messages, mode, authoritative
):
    store = MemoryLeaseStore()
    engine = server(store, mode=mode, authoritative=authoritative)
    now = 1000.0
    for msg in messages:
        now += msg["advance"]
        before = store.lease_for(msg["mac"], now)
        action = engine.handle_datagram(build(msg), ON_LAB, now)
        if isinstance(action, Reply):
            reply = decode_dhcp(action.data)
            assert len(action.data) <= 576 - 28  # no option 57 sent: the RFC minimum
            if reply.message_type == MessageType.ACK and reply.yiaddr != IPv4Address(0):
                lease = store.lease_for(msg["mac"], now)
                assert lease is not None and lease.ip == reply.yiaddr
            if reply.yiaddr == RESERVED_IP:
                assert msg["mac"] == RESERVED_MAC
            if mode is Mode.PROXY:
                assert reply.yiaddr == IPv4Address(0)
            elif reply.yiaddr != IPv4Address(0) and not msg["relayed"]:
                # Off the link's subnet only when renewing (by unicast) a lease it holds.
                renewal = before is not None and reply.yiaddr == before.ip == msg["ciaddr"]
                assert reply.yiaddr == RESERVED_IP or LAB.in_pool(reply.yiaddr) or renewal
        check_invariants(store, now)


@fuzz_settings
@given(st.binary(max_size=600), st.sampled_from([67, 4011]))
def test_arbitrary_datagrams_never_raise(data, port):
    """Whatever arrives, the engine answers or says why not; it never raises."""
    received = Received(SERVER, (IPv4Address("10.213.7.150"), 68), port=port)
    engine = server()
    engine.handle_datagram(data, received, 1000.0)
    engine.handle_datagram(data, ON_LAB, 1000.0)


@property_settings
@given(st.lists(st.tuples(st.integers(1, 254), st.binary(max_size=30)), max_size=12))
def test_requests_with_arbitrary_options_never_raise(options):
    engine = server()
    for kind in (MessageType.DISCOVER, MessageType.REQUEST, MessageType.INFORM, None):
        data = request(kind, options=tuple((code, value) for code, value in options if code != 53))
        engine.handle_datagram(data, ON_LAB, 1000.0)
