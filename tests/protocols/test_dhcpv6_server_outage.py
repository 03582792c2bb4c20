"""The DHCPv6 engine while its lease store cannot write (the database is down, docs/ha.md):
only a RENEW or REBIND of committed, unexpired bindings is answered, for the time they
have left, and nothing is bound."""

from __future__ import annotations

from ipaddress import IPv6Address

from protocols.dhcpv6.leases import BindingKey, Lease, MemoryLeaseStore
from protocols.dhcpv6.server import NoReply, Reply
from tests.protocols.dhcpv6_engine_support import (
    CLIENT,
    SERVER_DUID,
    M,
    addresses,
    client_reply,
    duid_bytes,
    ia,
    message,
    send,
    server,
)

NOW = 1000.0
STORED_UNTIL = NOW + 600.0  # a binding made at NOW - 3000 for an hour
X, Y = IPv6Address("fd00:213:7::104"), IPv6Address("fd00:213:7::105")
KEY: BindingKey = (duid_bytes(CLIENT), 1)


class Down(MemoryLeaseStore):
    """Memory holds what the engine wrote; only the bindings in ``stored`` were committed
    before the database went away, and nothing can be written now."""

    writable = False

    def __init__(self) -> None:
        super().__init__()
        self.stored: dict[BindingKey, Lease] = {}

    def committed(self, key: BindingKey, now: float) -> Lease | None:
        lease = self.stored.get(key)
        return lease if lease is not None and lease.active(now) else None

    def store(self, lease: Lease) -> None:
        """A binding made and committed while the database was up."""
        self.bind(lease, lease.expires - 3600)
        self.stored[lease.key] = lease


def down_with(address: IPv6Address = X, expires: float = STORED_UNTIL, iaid: int = 1) -> Down:
    store = Down()
    store.store(Lease(KEY[0], iaid, address, expires))
    return store


def renew(*options: tuple[int, object]) -> object:
    return message(M.RENEW, *options, server_id=SERVER_DUID)


def test_a_renew_of_a_committed_binding_gets_the_time_it_has_left_and_nothing_is_written():
    store = down_with()
    action = send(server(store), renew(ia(1, X)), now=NOW)
    assert isinstance(action, Reply) and action.committed  # leaves without a commit
    reply = client_reply(action)
    assert reply.msg_type == M.REPLY and addresses(reply) == {X: 600}
    (answer,) = reply.ia_na
    assert (answer.t1, answer.t2) == (300, 480)
    assert store.leases() == [Lease(KEY[0], 1, X, STORED_UNTIL)]  # its expiry unchanged


def test_a_rebind_is_confirmed_the_same_way():
    action = send(server(down_with()), message(M.REBIND, ia(1, X)), now=NOW)
    assert isinstance(action, Reply) and addresses(client_reply(action)) == {X: 600}


def test_a_binding_only_in_memory_is_not_confirmed():
    store = Down()
    store.bind(Lease(KEY[0], 1, X, STORED_UNTIL), NOW)  # its commit failed or is pending
    assert isinstance(send(server(store), renew(ia(1, X)), now=NOW), NoReply)


def test_an_expired_binding_another_address_or_one_ia_unstored_is_not_confirmed():
    assert isinstance(send(server(down_with(expires=NOW)), renew(ia(1, X)), now=NOW), NoReply)
    assert isinstance(send(server(down_with()), renew(ia(1, Y)), now=NOW), NoReply)
    both = renew(ia(1, X), ia(2, Y))  # IA 2 has no stored binding
    assert isinstance(send(server(down_with()), both, now=NOW), NoReply)


def test_what_would_bind_or_release_gets_no_answer_and_writes_nothing():
    store = down_with()
    engine = server(store)
    for sent in (
        message(M.SOLICIT, ia(2)),
        message(M.REQUEST, ia(2, Y), server_id=SERVER_DUID),
        message(M.RELEASE, ia(1, X), server_id=SERVER_DUID),
        message(M.DECLINE, ia(1, X), server_id=SERVER_DUID),
    ):
        assert isinstance(send(engine, sent, now=NOW), NoReply), sent.msg_type
    assert store.leases() == [Lease(KEY[0], 1, X, STORED_UNTIL)]
    assert store.quarantines() == {}
