"""PostgreSQL leases (``server.database``): durable on commit, migrated at start, off the reactor.

The store's contract (what the engine sees) runs against PostgreSQL in test_leases.py;
here is what only a network database has: commits that return later, a connection
that goes away, and the versioned schema.  Every test runs on a real PostgreSQL
started by ``tests/support/postgres.py`` (skipped, saying why, without root or the
Debian package).
"""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import maybeDeferred
from twisted.internet.task import deferLater

from protocols.dhcp.leases import Lease, LeaseState
from pxed.database import migrations
from pxed.database.connection import DatabaseUnreachable, connect
from pxed.database.migrations import SCHEMA_VERSION, SchemaTooNew, migrate, status
from pxed.database.worker import Worker
from pxed.dhcp.leases import LeaseDatabaseError
from pxed.dhcp.pg_leases import PostgresLeaseStore
from tests.support.postgres import Held, Inline, committed, end_pxed_sessions

ROOT = Path(__file__).resolve().parents[3]
MAC_A = "52:54:00:00:00:0a"
MAC_B = "52:54:00:00:00:0b"
IP_1 = IPv4Address("10.213.7.101")
IP_2 = IPv4Address("10.213.7.102")
T = TypeVar("T")


def bound(mac=MAC_A, ip=IP_1, expires: float | None = 100.0, hostname=None) -> Lease:
    return Lease(mac, ip, expires, LeaseState.BOUND, hostname)


def count(url: str, table: str = "leases") -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def test_leases_and_quarantines_survive_reopen(postgres_url):
    store = PostgresLeaseStore.open(postgres_url, Inline())
    store.bind(bound(hostname="web01"), now=0)
    store.bind(bound(mac=MAC_B, ip=IP_2, expires=None), now=0)
    store.quarantine(IPv4Address("10.213.7.150"), until=500)
    committed(store)
    store.close()
    again = PostgresLeaseStore.open(postgres_url, Inline())
    assert again.leases() == [bound(hostname="web01"), bound(mac=MAC_B, ip=IP_2, expires=None)]
    assert again.quarantined(IPv4Address("10.213.7.150"), 499)
    again.close()


def test_writes_wait_for_commit_and_offers_are_never_written(postgres_url):
    store = PostgresLeaseStore.open(postgres_url, Inline())
    store.offer(Lease(MAC_B, IP_2, 100.0, LeaseState.OFFERED), now=0)
    assert not store.pending  # a DISCOVER costs no round trip
    store.bind(bound(), now=0)
    assert store.pending and count(postgres_url) == 0
    committed(store)
    assert not store.pending and count(postgres_url) == 1
    store.close()


def test_every_session_commits_with_synchronous_commit_on(postgres_url):
    """A lease is promised only after a COMMIT that waited for the WAL flush, whatever
    the server's or the role's default says."""
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("ALTER ROLE postgres SET synchronous_commit = off")
    try:
        with connect(postgres_url) as conn:
            assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("ALTER ROLE postgres RESET synchronous_commit")


def test_a_hung_database_is_given_up_on_unless_the_url_says_otherwise(postgres_url):
    """Every batch waits for the one before it: a COMMIT hung on a dead peer must end."""
    with connect(postgres_url) as conn:
        assert conn.info.get_parameters()["tcp_user_timeout"] == "10000"
    with connect(postgres_url + "&tcp_user_timeout=2500") as conn:
        assert conn.info.get_parameters()["tcp_user_timeout"] == "2500"


def test_a_lost_connection_drops_the_batch_and_the_store_reconnects(postgres_url):
    """The server ends pxed's session mid-run: that batch fails (no ACK), memory is read
    again from the database, and the next batch commits over a new connection."""
    store = PostgresLeaseStore.open(postgres_url, Inline())
    store.bind(bound(), now=0)
    committed(store)
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'pxed' AND datname = current_database()"
        )
    store.bind(bound(mac=MAC_B, ip=IP_2), now=0)
    with pytest.raises(LeaseDatabaseError, match="rolled back"):
        committed(store)
    assert store.leases() == [bound()]  # memory no longer claims the lost lease
    store.bind(bound(mac=MAC_B, ip=IP_2), now=0)  # the client's retry
    committed(store)
    assert count(postgres_url) == 2
    store.close()


def test_a_batch_the_database_refuses_is_rolled_back_whole_and_memory_read_again(postgres_url):
    store = PostgresLeaseStore.open(postgres_url, Inline())
    store.bind(bound(), now=0)
    store._writes.append(("INSERT INTO no_such_table VALUES (%s)", (1,)))
    with pytest.raises(LeaseDatabaseError, match="no_such_table"):
        committed(store)
    assert (store.leases(), count(postgres_url)) == ([], 0)
    store.bind(bound(), now=0)
    committed(store)
    assert count(postgres_url) == 1
    store.close()


def test_batches_queued_behind_a_failed_one_fail_with_it(postgres_url):
    """Batches handed in before a failure came back were decided on memory that held the
    failed batch's leases: they fail too, even a batch with no writes of its own, rather
    than acknowledge what may rest on a lost lease."""
    runner = Held()
    store = PostgresLeaseStore.open(postgres_url, runner)
    store.bind(bound(), now=0)
    first = store.commit()
    store.bind(bound(mac=MAC_B, ip=IP_2), now=0)
    second = store.commit()
    third = store.commit()  # nothing written, but its replies may rest on the two above
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'pxed' AND datname = current_database()"
        )
    outcomes: list[str] = []
    for done in (first, second, third):
        assert done is not None
        done.addCallbacks(lambda _: outcomes.append("ok"), lambda _: outcomes.append("failed"))
    runner.run_all()
    assert outcomes == ["failed"] * 3
    assert (store.leases(), count(postgres_url)) == ([], 0)
    store.bind(bound(), now=0)
    fourth = store.commit()
    assert fourth is not None
    fourth.addCallback(lambda _: outcomes.append("ok"))
    runner.run_all()
    assert outcomes[-1] == "ok" and count(postgres_url) == 1
    store.close()
    runner.run_all()


def _pxed_sessions(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = 'pxed' AND datname = current_database()"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_closing_while_a_reconnect_is_queued_closes_the_new_connection(postgres_url):
    runner = Held()
    store = PostgresLeaseStore.open(postgres_url, runner)
    end_pxed_sessions(postgres_url)
    store.bind(bound(), now=0)
    failed = store.commit()
    assert failed is not None
    failed.addErrback(lambda _: None)
    runner.run_one()  # the batch fails; the reload (and its reconnect) is queued
    store.close()
    runner.run_all()
    assert _pxed_sessions(postgres_url) == 0


def test_schema_version_is_recorded_and_migrating_again_changes_nothing(postgres_url):
    with connect(postgres_url) as conn:
        assert status(conn).version == 0
        assert migrate(conn) == (0, SCHEMA_VERSION)
        assert migrate(conn) == (SCHEMA_VERSION, SCHEMA_VERSION)
        assert status(conn).version == SCHEMA_VERSION and status(conn).pending == 0
        rows = conn.execute("SELECT version FROM schema_version").fetchall()
    assert rows == [(SCHEMA_VERSION,)]


def test_a_failing_migration_leaves_the_database_as_it_was(postgres_url, monkeypatch):
    broken = (*migrations.MIGRATIONS, ("CREATE TABLE hosts (mac text)", "SELECT nonsense"))
    monkeypatch.setattr(migrations, "MIGRATIONS", broken)
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", len(broken))
    with connect(postgres_url) as conn:
        with pytest.raises(psycopg.Error):
            migrate(conn)
        assert status(conn).version == 0
        assert conn.execute("SELECT to_regclass('leases')").fetchone() == (None,)


def test_a_database_a_newer_pxed_migrated_is_refused(postgres_url):
    with connect(postgres_url) as conn:
        migrate(conn)
        conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(SchemaTooNew, match="schema 99 is newer than this pxed"):
        PostgresLeaseStore.open(postgres_url, Inline())


def test_an_unreachable_database_is_one_line_without_the_password(tmp_path):
    url = f"postgresql://pxed:hunter2@/pxed?host={tmp_path}"
    with pytest.raises(DatabaseUnreachable) as caught:
        connect(url)
    message = str(caught.value)
    assert "\n" not in message and "hunter2" not in message
    assert message.startswith(f"server.database postgresql://pxed:***@/pxed?host={tmp_path}:")


@pytest_twisted.ensureDeferred
async def test_a_commit_waiting_on_the_database_leaves_the_reactor_free(postgres_url):
    """Another session holds the table: the batch's COMMIT waits in the worker thread,
    the reactor keeps running, and the Deferred fires once the lease is stored."""
    store = PostgresLeaseStore.open(postgres_url, Worker(reactor, "pxed-test-leases"))
    blocker = psycopg.connect(postgres_url)
    try:
        blocker.execute("LOCK TABLE leases IN ACCESS EXCLUSIVE MODE")
        store.bind(bound(), now=0)
        done = store.commit()
        assert done is not None
        for _ in range(5):  # the reactor turns while the COMMIT waits
            await deferLater(reactor, 0, lambda: None)
        assert not done.called
        blocker.rollback()
        await done
    finally:
        blocker.close()
    assert count(postgres_url) == 1
    await store.close()


def _service(url: str, name: str = "") -> tuple[Any, Any]:
    """The DHCP service on a fake reactor, its leases in ``url``, started: it and its port."""
    from pxed.dhcp.service import DhcpService, Interface
    from tests.protocols.dhcp_engine_support import SERVER, settings
    from tests.support.fake_adapter import SocketOpener
    from tests.support.fake_udp import FakeUDPReactor

    fake = FakeUDPReactor()
    service = DhcpService(
        settings(),
        lambda: PostgresLeaseStore.open(url, Inline(), name),
        [Interface("lab0", SERVER)],
        fake,
        SocketOpener(),
    )
    service.startService()
    (port,) = fake.open_ports
    return service, port


def _ask(port: Any, datagram: bytes) -> Any:
    """Deliver ``datagram`` from a client, end the reactor turn: the last reply sent, if any."""
    from protocols.dhcp.wire import decode_dhcp

    sent = len(port.reactor.sent)
    port.protocol.datagramReceived(datagram, ("0.0.0.0", 68))
    port.reactor.advance(0)
    return decode_dhcp(port.reactor.sent[-1][1]) if len(port.reactor.sent) > sent else None


def test_the_adapter_acks_a_request_once_its_lease_is_in_postgresql(postgres_url):
    """DISCOVER, REQUEST through the DHCP service on PostgreSQL: the ACK names the
    address the lease table holds for the client."""
    from protocols.dhcp.options import MessageType
    from tests.protocols.dhcp_engine_support import MAC, SERVER, request

    service, port = _service(postgres_url)
    offer = _ask(port, request(MessageType.DISCOVER))
    ack = _ask(port, request(MessageType.REQUEST, options=((54, SERVER), (50, offer.yiaddr))))
    assert ack.message_type is MessageType.ACK
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute("SELECT mac, host(ip) FROM leases").fetchall()
    assert rows == [(MAC, str(ack.yiaddr))]
    service.stopService()


def test_the_adapter_sends_no_ack_for_an_address_another_server_committed_first(postgres_url):
    """Between this server's OFFER and the client's REQUEST, the other server binds that
    address to another client: the REQUEST is answered by nobody here, and the client's
    retry is refused (NAK) since memory learnt who holds it."""
    from protocols.dhcp.options import MessageType
    from tests.protocols.dhcp_engine_support import MAC, SERVER, request

    service, port = _service(postgres_url, "pxe1")
    offer = _ask(port, request(MessageType.DISCOVER))
    other = PostgresLeaseStore.open(postgres_url, Inline(), "pxe2")
    other.bind(Lease(MAC_B, offer.yiaddr, 1e12, LeaseState.BOUND), now=0)
    committed(other)
    options = ((54, SERVER), (50, offer.yiaddr))
    assert _ask(port, request(MessageType.REQUEST, options=options)) is None  # no ACK
    nak = _ask(port, request(MessageType.REQUEST, options=options))
    assert nak.message_type is MessageType.NAK
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute("SELECT mac, server FROM leases").fetchall()
    assert rows == [(MAC_B, "pxe2")] and MAC != MAC_B
    other.close()
    service.stopService()


def outcome_of(store: PostgresLeaseStore) -> frozenset[str]:
    """The MACs whose binds lost, from a commit through the inline runner."""
    result: list[frozenset[str]] = []
    done = store.commit()
    assert done is not None
    done.addCallback(result.append)
    return result[0]


def test_two_servers_binding_one_address_the_database_lets_only_the_first_have_it(postgres_url):
    """Server two's memory does not know server one's lease: its bind loses, the client's
    ACK is not to be sent, and its memory learns who holds the address."""
    one = PostgresLeaseStore.open(postgres_url, Inline(), "pxe1")
    two = PostgresLeaseStore.open(postgres_url, Inline(), "pxe2")
    one.bind(bound(mac=MAC_A), now=0)
    assert outcome_of(one) == frozenset()
    two.bind(bound(mac=MAC_B), now=0)
    assert outcome_of(two) == frozenset({MAC_B})
    assert two.holder_of(IP_1, 0) == MAC_A and two.lease_for(MAC_B, 0) is None
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute("SELECT mac, server FROM leases").fetchall()
    assert rows == [(MAC_A, "pxe1")]
    one.close()
    two.close()


def test_an_expired_lease_of_another_server_gives_way(postgres_url):
    one = PostgresLeaseStore.open(postgres_url, Inline(), "pxe1")
    two = PostgresLeaseStore.open(postgres_url, Inline(), "pxe2")
    one.bind(bound(mac=MAC_A, expires=50.0), now=0)
    committed(one)
    two.bind(bound(mac=MAC_B, expires=200.0), now=60)
    assert outcome_of(two) == frozenset()
    one.close()
    two.close()


def test_a_commit_reads_the_leases_other_servers_committed(postgres_url, monkeypatch):
    monkeypatch.setattr("pxed.database.pg_batches.PEER_POLL", 0.0)
    one = PostgresLeaseStore.open(postgres_url, Inline(), "pxe1")
    two = PostgresLeaseStore.open(postgres_url, Inline(), "pxe2")
    one.bind(bound(mac=MAC_A), now=0)
    committed(one)
    two.bind(bound(mac=MAC_B, ip=IP_2), now=0)
    committed(two)
    assert two.holder_of(IP_1, 0) == MAC_A  # learned, not bound here
    one.close()
    two.close()


def test_a_lease_is_known_stored_only_once_its_commit_has_returned(postgres_url):
    runner = Held()
    store = PostgresLeaseStore.open(postgres_url, runner)
    store.bind(bound(), now=0)
    done = store.commit()
    assert store.lease_for(MAC_A, 0) == bound() and store.committed(MAC_A, 0) is None
    runner.run_all()
    assert done is not None and store.committed(MAC_A, 0) == bound()
    assert store.committed(MAC_A, 100.0) is None  # expired
    store.close()
    runner.run_all()


def test_with_the_database_gone_only_leases_committed_before_are_confirmable(postgres_url):
    """A failed batch may or may not have committed: its clients are forgotten, even one
    that renewed a lease committed before (its old row may be gone); memory still holds
    the failed binds until the reload, which makes the store writable again."""
    runner = Held()
    store = PostgresLeaseStore.open(postgres_url, runner)
    store.bind(bound(), now=0)
    store.bind(bound(mac=MAC_B, ip=IP_2), now=0)
    store.commit()
    runner.run_all()
    assert store.writable
    end_pxed_sessions(postgres_url)
    store.bind(bound(mac=MAC_B, ip=IP_2, expires=200.0), now=10)
    store.bind(bound(mac="52:54:00:00:00:0c", ip=IPv4Address("10.213.7.103")), now=10)
    failed = store.commit()
    assert failed is not None
    failed.addErrback(lambda _: None)
    runner.run_one()  # the batch fails; the reload waits in the runner
    assert not store.writable
    assert store.committed(MAC_A, 10) == bound()
    assert store.committed(MAC_B, 10) is None and store.lease_for(MAC_B, 10) is not None
    assert store.committed("52:54:00:00:00:0c", 10) is None
    with pytest.raises(LeaseDatabaseError):
        store.commit()
    runner.run_all()  # the reload reads the table again
    assert store.writable and store.committed(MAC_B, 10) == bound(mac=MAC_B, ip=IP_2)
    store.close()
    runner.run_all()


def test_a_release_is_forgotten_at_once_and_a_lost_bind_learns_the_winner(
    postgres_url, monkeypatch
):
    monkeypatch.setattr("pxed.database.pg_batches.PEER_POLL", float("inf"))  # no hints
    one = PostgresLeaseStore.open(postgres_url, Inline(), "pxe1")
    two = PostgresLeaseStore.open(postgres_url, Inline(), "pxe2")
    two.bind(bound(mac=MAC_B, ip=IP_2), now=0)
    committed(two)
    one.bind(bound(mac=MAC_A), now=0)
    committed(one)
    two.bind(bound(mac=MAC_B), now=0)  # IP_1 is MAC_A's in the database
    assert outcome_of(two) == frozenset({MAC_B})
    assert two.committed(MAC_B, 0) is None  # its row on IP_2 went with the lost bind
    assert two.committed(MAC_A, 0) == bound(mac=MAC_A)
    one.release(MAC_A)
    assert one.committed(MAC_A, 0) is None
    one.close()
    two.close()


def test_writes_made_after_a_reload_are_stored_though_the_batch_replies_are_dropped(
    postgres_url,
):
    """The reload replaces memory while writes made on the old one wait for the next
    commit: that batch's replies are dropped (some rest on leases memory no longer has),
    but the writes made on the new memory are committed, so memory claims nothing the
    database lacks (else the address stays blocked in memory until the lease expires)."""
    runner = Held()
    store = PostgresLeaseStore.open(postgres_url, runner)
    end_pxed_sessions(postgres_url)
    store.bind(bound(), now=0)
    failed = store.commit()
    assert failed is not None
    failed.addErrback(lambda _: None)
    runner.run_one()  # the batch fails; the reload waits in the runner
    store.bind(bound(mac=MAC_B, ip=IP_2), now=0)  # on the memory about to be replaced
    runner.run_all()  # the reload
    assert store.writable and store.lease_for(MAC_B, 0) is None
    late = bound(mac="52:54:00:00:00:0c", ip=IPv4Address("10.213.7.103"))
    store.bind(late, now=0)  # on the memory just read
    outcomes: list[str] = []
    done = maybeDeferred(store.commit)  # as the adapter calls it
    done.addCallbacks(lambda _: outcomes.append("ok"), lambda _: outcomes.append("failed"))
    runner.run_all()
    assert outcomes == ["failed"]  # MAC_B's reply rested on a lease never stored
    assert store.leases() == [late] and count(postgres_url) == 1
    store.bind(bound(), now=0)  # the next batch is answered as usual
    committed_too = store.commit()
    assert committed_too is not None
    committed_too.addCallback(lambda _: outcomes.append("ok"))
    runner.run_all()
    assert outcomes[-1] == "ok" and count(postgres_url) == 2
    store.close()
    runner.run_all()
