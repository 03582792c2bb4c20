"""The durable DHCPv6 lease stores: committed bindings survive a reopen, in SQLite and in
PostgreSQL alike; SQLite's schema is versioned and a failed commit leaves memory what
the disk holds (PostgreSQL's own behaviour: test_pg_leases.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any

import pytest

from protocols.dhcpv6.leases import Lease, LeaseState
from pxed.dhcp6.leases import (
    DATABASE_NAME,
    Lease6DatabaseError,
    Sqlite6LeaseStore,
    read_leases6,
)
from tests.support.postgres import Inline, committed

DUID = bytes.fromhex("00030001525400123456")
DUID2 = bytes.fromhex("00030001525400123457")
A = IPv6Address("fd00:213:7::100")
B = IPv6Address("fd00:213:7::101")


def bound(client: bytes = DUID, address: IPv6Address = A, expires: float = 5000.0) -> Lease:
    return Lease(client, 1, address, expires, LeaseState.BOUND, "52:54:00:12:34:56")


@pytest.fixture(params=["sqlite", "postgresql"])
def reopen(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """Opens the store anew on the same file or database; every store it opened is
    closed after the test."""
    if request.param == "sqlite":
        opener: Callable[[], Any] = lambda: Sqlite6LeaseStore.open(tmp_path)  # noqa: E731
    else:
        from pxed.dhcp6.pg_leases import Postgres6LeaseStore

        url = request.getfixturevalue("postgres_url")
        opener = lambda: Postgres6LeaseStore.open(url, Inline())  # noqa: E731
    opened: list[Any] = []

    def open_again() -> Any:
        for store in opened:
            store.close()
        opened[:] = [opener()]
        return opened[0]

    yield open_again
    for store in opened:
        store.close()


def test_a_committed_binding_is_there_after_a_reopen(reopen):
    store = reopen()
    store.bind(bound(), 1000.0)
    committed(store)
    again = reopen()
    assert again.lease_for((DUID, 1), 1000.0) == bound()
    assert again.holder_of(A, 1000.0) == bound()


def test_an_uncommitted_binding_is_not_on_disk(tmp_path: Path):
    store = Sqlite6LeaseStore.open(tmp_path)
    store.bind(bound(), 1000.0)
    assert store.pending
    assert read_leases6(tmp_path / DATABASE_NAME) == []
    store.commit()
    assert read_leases6(tmp_path / DATABASE_NAME) == [
        (DUID.hex(":"), 1, str(A), 5000.0, "52:54:00:12:34:56")
    ]


def test_release_quarantine_and_expiry_reach_the_disk(reopen):
    store = reopen()
    store.bind(bound(), 1000.0)
    store.bind(bound(DUID2, B, expires=1500.0), 1000.0)
    committed(store)
    store.quarantine(A, 2000.0)
    assert [lease.address for lease in store.expire(1600.0)] == [B]
    committed(store)
    again = reopen()
    assert again.leases() == []
    assert again.quarantined(A, 1900.0) and not again.quarantined(A, 2100.0)


def test_a_rebind_moves_the_ia_to_its_new_address_on_disk(reopen):
    store = reopen()
    store.bind(bound(), 1000.0)
    committed(store)
    store.bind(bound(address=B), 1000.0)
    committed(store)
    assert reopen().leases() == [bound(address=B)]


def test_an_expired_address_bound_to_another_ia_leaves_its_old_holder_on_disk(reopen):
    store = reopen()
    store.bind(bound(expires=1500.0), 1000.0)
    committed(store)
    store.bind(bound(DUID2, expires=9000.0), 2000.0)  # before any expiry sweep
    committed(store)
    assert reopen().leases() == [bound(DUID2, expires=9000.0)]


def test_a_release_reaches_the_disk(reopen):
    store = reopen()
    store.bind(bound(), 1000.0)
    committed(store)
    store.release((DUID, 1))
    committed(store)
    assert reopen().leases() == []


def test_a_failed_commit_rolls_the_batch_back_and_memory_follows(tmp_path: Path):
    store = Sqlite6LeaseStore.open(tmp_path)
    store.bind(bound(), 1000.0)
    store.commit()
    store.bind(bound(DUID2, B), 1000.0)
    store._conn.execute("ROLLBACK")  # as SQLite does by itself on SQLITE_FULL
    with pytest.raises(Lease6DatabaseError, match="rolled back"):
        store.commit()
    assert store.holder_of(B, 1000.0) is None
    assert store.holder_of(A, 1000.0) == bound()


def test_a_schema_newer_than_this_pxed_is_refused_with_the_file_named(tmp_path: Path):
    Sqlite6LeaseStore.open(tmp_path).close()
    with sqlite3.connect(tmp_path / DATABASE_NAME) as conn:
        conn.execute(
            "UPDATE schema_version SET version = ?", (len(Sqlite6LeaseStore.MIGRATIONS) + 1,)
        )
    with pytest.raises(Lease6DatabaseError, match=f"{DATABASE_NAME}: lease database schema 2"):
        Sqlite6LeaseStore.open(tmp_path)


def test_the_v6_leases_live_beside_the_v4_file_not_in_it(tmp_path: Path):
    Sqlite6LeaseStore.open(tmp_path).close()
    assert (tmp_path / DATABASE_NAME).exists() and not (tmp_path / "leases.sqlite3").exists()
