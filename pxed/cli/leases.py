"""``pxed leases --config FILE``: the DHCP leases, as a table, and the DHCPv6 bindings.

It reads through the lease database's read API: ``pxed.dhcp.leases`` for SQLite
in ``server.state_dir`` (never taking a running pxed's write lock), or
``pxed.dhcp.pg_leases`` when ``server.database`` names PostgreSQL, where a SERVER
column says which pxed of those sharing the database bound each lease.  DHCPv6
bindings (``pxed.dhcp6.leases``, or ``pxed.dhcp6.pg_leases`` beside DHCPv4's in
PostgreSQL) follow in a table of their own when pxed has served DHCPv6.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import psycopg

from pxed.config import ConfigError, load_config
from pxed.config.defaults import CONFIG_PATH
from pxed.dhcp.leases import DATABASE_NAME, read_leases, read_quarantine
from pxed.dhcp6.leases import DATABASE_NAME as DATABASE6_NAME
from pxed.dhcp6.leases import read_leases6
from pxed.text import printable

HEADERS = ("MAC", "IP", "STATE", "EXPIRES", "HOSTNAME")
HEADERS6 = ("DUID", "IAID", "ADDRESS", "STATE", "EXPIRES", "MAC")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", default=CONFIG_PATH, help="pxed YAML config")


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"{args.config} has errors:\n{error}", file=sys.stderr)
        return 2
    if config.server.database is not None:
        return _from_postgresql(config.server.database)
    v6 = Path(config.server.state_dir) / DATABASE6_NAME
    status = _from_sqlite(Path(config.server.state_dir) / DATABASE_NAME, quiet=v6.exists())
    if v6.exists():
        try:
            rows6 = read_leases6(v6)
        except sqlite3.Error as error:
            print(f"{v6}: cannot read the DHCPv6 lease database: {error}", file=sys.stderr)
            return 1
        print(render6(rows6, time.time()))
        return 0 if status in (0, None) else status
    return 1 if status is None else status


def _from_sqlite(path: Path, *, quiet: bool) -> int | None:
    """The DHCPv4 table; None when there is no file (said unless DHCPv6 has one)."""
    if not path.exists():
        if not quiet:
            print(f"no lease database at {path} (pxed has not served DHCP yet)", file=sys.stderr)
        return None
    try:
        rows = read_leases(path)
        quarantined = read_quarantine(path)
    except sqlite3.Error as error:
        print(f"{path}: cannot read the lease database: {error}", file=sys.stderr)
        return 1
    print(render(rows, quarantined, time.time()))
    return 0


def _from_postgresql(url: str) -> int:
    from pxed.database.connection import DatabaseUnreachable, redacted
    from pxed.dhcp.pg_leases import read_table
    from pxed.dhcp6.pg_leases import read_table6
    from pxed.text import first_line

    try:
        table, quarantined = read_table(url)
        table6 = read_table6(url)
    except DatabaseUnreachable as error:
        print(error, file=sys.stderr)
        return 1
    except psycopg.Error as error:
        print(
            f"server.database {redacted(url)}: cannot read the leases: {first_line(error)}"
            " (has pxed started on it yet?)",
            file=sys.stderr,
        )
        return 1
    rows = [row[:4] for row in table]
    print(render(rows, quarantined, time.time(), [row[4] for row in table]))
    if table6:
        print(render6([row[:5] for row in table6], time.time(), [row[5] for row in table6]))
    return 0


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def render(
    rows: Sequence[tuple[str, str, float | None, str | None]],
    quarantined: Sequence[tuple[str, float]],
    now: float,
    servers: Sequence[str | None] | None = None,
) -> str:
    """An aligned table; expired rows say so (pxed sweeps them within a minute).

    ``servers``, one per row (PostgreSQL, which several pxed may share): a SERVER
    column naming the pxed that bound each lease, and a count per server.
    """
    headers = HEADERS if servers is None else (*HEADERS, "SERVER")
    table: list[tuple[str, ...]] = [headers]
    for index, (mac, ip, expires, hostname) in enumerate(rows):
        if expires is None:
            state, until = "bound", "never"
        else:
            state, until = ("bound" if expires > now else "expired"), _when(expires)
        row = (mac, ip, state, until, printable(hostname or ""))  # the client's words
        table.append(row if servers is None else (*row, servers[index] or "-"))
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]
    total = f"{len(rows)} lease{'' if len(rows) == 1 else 's'}"
    if servers:
        counts = Counter(name or "-" for name in servers)
        total += " (" + ", ".join(f"{name}: {n}" for name, n in sorted(counts.items())) + ")"
    lines.append(total)
    for ip, stamp in quarantined:
        lines.append(f"quarantined after DHCPDECLINE: {ip} until {_when(stamp)}")
    return "\n".join(lines)


def render6(
    rows: Sequence[tuple[str, int, str, float, str | None]],
    now: float,
    servers: Sequence[str | None] | None = None,
) -> str:
    """The DHCPv6 bindings, one per IA; expired rows say so (swept within a minute).

    ``servers``, one per row (PostgreSQL): a SERVER column naming the pxed that bound it.
    """
    headers = HEADERS6 if servers is None else (*HEADERS6, "SERVER")
    table: list[tuple[str, ...]] = [headers]
    for index, (duid, iaid, address, expires, mac) in enumerate(rows):
        state = "bound" if expires > now else "expired"
        row = (duid, str(iaid), address, state, _when(expires), mac or ("-" if servers else ""))
        table.append(row if servers is None else (*row, servers[index] or "-"))
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]
    lines.append(f"{len(rows)} DHCPv6 binding{'' if len(rows) == 1 else 's'}")
    return "\n".join(lines)
