"""Durable DHCPv6 bindings in PostgreSQL (``server.database``), committed off the reactor.

The batches, their order, the reload after a failure and the unique address that
decides between two servers sharing the database are ``pxed.database.pg_batches``'s,
as for DHCPv4; this module says what a binding row is.  A bind that lost names the
client by its DUID in hex, as the adapter names a reply's client
(``pxed.dhcp6.service``), so that reply is dropped and the client's retry gets
another address.

Besides memory, the store keeps the bindings known committed (``committed``,
``pxed.database.stored``): while the database is down (``writable`` false) the
engine confirms only those, to a RENEW or REBIND.
"""

from __future__ import annotations

from ipaddress import IPv6Address
from typing import Any, LiteralString

import psycopg
from psycopg.rows import TupleRow
from twisted.logger import Logger

from protocols.dhcpv6.leases import BindingKey, Lease, LeaseState, MemoryLeaseStore
from pxed.database.connection import connect
from pxed.database.pg_batches import Bind, Outcome, PostgresBatchStore, later
from pxed.database.stored import Stored
from pxed.dhcp6.leases import Lease6DatabaseError, MirroredLeases6

log = Logger(namespace="pxed.dhcp6")
_LEASE: LiteralString = "client, iaid, host(address), expires, mac"


class Postgres6LeaseStore(MirroredLeases6, PostgresBatchStore[Lease, MemoryLeaseStore]):
    """The DHCPv6 engine's ``LeaseStore`` whose bindings and quarantines are in PostgreSQL
    once committed."""

    log = log
    Error = Lease6DatabaseError
    SERVICE = "dhcp6"
    REPLY = "REPLY"

    # -- writes ------------------------------------------------------------

    def bind(self, lease: Lease, now: float) -> None:
        self._memory.bind(lease, now)
        self._queue(Bind(lease, now))

    def release(self, key: BindingKey) -> None:
        self._memory.release(key)
        self._stored.forget(key)
        self._queue(("DELETE FROM leases6 WHERE client = %s AND iaid = %s", key))

    def quarantine(self, address: IPv6Address, until: float) -> None:
        self._memory.quarantine(address, until)
        self._stored.forget_address(address)
        self._queue(("DELETE FROM leases6 WHERE address = %s", (address,)))
        self._queue(
            (
                "INSERT INTO quarantine6 (address, until) VALUES (%s, %s)"
                " ON CONFLICT (address) DO UPDATE SET until = EXCLUDED.until",
                (address, until),
            )
        )

    def expire(self, now: float) -> list[Lease]:
        """Delete expired bindings and quarantines; return the bindings that went."""
        gone = self._memory.expire(now)
        self._stored.expire(now)
        self._queue(("DELETE FROM leases6 WHERE expires <= %s", (now,)))
        self._queue(("DELETE FROM quarantine6 WHERE until <= %s", (now,)))
        return gone

    # -- the worker's side ---------------------------------------------------

    def _read(self, conn: psycopg.Connection[TupleRow]) -> MemoryLeaseStore:
        memory = MemoryLeaseStore()
        with conn.transaction():
            leases = conn.execute(f"SELECT {_LEASE} FROM leases6").fetchall()
            quarantined = conn.execute("SELECT host(address), until FROM quarantine6").fetchall()
        for row in leases:
            memory.bind(_lease(row), float("-inf"))
        for address, until in quarantined:
            memory.quarantine(IPv6Address(address), until)
        return memory

    def _last_seq(self, conn: psycopg.Connection[TupleRow]) -> int:
        row = conn.execute("SELECT coalesce(max(seq), 0) FROM leases6").fetchone()
        return 0 if row is None else int(row[0])

    def _bind(self, bind: Bind[Lease], outcome: Outcome[Lease]) -> None:
        """The IA's old row goes, and an expired one on the address; then the insert,
        which a live binding on the address (committed, or committing elsewhere) refuses."""
        lease = bind.lease
        self._conn.execute(
            "DELETE FROM leases6 WHERE (client = %s AND iaid = %s)"
            " OR (address = %s AND expires <= %s)",
            (lease.client, lease.iaid, lease.address, bind.now),
        )
        inserted = self._conn.execute(
            "INSERT INTO leases6 (client, iaid, address, expires, mac, server)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING seq",
            (lease.client, lease.iaid, lease.address, lease.expires, lease.mac, self.server),
        ).fetchone()
        if inserted is not None:
            return
        row = self._conn.execute(
            f"SELECT {_LEASE}, server FROM leases6 WHERE address = %s", (lease.address,)
        ).fetchone()
        holder = None if row is None else _lease(row[:5])
        outcome.lost.append((lease, holder, None if row is None else row[5]))

    def _poll(self, outcome: Outcome[Lease]) -> None:
        rows = self._conn.execute(
            f"SELECT {_LEASE}, seq FROM leases6 WHERE seq > %s AND server IS DISTINCT FROM %s"
            " ORDER BY seq",
            (self._seq, self.server),
        ).fetchall()
        outcome.learned = [_lease(row[:5]) for row in rows]
        if rows:
            self._seq = rows[-1][5]

    # -- back on the reactor -------------------------------------------------

    def _remember(self, rows: list[Lease]) -> Stored[BindingKey, IPv6Address, Lease]:
        return Stored(rows, _key, _address)

    def _lost_bind(self, lease: Lease, holder: Lease | None, server: str | None) -> str:
        client = lease.client.hex(":")
        log.warn(
            "dhcp6 {mac}: {address} was bound meanwhile by server {server} to {holder};"
            " no REPLY sent, the client will retry and get another address",
            mac=lease.mac or f"DUID {client}",
            address=str(lease.address),
            server=server or "?",
            holder=holder.client.hex(":") if holder else "?",
        )
        mine = self._memory.lease_for(lease.key, float("-inf"))
        if mine is not None and mine.address == lease.address:
            self._memory.release(lease.key)
        return client

    def _learn(self, lease: Lease) -> None:
        """Put another server's binding in memory, unless memory knows a newer one (a later
        expiry) for that IA or that address."""
        always = float("-inf")
        for known in (
            self._memory.lease_for(lease.key, always),
            self._memory.holder_of(lease.address, always),
        ):
            if known is not None and later(known.expires, lease.expires):
                return
        holder = self._memory.holder_of(lease.address, always)
        if holder is not None and holder.key != lease.key:
            self._memory.release(holder.key)
        self._memory.bind(lease, always)


def _lease(row: tuple[Any, ...]) -> Lease:
    client, iaid, address, expires, mac = row
    return Lease(bytes(client), iaid, IPv6Address(address), expires, LeaseState.BOUND, mac)


def _key(lease: Lease) -> BindingKey:
    return lease.key


def _address(lease: Lease) -> IPv6Address:
    return lease.address


def read_table6(url: str) -> list[tuple[str, int, str, float, str | None, str | None]]:
    """For ``pxed leases``: (client DUID in hex, IAID, address, expires, MAC, server) of
    every binding, by address, committed rows only.  Raises DatabaseUnreachable or
    psycopg.Error."""
    with connect(url) as conn:
        rows = conn.execute(f"SELECT {_LEASE}, server FROM leases6 ORDER BY address").fetchall()
    return [(bytes(c).hex(":"), i, a, e, m, s) for c, i, a, e, m, s in rows]
