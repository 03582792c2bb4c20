"""Heartbeats in the shared database: who is live for the client split (docs/ha.md).

On a real PostgreSQL (``tests/support/postgres.py``); a beat runs inline, and a
peer goes quiet by moving its row's beat back in SQL, not by waiting.
"""

from __future__ import annotations

from ipaddress import IPv4Address

import psycopg
from twisted.internet.task import Clock

from protocols.share import Share
from pxed.database.connection import connect
from pxed.database.migrations import migrate
from pxed.dhcp.heartbeat import Heartbeat
from tests.support.postgres import Inline

PXE1 = IPv4Address("10.213.0.1")
PXE2 = IPv4Address("10.213.0.3")


def heartbeat(url: str, name: str, address: IPv4Address) -> Heartbeat:
    return Heartbeat(url, name, [address], 3, Inline(), Clock())


def migrated(url: str) -> str:
    with connect(url) as conn:
        migrate(conn)
    return url


def test_servers_that_beat_see_each_other_live(postgres_url: str) -> None:
    one = heartbeat(migrated(postgres_url), "pxe1", PXE1)
    two = heartbeat(postgres_url, "pxe2", PXE2)
    one.beat(), two.beat(), one.beat()
    assert one.peers.live == two.peers.live == {"pxe1", "pxe2"}
    assert one.peers.gone == two.peers.gone == frozenset()
    one.stop(), two.stop()


def test_the_live_servers_share_out_the_pools_by_name(postgres_url: str) -> None:
    """The share DHCPv6's adapter asks for: this server's rank among the live, by name."""
    one = heartbeat(migrated(postgres_url), "pxe1", PXE1)
    two = heartbeat(postgres_url, "pxe2", PXE2)
    assert two.share() == Share(0, 1)  # alone until its first beat
    one.beat(), two.beat(), one.beat()
    assert (one.share(), two.share()) == (Share(0, 2), Share(1, 2))
    one.stop(), two.stop()


def test_a_peer_silent_past_the_timeout_is_gone_with_its_addresses_until_it_beats(
    postgres_url: str,
) -> None:
    one = heartbeat(migrated(postgres_url), "pxe1", PXE1)
    two = heartbeat(postgres_url, "pxe2", PXE2)
    two.beat()
    with psycopg.connect(postgres_url) as conn:
        conn.execute("UPDATE servers SET beat = beat - interval '4 seconds' WHERE name = 'pxe2'")
    one.beat()
    assert one.peers.live == {"pxe1"} and one.peers.gone == {PXE2}
    two.beat(), one.beat()
    assert one.peers.live == {"pxe1", "pxe2"} and one.peers.gone == frozenset()
    one.stop(), two.stop()


def test_while_the_database_cannot_be_read_the_last_split_stands(postgres_url: str) -> None:
    one = heartbeat(migrated(postgres_url), "pxe1", PXE1)
    two = heartbeat(postgres_url, "pxe2", PXE2)
    two.beat(), one.beat()
    two.stop()
    one.url = "postgresql:///nowhere?host=/nonexistent&connect_timeout=1"
    one._conn.close()  # type: ignore[union-attr]
    one.beat()
    assert one.peers.live == {"pxe1", "pxe2"}
    assert one.problem is not None and "connect" in one.problem
    one.stop()


def test_a_gone_servers_address_that_a_live_server_answers_from_is_not_taken_over(
    postgres_url: str,
) -> None:
    one = heartbeat(migrated(postgres_url), "pxe1", PXE1)
    renamed = heartbeat(postgres_url, "pxe2-old", PXE2)
    renamed.beat()
    with psycopg.connect(postgres_url) as conn:
        conn.execute("UPDATE servers SET beat = beat - interval '1 hour'")
    two = heartbeat(postgres_url, "pxe2", PXE2)
    two.beat(), one.beat()
    assert one.peers.live == {"pxe1", "pxe2"} and one.peers.gone == frozenset()
    one.stop(), two.stop(), renamed.stop()
