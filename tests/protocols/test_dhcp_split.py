"""The client split between pxed servers sharing a database (RFC 3074 load balancing)."""

from __future__ import annotations

from collections import Counter
from ipaddress import IPv4Address

from protocols.dhcp.options import MessageType
from protocols.dhcp.split import Peers, bucket, client_key, owner, take
from protocols.dhcp.wire import DhcpPacket, decode_dhcp
from protocols.share import WHOLE_POOL, Share
from tests.protocols.dhcp_engine_support import (
    MAC,
    ON_LAB,
    OTHER_SERVER,
    SERVER,
    reply_packet,
    request,
    server,
)

BOTH = frozenset({"pxe1", "pxe2"})
MACS = [f"52:54:00:{n >> 16 & 0xFF:02x}:{n >> 8 & 0xFF:02x}:{n & 0xFF:02x}" for n in range(4000)]


def packet(kind: MessageType | None, mac: str = MAC, **kwargs: object) -> DhcpPacket:
    return decode_dhcp(request(kind, mac, **kwargs))  # type: ignore[arg-type]


def answered_by(peers_of: dict[str, Peers], kind: MessageType, mac: str) -> set[str]:
    return {name for name, peers in peers_of.items() if take(packet(kind, mac), peers, SERVER)}


def test_each_live_server_shares_the_pools_by_its_rank_by_name_and_a_lone_one_has_all():
    three = frozenset({"pxe1", "pxe2", "pxe3"})
    assert [Peers(name, three).share for name in ("pxe1", "pxe2", "pxe3")] == [
        Share(0, 3),
        Share(1, 3),
        Share(2, 3),
    ]
    assert Peers("pxe2", frozenset({"pxe2"})).share == WHOLE_POOL
    assert Peers("pxe2", frozenset({"pxe1"})).share == Share(1, 2)  # before its own beat


def test_the_hash_is_rfc_3074s_over_a_permutation_seeded_by_the_length() -> None:
    assert sorted(bucket(bytes([n])) for n in range(256)) == list(range(256))
    assert bucket(b"") == 0 and bucket(b"\x00") == 175  # T[len ^ byte] = T[1]


def test_two_live_servers_split_the_clients_about_evenly_and_each_client_has_one() -> None:
    peers = {name: Peers(name, BOTH) for name in BOTH}
    owners = Counter()
    for mac in MACS:
        answering = answered_by(peers, MessageType.DISCOVER, mac)
        assert len(answering) == 1, (mac, answering)
        owners.update(answering)
    assert 0.45 < owners["pxe1"] / len(MACS) < 0.55, owners


def test_a_server_alone_answers_every_client_and_the_split_resumes_when_its_peer_returns() -> None:
    before = {mac: owner(client_key(packet(MessageType.DISCOVER, mac)), BOTH) for mac in MACS}
    alone = Peers("pxe1", frozenset({"pxe1"}))
    assert all(take(packet(MessageType.DISCOVER, mac), alone, SERVER) for mac in MACS)
    back = {name: Peers(name, BOTH) for name in BOTH}
    after = {mac: answered_by(back, MessageType.DISCOVER, mac) for mac in MACS}
    assert after == {mac: {name} for mac, name in before.items()}


def test_this_server_counts_as_live_even_before_its_own_heartbeat_is_read() -> None:
    lonely = Peers("pxe2", frozenset({"pxe1"}))
    mine = [
        mac for mac in MACS if owner(client_key(packet(MessageType.DISCOVER, mac)), BOTH) == "pxe2"
    ]
    assert mine and all(take(packet(MessageType.DISCOVER, mac), lonely, SERVER) for mac in mine)


def test_the_client_identifier_is_hashed_rather_than_chaddr_when_sent() -> None:
    identifier = b"\x01\x52\x54\x00\xaa\xbb\xcc"
    sent = packet(MessageType.DISCOVER, options=((61, identifier),))
    assert client_key(sent) == identifier
    assert client_key(packet(MessageType.DISCOVER)) == bytes.fromhex(MAC.replace(":", ""))


def test_init_reboot_informs_and_bootp_are_split_like_discovers() -> None:
    peers = {name: Peers(name, BOTH) for name in BOTH}
    reboot = ((50, IPv4Address("10.213.7.100")),)
    for mac in MACS[:50]:
        split = answered_by(peers, MessageType.DISCOVER, mac)
        kinds: list[MessageType | None] = [MessageType.INFORM, None]
        for kind in kinds:
            assert {n for n, p in peers.items() if take(packet(kind, mac), p, SERVER)} == split
        init_reboot = packet(MessageType.REQUEST, mac, options=reboot)
        assert {n for n, p in peers.items() if take(init_reboot, p, SERVER)} == split


def test_renewals_releases_and_requests_naming_a_server_reach_the_engine_unchanged() -> None:
    peers = Peers("pxe1", BOTH)
    lease = IPv4Address("10.213.7.100")
    for mac in MACS[:50]:
        renewing = packet(MessageType.REQUEST, mac, ciaddr=lease)
        released = packet(MessageType.RELEASE, mac, ciaddr=lease, options=((54, OTHER_SERVER),))
        selecting = packet(MessageType.REQUEST, mac, options=((54, OTHER_SERVER), (50, lease)))
        for sent in (renewing, released, selecting):
            assert take(sent, peers, SERVER) is sent


def test_a_request_naming_a_gone_peer_is_acked_by_this_server_under_its_own_identifier() -> None:
    peers = Peers("pxe1", frozenset({"pxe1"}), frozenset({OTHER_SERVER}))
    offered = IPv4Address("10.213.7.100")
    sent = packet(MessageType.REQUEST, options=((54, OTHER_SERVER), (50, offered)))
    adopted = take(sent, peers, SERVER)
    assert adopted is not None and adopted.server_id == SERVER
    assert adopted.requested_ip == offered and adopted.xid == sent.xid
    ack = reply_packet(server().handle(adopted, ON_LAB, 1000.0))
    assert ack.message_type == MessageType.ACK and ack.yiaddr == offered
    assert ack.server_id == SERVER
