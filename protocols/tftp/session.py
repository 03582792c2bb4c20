"""The read-transfer engine: one RRQ's life as an explicit (state, input) table, sans I/O.

API
---
``ReadSession(request, source, limits, now)`` negotiates options at once (so ``parameters``
is known before anything is sent).  ``start(now)``, ``receive(datagram, now)`` (datagrams
from the peer's TID only) and ``expire(now)`` return actions: ``Send(datagram)`` for an
OACK or ERROR, ``SendWindow(datagrams)`` for the DATA blocks of a window (or of a lockstep
step, a window of one), and at most one final ``Finish(stats)``; ``deadline`` says when
``expire`` is due next (None once finished) and may move after any call, so the adapter
re-arms its one timer from it after each.  The adapter answers strangers itself with
``encode_tftp(Error(ErrorCode.UNKNOWN_TID, "unknown transfer ID"))``, passes on the client's
repeated RRQ with ``repeat(now)`` (the listener decides what is a repeat), and refuses modes it
has no source for (the session records the mode but never looks at it: netascii
conversion, and so the netascii tsize, are the source's business).

Machine
-------
Every call is classified into an ``Input`` and looked up in ``TRANSITIONS[state][input]``,
which names the handler and the next state (as in h2's stream machine).  Pairs the table does
not list are ignored, which covers the impossible ones too (a partial ACK while only the OACK
is in flight).  One exception to the static next state: a block source that returns the
wrong number of bytes (the file changed under us) ends the session with ERROR 0 from
whichever handler was reading.

Decisions
---------
* Blocks are counted as absolute numbers (1 = first DATA, the OACK is block 0) and put on
  the wire modulo 65536, so block numbers wrap 65535 -> 0 and ACKs are matched against the
  window by their distance from the last ACK: that is what makes a 200 MiB transfer at
  blksize 512 work.  (A window above 32767 blocks could not tell stale ACKs from new ones;
  options.py never negotiates one.)
* ACK semantics are RFC 7440's: an ACK for block n confirms everything up to n.  An ACK
  for the last block sent ends the window and starts the next; an ACK for an earlier block
  in the window starts a new window right after it (go-back); a duplicate or older ACK is
  ignored, never answered with a resend (Sorcerer's Apprentice); an ACK for a block not yet
  sent is ignored.  Lockstep is simply a window of 1.
* Timeouts: the retransmit timer adapts to the measured round trip (timer.py), floored at
  ``limits.min_timeout`` and never above the client's negotiated ``timeout`` (else
  ``limits.initial_timeout``), doubling on each expiry.  The session gives up when a block or
  window has had no progress for ``(max_retries + 1) * ceiling`` seconds, the time a
  fixed-timer server with ``max_retries`` resends would wait: never less patient than
  one, but retransmitting sooner.  So ``max_retries`` is a patience, counted in
  ceiling-length tries; the number of resends stays bounded (log2(ceiling/floor) +
  max_retries + 1 per window).  Then it waits ``limits.linger`` seconds more without
  resending before it gives up: some clients answer a duplicate block only once and
  then only their own timer (atftp: "got wrong block, ignoring"), and each resend
  restarts that timer, so a server that resends until it gives up never hears them
  again once their one extra ACK is lost (atftp failed 2 of 9 transfers at 5 % loss
  so). The linger covers three of atftp's default 5 s timers: its ACK is sent again
  after each, and with one linger of 6 s (one timer) atftp at blksize 512 still failed
  1 fetch of 10 at 5 % loss (its one ACK in the linger lost too: "got wrong block,
  ignoring", two "timeout: retrying", then the closed port's ICMP: "unknown error").
  A timeout ends silently (Finish outcome "timeout", no ERROR): the peer is not
  listening, and RFC 1350 lets a timeout end a transfer.
* The OACK is never resent on the session's own timer, only in answer to the client's
  repeated RRQ (``repeat``): a client that got the OACK and lost its ACK 0 sends that ACK
  again on its own timer (iPXE, EDK2, pxelinux, curl, busybox, atftp and
  tests/support/tftp_client.py all do), while atftp aborts the transfer on a second OACK
  ("tftp: unexpected OACK"; dnsmasq and tftpd-hpa resend it, and atftp failed about one
  fetch in 20 through 5 % loss so). A client that lost the OACK itself repeats its RRQ.
  So while the OACK awaits its ACK the session only waits, as long as patience and linger
  together, then gives up.
* An ERROR from the client ends the session.  ERROR 8 while the OACK awaits its ACK is the
  UEFI tsize probe: outcome "size-probe", not a failure.
* A datagram from the peer that does not decode, or that makes no sense in a read
  transfer (DATA, RRQ, WRQ, OACK), is answered ERROR 4 and ends the session with outcome
  "protocol-error" (RFC 1350: an illegal operation terminates).  Strangers never get here.
* Stats: ``blocks_sent``/``bytes_sent`` count every DATA datagram and payload byte sent,
  retransmissions included; ``retransmits`` counts datagrams (DATA or OACK) sent again.
* Exceptions raised by ``source.read`` propagate: the adapter owns the source and its I/O.
"""

from __future__ import annotations

import enum
import struct
import typing
from collections.abc import Callable
from dataclasses import dataclass

from protocols.errors import MalformedPacket
from protocols.tftp.options import TransferParameters, negotiate
from protocols.tftp.timer import RetransmitTimer
from protocols.tftp.wire import (
    Error,
    ErrorCode,
    Opcode,
    OptionAck,
    ReadRequest,
    ack_block,
    decode_tftp,
    encode_data,
    encode_tftp,
)

__all__ = [
    "TRANSITIONS",
    "Action",
    "BlockSource",
    "Finish",
    "Input",
    "ReadSession",
    "Send",
    "SendWindow",
    "SessionLimits",
    "State",
    "TransferStats",
]


class BlockSource(typing.Protocol):
    def size(self) -> int:
        """Bytes the transfer sends (after netascii conversion)."""
        ...

    def read(self, offset: int, length: int) -> bytes:
        """`length` bytes at `offset`; fewer only at the end of the data."""
        ...


@dataclass(frozen=True)
class SessionLimits:
    max_blksize: int = 1468
    max_windowsize: int = 16
    max_retries: int = 5  # patience, in ceiling-length tries per block/window (see module doc)
    initial_timeout: float = (
        1.0  # seconds, until the client asks for `timeout` or an RTT is measured
    )
    min_timeout: float = 0.05  # floor of the adaptive retransmit timer
    linger: float = 16.0  # silence after the last resend: three of atftp's 5 s timers


@dataclass(frozen=True)
class TransferStats:
    filename: str
    size: int
    blksize: int
    windowsize: int
    options: dict[str, str]  # negotiated, as in the OACK, names in lower case
    blocks_sent: int
    bytes_sent: int
    retransmits: int
    started: float
    ended: float
    outcome: str  # "complete" | "client-error" | "size-probe" | "timeout" | "protocol-error"
    error: str | None  # the client's error message or our reason
    mode: str = "octet"  # as the client spelled it


@dataclass(frozen=True, slots=True)
class Send:
    datagram: bytes


@dataclass(frozen=True, slots=True)
class SendWindow:
    """Consecutive DATA datagrams, in block order, to send back to back.

    All but the last are ``blksize + 4`` bytes long and only the last may be shorter, so
    an adapter can hand the whole window to the kernel in one UDP GSO send.
    """

    datagrams: list[bytes]


@dataclass(frozen=True, slots=True)
class Finish:
    stats: TransferStats


Action = Send | SendWindow | Finish


# IntEnum, not Enum: a plain Enum hashes in Python code, and the table is looked up per block.
class State(enum.IntEnum):
    IDLE = enum.auto()  # created, start() not called yet
    OACK_SENT = enum.auto()  # waiting for ACK 0
    SENDING = enum.auto()  # a window of DATA is in flight
    DONE = enum.auto()


class Input(enum.IntEnum):
    START_OACK = enum.auto()  # start, options accepted
    START_DATA = enum.auto()  # start, no option accepted
    ACK_ALL = enum.auto()  # ACK of the last block sent, more to send
    ACK_LAST = enum.auto()  # ACK of the file's final block
    ACK_PARTIAL = enum.auto()  # ACK of an earlier block in the window
    ACK_STALE = enum.auto()  # duplicate or older ACK
    ACK_FUTURE = enum.auto()  # ACK of a block not yet sent
    ERROR = enum.auto()  # ERROR from the client
    ILLEGAL = enum.auto()  # well-formed datagram that has no place in a read
    MALFORMED = enum.auto()  # datagram that does not decode
    TIMER = enum.auto()  # retransmit timer expired
    GIVE_UP = enum.auto()  # patience exhausted
    REPEAT = enum.auto()  # the client's repeated RRQ, passed on by the listener
    NOT_DUE = enum.auto()  # expire() called before the deadline


# What a handler gets besides `now`: the absolute block an ACK confirms, the client's
# Error, or the reason a datagram was refused.
Detail = int | Error | str | None
Handler = Callable[["ReadSession", float, Detail], list[Action]]

_BLOCK_MASK = 0xFFFF
_EARLY_OK = 1e-6  # seconds
_HALF_SPACE = 0x8000
_DATA_HEADER = struct.Struct("!HH")
_DATA = int(Opcode.DATA)
_ACK_BASE = int(Opcode.ACK) << 16  # an ACK datagram read as a 32-bit big-endian number, block 0


class ReadSession:
    """One read transfer; see the module docstring for the rules it follows."""

    def __init__(
        self, request: ReadRequest, source: BlockSource, limits: SessionLimits, now: float
    ) -> None:
        self._request = request
        self._source = source
        self._size = source.size()
        self.parameters: TransferParameters
        self._oack, self.parameters = negotiate(request.options, self._size, limits)
        self._blksize = self.parameters.blksize
        self._window = self.parameters.windowsize
        self._final = self._size // self._blksize + 1  # short, maybe empty, last block
        ceiling = float(self.parameters.timeout or limits.initial_timeout)
        self._timer = RetransmitTimer(ceiling, limits.min_timeout, ceiling)
        self._patience = (limits.max_retries + 1) * ceiling  # of resending, then linger
        self._linger = limits.linger
        self._state = State.IDLE
        self._acked = self._sent = -1  # absolute block numbers; the OACK is block 0
        self._window_sent_at = now
        self._window_resent = False
        self._resends_until = self._give_up_at = now
        self.deadline: float | None = None  # when expire() is next due; read-only outside
        self._started = now
        self._blocks_sent = self._bytes_sent = self._retransmits = 0
        self._stats: TransferStats | None = None

    # --- public API ---------------------------------------------------------------------

    @property
    def stats(self) -> TransferStats | None:
        """The Finish's stats once the session is over."""
        return self._stats

    @property
    def state(self) -> State:
        return self._state

    @property
    def bytes_acknowledged(self) -> int:
        """How much of the file the client has confirmed: what a progress display shows."""
        return min(max(self._acked, 0) * self._blksize, self._size)

    @property
    def size(self) -> int:
        return self._size

    @property
    def started(self) -> float:
        return self._started

    @property
    def finished(self) -> bool:
        return self._state is State.DONE

    def start(self, now: float) -> list[Action]:
        return self._dispatch(Input.START_OACK if self._oack else Input.START_DATA, now, None)

    def receive(self, datagram: bytes, now: float) -> list[Action]:
        block = ack_block(datagram)
        if block is not None:
            sent = self._sent
            if block == sent & _BLOCK_MASK and self._state is _SENDING and sent != self._final:
                # The ACK that ends the window in flight, as _classify_ack would find it
                # (while SENDING, _sent > _acked): the per-block case, looked up once.
                handler, self._state = _SENDING_ACK_ALL
                return handler(self, now, sent)
            event, absolute = self._classify_ack(block)
            return self._dispatch(event, now, absolute)
        try:
            message = decode_tftp(datagram)
        except MalformedPacket as bad:
            return self._dispatch(Input.MALFORMED, now, f"malformed packet: {bad}")
        if isinstance(message, Error):
            return self._dispatch(Input.ERROR, now, message)
        reason = f"unexpected {type(message).__name__} during a read transfer"
        return self._dispatch(Input.ILLEGAL, now, reason)

    def next_lockstep(self, datagram: bytes, now: float) -> bytes | None:
        """``receive``'s per-block case, flat: the next DATA datagram, or None.

        None means "not that case, call ``receive``"; the session has not changed. The case
        is a lockstep transfer (window 1) whose block in flight, never resent, is
        acknowledged and is not the last: the one transition such a transfer takes per
        block, (SENDING, ACK_ALL) through ``_on_ack`` and ``_send_next``, without the
        action objects and the calls between them. A server whose whole per-block
        budget is a few microseconds spends a measurable share on those
        (benchmarks/tftp.py); a property test holds this equal to ``receive``.
        """
        sent = self._sent
        if (
            len(datagram) != 4
            or int.from_bytes(datagram, "big") != _ACK_BASE | (sent & _BLOCK_MASK)
            or self._window != 1
            or self._window_resent
            or sent == self._final
            or self._state is not _SENDING
        ):
            return None
        return self._step(now)  # None: the file read short; receive() reads again and ends

    def repeat(self, now: float) -> list[Action]:
        """The client sent its RRQ again: the OACK went missing, if one is awaiting its ACK."""
        return self._dispatch(Input.REPEAT, now, None)

    def expire(self, now: float) -> list[Action]:
        # A timer armed for `deadline - now` can fire a rounding error early; that is due.
        if self.deadline is None or now + _EARLY_OK < self.deadline:
            return self._dispatch(Input.NOT_DUE, now, None)
        if now + _EARLY_OK >= self._give_up_at:
            return self._dispatch(Input.GIVE_UP, now, None)
        return self._dispatch(Input.TIMER, now, None)

    # --- classification and dispatch ----------------------------------------------------

    def _classify_ack(self, block: int) -> tuple[Input, int]:
        distance = (block - self._acked) & _BLOCK_MASK
        if 0 < distance <= self._sent - self._acked:
            absolute = self._acked + distance
            if absolute < self._sent:
                return Input.ACK_PARTIAL, absolute
            return (Input.ACK_LAST if absolute == self._final else Input.ACK_ALL), absolute
        if 0 < distance < _HALF_SPACE:
            return Input.ACK_FUTURE, block
        return Input.ACK_STALE, block

    def _dispatch(self, event: Input, now: float, detail: Detail) -> list[Action]:
        handler, self._state = TRANSITIONS[self._state][event]
        return handler(self, now, detail)

    # --- handlers -----------------------------------------------------------------------

    def _start_with_oack(self, now: float, detail: Detail) -> list[Action]:
        self._acked, self._sent = -1, 0
        self._begin_window(now, resent=False)
        self.deadline = self._give_up_at  # no timer resend of an OACK (module doc)
        return [Send(self._oack_datagram())]

    def _start_with_data(self, now: float, detail: Detail) -> list[Action]:
        self._acked = self._sent = 0
        return self._send_window(now, progress=True)

    def _on_ack(self, now: float, detail: Detail) -> list[Action]:
        """Progress: slide the window to just after the acknowledged block."""
        assert isinstance(detail, int)
        if self._window == 1 and detail == self._sent and not self._window_resent:
            following = self._step(now)
            if following is not None:
                return [SendWindow([following])]
        if self._window_resent:  # Karn's rule: an ACK of a resent window is ambiguous
            self._timer.progress()
        else:  # a sample resets the backoff too, as progress() would
            self._timer.sample(now - self._window_sent_at)
        self._acked = detail
        return self._send_window(now, progress=True)

    def _on_final_ack(self, now: float, detail: Detail) -> list[Action]:
        assert isinstance(detail, int)
        self._acked = detail
        return [self._finish(now, "complete", None)]

    def _resend_oack(self, now: float, detail: Detail) -> list[Action]:
        self._retransmits += 1
        self._begin_window(now, resent=True)  # the client is there: wait for it afresh
        self.deadline = self._give_up_at
        return [Send(self._oack_datagram())]

    def _resend_window(self, now: float, detail: Detail) -> list[Action]:
        self._timer.backoff()
        return self._send_window(now, progress=False)

    def _give_up(self, now: float, detail: Detail) -> list[Action]:
        waiting = "ACK of the OACK" if self._sent == 0 else f"ACK of block {self._sent}"
        reason = f"no {waiting} after {self._give_up_at - self._window_sent_at:g} s"
        return [self._finish(now, "timeout", reason)]

    def _on_error_after_oack(self, now: float, detail: Detail) -> list[Action]:
        assert isinstance(detail, Error)
        probe = detail.code == ErrorCode.OPTION_REFUSED
        return [self._finish(now, "size-probe" if probe else "client-error", _describe(detail))]

    def _on_client_error(self, now: float, detail: Detail) -> list[Action]:
        assert isinstance(detail, Error)
        return [self._finish(now, "client-error", _describe(detail))]

    def _on_protocol_error(self, now: float, detail: Detail) -> list[Action]:
        assert isinstance(detail, str)
        answer = encode_tftp(Error(ErrorCode.ILLEGAL_OPERATION, detail.replace("\0", " ")))
        return [Send(answer), self._finish(now, "protocol-error", detail)]

    # --- helpers ------------------------------------------------------------------------

    def _oack_datagram(self) -> bytes:
        return encode_tftp(OptionAck(self._oack))

    def _send_window(self, now: float, progress: bool) -> list[Action]:
        """(Re)send blocks after the last ACK, up to a window or the final block."""
        first = self._acked + 1
        final = self._final
        last = self._acked + self._window
        if last > final:
            last = final
        resent = self._sent - first + 1 if self._sent >= first else 0
        blksize, read = self._blksize, self._source.read
        offset = (first - 1) * blksize
        datagrams: list[bytes] = []
        for absolute in range(first, last + 1):
            payload = read(offset, blksize)
            if len(payload) != (blksize if absolute < final else self._size - offset):
                return self._file_changed(now, absolute)
            self._bytes_sent += len(payload)
            datagrams.append(encode_data(absolute & _BLOCK_MASK, payload))
            offset += blksize
        self._blocks_sent += len(datagrams)
        self._retransmits += resent
        self._sent = last
        if progress:
            self._begin_window(now, resent=resent > 0)
        else:
            self._window_resent = True
            self._arm(now)
        return [SendWindow(datagrams)]

    def _step(self, now: float) -> bytes | None:
        """Lockstep after the ACK of the block in flight (never resent): the next block's
        datagram, or None, with nothing changed, when the file reads short.

        The same bookkeeping as _on_ack and _send_window without the window loop, the
        resend count or Karn's rule, none of which can apply; it runs once per block
        (for ``receive`` and ``next_lockstep`` alike), and samples the round trip on one
        block in four (see _SAMPLE_MASK).
        """
        sent = self._sent
        blksize = self._blksize
        offset = sent * blksize
        payload = self._source.read(offset, blksize)
        block = sent + 1
        if len(payload) != (blksize if block < self._final else self._size - offset):
            return None
        if sent & _SAMPLE_MASK == 1:
            self._timer.sample(now - self._window_sent_at)
        self._acked = sent
        self._sent = block
        self._bytes_sent += len(payload)
        self._blocks_sent += 1
        self._window_sent_at = now  # _begin_window(now, resent=False), inlined: per block
        self._resends_until = resends_until = now + self._patience
        self._give_up_at = resends_until + (self._linger if block < self._final else 0.0)
        deadline = now + self._timer.rto
        self.deadline = deadline if deadline < resends_until else self._give_up_at
        return _DATA_HEADER.pack(_DATA, block & _BLOCK_MASK) + payload  # encode_data, inlined

    def _file_changed(self, now: float, block: int) -> list[Action]:
        reason = f"file changed size during the transfer (block {block})"
        answer = encode_tftp(Error(ErrorCode.NOT_DEFINED, reason))
        return [Send(answer), self._finish(now, "protocol-error", reason)]

    def _begin_window(self, now: float, resent: bool) -> None:
        self._window_sent_at = now
        self._window_resent = resent
        self._resends_until = now + self._patience
        # A client that has the last block is done and will not ask again: no linger.
        linger = self._linger if self._sent < self._final else 0.0
        self._give_up_at = self._resends_until + linger
        self._arm(now)

    def _arm(self, now: float) -> None:
        deadline = now + self._timer.rto
        self.deadline = deadline if deadline < self._resends_until else self._give_up_at

    def _finish(self, now: float, outcome: str, error: str | None) -> Finish:
        self._state = State.DONE
        self.deadline = None
        self._stats = TransferStats(
            filename=self._request.filename,
            size=self._size,
            blksize=self._blksize,
            windowsize=self._window,
            options={name.lower(): value for name, value in self._oack},
            blocks_sent=self._blocks_sent,
            bytes_sent=self._bytes_sent,
            retransmits=self._retransmits,
            started=self._started,
            ended=now,
            outcome=outcome,
            error=error,
            mode=self._request.mode,
        )
        return Finish(self._stats)


def _ignore(session: ReadSession, now: float, detail: Detail) -> list[Action]:
    return []


def _describe(error: Error) -> str:
    return f"ERROR {int(error.code)}: {error.message}"


_S, _I = State, Input
_REFUSE: dict[Input, tuple[Handler, State]] = {
    _I.ILLEGAL: (ReadSession._on_protocol_error, _S.DONE),
    _I.MALFORMED: (ReadSession._on_protocol_error, _S.DONE),
    _I.GIVE_UP: (ReadSession._give_up, _S.DONE),
}


def _total(
    state: State, entries: dict[Input, tuple[Handler, State]]
) -> dict[Input, tuple[Handler, State]]:
    """Every input not listed is ignored and keeps the state: the table is a total function."""
    return {event: entries.get(event, (_ignore, state)) for event in Input}


_LISTED: dict[State, dict[Input, tuple[Handler, State]]] = {
    _S.IDLE: {
        _I.START_OACK: (ReadSession._start_with_oack, _S.OACK_SENT),
        _I.START_DATA: (ReadSession._start_with_data, _S.SENDING),
    },
    _S.OACK_SENT: {
        _I.ACK_ALL: (ReadSession._on_ack, _S.SENDING),
        _I.ERROR: (ReadSession._on_error_after_oack, _S.DONE),
        _I.REPEAT: (ReadSession._resend_oack, _S.OACK_SENT),
        **_REFUSE,
    },
    _S.SENDING: {
        _I.ACK_ALL: (ReadSession._on_ack, _S.SENDING),
        _I.ACK_LAST: (ReadSession._on_final_ack, _S.DONE),
        _I.ACK_PARTIAL: (ReadSession._on_ack, _S.SENDING),
        _I.ERROR: (ReadSession._on_client_error, _S.DONE),
        _I.TIMER: (ReadSession._resend_window, _S.SENDING),
        **_REFUSE,
    },
    _S.DONE: {},
}

# (state, input) -> (handler, next state): the pairs listed above, every other input ignored.
TRANSITIONS = {state: _total(state, entries) for state, entries in _LISTED.items()}
# Lockstep takes the round trip of one block in four (ACKs 1, 5, 9, ...) as a sample. On a
# LAN a block takes microseconds, so that is still thousands of samples a second, and a
# sample costs a measurable share of a block (benchmarks/README.md). Windows sample every ACK.
_SAMPLE_MASK = 3  # sample when sent & _SAMPLE_MASK == 1
_SENDING = State.SENDING  # a module global: 3.11 does not specialise a class attribute load
_SENDING_ACK_ALL = TRANSITIONS[State.SENDING][Input.ACK_ALL]  # receive()'s fast path
