"""DHCPv6 bindings in PostgreSQL (``server.database``): the unique address decides between
two servers sharing the database, and the adapter's REPLY waits for the COMMIT.

What every durable store keeps (reopen, release, quarantine, expiry) runs against
PostgreSQL in test_leases.py; the batches' order and reload are the shared
``pxed.database.pg_batches``', pinned through DHCPv4's store in
tests/pxed/dhcp/test_pg_leases.py.  Every test runs on a real PostgreSQL
(``tests/support/postgres.py``; skipped, saying why, without it).
"""

from __future__ import annotations

from hashlib import sha256
from ipaddress import IPv6Address, IPv6Network
from typing import Any

import psycopg

from protocols.dhcpv6.allocation import Link
from protocols.dhcpv6.duid import DuidLl
from protocols.dhcpv6.leases import Lease, LeaseState
from protocols.dhcpv6.wire import Dhcpv6Message, decode_dhcpv6, encode_dhcpv6
from protocols.share import Share
from pxed.database.migrations import migrate
from pxed.dhcp6.pg_leases import Postgres6LeaseStore
from pxed.dhcp6.service import Dhcp6Service, Interface
from tests.protocols.dhcpv6_engine_support import (
    CLIENT,
    LINK_LOCAL,
    MAC,
    SERVER,
    SERVER_DUID,
    M,
    addresses,
    duid_bytes,
    ia,
    message,
    settings,
)
from tests.pxed.dhcp6.test_leases import DUID, DUID2, A, B, bound
from tests.support.fake_udp import FakeUDPReactor
from tests.support.postgres import Held, Inline, committed, end_pxed_sessions

NAMES = ("pxe1", "pxe2")
PREFIX = IPv6Network("fd00:213:7::/64")


def outcome_of(store: Postgres6LeaseStore) -> frozenset[str]:
    """The clients (DUIDs in hex) whose binds lost, from a commit through Inline."""
    result: list[frozenset[str]] = []
    done = store.commit()
    assert done is not None
    done.addCallback(result.append)
    return result[0]


def rows(url: str) -> list[tuple[bytes, str, str | None]]:
    with psycopg.connect(url) as conn:
        found = conn.execute("SELECT client, host(address), server FROM leases6").fetchall()
    return [(bytes(client), address, server) for client, address, server in found]


def test_two_servers_binding_one_address_the_database_lets_only_the_first_have_it(postgres_url):
    """Server two's memory does not know server one's binding: its bind loses, the REPLY is
    not to be sent (the client named by its DUID), and its memory learns who holds it."""
    one = Postgres6LeaseStore.open(postgres_url, Inline(), "pxe1")
    two = Postgres6LeaseStore.open(postgres_url, Inline(), "pxe2")
    one.bind(bound(), 1000.0)
    assert outcome_of(one) == frozenset()
    two.bind(bound(DUID2), 1000.0)
    assert outcome_of(two) == frozenset({DUID2.hex(":")})
    assert two.holder_of(A, 1000.0) == bound() and two.lease_for((DUID2, 1), 1000.0) is None
    assert rows(postgres_url) == [(DUID, str(A), "pxe1")]
    one.close()
    two.close()


def test_a_second_row_on_one_address_is_refused_by_the_schema(postgres_url):
    """The guarantee is the table's, not pxed's memory: pinned on the schema itself."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        migrate(conn)
        insert = "INSERT INTO leases6 (client, iaid, address, expires) VALUES (%s, 1, %s, 9)"
        conn.execute(insert, (DUID, A))
        try:
            conn.execute(insert, (DUID2, A))
        except psycopg.errors.UniqueViolation:
            pass
        else:
            raise AssertionError("leases6 took two rows for one address")


def test_an_expired_binding_of_another_server_gives_way(postgres_url):
    one = Postgres6LeaseStore.open(postgres_url, Inline(), "pxe1")
    two = Postgres6LeaseStore.open(postgres_url, Inline(), "pxe2")
    one.bind(bound(expires=1050.0), 1000.0)
    committed(one)
    two.bind(bound(DUID2, expires=2000.0), 1100.0)
    assert outcome_of(two) == frozenset()
    assert rows(postgres_url) == [(DUID2, str(A), "pxe2")]
    one.close()
    two.close()


def test_a_commit_reads_the_bindings_other_servers_committed(postgres_url, monkeypatch):
    monkeypatch.setattr("pxed.database.pg_batches.PEER_POLL", 0.0)
    one = Postgres6LeaseStore.open(postgres_url, Inline(), "pxe1")
    two = Postgres6LeaseStore.open(postgres_url, Inline(), "pxe2")
    one.bind(bound(), 1000.0)
    committed(one)
    two.bind(bound(DUID2, B), 1000.0)
    committed(two)
    assert two.holder_of(A, 1000.0) == bound()  # learned, not bound here
    one.close()
    two.close()


class _Socket:
    def fileno(self) -> int:
        return 100

    def close(self) -> None:
        pass


def _service(
    url: str, name: str, share: Share | None = None, **overrides: Any
) -> tuple[Dhcp6Service, FakeUDPReactor]:
    fake = FakeUDPReactor()
    service = Dhcp6Service(
        settings(**overrides),
        lambda: Postgres6LeaseStore.open(url, Inline(), name),
        [Interface("lab0", SERVER, index=7)],
        fake,
        lambda interface, port: _Socket(),
        share=None if share is None else lambda: share,
    )
    service.startService()
    return service, fake


def _exchange(fake: FakeUDPReactor, packet: Dhcpv6Message) -> Dhcpv6Message | None:
    sent = len(fake.sent)
    (port,) = fake.open_ports
    port.protocol.datagramReceived(encode_dhcpv6(packet), (str(LINK_LOCAL), 546))
    fake.advance(0)
    if len(fake.sent) == sent:
        return None
    answer = decode_dhcpv6(fake.sent[-1][1])
    assert isinstance(answer, Dhcpv6Message)
    return answer


def test_the_adapter_replies_once_the_binding_is_in_postgresql(postgres_url):
    """SOLICIT, REQUEST through the DHCPv6 service on PostgreSQL: the REPLY names the
    address the lease table holds for the client."""
    service, fake = _service(postgres_url, "pxe1")
    assert _exchange(fake, message(M.SOLICIT, ia())) is not None
    reply = _exchange(fake, message(M.REQUEST, ia(), server_id=SERVER_DUID))
    assert reply is not None and reply.msg_type == M.REPLY
    ((client, address, server),) = rows(postgres_url)
    assert client == duid_bytes(CLIENT) and server == "pxe1"
    assert [IPv6Address(address)] == list(addresses(reply))
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT mac FROM leases6").fetchall() == [(MAC,)]
    service.stopService()


def test_the_adapter_sends_no_reply_for_an_address_another_server_committed_first(
    postgres_url,
):
    """Between this server's ADVERTISE and the client's REQUEST, the other server binds
    that address to another client: the REQUEST goes unanswered here, and the client's
    retry is given another address, since memory learnt who holds the first."""
    service, fake = _service(postgres_url, "pxe1")
    advertise = _exchange(fake, message(M.SOLICIT, ia()))
    assert advertise is not None
    (offered,) = addresses(advertise)
    other = Postgres6LeaseStore.open(postgres_url, Inline(), "pxe2")
    other.bind(Lease(DUID2, 1, offered, 1e12, LeaseState.BOUND), 0.0)
    committed(other)
    assert _exchange(fake, message(M.REQUEST, ia(), server_id=SERVER_DUID)) is None
    retry = _exchange(fake, message(M.REQUEST, ia(), server_id=SERVER_DUID))
    assert retry is not None and offered not in list(addresses(retry))
    assert (DUID2, str(offered), "pxe2") in rows(postgres_url)
    other.close()
    service.stopService()


def test_a_binding_is_known_stored_once_committed_and_forgotten_when_a_batch_fails(
    postgres_url,
):
    """What a RENEW may be confirmed from while the database is down: a binding counts once
    its commit has returned; a failed batch, which may or may not have committed, makes
    its clients forgotten until the reload reads the table again; a release, at once."""
    runner = Held()
    store = Postgres6LeaseStore.open(postgres_url, runner)
    store.bind(bound(), 1000.0)
    store.bind(bound(DUID2, B), 1000.0)
    store.commit()
    assert store.committed((DUID, 1), 1000.0) is None  # the commit has not returned
    runner.run_all()
    assert store.committed((DUID, 1), 1000.0) == bound()
    end_pxed_sessions(postgres_url)
    store.bind(bound(expires=9000.0), 1000.0)
    failed = store.commit()
    assert failed is not None
    failed.addErrback(lambda _: None)
    runner.run_one()  # the batch fails; the reload waits in the runner
    assert not store.writable and store.committed((DUID, 1), 1000.0) is None
    assert store.committed((DUID2, 1), 1000.0) == bound(DUID2, B)
    runner.run_all()  # the reload reads the table again
    assert store.writable and store.committed((DUID, 1), 1000.0) == bound()
    store.release((DUID2, 1))
    assert store.committed((DUID2, 1), 1000.0) is None
    store.close()
    runner.run_all()


def test_two_servers_with_shares_bind_every_client_without_a_bind_lost(postgres_url, monkeypatch):
    """Two DHCPv6 services on one database, their memories never reading each other's
    bindings (no poll): every client is advertised by both and requests from one in
    turn, a minute apart (the other server's offer has expired by the next client).
    With the pool shared out no bind is refused by the unique address (with the whole
    pool each, some are)."""
    monkeypatch.setattr("pxed.database.pg_batches.PEER_POLL", float("inf"))
    wide = Link(PREFIX, pool=(PREFIX[0x100], PREFIX[0x1FF]), lease_time=86400)
    servers = [
        _service(postgres_url, name, Share(index, 2), links=(wide,))
        for index, name in enumerate(NAMES)
    ]
    for n in range(120):
        client = DuidLl(1, sha256(bytes([n])).digest()[:6])  # MACs unlike one another
        for _, fake in servers:
            assert _exchange(fake, message(M.SOLICIT, ia(), client=client)) is not None
        _, chosen = servers[n % 2]
        request = message(M.REQUEST, ia(), client=client, server_id=SERVER_DUID)
        reply = _exchange(chosen, request)
        assert reply is not None and len(addresses(reply)) == 1, n  # not lost
        for _, fake in servers:
            fake.advance(61)  # past offer_time
    found = rows(postgres_url)
    assert len(found) == 120 and len({address for _, address, _ in found}) == 120
    assert {server for _, _, server in found} == set(NAMES)
    for service, _ in servers:
        service.stopService()
