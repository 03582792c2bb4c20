"""A second, leaner event loop, in its own thread, for the ports TFTP transfers run on.

Why it exists: a lockstep transfer is one ACK in and one DATA out per block, so
what the loop costs per wake-up is much of what the server costs per block.
Twisted's reactor spends half as much again per block as plain epoll with
connected sockets does (its timed-call bookkeeping, ``callWithLogger``'s
context switch, a second ``recvfrom`` that ends in EAGAIN, a route lookup per
``sendto`` on an unconnected socket); running transfers here is what brought
lockstep to dnsmasq's speed (benchmarks/README.md has the figures).

What it offers is the part of Twisted's reactor API a transfer uses, with the
same meaning: ``listenUDP``, ``callLater``, ``seconds`` and ``callFromThread``,
so ``pxed.tftp.service._Transfer`` runs unchanged on this loop or on a test's fake
reactor. Its ports connect to their peer: the kernel then skips the route
lookup on every send, and the transfer sends with ``send``. A connected socket
no longer hears strangers, and RFC 1350 wants a stranger told ERROR 5 while the
transfer goes on, so ``connect`` also binds a second, unconnected socket to the
same address and port (SO_REUSEADDR on both): Linux delivers the peer's
datagrams to the connected socket, which matches them more closely, and
everyone else's to the other, and both reach the protocol's
``datagramReceived``.

One transfer alone: with a single port on the loop and nothing else asked of it, the
loop waits in that port's blocking ``recv`` instead of in ``epoll_wait``: one system
call a block instead of two (benchmarks/README.md). A receive timeout of
``ALONE_SLICE`` bounds that wait, after each datagram the loop checks for
cross-thread calls, and every ``ALONE_BATCH`` datagrams it polls its other descriptors
(the timer and the twin socket), so a second transfer, a stop, a timer or a stranger
waits milliseconds at most. (A timer can be late by up to ALONE_BATCH datagrams,
only while the client keeps sending without progress.) The price: while a lone
transfer waits on a slow or silent client, the loop wakes every ALONE_SLICE (500
times a second, a cost benchmarks/README.md measures) until the client answers or
the transfer gives up.

The peer socket is blocking for that
wait; its sends wait at most ``SEND_WAIT`` for buffer space (the kernel's send
buffer, which lockstep and GSO windows never fill), and the epoll path reads it
with ``MSG_DONTWAIT``.

Threads: ports are created (bound, connected) in the caller's thread, so a
failure to bind is an exception there; everything else, the loop's books of
ports and timers, reading and the protocols' callbacks, lives in the loop's
thread, and no other thread touches its dictionaries. Other threads talk to it
through ``callFromThread`` only, and the loop talks back to the reactor the same
way. If the thread dies, ``alive`` says so (``/healthz`` reads it through the
TFTP service) and ``stop`` no longer waits for it.

Its clock is monotonic: a wall-clock step, as NTP makes at an appliance's first
boot, neither stalls nor bursts retransmits.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import ctypes.util
import heapq
import itertools
import math
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, cast

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IUDPTransport
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

log = Logger(namespace="pxed.tftp")

Address = tuple[str, int]
_EXPECTED_READ_ERRORS = (BlockingIOError, InterruptedError, ConnectionRefusedError)
ALONE_SLICE = 0.002  # seconds one blocking recv may wait: the latency of everything else
ALONE_BATCH = 32  # datagrams between two looks at the epoll set while one transfer runs
SEND_WAIT = 0.002  # seconds a send waits for socket buffer space before it counts as lost


class _Reactor(Protocol):
    """What the loop needs of the main reactor: a way back into its thread."""

    def callFromThread(self, callable: Callable[..., Any], *args: Any) -> None: ...


class _TimeSpec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _ITimerSpec(ctypes.Structure):
    _fields_ = [("it_interval", _TimeSpec), ("it_value", _TimeSpec)]


_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_CLOCK_MONOTONIC = 1  # the clock of time.monotonic(), which the loop's seconds() reads
_TFD_TIMER_ABSTIME = 1
_TFD_FLAGS = os.O_NONBLOCK | os.O_CLOEXEC  # TFD_NONBLOCK and TFD_CLOEXEC have these values


class _AlarmClock:
    """A timerfd: the loop's timers as one descriptor in its epoll set, set at the earliest.

    Why not epoll's own timeout: a finite timeout arms a kernel timer on every wait,
    which in lockstep is once per block (a cost benchmarks/README.md measures). The
    earliest timer rarely changes (a transfer keeps its one timer while ACKs move its
    deadline later), so the timerfd is set a few times a second, not per block.
    Python has ``os.timerfd_create`` from 3.13 only, hence ctypes.
    """

    def __init__(self) -> None:
        self.fd = _libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_FLAGS)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        self.at = math.inf  # when it goes off; inf: not set

    def set(self, when: float) -> None:
        """Go off at ``when`` (time.monotonic() seconds); a time already past goes off at once."""
        seconds = int(when)
        nanoseconds = max(1, int((when - seconds) * 1e9))  # all zero would disarm it
        spec = _ITimerSpec(_TimeSpec(0, 0), _TimeSpec(seconds, nanoseconds))
        if _libc.timerfd_settime(self.fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None) < 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime failed")
        self.at = when

    def rang(self) -> None:
        """Read the expiry off the descriptor so that epoll stops reporting it."""
        self.at = math.inf
        with contextlib.suppress(BlockingIOError):  # set again since: nothing to read
            os.read(self.fd, 8)


class DelayedCall:
    """A timer on the loop, with the part of ``IDelayedCall`` a transfer uses."""

    def __init__(self, when: float, func: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.when = when
        self.func = func
        self.args = args
        self.cancelled = False
        self.called = False

    def getTime(self) -> float:
        return self.when

    def active(self) -> bool:
        return not (self.cancelled or self.called)

    def cancel(self) -> None:
        self.cancelled = True


class Port:
    """One UDP port on the loop: Twisted's ``Port`` surface for a DatagramProtocol."""

    def __init__(
        self,
        loop: TransferLoop,
        protocol: DatagramProtocol,
        interface: str,
        max_packet_size: int,
    ) -> None:
        self.loop = loop
        self.protocol = protocol
        self.max_packet_size = max_packet_size
        self.socket = _peer_socket(family_of(interface))
        self._stranger_socket: socket.socket | None = None
        self.peer: Address = ("", 0)  # until connect(): transfers connect in startProtocol
        self.listening = True
        self.adopted = False  # in the loop's books; only the loop's thread sets it
        try:
            self.socket.bind(sockaddr(interface, 0))
        except OSError:
            self.socket.close()
            raise
        self._host = self.socket.getsockname()

    def getHost(self) -> IPv4Address | IPv6Address:
        if self.socket.family == socket.AF_INET6:
            return IPv6Address("UDP", *self._host[:2])
        return IPv4Address("UDP", *self._host)

    def connect(self, host: str, port: int) -> None:
        """Send to and hear from (host, port) alone on ``socket``; strangers on a twin socket."""
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.connect((host, port))
        self.peer = (host, port)
        twin = _udp_socket(self.socket.family)
        try:
            twin.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            twin.bind(self._host)
        except OSError:
            twin.close()
            raise
        self._stranger_socket = twin
        if self.adopted:  # connected after joining the loop: the twin joins too
            self.loop._in_loop_thread(self.loop._adopt_twin, self)

    def write(self, datagram: bytes, addr: Address | None = None) -> None:
        if addr is None or addr == self.peer:
            self.socket.send(datagram)
        else:
            self.socket.sendto(datagram, addr)

    def stopListening(self) -> Deferred[None]:
        """Close at once (in the loop's thread, where transfers end); nothing is left to flush."""
        if self.listening:
            self.listening = False
            for sock in (self.socket, self._stranger_socket):
                if sock is not None:
                    if self.adopted:
                        self.loop._forget(sock)
                    sock.close()
            self.protocol.doStop()
        return succeed(None)

    def _read_peer(self) -> None:
        """One datagram per wake-up: with level-triggered epoll the next one wakes it again,
        and lockstep never has a second, so a read that would end in EAGAIN is not paid."""
        try:
            datagram = self.socket.recv(self.max_packet_size, socket.MSG_DONTWAIT)
        except _EXPECTED_READ_ERRORS:  # ICMP from an earlier send: the timer resends
            return
        self.protocol.datagramReceived(datagram, self.peer)

    def _read_stranger(self) -> None:
        assert self._stranger_socket is not None
        try:
            datagram, addr = self._stranger_socket.recvfrom(self.max_packet_size)
        except _EXPECTED_READ_ERRORS:
            return
        self.protocol.datagramReceived(datagram, addr[:2])


def family_of(address: str) -> socket.AddressFamily:
    """AF_INET6 for an IPv6 address (``2001:db8::1``, ``fe80::1%br0``), else AF_INET."""
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def sockaddr(address: str, port: int) -> tuple[Any, ...]:
    """``(address, port)`` as ``bind`` needs it.

    An IPv6 address goes through getaddrinfo, which turns a link-local address's zone
    (``fe80::1%br0``) into the scope id of a 4-tuple: Python's 2-tuple form drops the
    zone, and the kernel refuses to bind a link-local address without one (EINVAL).
    Once bound there, the socket is tied to that interface, so what it sends to a
    link-local peer (the ``(host, port)`` a listener hands on) needs no scope.
    """
    if ":" not in address:
        return (address, port)
    flags = socket.AI_NUMERICHOST
    found = socket.getaddrinfo(address, port, socket.AF_INET6, socket.SOCK_DGRAM, 0, flags)
    return found[0][4]


def _udp_socket(family: socket.AddressFamily) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    return sock


def _peer_socket(family: socket.AddressFamily) -> socket.socket:
    """Blocking, with bounded waits: see "One transfer alone" in the module docstring."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(ALONE_SLICE))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(SEND_WAIT))
    return sock


def _timeval(seconds: float) -> bytes:
    whole = int(seconds)
    return struct.pack("@ll", whole, int((seconds - whole) * 1e6))


class RefusalPorts:
    """One unconnected socket per address that every refusal's ERROR leaves from.

    Not port 69, as RFC 1350 asks of a reply, but not a fresh port per refusal either:
    opening, binding and closing one per refusal was a quarter of what a refused request
    cost in a flood (issue 18, benchmarks/README.md); a refusal has no transfer, so its
    port is no TID anyone needs to answer. Nothing reads these sockets: what a client
    sends back (tftp-hpa's client ACKs an ERROR, tests/captures/README.md) is held up to
    the smallest receive buffer the kernel allows, then dropped. Once
    open, a refusal still goes out when descriptors run short. Reactor thread only.
    """

    def __init__(self) -> None:
        self._sockets: dict[str, socket.socket] = {}

    def send(self, address: str, datagram: bytes, client: Address) -> None:
        sock = self._sockets.get(address)
        if sock is None:
            sock = self._sockets[address] = _refusal_socket(address)
        sock.sendto(datagram, client)

    def close(self) -> None:
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()


def _refusal_socket(address: str) -> socket.socket:
    sock = socket.socket(family_of(address), socket.SOCK_DGRAM | socket.SOCK_NONBLOCK)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)  # the kernel's minimum
        sock.bind(sockaddr(address, 0))
    except OSError:
        sock.close()
        raise
    return sock


class TransferLoop:
    """Runs transfer ports and their timers in one thread; see the module docstring."""

    def __init__(self, reactor: _Reactor) -> None:
        self.reactor = reactor  # the main reactor: where stop() reports back
        # Monotonic: a wall-clock step (NTP at an appliance's boot) must neither stall
        # nor burst retransmits. Times shown to people are converted (TftpService).
        self.seconds = time.monotonic
        self._epoll: select.epoll | None = None
        self._wake = -1
        self._readers: dict[int, Callable[[], None]] = {}
        self._sockets: dict[int, socket.socket] = {}
        self._ports: dict[int, Port] = {}  # connected ones, by descriptor
        self._wake_lock = threading.Lock()  # no wake-up write may race the eventfd's close
        self._wake_pending = False  # the eventfd is written and not yet read by the loop
        self._timers: list[tuple[float, int, DelayedCall]] = []
        self._alarm: _AlarmClock | None = None
        self._order = itertools.count()
        self._calls: collections.deque[tuple[Callable[..., Any], tuple[Any, ...]]] = (
            collections.deque()
        )
        self._thread: threading.Thread | None = None
        self._running = False
        self._died = False
        self._stopped: Deferred[None] | None = None
        self._refusals = RefusalPorts()

    # --- the reactor API transfers use -----------------------------------------------------

    def listenUDP(
        self,
        port: int,
        protocol: DatagramProtocol,
        interface: str = "",
        maxPacketSize: int = 8192,
    ) -> Port:
        """An ephemeral port on ``interface`` (transfers never ask for a fixed one).

        Binds now, in the caller's thread, so a failure to bind raises here; the port
        joins the loop's books in the loop's thread (``_adopt``), the only thread that
        touches them, before any call asked after this one runs there.
        """
        if port != 0:
            raise ValueError("the transfer loop binds ephemeral ports only")
        bound = Port(self, protocol, interface, maxPacketSize)
        try:
            # The part of IUDPTransport a transfer uses (write, connect, stopListening,
            # getHost); Twisted's makeConnection names the whole interface.
            protocol.makeConnection(cast(IUDPTransport, bound))
        except BaseException:
            bound.stopListening()
            raise
        self.callFromThread(self._adopt, bound)
        return bound

    def callLater(self, delay: float, func: Callable[..., Any], *args: Any) -> DelayedCall:
        """Loop thread only, like every protocol callback that would call it."""
        call = DelayedCall(self.seconds() + delay, func, args)
        heapq.heappush(self._timers, (call.when, next(self._order), call))
        alarm = self._require_alarm()
        if call.when < alarm.at:
            alarm.set(call.when)
        return call

    def send_refusal(self, address: str, datagram: bytes, client: Address) -> None:
        self._refusals.send(address, datagram, client)

    def callFromThread(self, func: Callable[..., Any], *args: Any) -> None:
        """Run ``func(*args)`` in the loop's thread, in the order asked; safe from any thread.

        The eventfd is written only when no wake-up is pending yet: a session's start asks
        for two calls (adopt the port, begin), and each write is a system call at which
        the GIL may pass to the loop's thread and have to come back. The loop clears
        ``_wake_pending`` before it runs the queue, so a call queued after that writes
        again, and one queued before is run by that pass.
        """
        self._calls.append((func, args))
        if self._wake_pending:
            return
        with self._wake_lock:
            if self._wake >= 0:
                self._wake_pending = True
                os.eventfd_write(self._wake, 1)

    # --- life -------------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        """The loop's thread is running (or was never started): transfers can move."""
        return not self._died and (self._thread is None or self._thread.is_alive())

    def start(self) -> None:
        if self._thread is not None:
            return
        self._epoll = select.epoll()
        self._alarm = _AlarmClock()
        self._epoll.register(self._alarm.fd, select.EPOLLIN)
        with self._wake_lock:
            self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self._epoll.register(self._wake, select.EPOLLIN)
            self._wake_pending = bool(self._calls)  # a new eventfd: nothing pending on it
            if self._calls:  # asked before the start
                os.eventfd_write(self._wake, 1)
        self._running = True
        self._thread = threading.Thread(target=self._run, name="pxed-tftp-transfers", daemon=True)
        self._thread.start()

    def stop(self) -> Deferred[None]:
        """Finish what was asked before, close whatever is left, then fire (in the reactor)."""
        self._refusals.close()
        if self._thread is None or not self.alive:  # never started, or died: nobody to ask
            return succeed(None)
        stopped: Deferred[None] = Deferred()
        self._stopped = stopped
        self.callFromThread(self._halt)
        return stopped

    def _halt(self) -> None:
        self._running = False

    # --- the loop ---------------------------------------------------------------------------

    def _in_loop_thread(self, func: Callable[..., Any], *args: Any) -> None:
        if threading.current_thread() is self._thread:
            func(*args)
        else:
            self.callFromThread(func, *args)

    def _adopt(self, port: Port) -> None:
        """Loop thread: a port from ``listenUDP`` joins the books (unless already closed)."""
        if not port.listening:
            return
        port.adopted = True
        self._watch(port.socket, port._read_peer)
        self._adopt_twin(port)

    def _adopt_twin(self, port: Port) -> None:
        """Loop thread: a connected port's twin, for strangers, joins the books once."""
        twin = port._stranger_socket
        if port.listening and twin is not None and twin.fileno() not in self._readers:
            self._watch(twin, port._read_stranger)
            self._ports[port.socket.fileno()] = port

    def _watch(self, sock: socket.socket, reader: Callable[[], None]) -> None:
        """Loop thread: read ``sock`` with ``reader`` when it is readable."""
        self._readers[sock.fileno()] = reader
        self._sockets[sock.fileno()] = sock
        self._require_epoll().register(sock.fileno(), select.EPOLLIN)

    def _forget(self, sock: socket.socket) -> None:
        reader = self._readers.pop(sock.fileno(), None)
        self._ports.pop(sock.fileno(), None)
        if reader is not None:
            del self._sockets[sock.fileno()]
            self._require_epoll().unregister(sock.fileno())

    def _require_alarm(self) -> _AlarmClock:
        if self._alarm is None:
            raise RuntimeError("the TFTP transfer loop was used before it was started")
        return self._alarm

    def _require_epoll(self) -> select.epoll:
        if self._epoll is None:
            raise RuntimeError("the TFTP transfer loop was used before it was started")
        return self._epoll

    def _run(self) -> None:
        epoll = self._require_epoll()
        readers = self._readers
        wake = self._wake
        alarm = self._require_alarm().fd
        try:
            while self._running:
                try:
                    alone = self._alone()
                    if alone is None:
                        self._iterate(epoll, readers, wake, alarm, -1)
                    else:
                        self._serve_alone(alone)
                        self._iterate(epoll, readers, wake, alarm, 0)
                except Exception:  # a bug in one port's reader: log it, keep serving the rest
                    self._report(Failure())
        except BaseException:  # the thread ends here: say so where the operator looks
            self._died = True
            self.reactor.callFromThread(
                log.failure,
                "tftp: the transfer loop died; transfers stop and /healthz answers 503",
                Failure(),
                LogLevel.critical,
            )
        finally:
            self._close()

    def _alone(self) -> Port | None:
        """The one connected port, when it is all the loop has to do."""
        if len(self._ports) != 1 or self._calls:
            return None
        return next(iter(self._ports.values()))

    def _serve_alone(self, port: Port) -> None:
        """Up to ALONE_BATCH datagrams through the port's blocking recv (module docstring)."""
        recv, size = port.socket.recv, port.max_packet_size
        received, peer = port.protocol.datagramReceived, port.peer
        calls = self._calls
        for _ in range(ALONE_BATCH):
            try:
                datagram = recv(size)
            except _EXPECTED_READ_ERRORS:  # the slice ran out, or ICMP: look at the rest
                return
            received(datagram, peer)
            if calls or not port.listening:
                return

    def _iterate(
        self,
        epoll: select.epoll,
        readers: dict[int, Callable[[], None]],
        wake: int,
        alarm: int,
        timeout: float,
    ) -> None:
        """One wait and what it woke for: the per-block path of two or more transfers,
        kept to the fewest calls.

        An exception leaves the rest of the batch for the next wait (epoll is
        level-triggered, so their sockets are still readable).
        """
        for fd, _ in epoll.poll(timeout):
            reader = readers.get(fd)
            if reader is not None:
                reader()
            elif fd == wake:
                os.eventfd_read(wake)
                self._wake_pending = False  # before the queue is read: see callFromThread
                self._run_calls()
            elif fd == alarm:
                self._run_timers()
            # else: closed by an earlier event of this batch

    def _run_calls(self) -> None:
        while self._calls:
            func, args = self._calls.popleft()
            self._guarded(func, *args)

    def _run_timers(self) -> None:
        alarm = self._require_alarm()
        alarm.rang()
        timers = self._timers
        now = self.seconds()
        while timers and timers[0][0] <= now:
            _, _, call = heapq.heappop(timers)
            if call.active():
                call.called = True
                self._guarded(call.func, *call.args)
        while timers and not timers[0][2].active():
            heapq.heappop(timers)  # cancelled: no reason to wake for it
        if timers and timers[0][0] < alarm.at:
            alarm.set(timers[0][0])

    def _guarded(self, func: Callable[..., Any], *args: Any) -> None:
        """A bug in one callback is logged (in the reactor) and the loop goes on."""
        try:
            func(*args)
        except Exception:
            self._report(Failure())

    def _report(self, failure: Failure) -> None:
        self.reactor.callFromThread(log.failure, "tftp: transfer loop callback failed", failure)

    def _close(self) -> None:
        """Leaving the thread: close every socket still watched, the epoll and the wake fd."""
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()
        self._ports.clear()
        self._readers.clear()
        self._timers.clear()
        with self._wake_lock:
            os.close(self._wake)
            self._wake = -1
        if self._alarm is not None:
            os.close(self._alarm.fd)
            self._alarm = None
        if self._epoll is not None:
            self._epoll.close()
            self._epoll = None
        self._thread = None
        if self._stopped is not None:
            stopped, self._stopped = self._stopped, None
            self.reactor.callFromThread(stopped.callback, None)
