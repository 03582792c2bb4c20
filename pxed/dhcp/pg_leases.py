"""Durable DHCP leases in PostgreSQL (``server.database``), committed off the reactor.

The batches (committed in order by the worker thread, each before its ACKs leave),
the reload after a failed one, and the unique address that decides between two
pxed servers sharing the database (docs/ha.md) are ``pxed.database.pg_batches``'s,
shared with DHCPv6; this module says what a lease row is.  A bind that lost names
the client by its MAC: that client's ACK is not sent, memory learns the winner's
lease, and the client's retry gets a NAK or another address.  Live servers probe
disjoint shares of the pool first (``protocols.share.Share``), so that is rare.

Besides memory, the store keeps the leases known committed (``pxed.dhcp.stored``, on
``pxed.database.stored``): while the database is down (``writable`` false) the
engine confirms only those.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

import psycopg
from psycopg.rows import TupleRow
from twisted.logger import Logger

from protocols.dhcp.leases import Lease, LeaseState, MemoryLeaseStore
from pxed.database.connection import connect
from pxed.database.pg_batches import Bind, Outcome, PostgresBatchStore, later
from pxed.dhcp.leases import LeaseDatabaseError, MirroredLeases
from pxed.dhcp.stored import StoredLeases

log = Logger(namespace="pxed.dhcp")
_LEASE = "mac, host(ip), expires, hostname"


class PostgresLeaseStore(MirroredLeases, PostgresBatchStore[Lease, MemoryLeaseStore]):
    """A ``LeaseStore`` whose bound leases and quarantines are in PostgreSQL once committed."""

    log = log
    Error = LeaseDatabaseError
    SERVICE = "dhcp"
    REPLY = "ACK"

    # -- writes ------------------------------------------------------------

    def bind(self, lease: Lease, now: float) -> None:
        self._memory.bind(lease, now)
        self._queue(Bind(lease, now))

    def release(self, mac: str) -> None:
        self._memory.release(mac)
        self._stored.forget(mac)
        self._queue(("DELETE FROM leases WHERE mac = %s", (mac,)))

    def quarantine(self, ip: IPv4Address, until: float) -> None:
        self._memory.quarantine(ip, until)
        self._stored.forget_address(ip)
        self._queue(("DELETE FROM leases WHERE ip = %s", (ip,)))
        self._queue(
            (
                "INSERT INTO quarantine (ip, until) VALUES (%s, %s)"
                " ON CONFLICT (ip) DO UPDATE SET until = EXCLUDED.until",
                (ip, until),
            )
        )

    def expire(self, now: float) -> list[Lease]:
        """Delete expired leases and quarantines; return the leases that went."""
        gone = self._memory.expire(now)
        self._stored.expire(now)
        self._queue(("DELETE FROM leases WHERE expires IS NOT NULL AND expires <= %s", (now,)))
        self._queue(("DELETE FROM quarantine WHERE until <= %s", (now,)))
        return gone

    # -- the worker's side ---------------------------------------------------

    def _read(self, conn: psycopg.Connection[TupleRow]) -> MemoryLeaseStore:
        memory = MemoryLeaseStore()
        with conn.transaction():
            leases = conn.execute(f"SELECT {_LEASE} FROM leases").fetchall()
            quarantined = conn.execute("SELECT host(ip), until FROM quarantine").fetchall()
        for row in leases:
            memory.bind(_lease(row), float("-inf"))
        for ip, until in quarantined:
            memory.quarantine(IPv4Address(ip), until)
        return memory

    def _last_seq(self, conn: psycopg.Connection[TupleRow]) -> int:
        row = conn.execute("SELECT coalesce(max(seq), 0) FROM leases").fetchone()
        return 0 if row is None else int(row[0])

    def _bind(self, bind: Bind[Lease], outcome: Outcome[Lease]) -> None:
        """The client's old row goes, and an expired one on the address; then the insert,
        which a live lease on the address (committed, or committing elsewhere) refuses."""
        lease = bind.lease
        self._conn.execute(
            "DELETE FROM leases WHERE mac = %s"
            " OR (ip = %s AND expires IS NOT NULL AND expires <= %s)",
            (lease.mac, lease.ip, bind.now),
        )
        inserted = self._conn.execute(
            "INSERT INTO leases (mac, ip, expires, hostname, server)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING seq",
            (lease.mac, lease.ip, lease.expires, lease.hostname, self.server),
        ).fetchone()
        if inserted is not None:
            return
        row = self._conn.execute(
            f"SELECT {_LEASE}, server FROM leases WHERE ip = %s", (lease.ip,)
        ).fetchone()
        holder = None if row is None else _lease(row[:4])
        outcome.lost.append((lease, holder, None if row is None else row[4]))

    def _poll(self, outcome: Outcome[Lease]) -> None:
        rows = self._conn.execute(
            f"SELECT {_LEASE}, seq FROM leases WHERE seq > %s AND server IS DISTINCT FROM %s"
            " ORDER BY seq",
            (self._seq, self.server),
        ).fetchall()
        outcome.learned = [_lease(row[:4]) for row in rows]
        if rows:
            self._seq = rows[-1][4]

    # -- back on the reactor -------------------------------------------------

    def _remember(self, rows: list[Lease]) -> StoredLeases:
        return StoredLeases(rows)

    def _lost_bind(self, lease: Lease, holder: Lease | None, server: str | None) -> str:
        log.warn(
            "dhcp {mac}: {ip} was bound meanwhile by server {server} to {holder};"
            " no ACK sent, the client will retry and get another address",
            mac=lease.mac,
            ip=str(lease.ip),
            server=server or "?",
            holder=holder.mac if holder else "?",
        )
        mine = self._memory.lease_for(lease.mac, float("-inf"))
        if mine is not None and mine.ip == lease.ip:
            self._memory.release(lease.mac)
        return lease.mac

    def _learn(self, lease: Lease) -> None:
        """Put another server's lease in memory, unless memory knows a newer one (a later
        expiry) for that client or that address."""
        always = float("-inf")
        for mac in (lease.mac, self._memory.holder_of(lease.ip, always)):
            known = None if mac is None else self._memory.lease_for(mac, always)
            if known is not None and later(known.expires, lease.expires):
                return
        holder = self._memory.holder_of(lease.ip, always)
        if holder is not None and holder != lease.mac:
            self._memory.release(holder)
        self._memory.bind(lease, always)


def _lease(row: tuple[Any, ...]) -> Lease:
    mac, ip, expires, hostname = row
    return Lease(mac, IPv4Address(ip), expires, LeaseState.BOUND, hostname)


# The read API, for tools beside the running server (``pxed leases``): one short
# connection, committed rows only, in the shapes ``pxed.dhcp.leases`` returns.
def read_table(
    url: str,
) -> tuple[list[tuple[str, str, float | None, str | None, str | None]], list[tuple[str, float]]]:
    """(mac, ip, expires, hostname, server) of every lease by address, and (ip, until) of
    every quarantined address, soonest first.  Raises DatabaseUnreachable or psycopg.Error."""
    with connect(url) as conn, conn.transaction():
        leases = conn.execute(f"SELECT {_LEASE}, server FROM leases ORDER BY ip").fetchall()
        quarantined = conn.execute(
            "SELECT host(ip), until FROM quarantine ORDER BY until"
        ).fetchall()
    return leases, quarantined
