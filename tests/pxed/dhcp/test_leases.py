"""Lease bookkeeping: the in-memory store's contract, which the SQLite and PostgreSQL stores
keep too, and SQLite's durability on top of it (PostgreSQL's: test_pg_leases.py)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from protocols.dhcp.leases import (
    Lease,
    LeaseConflict,
    LeaseState,
    MemoryLeaseStore,
    normalise_mac,
)
from pxed.dhcp.leases import DATABASE_NAME, LeaseDatabaseError, SqliteLeaseStore
from tests.support.postgres import Inline

ROOT = Path(__file__).resolve().parents[3]
MAC_A = "52:54:00:00:00:0a"
MAC_B = "52:54:00:00:00:0b"
IP_1 = IPv4Address("10.213.7.101")
IP_2 = IPv4Address("10.213.7.102")


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "memory":
        yield MemoryLeaseStore()
    elif request.param == "sqlite":
        sqlite_store = SqliteLeaseStore.open(tmp_path)
        yield sqlite_store
        sqlite_store.close()
    else:
        from pxed.dhcp.pg_leases import PostgresLeaseStore

        pg_store = PostgresLeaseStore.open(request.getfixturevalue("postgres_url"), Inline())
        yield pg_store
        pg_store.close()


def bound(mac=MAC_A, ip=IP_1, expires: float | None = 100.0, hostname=None) -> Lease:
    return Lease(mac, ip, expires, LeaseState.BOUND, hostname)


def offered(mac=MAC_A, ip=IP_1, expires=100.0) -> Lease:
    return Lease(mac, ip, expires, LeaseState.OFFERED)


def test_bound_lease_is_found_by_mac_and_address(store):
    store.bind(bound(), now=0)
    assert store.lease_for(MAC_A, 50) == bound()
    assert store.holder_of(IP_1, 50) == MAC_A


def test_expired_lease_is_ignored_by_queries(store):
    store.bind(bound(expires=100.0), now=0)
    assert store.lease_for(MAC_A, 100) is None
    assert store.holder_of(IP_1, 100) is None


def test_bootp_lease_without_expiry_never_expires(store):
    store.bind(bound(expires=None), now=0)
    assert store.lease_for(MAC_A, 10**12) is not None
    assert store.expire(10**12) == []


def test_offer_holds_its_address_against_other_clients(store):
    store.offer(offered(), now=0)
    assert store.holder_of(IP_1, 1) == MAC_A
    with pytest.raises(LeaseConflict):
        store.bind(bound(mac=MAC_B), now=1)


def test_expired_offer_frees_its_address(store):
    store.offer(offered(expires=10), now=0)
    store.bind(bound(mac=MAC_B), now=10)
    assert store.holder_of(IP_1, 10) == MAC_B
    assert store.lease_for(MAC_A, 10) is None


def test_bound_lease_wins_over_pending_offer_for_same_client(store):
    store.bind(bound(ip=IP_1), now=0)
    store.offer(offered(ip=IP_2), now=0)
    assert store.lease_for(MAC_A, 1) == bound(ip=IP_1)


def test_binding_replaces_the_clients_offer_and_old_address(store):
    store.bind(bound(ip=IP_1), now=0)
    store.offer(offered(ip=IP_2), now=0)
    store.bind(bound(ip=IP_2), now=1)
    assert store.holder_of(IP_1, 1) is None
    assert store.holder_of(IP_2, 1) == MAC_A
    assert store.leases() == [bound(ip=IP_2)]


def test_forget_offer_keeps_the_bound_lease(store):
    store.bind(bound(ip=IP_1), now=0)
    store.offer(offered(ip=IP_2), now=0)
    store.forget_offer(MAC_A)
    assert store.holder_of(IP_2, 1) is None
    assert store.lease_for(MAC_A, 1) == bound(ip=IP_1)


def test_release_frees_the_address(store):
    store.bind(bound(), now=0)
    store.release(MAC_A)
    assert store.lease_for(MAC_A, 1) is None
    assert store.holder_of(IP_1, 1) is None


def test_release_of_unknown_client_is_harmless(store):
    store.release(MAC_B)
    assert store.leases() == []


def test_quarantine_drops_the_lease_and_blocks_the_address_until_it_ends(store):
    store.bind(bound(), now=0)
    store.quarantine(IP_1, until=50)
    assert store.holder_of(IP_1, 1) is None
    assert store.quarantined(IP_1, 49)
    assert not store.quarantined(IP_1, 50)


def test_expire_drops_expired_leases_offers_and_quarantines(store):
    store.bind(bound(mac=MAC_A, ip=IP_1, expires=10), now=0)
    store.bind(bound(mac=MAC_B, ip=IP_2, expires=100), now=0)
    store.offer(offered(mac="52:54:00:00:00:0c", ip=IPv4Address("10.213.7.103"), expires=5), 0)
    store.quarantine(IPv4Address("10.213.7.104"), until=10)
    assert store.expire(20) == [bound(mac=MAC_A, ip=IP_1, expires=10)]
    assert store.leases() == [bound(mac=MAC_B, ip=IP_2, expires=100)]
    assert store.quarantines() == {}


def test_an_expired_lease_address_can_go_to_another_client(store):
    store.bind(bound(mac=MAC_A, ip=IP_1, expires=10), now=0)
    store.bind(bound(mac=MAC_B, ip=IP_1, expires=100), now=20)
    assert store.lease_for(MAC_A, 20) is None
    assert store.leases() == [bound(mac=MAC_B, ip=IP_1, expires=100)]


def test_normalise_mac_accepts_config_spellings_and_chaddr_bytes():
    """Config MACs, dash-separated MACs and raw chaddr all key the same lease."""
    assert normalise_mac("52-54-00-AB-CD-EF") == "52:54:00:ab:cd:ef"
    assert normalise_mac(bytes.fromhex("525400abcdef")) == "52:54:00:ab:cd:ef"


# -- SQLite durability ------------------------------------------------------


def test_leases_and_quarantines_survive_reopen(tmp_path):
    store = SqliteLeaseStore.open(tmp_path)
    store.bind(bound(hostname="web01"), now=0)
    store.bind(bound(mac=MAC_B, ip=IP_2, expires=None), now=0)
    store.quarantine(IPv4Address("10.213.7.150"), until=500)
    store.commit()
    store.close()
    again = SqliteLeaseStore.open(tmp_path)
    assert again.leases() == [bound(hostname="web01"), bound(mac=MAC_B, ip=IP_2, expires=None)]
    assert again.quarantined(IPv4Address("10.213.7.150"), 499)
    again.close()


def test_a_rebind_on_disk_replaces_the_clients_old_row_and_the_addresss_old_holder(tmp_path):
    """One statement writes a bind: the rows it collides with, by MAC or by address, go."""
    store = SqliteLeaseStore.open(tmp_path)
    store.bind(bound(mac=MAC_A, ip=IP_1, expires=10), now=0)
    store.bind(bound(mac=MAC_B, ip=IP_2, expires=10), now=0)
    store.commit()
    store.bind(bound(mac=MAC_A, ip=IP_2, expires=100), now=20)
    store.close()
    again = SqliteLeaseStore.open(tmp_path)
    assert again.leases() == [bound(mac=MAC_A, ip=IP_2, expires=100)]
    again.close()


def test_offers_are_not_written_to_disk(tmp_path):
    """A DISCOVER must cost no fsync: offers live in memory only."""
    store = SqliteLeaseStore.open(tmp_path)
    store.offer(offered(), now=0)
    assert not store.pending
    store.close()
    assert SqliteLeaseStore.open(tmp_path).lease_for(MAC_A, 1) is None


def test_writes_wait_for_commit_so_a_batch_shares_one_fsync(tmp_path):
    store = SqliteLeaseStore.open(tmp_path)
    store.bind(bound(), now=0)
    store.bind(bound(mac=MAC_B, ip=IP_2), now=0)
    assert store.pending
    other = sqlite3.connect(tmp_path / DATABASE_NAME)
    assert other.execute("SELECT count(*) FROM leases").fetchone() == (0,)
    store.commit()
    assert not store.pending
    assert other.execute("SELECT count(*) FROM leases").fetchone() == (2,)
    other.close()
    store.close()


def test_writes_sqlite_rolled_back_by_itself_make_the_commit_fail(tmp_path):
    """On SQLITE_FULL or SQLITE_IOERR SQLite may roll the transaction back by itself
    (the ROLLBACK here stands in for that); a later COMMIT must not then report the
    lost leases as durable, or their ACKs would be sent."""
    store = SqliteLeaseStore.open(tmp_path)
    store.bind(bound(), now=0)
    store._conn.execute("ROLLBACK")
    with pytest.raises(LeaseDatabaseError, match="rolled back"):
        store.commit()
    assert store.lease_for(MAC_A, 1) is None  # memory no longer claims what disk lost
    store.commit()  # reported once; nothing is pending any more
    store.bind(bound(mac=MAC_B, ip=IP_2), now=0)
    store._conn.execute("ROLLBACK")
    store.bind(bound(mac=MAC_B, ip=IP_2, expires=200.0), now=0)  # a new transaction
    with pytest.raises(LeaseDatabaseError):
        store.commit()
    store.close()


def _on_disk(tmp_path: Path) -> tuple[list[Lease], dict[IPv4Address, float]]:
    """What a restarted pxed would load: leases and quarantines as committed."""
    fresh = SqliteLeaseStore.open(tmp_path)
    try:
        return fresh.leases(), fresh.quarantines()
    finally:
        fresh.close()


def _fill_the_disk(store: SqliteLeaseStore) -> None:
    """SQLITE_FULL without filling a real disk: the file may not grow past its size now."""
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count = {pages}")


def test_a_disk_full_batch_leaves_memory_equal_to_disk_after_the_failed_commit(tmp_path):
    """SQLITE_FULL part way through a batch makes SQLite roll the batch back; the writes
    do not raise into the engine, the commit does, and afterwards the in-memory view is
    what is on disk: no lease whose ACK was dropped keeps its address in memory."""
    store = SqliteLeaseStore.open(tmp_path)
    store.bind(bound(), now=0)
    store.commit()
    _fill_the_disk(store)
    batch = [
        bound(mac=f"52:54:00:00:01:{n:02x}", ip=IPv4Address(f"10.213.9.{n}"), hostname="h" * 100)
        for n in range(1, 120)
    ]
    for lease in batch:
        store.bind(lease, now=0)  # must not raise: the error belongs to the commit
    store.release(MAC_A)
    with pytest.raises(LeaseDatabaseError, match="database or disk is full"):
        store.commit()
    assert not store.pending
    assert (store.leases(), store.quarantines()) == _on_disk(tmp_path) == ([bound()], {})
    assert store.holder_of(batch[0].ip, 1) is None
    assert store.lease_for(MAC_A, 1) == bound()  # its lost release is undone in memory too
    store.close()


class _Failing:
    """The store's connection, except that the named statements (COMMIT by default) fail
    the way a full disk makes them."""

    def __init__(self, conn: sqlite3.Connection, *failing: str) -> None:
        self.conn = conn
        self.failing = failing or ("COMMIT",)

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    def execute(self, sql: str, *params: object) -> sqlite3.Cursor:
        if sql.split()[0] in self.failing:
            raise sqlite3.OperationalError("database or disk is full")
        return self.conn.execute(sql, *params)

    def close(self) -> None:
        self.conn.close()


def test_a_failed_commit_rolls_back_and_reloads_memory_from_disk(tmp_path):
    """A COMMIT that fails with its transaction still open: the batch is rolled back
    rather than left to a later commit (its replies were dropped), and memory matches disk."""
    store = SqliteLeaseStore.open(tmp_path)
    store.bind(bound(), now=0)
    store.commit()
    real = store._conn
    store._conn = _Failing(real)
    store.bind(bound(mac=MAC_B, ip=IP_2), now=0)
    store.quarantine(IP_1, until=500)
    with pytest.raises(LeaseDatabaseError, match="database or disk is full"):
        store.commit()
    assert not real.in_transaction
    assert (store.leases(), store.quarantines()) == _on_disk(tmp_path) == ([bound()], {})
    store._conn = real
    store.bind(bound(mac=MAC_B, ip=IP_2), now=0)  # the retry, once the disk has room
    store.commit()
    assert _on_disk(tmp_path)[0] == [bound(), bound(mac=MAC_B, ip=IP_2)]
    store.close()


def test_while_the_database_cannot_be_reloaded_every_commit_fails(tmp_path):
    """If even the rollback and reload fail, memory cannot be trusted: every commit
    raises (no ACK leaves) until a reload works, and then memory matches disk."""
    store = SqliteLeaseStore.open(tmp_path)
    real = store._conn
    store._conn = _Failing(real, "COMMIT", "ROLLBACK", "SELECT")
    store.bind(bound(), now=0)
    with pytest.raises(LeaseDatabaseError, match="until the lease database can be read again"):
        store.commit()
    with pytest.raises(LeaseDatabaseError, match="until the lease database can be read again"):
        store.commit()
    store._conn = real
    with pytest.raises(LeaseDatabaseError, match="rolled back"):
        store.commit()
    assert (store.leases(), store.quarantines()) == _on_disk(tmp_path) == ([], {})
    store.commit()
    store.close()


def test_database_uses_wal_and_full_synchronous(tmp_path):
    store = SqliteLeaseStore.open(tmp_path)
    conn = store._conn
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # 2 = FULL
    store.close()


def test_schema_version_is_recorded(tmp_path):
    SqliteLeaseStore.open(tmp_path).close()
    conn = sqlite3.connect(tmp_path / DATABASE_NAME)
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
    conn.close()


def _tamper(state_dir, sql: str) -> None:
    """A lease database as pxed made it, then changed behind its back by ``sql``."""
    SqliteLeaseStore.open(state_dir).close()
    conn = sqlite3.connect(state_dir / DATABASE_NAME)
    conn.execute(sql)
    conn.commit()
    conn.close()


def test_newer_schema_is_refused_with_a_clear_message(tmp_path):
    _tamper(tmp_path, "UPDATE schema_version SET version = 99")
    with pytest.raises(LeaseDatabaseError, match="schema 99 is newer"):
        SqliteLeaseStore.open(tmp_path)


def test_a_refused_database_leaves_no_connection_open(tmp_path, monkeypatch):
    """pxed may keep running other services after DHCP fails to start: no fd may leak."""
    _tamper(tmp_path, "UPDATE schema_version SET version = 99")
    opened: list[sqlite3.Connection] = []
    connect = sqlite3.connect

    def recording(*args, **kwargs):
        opened.append(connect(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(sqlite3, "connect", recording)
    with pytest.raises(LeaseDatabaseError):
        SqliteLeaseStore.open(tmp_path)
    (refused,) = opened
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        refused.execute("SELECT 1")


def test_a_garbled_lease_row_is_a_lease_database_error_naming_the_file(tmp_path):
    _tamper(tmp_path, "INSERT INTO leases (mac, ip) VALUES ('52:54:00:00:00:01', 'not an address')")
    with pytest.raises(LeaseDatabaseError, match=DATABASE_NAME):
        SqliteLeaseStore.open(tmp_path)


def test_unusable_state_dir_raises_lease_database_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(LeaseDatabaseError, match="cannot open the lease database"):
        SqliteLeaseStore.open(blocker / "state")


def test_state_dir_is_created(tmp_path):
    SqliteLeaseStore.open(tmp_path / "a" / "b").close()
    assert (tmp_path / "a" / "b" / DATABASE_NAME).exists()


# The child opens the store named by argv[1] (a state dir, or a PostgreSQL URL) with:
OPENERS = {
    "sqlite": "from pxed.dhcp.leases import SqliteLeaseStore as Store\nargs = ()",
    "postgresql": (
        "from pxed.dhcp.pg_leases import PostgresLeaseStore as Store\n"
        "from tests.support.postgres import Inline\nargs = (Inline(),)"
    ),
}
CHILD = textwrap.dedent(
    """
    import sys, time
    from ipaddress import IPv4Address
    from protocols.dhcp.leases import Lease

    store = Store.open(sys.argv[1], *args)
    store.bind(Lease("52:54:00:00:00:0a", IPv4Address("10.213.7.101"), None), now=0)
    store.commit()
    store.bind(Lease("52:54:00:00:00:0b", IPv4Address("10.213.7.102"), None), now=0)
    print("committed", flush=True)
    time.sleep(60)
    """
)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_committed_lease_survives_sigkill(kind, request, tmp_path):
    """A lease committed (the moment its ACK may leave) is there after the process is killed."""
    where = str(tmp_path) if kind == "sqlite" else request.getfixturevalue("postgres_url")
    child = subprocess.Popen(
        [sys.executable, "-c", OPENERS[kind] + "\n" + CHILD, where],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "committed\n"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    if kind == "sqlite":
        store = SqliteLeaseStore.open(tmp_path)
    else:
        from pxed.dhcp.pg_leases import PostgresLeaseStore

        store = PostgresLeaseStore.open(where, Inline())
    assert [lease.mac for lease in store.leases()] == [MAC_A]
    store.close()


def test_engine_acks_land_in_sqlite_only_when_the_adapter_commits(tmp_path):
    """The engine writes, the adapter commits before sending: an ACKed lease survives reopen."""
    from protocols.dhcp.options import MessageType
    from protocols.dhcp.server import DhcpServer, Reply
    from protocols.dhcp.wire import decode_dhcp
    from tests.protocols.dhcp_engine_support import ON_LAB, SERVER, request, settings

    store = SqliteLeaseStore.open(tmp_path)
    engine = DhcpServer(settings(), store)
    offer = decode_dhcp(engine.handle_datagram(request(MessageType.DISCOVER), ON_LAB, 0).data)
    assert not store.pending  # an OFFER costs no disk write
    ack = engine.handle_datagram(
        request(MessageType.REQUEST, options=((54, SERVER), (50, offer.yiaddr))), ON_LAB, 0
    )
    assert isinstance(ack, Reply) and store.pending
    store.commit()
    store._conn.close()  # no close(): nothing but the commit may have made it durable
    again = SqliteLeaseStore.open(tmp_path)
    assert [(lease.mac, lease.ip) for lease in again.leases()] == [
        ("52:54:00:12:34:56", offer.yiaddr)
    ]
    again.close()
