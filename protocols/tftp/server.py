"""The TFTP listener's decisions, sans-I/O: what each datagram at port 69 starts or is told.

``TftpServer.receive(datagram, client, now)`` is to a TFTP listener what
``DhcpServer.handle`` is to DHCP: one datagram in, the actions that answer it
out. The adapter performs them (opens the file, binds the transfer's port,
sends a refusal from a fresh port) and reports back when a transfer begins and
ends, so the books the decisions need (which transfers run, how many per
client address) live here, next to the rules that read them:

* A malformed request is refused with ERROR 4; a malformed datagram that is not
  a request is dropped (answering stray ERRORs could start an error ping-pong).
* pxed is read-only: a WRQ gets ERROR 2.
* A repeated RRQ from the same client port is the client's retransmission
  while its transfer has not heard back yet, or a delayed copy when it comes
  within ``timeout`` of the transfer's start: the running transfer goes on.
  Any other RRQ from a port with a transfer running is a rebooted client
  reusing its port (a reboot takes longer than that): the old transfer ends,
  silently (an ERROR from its port could reach the client before the answer to
  the new request and be taken for it), and the new request is judged afresh.
* The same request from the same port within ``LATE_COPY_WINDOW`` of the end of
  a size probe it started (the client's ERROR after the OACK), or while that end
  is on its way, is a copy the listener read late: the client's retransmission,
  sent before the OACK reached it and queued while the listener was busy (a
  storm's first seconds, when the reactor's backlog of DHCP and RRQs reached
  seconds: a window of ``timeout``, 1 s, still let 126 through in one N = 500
  storm). It is ignored. Answering it started a ghost transfer to the port the
  client had closed, which waited 22 s holding a slot and logged a timeout
  (benchmarks/README.md, the storm's tsize probes). Only after
  a probe: a client that read the file may well ask for it again from the same
  port at once (tftp-hpa's interactive client does). One that probes and then
  asks the same from the same port (no known one: OVMF asks from a new port)
  is served once its retries reach past the window.
* Past ``max_sessions`` transfers, or ``max_per_client`` for one client
  address, a request is deferred: not answered at all (``Defer``). Firmware
  ends a download on any ERROR, code 0 "busy" included (iPXE, EDK2's Mtftp4,
  pxelinux; docs/firmware.md), so a busy ERROR fails the boot; silence makes it
  repeat its RRQ on its own timer (iPXE for ~16 s, EDK2 for its retry count,
  pxelinux for about two minutes), and the first repeat after a slot frees is
  admitted. So under a storm transfers already running keep their slots and
  finish, and newcomers wait their turn in their own retry timers, not in a queue
  here. A transfer is only started with a slot of its own.
* Except that at ``max_sessions`` a transfer whose client has not answered
  within ``timeout`` of its start gives up its slot to the new request, silently.
  A real client answers its first block in milliseconds; RRQs with forged
  source addresses never answer, so without this a few dozen forged addresses
  (under ``max_per_client`` each) would hold every slot for the transfers'
  whole retry time. Forgers must now outpace ``max_sessions`` a ``timeout``.

A flood repeats the same few datagrams, so the last ``DECODED_KEPT`` request-sized
datagrams are remembered with what they decode to: Construct took ~30 % of a
refusal's cost (issue 18, benchmarks/README.md). Messages are frozen, so sharing
one between requests is safe.
"""

from __future__ import annotations

import functools
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from protocols.errors import MalformedPacket
from protocols.tftp.wire import (
    ErrorCode,
    Message,
    Opcode,
    ReadRequest,
    WriteRequest,
    decode_tftp,
)

Client = tuple[str, int]
MODES = ("octet", "netascii")
BUSY = "server busy, try again"
DECODED_KEPT = 256  # distinct datagrams remembered
REQUEST_SIZE = 512  # RFC 2347: a request fits in 512 bytes; a longer one is decoded each time
# Seconds after a size probe's end in which the same request from the same port is a copy
# read late (module docstring): longer than the listener's backlog gets in most storms,
# shorter than any firmware takes from a reset back to its first RRQ (POST, link, DHCP),
# since firmware reuses its ports across a reset (iPXE and EDK2 do) and a rebooted
# machine's probe must be answered.
LATE_COPY_WINDOW = 10.0


class Running(Protocol):
    """What the listener reads of a transfer in flight (the adapter's transfer object)."""

    @property
    def request(self) -> ReadRequest: ...

    @property
    def heard(self) -> bool:
        """The client has answered at least once (an RRQ copy is then no retransmission)."""
        ...

    @property
    def done(self) -> bool:
        """The transfer has ended and its end has yet to be reported with ``ended``."""
        ...

    @property
    def started(self) -> float: ...

    @property
    def size_probe(self) -> bool:
        """It ended as a size probe: the client's ERROR after the OACK."""
        ...


@dataclass(frozen=True)
class Start:
    """Open ``request.filename`` and start a transfer to ``client``; report it with ``begun``."""

    client: Client
    request: ReadRequest


@dataclass(frozen=True)
class Refuse:
    """Answer one ERROR from a fresh port; ``outcome`` is the counter and log word."""

    client: Client
    filename: str
    code: ErrorCode
    message: str
    outcome: str


T = TypeVar("T", bound=Running)


@dataclass(frozen=True)
class Supersede(Generic[T]):
    """End ``transfer`` without telling its client: its port asked anew, or its slot is
    wanted and it never answered (an ERROR could go to a forged address)."""

    transfer: T
    outcome: str  # superseded or evicted
    reason: str


@dataclass(frozen=True)
class Repeat:
    """The client's retransmitted RRQ: its running transfer answers it."""

    client: Client
    filename: str


@dataclass(frozen=True)
class Defer:
    """Leave this request unanswered: no slot is free; the client's repeat may find one."""

    client: Client
    filename: str
    reason: str


@dataclass(frozen=True)
class Drop:
    """Not a request and not decodable: counted and dropped, never answered."""

    client: Client
    reason: str


@dataclass(frozen=True)
class Ignore:
    """A well-formed datagram that has no business at a listener (an ACK, a stray ERROR)."""

    client: Client
    kind: str


Action = Start | Refuse | Supersede[T] | Repeat | Defer | Drop | Ignore


@dataclass(frozen=True)
class ListenerLimits:
    """The ``tftp:`` settings the listener's decisions read."""

    max_sessions: int = 1000
    max_per_client: int = 16
    timeout: float = 1.0


class TftpServer(Generic[T]):
    """The listener's rules and the books they read: transfers by client, counts by address."""

    def __init__(self, limits: ListenerLimits) -> None:
        self.limits = limits
        self.running: dict[Client, T] = {}
        self.active = 0
        self._per_address: Counter[str] = Counter()
        self._unheard: OrderedDict[int, T] = OrderedDict()  # by id, in start order
        self._evicted: dict[int, T] = {}  # told to end, not yet ``ended``
        # client -> (the request of its size probe, when it ended), for ``timeout``, oldest first
        self._ended: OrderedDict[Client, tuple[ReadRequest, float]] = OrderedDict()

    def receive(self, datagram: bytes, client: Client, now: float) -> list[Action[T]]:
        """What to do about one datagram that reached a listener from ``client``."""
        message = _decoded(datagram) if len(datagram) <= REQUEST_SIZE else _decode(datagram)
        if isinstance(message, str):
            return [self._malformed(datagram, client, message)]
        if isinstance(message, WriteRequest):
            return [
                Refuse(
                    client,
                    message.filename,
                    ErrorCode.ACCESS_VIOLATION,
                    "pxed is read-only",
                    "write-refused",
                )
            ]
        if isinstance(message, ReadRequest):
            return self._read(message, client, now)
        return [Ignore(client, type(message).__name__)]

    def begun(self, client: Client, transfer: T) -> None:
        """The adapter started the transfer a ``Start`` asked for."""
        self.running[client] = transfer
        self._unheard[id(transfer)] = transfer
        self._per_address[client[0]] += 1
        self.active += 1

    def ended(self, client: Client, transfer: T, now: float) -> None:
        """A transfer ``begun`` has ended, whoever ended it, at ``now``."""
        if self.running.get(client) is transfer:
            del self.running[client]
        self._ended.pop(client, None)
        if transfer.size_probe:
            self._ended[client] = (transfer.request, now)
        while self._ended:
            _, (_, when) = next(iter(self._ended.items()))
            if now - when < LATE_COPY_WINDOW:
                break
            self._ended.popitem(last=False)
        self._unheard.pop(id(transfer), None)
        self._evicted.pop(id(transfer), None)
        self._per_address[client[0]] -= 1
        if self._per_address[client[0]] <= 0:
            del self._per_address[client[0]]
        self.active -= 1

    def transfers_from(self, address: str) -> int:
        return self._per_address[address]

    def _malformed(self, datagram: bytes, client: Client, reason: str) -> Refuse | Drop:
        opcode = int.from_bytes(datagram[:2], "big") if len(datagram) >= 2 else None
        if opcode in (Opcode.RRQ, Opcode.WRQ):
            return Refuse(client, "", ErrorCode.ILLEGAL_OPERATION, reason, "malformed")
        return Drop(client, reason)

    def _read(self, request: ReadRequest, client: Client, now: float) -> list[Action[T]]:
        actions: list[Action[T]] = []
        running = self.running.get(client)
        # A transfer done or evicted is ending; its end has yet to reach us.
        if running is not None and not running.done and id(running) not in self._evicted:
            if running.request == request and (
                not running.heard or now - running.started < self.limits.timeout
            ):
                return [Repeat(client, request.filename)]
            actions.append(
                Supersede(running, "superseded", "a new request came from the same port")
            )
        elif self._late_copy(request, client, now, running):
            return [Ignore(client, "late copy of the request of a transfer that has ended")]
        actions.extend(self._admit(request, client, now))
        return actions

    def _late_copy(
        self, request: ReadRequest, client: Client, now: float, running: T | None
    ) -> bool:
        """``request`` repeats the one of ``client``'s size probe that ended (or is ending)
        within ``timeout``: a copy read late (module docstring)."""
        if running is not None and id(running) not in self._evicted:
            return running.done and running.size_probe and running.request == request
        ended = self._ended.get(client)
        return ended is not None and ended[0] == request and now - ended[1] < LATE_COPY_WINDOW

    def _admit(self, request: ReadRequest, client: Client, now: float) -> list[Action[T]]:
        if request.mode_name not in MODES:
            message = f"unsupported mode {request.mode!r}"
            return [
                Refuse(client, request.filename, ErrorCode.ILLEGAL_OPERATION, message, "malformed")
            ]
        if self._per_address[client[0]] >= self.limits.max_per_client:
            reason = f"max_per_client ({self.limits.max_per_client}) transfers from this address"
            return [Defer(client, request.filename, reason)]
        if self.active - len(self._evicted) < self.limits.max_sessions:
            return [Start(client, request)]
        stale = self._stale(now)
        if stale is None:
            reason = f"max_sessions ({self.limits.max_sessions}) transfers running"
            return [Defer(client, request.filename, reason)]
        self._evicted[id(stale)] = stale
        reason = f"no answer within {self.limits.timeout:g} s and max_sessions reached"
        return [Supersede(stale, "evicted", reason), Start(client, request)]

    def _stale(self, now: float) -> T | None:
        """The oldest transfer never answered for ``timeout``; prunes the answered ones.

        Each transfer leaves ``_unheard`` once, so a flood at the cap costs O(1) a request.
        """
        while self._unheard:
            transfer = next(iter(self._unheard.values()))
            if not (transfer.heard or transfer.done):
                if now - transfer.started < self.limits.timeout:
                    return None  # the rest started later still
                self._unheard.popitem(last=False)
                return transfer
            self._unheard.popitem(last=False)
        return None


def _decode(datagram: bytes) -> Message | str:
    """The message, or why the datagram is malformed."""
    try:
        return decode_tftp(datagram)
    except MalformedPacket as bad:
        return str(bad)


_decoded = functools.lru_cache(maxsize=DECODED_KEPT)(_decode)
