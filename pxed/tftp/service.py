"""The TFTP server's Twisted side: listeners, one port per transfer, timers, logs, counters.

The engines decide: ``protocols.tftp.server`` what each datagram at a
listener starts or is told, ``protocols.tftp.session`` every byte of a
transfer. This module opens what they ask for, binds a port, writes what they
say, arms the timer a session asks for and logs one event when it is done.

Choices worth knowing:

* One listener per ``tftp.listen`` and ``tftp.listen6`` address, so a reply
  leaves from the address the request came to, on the reactor. IPv6 is the same
  path: a link-local listener binds with its zone (``transfer_loop.sockaddr``) and
  its transfers and refusals leave from sockets bound to that address, so the
  client's address needs no zone; ``max_per_client`` counts an IPv6 address as one
  client, as the refusal sampler does. Each transfer gets its own
  ephemeral port bound to that address (its TID) and connected to the client,
  on ``pxed.tftp.transfer_loop``: a leaner loop in its own thread, which is what
  makes lockstep transfers as fast as dnsmasq's. Its ports still hear
  strangers, who get ERROR 5 while the transfer goes on (RFC 1350).
* Threads: a transfer runs in the loop's thread from ``begin`` to its end;
  what it tells the service (finished, aborted, log lines) crosses to the
  reactor with ``callFromThread``, and the service reaches a running transfer
  the same way the other direction.
* Refusals (file not found, busy, read-only, malformed) come from a port that
  is not the listener's, like every reply, but the same one for every refusal
  at an address (``transfer_loop.RefusalPorts``); a transfer's port is fresh.
* A request past the listener's limits is deferred, unanswered (firmware ends
  a download on any ERROR and repeats an unanswered RRQ; ``protocols.tftp.server``
  says why), counted and logged as ``busy`` like a refusal. A file that cannot be
  opened for lack of a port or descriptor is still answered ERROR 0 busy: that is
  an operating system limit pxed sizes its own limits to stay under.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from protocols.tftp.server import (
    BUSY,
    Action,
    Defer,
    Drop,
    Ignore,
    ListenerLimits,
    Refuse,
    Repeat,
    Start,
    Supersede,
    TftpServer,
)
from protocols.tftp.session import (
    Finish,
    ReadSession,
    Send,
    SendWindow,
    SessionLimits,
    TransferStats,
)
from protocols.tftp.wire import Error, ErrorCode, ReadRequest, encode_tftp
from pxed.config import TftpConfig
from pxed.config.defaults import default_int
from pxed.events import EventBus, TftpRefused, TftpTransferEnded, TftpTransferStarted
from pxed.ops.logsink import EPHEMERAL_PREFIX
from pxed.tftp.refusals import RefusalSampler
from pxed.tftp.sources import BlockSource, Client, FileRefused, Netascii
from pxed.tftp.transfer_loop import TransferLoop, family_of, sockaddr

MAX_DATAGRAM = 65536  # docs/pitfalls.md #1: the 8192 default truncates big blocks
# A burst of requests (a rack powering on, or a flood of refused ones) must queue, not be
# dropped by the kernel while the reactor is busy; the kernel caps it at net.core.rmem_max
# unless pxed may force it (``_large_receive_buffer``).
LISTENER_BUFFER = 4 * 1024 * 1024
# What a transfer's port reads: a client sends it ACKs (4 bytes) and ERRORs of a line.
# A longer datagram is cut, does not decode, and ends the transfer as a protocol error.
# Small enough for CPython's small-object allocator; a 64 KiB buffer per ACK was measurably
# slower (benchmarks/README.md).
TRANSFER_DATAGRAM = 256
UDP_SEGMENT = 103  # linux/udp.h: the UDP GSO segment size; Python's socket module lacks it
SO_RCVBUFFORCE = 33  # asm-generic/socket.h: SO_RCVBUF past rmem_max; Python lacks it too
GSO_MAX_BYTES = 65000  # one send is one IP datagram before segmentation: under 64 KiB
GSO_MAX_SEGMENTS = 64  # the kernel's UDP_MAX_SEGMENTS
# An IPv6 header is 40 bytes, IPv4's 20: a block this much smaller fills the same frame.
# Without it a 1468-byte block went out as two IPv6 fragments (and no GSO), at half the
# speed of IPv4 in the same run, and fragments are what boot ROMs mishandle.
IPV6_HEADER_GROWTH = 20
MIN_BLKSIZE = 8  # RFC 2348

log = Logger(namespace="pxed.tftp")


class Timer(Protocol):
    """What a transfer does with its timer: ``IDelayedCall``'s ``active`` and ``cancel``,
    which the transfer loop's ``DelayedCall`` has too."""

    def active(self) -> bool: ...

    def cancel(self) -> None: ...


class Reactor(Protocol):
    """What the adapter needs of a reactor: IReactorTime and IReactorUDP (or a test's fake)."""

    def seconds(self) -> float: ...

    # Positional, without keyword arguments: TransferLoop.callLater (a TransferReactor) has neither.
    def callLater(self, delay: float, callable: Callable[..., Any], /, *args: Any) -> Timer: ...

    # Without defaults, as IReactorUDP declares it (callers pass every argument).
    def listenUDP(
        self, port: int, protocol: DatagramProtocol, interface: str, maxPacketSize: int
    ) -> Any: ...

    def callFromThread(self, callable: Callable[..., Any], *args: Any) -> None: ...


class ListenerReactor(Reactor, Protocol):
    """Where listeners are bound: the reactor, which also adopts a socket pxed bound itself
    (an IPv6 listener: ``pxed.tftp.transfer_loop.sockaddr`` says why)."""

    def adoptDatagramPort(
        self,
        fileDescriptor: int,
        addressFamily: socket.AddressFamily,
        protocol: DatagramProtocol,
        maxPacketSize: int,
    ) -> Any: ...


class TransferReactor(Reactor, Protocol):
    """Where transfers run: a ``TransferLoop``, or in tests the fake reactor (run inline)."""

    @property
    def alive(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self) -> Deferred[None]: ...

    def send_refusal(self, address: str, datagram: bytes, client: Client) -> None:
        """A refusal's ERROR, from a port on ``address`` that is not the listener's."""
        ...


class TransferPort(Protocol):
    """What a transfer needs of its port: a ``pxed.tftp.transfer_loop.Port`` (or a test's fake)."""

    socket: socket.socket

    def connect(self, host: str, port: int) -> None: ...

    def write(self, datagram: bytes, addr: Client | None = None) -> None: ...

    def stopListening(self) -> Deferred[None] | None: ...


class Files(Protocol):
    """Where transfers get their bytes: a ``pxed.tftp.sources.ProviderChain``."""

    def open(self, path: str, client: Client) -> BlockSource: ...


@dataclass(frozen=True)
class TftpSettings:
    """The ``tftp:`` config section as the adapter uses it."""

    listen: tuple[str, ...]
    port: int = default_int("tftp.port")
    max_blksize: int = default_int("tftp.max_blksize")
    max_windowsize: int = default_int("tftp.max_windowsize")
    max_sessions: int = default_int("tftp.max_sessions")
    max_per_client: int = default_int("tftp.max_per_client")
    timeout: float = default_int("tftp.timeout")
    retries: int = default_int("tftp.retries")

    @classmethod
    def from_config(cls, tftp: TftpConfig, listen: tuple[str, ...]) -> TftpSettings:
        """The validated ``config.tftp`` section, with its listen addresses resolved."""
        return cls(
            listen=listen,
            port=tftp.port,
            max_blksize=tftp.max_blksize,
            max_windowsize=tftp.max_windowsize,
            max_sessions=tftp.max_sessions,
            max_per_client=tftp.max_per_client,
            timeout=tftp.timeout,
            retries=tftp.retries,
        )

    def listener_limits(self) -> ListenerLimits:
        return ListenerLimits(self.max_sessions, self.max_per_client, self.timeout)

    def limits(self, family: socket.AddressFamily = socket.AF_INET) -> SessionLimits:
        """A transfer's limits; over IPv6 the largest block is ``IPV6_HEADER_GROWTH`` bytes
        smaller, so that its datagrams fit the same frames as over IPv4 (tftp.max_blksize's
        1468 fills a 1500-byte frame over IPv4; over IPv6, 1448 does)."""
        shrink = IPV6_HEADER_GROWTH if family == socket.AF_INET6 else 0
        return SessionLimits(
            max_blksize=max(MIN_BLKSIZE, self.max_blksize - shrink),
            max_windowsize=self.max_windowsize,
            max_retries=self.retries,
            initial_timeout=self.timeout,
        )


@dataclass
class TftpStats:
    """Counters for /metrics: requests by outcome, bytes and retransmits sent, sessions open,
    refusals counted but not logged (pxed.tftp.refusals)."""

    outcomes: Counter[str] = field(default_factory=Counter)
    bytes_sent: int = 0
    retransmits: int = 0
    active_sessions: int = 0
    refusals_unlogged: int = 0


def _client_text(client: Client) -> str:
    """``10.0.0.5:2070``, or ``[2001:db8::5]:2070`` for an IPv6 client."""
    host = f"[{client[0]}]" if ":" in client[0] else client[0]
    return f"{host}:{client[1]}"


class _Listener(DatagramProtocol):
    """Port ``tftp.port`` on one address: takes requests, never carries a transfer."""

    noisy = False

    def __init__(self, server: TftpService, address: str) -> None:
        self.server = server
        self.address = address

    def datagramReceived(self, datagram: bytes, addr: Client) -> None:
        try:
            self.server.request(self.address, datagram, addr)
        except Exception:
            log.failure("tftp: request from {client} dropped", client=_client_text(addr))


@functools.lru_cache(maxsize=64)
def _error_datagram(code: int, message: str) -> bytes:
    """Refusals repeat a handful of messages; a flood of them need not rebuild each."""
    return encode_tftp(Error(code, message))


def _large_receive_buffer(sock: socket.socket) -> None:
    """``LISTENER_BUFFER``, past ``net.core.rmem_max`` (212992 bytes unless raised) where pxed
    may (root or CAP_NET_ADMIN: twistd binds as root before dropping to ``--uid``); else as
    much as ``rmem_max`` allows, which a sysctl raises."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, LISTENER_BUFFER)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, LISTENER_BUFFER)


def _is_loss(failure: OSError) -> bool:
    """A send the kernel refused for now (full buffer, ICMP from an earlier datagram).

    The datagram is as good as lost on the wire, and the retransmit timer is there for
    exactly that; anything else (EMSGSIZE, EBADF) is a bug and must surface.
    """
    return isinstance(failure, BlockingIOError | ConnectionRefusedError) or (
        failure.errno == errno.ENOBUFS
    )


class _Transfer(DatagramProtocol):
    """One read transfer on its own port: feeds the engine, performs its actions.

    Runs in the transfer loop's thread (see the module docstring): what it tells the
    service or the log goes through ``_tell``.

    Per-block hot path: the port is connected to the client and datagrams go straight to
    ``transport.socket.send`` (no address to parse, no route to look up), and the one
    DelayedCall is armed once and left alone
    while ACKs move the deadline later: when it fires before the session's deadline, the
    engine answers "not due" and ``_arm`` sets it again for the remainder. Cancelling and
    re-creating it on every ACK cost ~8 %.

    A window goes out with UDP GSO where the kernel allows it: ``UDP_SEGMENT`` set to the
    DATA datagram size once, then one ``sendto`` of the concatenated window, which the
    kernel cuts into the same datagrams (a window's blocks are equal but the last, as GSO
    requires). Where the socket refuses it (no GSO, or a path MTU below the segment, as
    blksize 8192 on a 1500-byte link), the transfer sends datagram by datagram from then on.
    """

    noisy = False
    # DatagramProtocol types its transport IUDPTransport | None; a transfer's is the port
    # its loop's listenUDP connected (with the socket IUDPTransport does not name).
    transport: TransferPort  # type: ignore[assignment]

    def logPrefix(self) -> str:
        return EPHEMERAL_PREFIX  # pxed.ops.logsink demotes this port's open/close lines

    def __init__(
        self,
        server: TftpService,
        client: Client,
        request: ReadRequest,
        source: BlockSource,
        session: ReadSession,
    ) -> None:
        self.server = server
        self.client = client
        self.request = request
        self.source = source
        self.session = session
        self._next_lockstep = session.next_lockstep
        self.heard = False  # has the client answered yet? (else a repeated RRQ is a retransmit)
        self.done = False
        self.size_probe = False  # it ended with the client's ERROR after the OACK
        self.stopped: Deferred[None] | None = None
        self._timer: Timer | None = None
        self._timer_due = 0.0  # when self._timer fires, in reactor seconds
        self._loop = server.loop
        self._seconds = server.loop.seconds
        self._send_raw: Callable[[bytes], object] = self._unbound
        self._segment = 0  # UDP_SEGMENT set on the socket; 0 not yet, -1 refused

    @property
    def started(self) -> float:
        return self.session.started

    def _unbound(self, datagram: bytes) -> object:
        raise RuntimeError("tftp transfer sent a datagram before its port was bound")

    def startProtocol(self) -> None:
        self.transport.connect(*self.client)
        self._send_raw = self.transport.socket.send

    def _tell(self, func: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        """Run ``func`` in the reactor's thread, where the service's books and the log live."""
        self.server.reactor.callFromThread(functools.partial(func, *args, **kwargs))

    def begin(self) -> None:
        self._guarded(self.session.start)

    def repeat(self) -> None:
        """The client asked again: the engine resends the OACK if that is what it lost."""
        if not self.done:
            self._guarded(self.session.repeat)

    def datagramReceived(self, datagram: bytes, addr: Client) -> None:
        if self.done:
            return
        if addr != self.client:
            # RFC 1350: tell the stranger, keep the transfer going.
            unknown = Error(ErrorCode.UNKNOWN_TID, "unknown transfer ID")
            self.transport.write(encode_tftp(unknown), addr)
            return
        self.heard = True
        # _guarded, _send and _arm's early return, inlined: this runs once per block, where
        # three calls were a measurable share of the block (benchmarks/README.md).
        try:
            now = self._seconds()
            following = self._next_lockstep(datagram, now)
            if following is None:
                self._perform(self.session.receive(datagram, now))
                return
            try:
                self._send_raw(following)
            except OSError as failure:
                self._lost(failure)
            deadline = self.session.deadline
            if self._timer is None or deadline is None or deadline < self._timer_due:
                self._arm()  # else the armed timer fires early and re-arms then
        except Exception:
            self._failed()

    def _expire(self) -> None:
        self._timer = None
        self._guarded(self.session.expire)

    def _guarded(self, step: Callable[[float], list[Send | SendWindow | Finish]]) -> None:
        """Run one engine step; an exception ends this transfer, never the listener."""
        try:
            self._perform(step(self._seconds()))
        except Exception:
            self._failed()

    def _failed(self) -> None:
        self._tell(
            log.failure,
            "tftp: transfer of {file} to {client} failed inside pxed",
            Failure(),
            file=self.request.filename,
            client=_client_text(self.client),
        )
        self.abort("error", "internal error", tell_client=True)

    def _perform(self, actions: list[Send | SendWindow | Finish]) -> None:
        for action in actions:
            if isinstance(action, SendWindow):
                self._send_window(action.datagrams)
            elif isinstance(action, Send):
                self._send(action.datagram)
            else:
                self.size_probe = action.stats.outcome == "size-probe"
                self._close()
                self._tell(self.server.finished, self, action.stats)
                return
        self._arm()

    def _send(self, datagram: bytes) -> None:
        try:
            self._send_raw(datagram)
        except OSError as failure:
            self._lost(failure)

    def _lost(self, failure: OSError) -> None:
        """A send failed: a loss for the retransmit timer to repair, or a bug to raise."""
        if not _is_loss(failure):
            raise failure
        self._tell(
            log.debug,
            "tftp: datagram to {client} not sent ({reason}); the retransmit timer resends it",
            client=_client_text(self.client),
            reason=str(failure),
        )

    def _send_window(self, datagrams: list[bytes]) -> None:
        if len(datagrams) == 1:  # lockstep
            self._send(datagrams[0])
            return
        sent = 0
        batch = self._gso_batch(len(datagrams[0]))
        if batch > 1:
            try:
                for sent in range(0, len(datagrams), batch):
                    self._send(b"".join(datagrams[sent : sent + batch]))
                return
            except OSError as refused:  # EINVAL, EIO: this path cannot segment
                self._no_gso(refused)
        for datagram in datagrams[sent:]:
            self._send(datagram)

    def _gso_batch(self, segment: int) -> int:
        """How many datagrams of `segment` bytes one GSO send carries; 1 without GSO.

        Blocks too big to batch never set UDP_SEGMENT: with it set, the kernel refuses
        even a single datagram larger than the path MTU instead of fragmenting it.
        """
        batch = min(GSO_MAX_SEGMENTS, GSO_MAX_BYTES // segment)
        if batch < 2:
            return 1
        if self._segment != segment:
            if self._segment < 0:
                return 1
            try:
                self.transport.socket.setsockopt(socket.SOL_UDP, UDP_SEGMENT, segment)
            except OSError as refused:
                self._no_gso(refused)
                return 1
            self._segment = segment
        return batch

    def _no_gso(self, refused: OSError) -> None:
        """Send datagram by datagram from now on; a set UDP_SEGMENT also checks those."""
        if self._segment > 0:
            with contextlib.suppress(OSError):  # then the per-datagram sends will say so
                self.transport.socket.setsockopt(socket.SOL_UDP, UDP_SEGMENT, 0)
        self._segment = -1
        self._tell(
            log.debug,
            "tftp: no UDP GSO for {client} ({reason}); sending datagram by datagram",
            client=_client_text(self.client),
            reason=str(refused),
        )

    def _arm(self) -> None:
        """Keep one DelayedCall due no later than the session's deadline."""
        deadline = self.session.deadline
        if deadline is None:
            self._cancel_timer()
            return
        if self._timer is not None:
            if deadline >= self._timer_due:
                return  # it fires early, the engine says "not due", and _arm re-arms then
            self._timer.cancel()  # the deadline moved earlier (a faster round trip)
        self._timer_due = deadline
        self._timer = self._loop.callLater(max(0.0, deadline - self._seconds()), self._expire)

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def abort(self, outcome: str, message: str, tell_client: bool) -> None:
        """End without the engine (shutdown, superseded, internal error)."""
        if self.done:
            return
        if tell_client:
            self.transport.write(encode_tftp(Error(ErrorCode.NOT_DEFINED, message)), self.client)
        self._close()
        self._tell(self.server.aborted, self, outcome, message)

    def _close(self) -> None:
        self.done = True
        self._cancel_timer()
        self.stopped = self.transport.stopListening()
        # The source is closed by the service when it hears of the end (``_forget``).


class TftpService(Service):
    """Serves read requests on every ``settings.listen`` address."""

    name = "tftp"

    def __init__(
        self,
        settings: TftpSettings,
        files: Files,
        reactor: ListenerReactor,
        stats: TftpStats | None = None,
        loop: TransferReactor | None = None,
        events: EventBus | None = None,
    ) -> None:
        self.settings = settings
        self.files = files
        self.reactor = reactor
        self.loop: TransferReactor = loop if loop is not None else TransferLoop(reactor)
        self.stats = stats or TftpStats()
        self.limits = {
            family: settings.limits(family) for family in (socket.AF_INET, socket.AF_INET6)
        }
        self._listeners: list[Any] = []
        self.server: TftpServer[_Transfer] = TftpServer(settings.listener_limits())
        self._started = False
        self.events = events or EventBus()
        self._closing: set[Deferred[None]] = set()
        self._sampler = RefusalSampler()

    def transfers(self) -> list[dict[str, Any]]:
        """The transfers running now, for the status page (client, file, progress, options).

        ``started`` is wall-clock time for people; the loop's own clock is monotonic.
        """
        wall_now, now = self.reactor.seconds(), self.loop.seconds()
        return [
            {
                "client": _client_text(client),
                "file": transfer.request.filename,
                "size": transfer.session.size,
                "acknowledged": transfer.session.bytes_acknowledged,
                "blksize": transfer.session.parameters.blksize,
                "windowsize": transfer.session.parameters.windowsize,
                "started": wall_now - (now - transfer.session.started),
            }
            for client, transfer in self.server.running.items()
        ]

    @property  # type: ignore[override]
    def running(self) -> bool:
        """Serving: started, and the transfer loop's thread alive (``/healthz`` reads it)."""
        return self._started and self.loop.alive

    @running.setter
    def running(self, started: bool) -> None:
        self._started = started

    def privilegedStartService(self) -> None:
        """Bind the listeners here: twistd calls this before it drops root (port 69)."""
        super().privilegedStartService()
        for address in self.settings.listen:
            port = self._bind(address)
            sock = getattr(port, "socket", None)  # a test's fake port has none
            if sock is not None:
                _large_receive_buffer(sock)
            self._listeners.append(port)

    def _bind(self, address: str) -> Any:
        """A listener on ``address``; an IPv6 one on a socket bound here, because Twisted
        binds ``(address, port)``, the form that drops a link-local address's zone."""
        listener, port = _Listener(self, address), self.settings.port
        if family_of(address) == socket.AF_INET:
            return self.reactor.listenUDP(
                port, listener, interface=address, maxPacketSize=MAX_DATAGRAM
            )
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind(sockaddr(address, port))
            except OSError as error:
                raise CannotListenError(address, port, error) from None
            sock.setblocking(False)
            # The reactor keeps a duplicate of the descriptor; this one closes here.
            return self.reactor.adoptDatagramPort(
                sock.fileno(), socket.AF_INET6, listener, MAX_DATAGRAM
            )

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Where the listeners are bound (the real port when ``tftp.port`` is 0, as in tests)."""
        return [(host.host, host.port) for host in (p.getHost() for p in self._listeners)]

    def startService(self) -> None:
        if not self._listeners:
            self.privilegedStartService()
        self.loop.start()
        super().startService()

    def stopService(self) -> Deferred[Any]:
        """Stop taking requests, end every transfer, and fire when every port is closed."""
        super().stopService()
        closing = [listener.stopListening() for listener in self._listeners]
        self._listeners = []
        for transfer in list(self.server.running.values()):
            self.loop.callFromThread(transfer.abort, "shutdown", "server shutting down", True)
        closing.append(self.loop.stop())  # fires after those aborts have reported back
        closing += list(self._closing)
        self._closing = set()
        return gatherResults([d for d in closing if d is not None])

    # --- requests ------------------------------------------------------------------------

    def request(self, address: str, datagram: bytes, client: Client) -> None:
        """One datagram at a listener: do what the listener's engine decides."""
        for action in self.server.receive(datagram, client, self.loop.seconds()):
            self._act(address, action)

    def _act(self, address: str, action: Action[_Transfer]) -> None:
        match action:
            case Start(client, request):
                source = self._open(address, request, client)
                if source is not None:
                    self._start(address, request, client, source)
            case Refuse(client, filename, code, message, outcome):
                self._refuse(address, client, filename, code, message, outcome)
            case Supersede(transfer, outcome, reason):
                self.loop.callFromThread(transfer.abort, outcome, reason, False)
            case Defer(client, filename, reason):
                self._report(client, filename, "busy", f"not answered: {reason}", None)
            case Repeat(client, filename):
                if (repeated := self.server.running.get(client)) is not None:
                    self.loop.callFromThread(repeated.repeat)
                log.debug(
                    "tftp: repeated request from {client} for {file}; its transfer goes on",
                    client=_client_text(client),
                    file=filename,
                )
            case Drop(client, reason):
                self.stats.outcomes["dropped"] += 1
                log.debug(
                    "tftp: dropped datagram from {client}: {reason}",
                    client=_client_text(client),
                    reason=reason,
                )
            case Ignore(client, kind):
                log.debug(
                    "tftp: ignored {kind} at the listener from {client}",
                    kind=kind,
                    client=_client_text(client),
                )

    def _open(self, address: str, request: ReadRequest, client: Client) -> BlockSource | None:
        try:
            source = self.files.open(request.filename, client)
        except FileRefused as refusal:
            outcome = {
                ErrorCode.FILE_NOT_FOUND: "not-found",
                ErrorCode.NOT_DEFINED: "busy",  # out of descriptors: retry, not "not found"
            }.get(refusal.code, "refused")
            self._refuse(address, client, request.filename, refusal.code, refusal.message, outcome)
            return None
        except (
            Exception
        ):  # a disk error or a generator bug: answer, do not leave the client waiting
            self._cannot_read(address, client, request.filename)
            return None
        if request.mode_name != "netascii":
            return source
        try:
            return Netascii(source)  # reads the file once to learn its converted size
        except FileRefused as refusal:  # too large for netascii
            source.close()
            self._refuse(
                address, client, request.filename, refusal.code, refusal.message, "refused"
            )
            return None
        except Exception:
            source.close()
            self._cannot_read(address, client, request.filename)
            return None

    def _cannot_read(self, address: str, client: Client, filename: str) -> None:
        log.failure(
            "tftp: cannot read {file} for {client}", file=filename, client=_client_text(client)
        )
        self._refuse(address, client, filename, ErrorCode.NOT_DEFINED, "cannot read file", "error")

    def _start(
        self, address: str, request: ReadRequest, client: Client, source: BlockSource
    ) -> None:
        limits = self.limits[family_of(address)]
        session = ReadSession(request, source, limits, self.loop.seconds())
        transfer = _Transfer(self, client, request, source, session)
        try:
            self.loop.listenUDP(0, transfer, interface=address, maxPacketSize=TRANSFER_DATAGRAM)
        except Exception:
            source.close()
            log.failure("tftp: no port for a transfer to {client}", client=_client_text(client))
            self._refuse(address, client, request.filename, ErrorCode.NOT_DEFINED, BUSY, "busy")
            return
        self.server.begun(client, transfer)
        self.stats.active_sessions += 1
        self.events.publish(
            TftpTransferStarted(
                self.reactor.seconds(),
                None,
                _client_text(client),
                request.filename,
                session.size,
                request.mode_name,
            )
        )
        self.loop.callFromThread(transfer.begin)

    def _refuse(
        self, address: str, client: Client, filename: str, code: int, message: str, outcome: str
    ) -> None:
        """Answer one ERROR from the refusal port on the listener's address, and report it."""
        self._report(client, filename, outcome, message, code)
        try:
            self.loop.send_refusal(address, _error_datagram(code, message), client)
        except OSError as failure:
            if not (_is_loss(failure) or failure.errno in (errno.EMFILE, errno.ENFILE)):
                raise
            log.debug("tftp: answer to {client} lost: {error}", client=_client_text(client),
                      error=failure)  # fmt: skip

    def _report(
        self, client: Client, filename: str, outcome: str, message: str, code: int | None
    ) -> None:
        """Count a refusal, and log and publish it unless a flood of its kind is being
        sampled (pxed.tftp.refusals)."""
        self.stats.outcomes[outcome] += 1
        hidden = self._sampler.show(client[0], outcome, self.loop.seconds())  # monotonic
        if hidden is None:
            self.stats.refusals_unlogged += 1
        else:
            client_text, now = _client_text(client), self.reactor.seconds()
            event = TftpRefused(now, None, client_text, filename, outcome, message, code)
            self.events.publish(event)
            level = log.debug if _expected_miss(filename, outcome) else log.info
            if hidden:
                level(f"{event.FORMAT} ({{hidden}} more like it from {{address}} not logged)",
                      hidden=hidden, address=client[0], **event.fields())  # fmt: skip
            else:
                level(event.FORMAT, **event.fields())

    def _track(self, closing: Deferred[None] | None) -> None:
        """Keep a closing port's Deferred for stopService until it fires.

        Each one leaves the set as it fires: a flood of refusals closes ports faster
        than the reactor gets round to firing them, and rescanning the set on every
        refusal made each one cost more than the last (issue 18's listener collapse).
        """
        if closing is None or closing.called:
            return
        self._closing.add(closing)

        def fired(result: object) -> object:
            self._closing.discard(closing)
            return result

        closing.addBoth(fired)

    # --- transfers ending ----------------------------------------------------------------

    def _forget(self, transfer: _Transfer) -> None:
        """Reactor thread: the transfer's end is told (finished, aborted), one hop per end.

        The source is closed here, in the thread sources are opened in: a StaticRoot
        shares one descriptor per file among transfers, and a release racing a new open
        of the same file could close the descriptor the new transfer is about to read.
        Closing it in the same call that reports the end, not a hop of its own, spares
        the reactor one cross-thread wake-up per session (a storm opens thousands).
        """
        transfer.source.close()
        self.server.ended(transfer.client, transfer, self.loop.seconds())
        self.stats.active_sessions -= 1
        self._track(transfer.stopped)

    def finished(self, transfer: _Transfer, stats: TransferStats) -> None:
        """The engine ended the transfer: count it and log its one event."""
        self._forget(transfer)
        self.stats.outcomes[stats.outcome] += 1
        self.stats.bytes_sent += stats.bytes_sent
        self.stats.retransmits += stats.retransmits
        event = TftpTransferEnded(
            time=self.reactor.seconds(),
            mac=None,
            client=_client_text(transfer.client),
            file=stats.filename,
            outcome=stats.outcome,
            size=stats.size,
            duration=stats.ended - stats.started,
            blksize=stats.blksize,
            windowsize=stats.windowsize,
            retransmits=stats.retransmits,
            bytes_sent=stats.bytes_sent,
            error=stats.error,
        )
        self.events.publish(event)
        level = {
            "complete": log.info,
            "size-probe": log.debug,
            "client-error": log.info,
        }.get(stats.outcome, log.warn)
        level(event.FORMAT, **event.fields())

    def aborted(self, transfer: _Transfer, outcome: str, message: str) -> None:
        """pxed ended the transfer itself; still one event and one count."""
        self._forget(transfer)
        self.stats.outcomes[outcome] += 1
        client, file = _client_text(transfer.client), transfer.request.filename
        event = TftpRefused(self.reactor.seconds(), None, client, file, outcome, message)
        self.events.publish(event)
        log.info(event.FORMAT, **event.fields())


def _expected_miss(filename: str, outcome: str) -> bool:
    """pxelinux probes a dozen pxelinux.cfg/ names per boot; missing ones are routine."""
    return outcome == "not-found" and "pxelinux.cfg" in filename.replace("\\", "/").lower()
