"""The TFTP transfer loop on real loopback sockets and a real thread.

What the TFTP adapter relies on: a port connected to its client still hears
strangers (for ERROR 5) from the same port number, sends reach the peer, timers
fire in order and cancelled ones do not, calls from other threads run in the
loop's thread in order, a failing callback is reported and the loop goes on,
and stopping closes every socket it made. While one port is all it serves, the
loop waits in that port's recv: timers, calls, strangers and a second port must
still get through.
"""

from __future__ import annotations

import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import LogEvent, globalLogPublisher

from pxed.tftp.transfer_loop import TransferLoop, family_of, sockaddr
from tests.support.descriptors import open_files, opened_since

LOOPBACK = "127.0.0.1"
WAIT = 5.0  # seconds: a bound on every wait, never a timing assertion


class MainThread:
    """The reactor side: calls from the loop queue up here until the test runs them."""

    def __init__(self) -> None:
        self.calls: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]]] = queue.Queue()

    def callFromThread(self, func: Callable[..., Any], *args: Any) -> None:
        self.calls.put((func, args))

    def run_one(self) -> None:
        func, args = self.calls.get(timeout=WAIT)
        func(*args)


class Recorder(DatagramProtocol):
    """Puts every datagram it hears, with its sender and thread, on a queue."""

    def __init__(self) -> None:
        self.heard: queue.Queue[tuple[bytes, tuple[str, int], str]] = queue.Queue()
        self.stopped = threading.Event()

    def datagramReceived(self, datagram: bytes, addr: tuple[str, int]) -> None:
        self.heard.put((datagram, addr, threading.current_thread().name))

    def stopProtocol(self) -> None:
        self.stopped.set()


@pytest.fixture
def main() -> MainThread:
    return MainThread()


@pytest.fixture
def loop(main: MainThread) -> Iterator[TransferLoop]:
    running = TransferLoop(main)
    running.start()
    yield running
    stopped = running.stop()
    while not stopped.called:
        main.run_one()


def _client() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LOOPBACK, 0))
    sock.settimeout(WAIT)
    return sock


def test_a_connected_port_hears_its_peer_and_sends_to_it(loop: TransferLoop) -> None:
    client, protocol = _client(), Recorder()
    port = loop.listenUDP(0, protocol, interface=LOOPBACK, maxPacketSize=65536)
    port.connect(*client.getsockname())
    port.socket.send(b"DATA 1")
    assert client.recvfrom(100) == (b"DATA 1", (LOOPBACK, port.getHost().port))
    source = (LOOPBACK, port.getHost().port)
    client.sendto(b"ACK 1", source)
    assert protocol.heard.get(timeout=WAIT) == (
        b"ACK 1",
        client.getsockname(),
        "pxed-tftp-transfers",
    )
    client.close()


def test_a_stranger_reaches_the_protocol_and_is_answered_from_the_same_port(
    loop: TransferLoop,
) -> None:
    """RFC 1350: the stranger gets ERROR 5 from the transfer's port, the transfer goes on."""
    client, stranger, protocol = _client(), _client(), Recorder()
    port = loop.listenUDP(0, protocol, interface=LOOPBACK, maxPacketSize=65536)
    port.connect(*client.getsockname())
    here = (LOOPBACK, port.getHost().port)
    stranger.sendto(b"ACK 7", here)
    datagram, addr, _ = protocol.heard.get(timeout=WAIT)
    assert (datagram, addr) == (b"ACK 7", stranger.getsockname())
    port.write(b"ERROR 5", addr)
    assert stranger.recvfrom(100) == (b"ERROR 5", here)
    client.sendto(b"ACK 1", here)
    assert protocol.heard.get(timeout=WAIT)[:2] == (b"ACK 1", client.getsockname())
    client.close()
    stranger.close()


def test_timers_fire_in_order_and_a_cancelled_one_never(loop: TransferLoop) -> None:
    fired: queue.Queue[str] = queue.Queue()

    def arm() -> None:
        loop.callLater(0.02, fired.put, "second")
        loop.callLater(0.0, fired.put, "first")
        loop.callLater(0.01, fired.put, "cancelled").cancel()
        loop.callLater(0.03, fired.put, "third")

    loop.callFromThread(arm)
    assert [fired.get(timeout=WAIT) for _ in range(3)] == ["first", "second", "third"]
    assert fired.empty()


def test_a_timer_earlier_than_the_one_waited_for_and_one_set_by_a_timer_both_fire(
    loop: TransferLoop,
) -> None:
    """The loop sleeps until its earliest timer only: a new, earlier one must wake it
    sooner, and a transfer re-arming from its own timer callback must be heard."""
    fired: queue.Queue[str] = queue.Queue()

    def rearm() -> None:
        fired.put("early")
        loop.callLater(0.01, fired.put, "set by a timer")

    loop.callFromThread(lambda: loop.callLater(WAIT * 10, fired.put, "far"))
    loop.callFromThread(lambda: loop.callLater(0.01, rearm))
    assert [fired.get(timeout=WAIT) for _ in range(2)] == ["early", "set by a timer"]


def test_calls_from_other_threads_run_in_the_loop_thread_in_order(loop: TransferLoop) -> None:
    ran: queue.Queue[tuple[int, str]] = queue.Queue()
    for n in range(50):
        loop.callFromThread(lambda n=n: ran.put((n, threading.current_thread().name)))
    assert [ran.get(timeout=WAIT) for _ in range(50)] == [
        (n, "pxed-tftp-transfers") for n in range(50)
    ]


def test_calls_queued_while_a_wake_up_is_pending_write_the_eventfd_once(
    loop: TransferLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session's start queues two calls; each eventfd write is a system call at which the
    GIL may change hands, so calls queued before the loop reads the queue share one."""
    writes: list[int] = []
    real_write = os.eventfd_write
    monkeypatch.setattr(os, "eventfd_write", lambda fd, n: (writes.append(fd), real_write(fd, n)))
    busy, release = threading.Event(), threading.Event()
    loop.callFromThread(lambda: (busy.set(), release.wait(WAIT)))
    assert busy.wait(WAIT)
    before = len(writes)
    ran: queue.Queue[int] = queue.Queue()
    for n in range(20):
        loop.callFromThread(ran.put, n)
    assert len(writes) == before + 1
    release.set()
    assert [ran.get(timeout=WAIT) for _ in range(20)] == list(range(20))
    loop.callFromThread(ran.put, 20)  # after the queue was read: a wake-up of its own
    assert ran.get(timeout=WAIT) == 20


def test_a_failing_callback_is_logged_in_the_reactor_and_the_loop_goes_on(
    loop: TransferLoop, main: MainThread
) -> None:
    events: list[LogEvent] = []
    globalLogPublisher.addObserver(events.append)
    try:
        loop.callFromThread(lambda: 1 / 0)
        main.run_one()  # the log line crosses to the reactor thread
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert any(e.get("log_failure") is not None for e in events)
    ran = threading.Event()
    loop.callFromThread(ran.set)
    assert ran.wait(WAIT)


class Chatter:
    """A client that keeps one port busy: datagrams back to back until told to stop
    (bounded in count and time), so the loop is always inside its one-port wait."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.client = _client()
        self.target = target
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        ends = time.monotonic() + 3 * WAIT  # outlasts any wait of the test
        for _ in range(1_000_000):
            if self.done.is_set() or time.monotonic() > ends:
                break
            self.client.sendto(b"ACK", self.target)
            time.sleep(0.0001)

    def __enter__(self) -> Chatter:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join(WAIT)
        self.client.close()


def _busy_port(loop: TransferLoop, protocol: DatagramProtocol) -> tuple[Any, Chatter]:
    """One connected port on the loop (what makes it wait in recv) and its chatter."""
    port = loop.listenUDP(0, protocol, interface=LOOPBACK, maxPacketSize=65536)
    chatter = Chatter((LOOPBACK, port.getHost().port))
    port.connect(*chatter.client.getsockname())
    return port, chatter


def test_a_timer_fires_while_the_one_port_never_stops_receiving(loop: TransferLoop) -> None:
    """Datagrams without progress must not starve the retransmit timer."""
    fired = threading.Event()
    _, chatter = _busy_port(loop, Recorder())
    with chatter:
        loop.callFromThread(lambda: loop.callLater(0.05, fired.set))
        assert fired.wait(WAIT)


def test_a_timer_fires_while_the_one_port_waits_for_its_peer(loop: TransferLoop) -> None:
    fired = threading.Event()
    port = loop.listenUDP(0, Recorder(), interface=LOOPBACK, maxPacketSize=65536)
    client = _client()
    port.connect(*client.getsockname())
    loop.callFromThread(lambda: loop.callLater(0.05, fired.set))
    assert fired.wait(WAIT)
    client.close()


def test_calls_from_other_threads_run_while_the_one_port_is_busy(loop: TransferLoop) -> None:
    ran = threading.Event()
    _, chatter = _busy_port(loop, Recorder())
    with chatter:
        time.sleep(0.05)  # the loop settles into the one port's wait
        loop.callFromThread(ran.set)
        assert ran.wait(WAIT)


def test_a_stranger_is_heard_while_the_one_port_is_busy(loop: TransferLoop) -> None:
    protocol, stranger = Recorder(), _client()
    port, chatter = _busy_port(loop, protocol)
    with chatter:
        time.sleep(0.05)
        stranger.sendto(b"ACK 7", (LOOPBACK, port.getHost().port))
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            datagram, addr, _ = protocol.heard.get(timeout=WAIT)
            if addr == stranger.getsockname():
                break
        assert (datagram, addr) == (b"ACK 7", stranger.getsockname())
    stranger.close()


def test_a_second_port_is_served_while_the_first_is_busy(loop: TransferLoop) -> None:
    second, client = Recorder(), _client()
    _, chatter = _busy_port(loop, Recorder())
    with chatter:
        time.sleep(0.05)
        port = loop.listenUDP(0, second, interface=LOOPBACK, maxPacketSize=65536)
        port.connect(*client.getsockname())
        client.sendto(b"ACK 1", (LOOPBACK, port.getHost().port))
        assert second.heard.get(timeout=WAIT)[:2] == (b"ACK 1", client.getsockname())
    client.close()


def test_stopping_closes_every_socket_and_fires_in_the_reactor(main: MainThread) -> None:
    before = open_files()
    loop = TransferLoop(main)
    loop.start()
    protocols = [Recorder() for _ in range(3)]
    client = _client()
    for protocol in protocols:
        port = loop.listenUDP(0, protocol, interface=LOOPBACK, maxPacketSize=65536)
        port.connect(*client.getsockname())
    stopped = loop.stop()
    while not stopped.called:
        main.run_one()
    client.close()
    assert opened_since(before) == set()


def test_a_port_closed_by_its_protocol_releases_both_sockets(loop: TransferLoop) -> None:
    before = open_files()
    client, protocol = _client(), Recorder()
    port = loop.listenUDP(0, protocol, interface=LOOPBACK, maxPacketSize=65536)
    port.connect(*client.getsockname())
    loop.callFromThread(port.stopListening)
    assert protocol.stopped.wait(WAIT)
    client.close()
    assert opened_since(before) == set()


def test_an_address_that_cannot_be_bound_fails_in_the_callers_thread(
    loop: TransferLoop,
) -> None:
    before = open_files()
    with pytest.raises(OSError):
        loop.listenUDP(0, Recorder(), interface="192.0.2.1", maxPacketSize=65536)
    assert opened_since(before) == set()


def test_ports_join_the_loops_books_in_the_loops_thread_only(
    loop: TransferLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No dictionary of the loop is changed from two threads: the reactor binds, the loop books."""
    threads: list[str] = []
    watch = loop._watch

    def recording(sock: socket.socket, reader: Callable[[], None]) -> None:
        threads.append(threading.current_thread().name)
        watch(sock, reader)

    monkeypatch.setattr(loop, "_watch", recording)
    client, protocol = _client(), Recorder()

    class ConnectsOnStart(Recorder):
        def startProtocol(self) -> None:
            self.transport.connect(*client.getsockname())

    protocol = ConnectsOnStart()
    port = loop.listenUDP(0, protocol, interface=LOOPBACK, maxPacketSize=65536)
    client.sendto(b"ACK 1", (LOOPBACK, port.getHost().port))
    assert protocol.heard.get(timeout=WAIT)[0] == b"ACK 1"
    assert threads == ["pxed-tftp-transfers", "pxed-tftp-transfers"]
    client.close()


def test_a_step_of_the_wall_clock_neither_stalls_nor_hurries_timers(
    loop: TransferLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NTP stepping the clock at an appliance's boot must not move retransmit timers."""
    fired: queue.Queue[str] = queue.Queue()
    wall = time.time()
    monkeypatch.setattr(time, "time", lambda: wall + 3600.0)  # an hour forward
    loop.callFromThread(lambda: loop.callLater(0.05, fired.put, "on time"))
    assert fired.get(timeout=WAIT) == "on time"
    monkeypatch.setattr(time, "time", lambda: wall - 3600.0)  # and back
    loop.callFromThread(lambda: loop.callLater(0.05, fired.put, "still on time"))
    assert fired.get(timeout=WAIT) == "still on time"


def test_a_dead_loop_says_so_and_stopping_it_does_not_hang(main: MainThread) -> None:
    loop = TransferLoop(main)
    loop.start()
    assert loop.alive

    def die() -> None:
        raise SystemExit("a bug that escapes the per-callback guard")

    events: list[LogEvent] = []
    globalLogPublisher.addObserver(events.append)
    try:
        loop._run_calls = die  # type: ignore[method-assign]
        loop.callFromThread(lambda: None)
        main.run_one()  # the log line, sent to the reactor's thread
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert [e["log_level"].name for e in events if "loop died" in e["log_format"]] == ["critical"]
    deadline = time.monotonic() + WAIT
    while loop.alive and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not loop.alive
    assert loop.stop().called


def test_refusals_leave_from_one_port_per_address_that_stopping_closes(
    main: MainThread,
) -> None:
    before = open_files()
    loop = TransferLoop(main)
    loop.start()
    client = _client()
    for datagram in (b"\x00\x05\x00\x01first\x00", b"\x00\x05\x00\x01second\x00"):
        loop.send_refusal(LOOPBACK, datagram, client.getsockname())
    (first, one), (second, other) = client.recvfrom(100), client.recvfrom(100)
    assert (first, second) == (b"\x00\x05\x00\x01first\x00", b"\x00\x05\x00\x01second\x00")
    assert one == other and one[0] == LOOPBACK
    stopped = loop.stop()
    while not stopped.called:
        main.run_one()
    client.close()
    assert opened_since(before) == set()


def test_a_refusal_from_an_address_that_cannot_be_bound_leaves_no_socket(
    loop: TransferLoop,
) -> None:
    before = open_files()
    with pytest.raises(OSError):
        loop.send_refusal("192.0.2.1", b"\x00\x05\x00\x01x\x00", (LOOPBACK, 9))
    assert opened_since(before) == set()


@pytest.mark.parametrize(
    ("address", "family", "bound"),
    [
        ("127.0.0.1", socket.AF_INET, ("127.0.0.1", 69)),
        ("::1", socket.AF_INET6, ("::1", 69, 0, 0)),
        # The zone becomes the interface's index; Python's (host, port) form would drop it.
        ("fe80::1%lo", socket.AF_INET6, ("fe80::1", 69, 0, socket.if_nametoindex("lo"))),
    ],
)
def test_sockaddr_keeps_a_link_local_zone_as_the_scope_id(
    address: str, family: socket.AddressFamily, bound: tuple[object, ...]
) -> None:
    assert family_of(address) == family
    assert sockaddr(address, 69) == bound


def test_an_ipv6_port_hears_its_peer_and_a_stranger_and_answers_both(loop: TransferLoop) -> None:
    """The same connected-port-and-twin arrangement over IPv6 (``::1``)."""
    client, stranger = (socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) for _ in "ab")
    protocol = Recorder()
    for sock in (client, stranger):
        sock.bind(("::1", 0))
        sock.settimeout(WAIT)
    port = loop.listenUDP(0, protocol, interface="::1", maxPacketSize=65536)
    host = port.getHost()
    assert (type(host).__name__, host.host) == ("IPv6Address", "::1")
    port.connect("::1", client.getsockname()[1])
    here = ("::1", host.port, 0, 0)
    port.socket.send(b"DATA 1")
    assert client.recvfrom(100) == (b"DATA 1", here)
    client.sendto(b"ACK 1", here)
    assert protocol.heard.get(timeout=WAIT)[:2] == (b"ACK 1", ("::1", client.getsockname()[1]))
    stranger.sendto(b"ACK 7", here)
    datagram, addr, _ = protocol.heard.get(timeout=WAIT)
    assert (datagram, addr) == (b"ACK 7", ("::1", stranger.getsockname()[1]))
    port.write(b"ERROR 5", addr)
    assert stranger.recvfrom(100) == (b"ERROR 5", here)
    client.close()
    stranger.close()
