"""A RELEASEd address stays with its client for ``release_time``: OVMF releases its
address before GRUB, which goes on using it (docs/firmware.md)."""

from __future__ import annotations

from protocols.dhcpv6.allocation import Host
from protocols.dhcpv6.duid import DuidLl
from protocols.dhcpv6.leases import MemoryLeaseStore
from protocols.dhcpv6.options import StatusCode
from protocols.dhcpv6.server import Dhcpv6Server
from tests.protocols.dhcpv6_engine_support import (
    CLIENT,
    MAC,
    SERVER_DUID,
    UUID_CLIENT,
    M,
    addresses,
    client_reply,
    duid_bytes,
    ia,
    lease,
    message,
    send,
    server,
    status,
)

NOW = 1000.0
KEY = (duid_bytes(CLIENT), 1)


def _release(engine: Dhcpv6Server, address: object, now: float = NOW, client: object = CLIENT):
    release = message(M.RELEASE, ia(1, address), server_id=SERVER_DUID, client=client)
    return client_reply(send(engine, release, now=now))


def _others(engine: Dhcpv6Server, count: int, now: float) -> list[object]:
    """Leases for `count` other clients; the addresses they got."""
    return [
        lease(engine, now=now, client=DuidLl(1, bytes([2, 0, 0, 0, 3, n]))) for n in range(count)
    ]


def test_a_released_address_is_not_given_to_another_client_during_release_time():
    engine = server(release_time=600.0)
    address = lease(engine)
    assert status(_release(engine, address, NOW + 10)) == StatusCode.SUCCESS
    others = _others(engine, 9, NOW + 20)
    assert address not in others
    full = client_reply(
        send(engine, message(M.SOLICIT, ia(), client=DuidLl(1, b"\x02" * 6)), now=NOW + 30)
    )
    assert status(full) == StatusCode.NO_ADDRS_AVAIL


def test_a_released_address_returns_to_the_pool_after_release_time():
    engine = server(release_time=600.0)
    address = lease(engine)
    _release(engine, address, NOW)
    _others(engine, 9, NOW + 1)
    assert lease(engine, now=NOW + 601, client=DuidLl(1, b"\x02" * 6)) == address


def test_the_releasing_client_gets_its_address_back():
    engine = server(release_time=600.0)
    address = lease(engine)
    _release(engine, address)
    assert lease(engine, now=NOW + 5) == address


def test_the_installer_of_the_same_host_may_take_the_released_firmware_address():
    hosts = (Host(mac=MAC),)
    engine = server(release_time=600.0, hosts=hosts)
    firmware = lease(engine, client=UUID_CLIENT)  # MAC from the link-local source
    _release(engine, firmware, client=UUID_CLIENT)
    installer = message(M.SOLICIT, ia(1, firmware), client=CLIENT)
    assert list(addresses(client_reply(send(engine, installer, now=NOW + 5)))) == [firmware]


def test_a_released_address_is_kept_no_longer_than_its_lifetime():
    store = MemoryLeaseStore()
    engine = server(store, release_time=600.0)
    address = lease(engine)
    _release(engine, address, NOW + 3500)
    assert store.lease_for(KEY, NOW + 3550).expires == NOW + 3600
    assert store.holder_of(address, NOW + 3601) is None


def test_release_time_zero_frees_the_address_at_once():
    store = MemoryLeaseStore()
    engine = server(store, release_time=0.0)
    address = lease(engine)
    _release(engine, address)
    assert store.holder_of(address, NOW) is None
