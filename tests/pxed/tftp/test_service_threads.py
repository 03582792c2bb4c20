"""TftpService on the real reactor and its real transfer loop thread, over loopback.

The adapter tests run the transfer code inline on a fake reactor; these check
what only the two threads together do: a transfer's end crossing back to the
reactor's books, and a shutdown with transfers in flight telling every client
and closing every socket before its Deferred fires.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task

from pxed.tftp.service import LISTENER_BUFFER, TRANSFER_DATAGRAM, TftpService, TftpSettings
from pxed.tftp.sources import ProviderChain, StaticRoot
from tests.support.descriptors import open_files, opened_since

CLIENTS = 20
WAIT = 10.0  # seconds: a bound on each wait, never a timing assertion


def _client(address: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, 0))
    sock.setblocking(False)
    return sock


@defer.inlineCallbacks
def _receive(sock: socket.socket):
    """The next datagram on ``sock``, polling the real reactor (bounded by WAIT)."""
    for _ in range(int(WAIT / 0.01)):
        try:
            return sock.recvfrom(65536)
        except BlockingIOError:
            yield task.deferLater(reactor, 0.01, lambda: None)
    raise AssertionError("no datagram within the wait")


@defer.inlineCallbacks
def _until(condition):
    """Whether ``condition()`` came true, polling the real reactor (bounded by WAIT)."""
    for _ in range(int(WAIT / 0.01)):
        if condition():
            return True
        yield task.deferLater(reactor, 0.01, lambda: None)
    return condition()


def _service(root: Path) -> TftpService:
    settings = TftpSettings(listen=("127.0.0.1",), port=0)
    return TftpService(settings, ProviderChain([StaticRoot(root)]), reactor)


def _asking_for_small(root: Path) -> tuple[TftpService, socket.socket]:
    """A started service over a 700-byte file (two blocks) and a client that asked for it."""
    (root / "small").write_bytes(b"x" * 700)
    service = _service(root)
    service.startService()
    client = _client()
    client.sendto(b"\0\1small\0octet\0", service.addresses[0])
    return service, client


@pytest_twisted.inlineCallbacks
def test_a_finished_transfer_reaches_the_services_books(tmp_path: Path):
    service, client = _asking_for_small(tmp_path)
    try:
        for block in (1, 2):
            datagram, tid = yield _receive(client)
            assert datagram[:4] == b"\0\3" + block.to_bytes(2, "big")
            client.sendto(b"\0\4" + block.to_bytes(2, "big"), tid)
        assert (yield _until(lambda: service.stats.outcomes["complete"] == 1))
        assert service.stats.active_sessions == 0 and service.transfers() == []
        client.close()
    finally:
        yield service.stopService()


@pytest_twisted.inlineCallbacks
def test_a_client_error_longer_than_a_transfer_port_reads_still_ends_the_transfer(
    tmp_path: Path,
):
    """Transfer ports read TRANSFER_DATAGRAM bytes: the cut ERROR ends it as a protocol error."""
    service, client = _asking_for_small(tmp_path)
    try:
        _, tid = yield _receive(client)
        client.sendto(b"\0\5\0\0" + b"m" * (4 * TRANSFER_DATAGRAM) + b"\0", tid)
        assert (yield _until(lambda: service.stats.outcomes["protocol-error"] == 1))
        assert service.transfers() == []
        client.close()
    finally:
        yield service.stopService()


@pytest_twisted.inlineCallbacks
def test_stopping_with_transfers_in_flight_tells_each_client_and_closes_every_socket(
    tmp_path: Path,
):
    (tmp_path / "big").write_bytes(os.urandom(1024 * 1024))
    before = open_files()
    service = _service(tmp_path)
    service.startService()
    clients = [_client(f"127.0.0.{10 + n}") for n in range(CLIENTS)]  # a rack, not one host
    for client in clients:
        client.sendto(b"\0\1big\0octet\0", service.addresses[0])
    for client in clients:
        datagram, _ = yield _receive(client)
        assert datagram[:4] == b"\0\3\0\1"  # each transfer is waiting for its ACK
    assert service.stats.active_sessions == CLIENTS
    yield service.stopService()
    for client in clients:
        datagram, _ = yield _receive(client)
        assert datagram[:2] == b"\0\5" and b"shutting down" in datagram
        client.close()
    assert service.stats.active_sessions == 0
    assert service.stats.outcomes["shutdown"] == CLIENTS
    assert opened_since(before) == set()


class _ThreadRecordingRoot(StaticRoot):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.threads: set[str] = set()

    def open(self, path, client):
        self.threads.add(threading.current_thread().name)
        return super().open(path, client)

    def release(self, shared) -> None:
        self.threads.add(threading.current_thread().name)
        super().release(shared)


@pytest_twisted.inlineCallbacks
def test_files_are_opened_and_released_in_the_reactor_thread_only(tmp_path: Path):
    """A StaticRoot's shared descriptors are its books: a release in the transfer loop's
    thread racing an open of the same file in the reactor could close a descriptor a new
    transfer is about to read."""
    (tmp_path / "small").write_bytes(b"x" * 100)
    root = _ThreadRecordingRoot(tmp_path)
    settings = TftpSettings(listen=("127.0.0.1",), port=0)
    service = TftpService(settings, ProviderChain([root]), reactor)
    service.startService()
    try:
        client = _client()
        client.sendto(b"\0\1small\0octet\0", service.addresses[0])
        _, tid = yield _receive(client)
        client.sendto(b"\0\4\0\1", tid)
        assert (yield _until(lambda: root.open_files == 0))
        assert root.threads == {threading.current_thread().name}
        client.close()
    finally:
        yield service.stopService()


@pytest_twisted.inlineCallbacks
def test_a_listener_asks_for_a_large_receive_buffer(tmp_path: Path):
    """The listener took only 1-2k requests a second before the kernel dropped the rest."""
    service = _service(tmp_path)
    service.startService()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as plain:
            default = plain.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        listener = service._listeners[0].socket
        assert listener.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) > default
    finally:
        yield service.stopService()


@pytest_twisted.inlineCallbacks
def test_a_listener_started_as_root_gets_its_buffer_past_rmem_max(tmp_path: Path):
    """A burst is absorbed even where net.core.rmem_max was never raised."""
    if os.geteuid() != 0:
        pytest.skip("SO_RCVBUFFORCE needs root (or CAP_NET_ADMIN)")
    service = _service(tmp_path)
    service.startService()
    try:
        listener = service._listeners[0].socket
        assert listener.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= LISTENER_BUFFER
    finally:
        yield service.stopService()
