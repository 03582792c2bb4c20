"""`pxed leases --config FILE`: committed leases from state_dir as a table, read-only."""

from __future__ import annotations

import argparse
import sqlite3
import time
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest

from protocols.dhcp.leases import Lease
from protocols.dhcpv6.leases import Lease as Lease6
from pxed.cli import leases
from pxed.dhcp.leases import (
    DATABASE_NAME,
    SqliteLeaseStore,
    read_holder,
    read_leases,
    read_quarantine,
)
from pxed.dhcp6.leases import Sqlite6LeaseStore


def config(tmp_path: Path) -> argparse.Namespace:
    state = tmp_path / "state"
    (tmp_path / "tftp").mkdir()
    path = tmp_path / "pxed.yaml"
    path.write_text(f"server:\n  interfaces: [veth0]\n  state_dir: {state}\ntftp:\n  root: tftp\n")
    return argparse.Namespace(config=str(path))


def test_lists_every_committed_lease_with_state_expiry_and_hostname(tmp_path, capsys):
    args = config(tmp_path)
    store = SqliteLeaseStore.open(tmp_path / "state")
    now = time.time()
    store.bind(
        Lease("52:54:00:00:00:0a", IPv4Address("10.213.7.10"), now + 600, hostname="web01"), now
    )
    store.bind(Lease("52:54:00:00:00:09", IPv4Address("10.213.7.9"), None), now)
    store.bind(Lease("52:54:00:00:00:64", IPv4Address("10.213.7.100"), now - 5), now - 10)
    store.quarantine(IPv4Address("10.213.7.50"), now + 60)
    store.commit()
    assert leases.run(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["MAC", "IP", "STATE", "EXPIRES", "HOSTNAME"]
    assert lines[1].split() == ["52:54:00:00:00:09", "10.213.7.9", "bound", "never"]
    assert lines[2].split()[:3] == ["52:54:00:00:00:0a", "10.213.7.10", "bound"]
    assert lines[2].split()[-1] == "web01"
    assert lines[3].split()[:3] == ["52:54:00:00:00:64", "10.213.7.100", "expired"]
    assert lines[4] == "3 leases"
    assert lines[5].startswith("quarantined after DHCPDECLINE: 10.213.7.50 until ")
    store.close()


def test_uncommitted_leases_are_not_listed(tmp_path, capsys):
    """What the table shows is what survives a crash: the committed rows only."""
    args = config(tmp_path)
    store = SqliteLeaseStore.open(tmp_path / "state")
    store.bind(Lease("52:54:00:00:00:0a", IPv4Address("10.213.7.10"), None), 0)
    assert leases.run(args) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "0 leases"
    store.close()


def test_missing_database_is_reported_and_not_created(tmp_path, capsys):
    args = config(tmp_path)
    assert leases.run(args) == 1
    assert "no lease database" in capsys.readouterr().err
    assert not (tmp_path / "state" / DATABASE_NAME).exists()


def test_pxed_leases_is_a_registered_subcommand(tmp_path, capsys):
    from pxed.cli.main import main

    args = config(tmp_path)
    SqliteLeaseStore.open(tmp_path / "state").close()
    assert main(["leases", "--config", args.config]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "0 leases"


def test_reading_the_table_closes_its_database_connections(tmp_path, monkeypatch):
    """``with sqlite3.connect()`` only ends a transaction; every connection must be closed."""
    SqliteLeaseStore.open(tmp_path).close()
    opened: list[sqlite3.Connection] = []
    connect = sqlite3.connect

    def recording(*args: object, **kwargs: object) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)  # type: ignore[arg-type]
        opened.append(conn)
        return conn

    monkeypatch.setattr(sqlite3, "connect", recording)
    read_leases(tmp_path / DATABASE_NAME)
    read_quarantine(tmp_path / DATABASE_NAME)
    read_holder(tmp_path / DATABASE_NAME, IPv4Address("10.0.0.9"), 0.0)
    assert len(opened) == 3
    for conn in opened:
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            conn.execute("SELECT 1")


def test_a_hostname_the_client_chose_cannot_forge_rows_or_drive_the_terminal():
    """Option 12 is whatever the client wrote: CR, LF and ESC must not reach the terminal raw."""
    evil = "web\r52:54:00:00:00:01  10.0.0.9  bound  never  admin\x1b[2J"
    table = leases.render([("52:54:00:12:34:56", "10.0.0.5", None, evil)], [], 0.0)
    assert "\r" not in table and "\x1b" not in table
    assert "web\\x0d52:54" in table and len(table.splitlines()) == 3


def test_with_server_database_the_table_comes_from_postgresql(tmp_path, capsys, postgres_url):
    from pxed.dhcp.pg_leases import PostgresLeaseStore
    from tests.support.postgres import Inline

    args = config(tmp_path)
    path = Path(args.config)
    path.write_text(
        path.read_text().replace("server:\n", f"server:\n  database: '{postgres_url}'\n")
    )
    store = PostgresLeaseStore.open(postgres_url, Inline(), "pxe1")
    other = PostgresLeaseStore.open(postgres_url, Inline(), "pxe2")
    store.bind(Lease("52:54:00:00:00:0a", IPv4Address("10.213.7.10"), None, hostname="web01"), 0)
    other.bind(Lease("52:54:00:00:00:09", IPv4Address("10.213.7.9"), None), 0)
    store.commit()
    other.commit()
    store.bind(Lease("52:54:00:00:00:0b", IPv4Address("10.213.7.11"), None), 0)  # uncommitted
    assert leases.run(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[-1] == "SERVER"
    assert [line.split()[:2] + line.split()[-1:] for line in lines[1:3]] == [
        ["52:54:00:00:00:09", "10.213.7.9", "pxe2"],
        ["52:54:00:00:00:0a", "10.213.7.10", "pxe1"],
    ]
    assert lines[3] == "2 leases (pxe1: 1, pxe2: 1)"
    store.close()
    other.close()


def test_dhcpv6_bindings_follow_in_a_table_of_their_own(tmp_path, capsys):
    """Only DHCPv6 served: no complaint about the missing DHCPv4 file, the v6 table alone."""
    args = config(tmp_path)
    store = Sqlite6LeaseStore.open(tmp_path / "state")
    now = time.time()
    duid = bytes.fromhex("00030001525400000001")
    store.bind(
        Lease6(duid, 7, IPv6Address("fd00:213:7::100"), now + 600, mac="52:54:00:00:00:01"), now
    )
    store.commit()
    assert leases.run(args) == 0
    out = capsys.readouterr()
    assert "no lease database" not in out.err
    lines = out.out.splitlines()
    assert lines[0].split() == ["DUID", "IAID", "ADDRESS", "STATE", "EXPIRES", "MAC"]
    row = lines[1].split()
    assert row[:4] == ["00:03:00:01:52:54:00:00:00:01", "7", "fd00:213:7::100", "bound"]
    assert row[-1] == "52:54:00:00:00:01"
    assert lines[2] == "1 DHCPv6 binding"
    store.close()


def test_with_server_database_the_dhcpv6_bindings_come_from_postgresql_too(
    tmp_path, capsys, postgres_url
):
    from pxed.dhcp6.pg_leases import Postgres6LeaseStore
    from tests.support.postgres import Inline

    args = config(tmp_path)
    path = Path(args.config)
    path.write_text(
        path.read_text().replace("server:\n", f"server:\n  database: '{postgres_url}'\n")
    )
    store = Postgres6LeaseStore.open(postgres_url, Inline(), "pxe1")
    now = time.time()
    duid = bytes.fromhex("00030001525400000001")
    store.bind(Lease6(duid, 7, IPv6Address("fd00:213:7::100"), now + 600, mac=None), now)
    store.commit()
    assert leases.run(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-3].split() == ["DUID", "IAID", "ADDRESS", "STATE", "EXPIRES", "MAC", "SERVER"]
    row = lines[-2].split()
    assert row[:4] == ["00:03:00:01:52:54:00:00:00:01", "7", "fd00:213:7::100", "bound"]
    assert row[-2:] == ["-", "pxe1"]
    assert lines[-1] == "1 DHCPv6 binding"
    store.close()
