"""The read-transfer engine, behaviour by behaviour, then as properties under any input."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from protocols.tftp.session import (
    TRANSITIONS,
    Action,
    Finish,
    Input,
    ReadSession,
    Send,
    SendWindow,
    SessionLimits,
    State,
)
from protocols.tftp.wire import (
    Data,
    Error,
    ErrorCode,
    OptionAck,
    ReadRequest,
    WriteRequest,
    decode_data,
    decode_tftp,
    encode_ack,
    encode_tftp,
)
from tests.support.fuzz import FUZZ_EXAMPLES

# --- fakes --------------------------------------------------------------------------------

_PERIOD = 251  # prime, so no blksize lines blocks up with the pattern
_PATTERN = bytes(range(_PERIOD)) * (65536 // _PERIOD + 2)


def expected_bytes(offset: int, length: int) -> bytes:
    """The fake file's content: a byte pattern anyone can recompute from the offset."""
    start = offset % _PERIOD
    return _PATTERN[start : start + length]


class PatternSource:
    """A BlockSource of any size whose reads cost a slice, so 200 MiB tests stay fast."""

    def __init__(self, size: int, real_size: int | None = None) -> None:
        self._size = size
        self._real = size if real_size is None else real_size  # what is left on disk

    def size(self) -> int:
        return self._size

    def read(self, offset: int, length: int) -> bytes:
        return expected_bytes(offset, max(0, min(length, self._real - offset)))


def sends(actions: list[Action]) -> list[bytes]:
    """Every datagram the actions send, in order, whether one by one or as a window."""
    sent: list[bytes] = []
    for action in actions:
        if isinstance(action, SendWindow):
            sent += action.datagrams
        elif isinstance(action, Send):
            sent.append(action.datagram)
    return sent


def finish_of(actions: list[Action]) -> Finish | None:
    done = [action for action in actions if isinstance(action, Finish)]
    assert len(done) <= 1 and (not done or actions[-1] is done[0]), "one Finish, last"
    return done[0] if done else None


def blocks(actions: list[Action]) -> list[int]:
    return [decode_data(datagram).block for datagram in sends(actions)]


def make(size: int = 2000, options=(), limits: SessionLimits | None = None, now: float = 0.0):
    request = ReadRequest("boot/file.bin", "octet", tuple(options))
    return ReadSession(request, PatternSource(size), limits or SessionLimits(), now)


@dataclass
class WindowClient:
    """An RFC 7440 receiver: ACKs each full window, the final block, and every gap.

    Every byte is checked against the pattern on arrival, in order; only counts are kept,
    so it can follow a 200 MiB transfer.
    """

    blksize: int
    windowsize: int = 1
    expected: int = 1  # absolute number of the next block wanted
    received: int = 0  # bytes accepted in order
    since_ack: int = 0
    corrupt: int = 0
    oack_seen: bool = False

    def on_datagram(self, datagram: bytes) -> bytes | None:
        """The client's answer to one datagram from the server (None: keep quiet)."""
        if datagram[:2] == b"\x00\x06":
            self.oack_seen = True
            return encode_ack(0)
        data = decode_data(datagram)
        if data.block != self.expected & 0xFFFF:
            self.since_ack = 0
            return self.ack_last_good()
        if data.payload != expected_bytes(self.received, len(data.payload)):
            self.corrupt += 1
        self.received += len(data.payload)
        self.expected += 1
        self.since_ack += 1
        if len(data.payload) < self.blksize or self.since_ack >= self.windowsize:
            self.since_ack = 0
            return self.ack_last_good()
        return None

    def ack_last_good(self) -> bytes:
        return encode_ack((self.expected - 1) & 0xFFFF)


def run_lossless(session: ReadSession, client: WindowClient, now: float = 0.0) -> Finish:
    """Drive a session and a client over a perfect network until the session finishes."""
    pending = session.start(now)
    while (done := finish_of(pending)) is None:
        answers = [client.on_datagram(datagram) for datagram in sends(pending)]
        pending = []
        for answer in answers:
            if answer is not None:
                pending.extend(session.receive(answer, now))
        assert pending, f"stalled in {session.state} after {client.received} bytes"
    return done


# --- the table ----------------------------------------------------------------------------


def test_transition_table_is_total_over_states_and_inputs():
    """Every (state, input) pair has a handler, so no input can find the machine unprepared."""
    assert set(TRANSITIONS) == set(State)
    for state, row in TRANSITIONS.items():
        assert set(row) == set(Input), state


def test_finished_session_ignores_every_input():
    assert all(next_state is State.DONE for _, next_state in TRANSITIONS[State.DONE].values())


# --- start --------------------------------------------------------------------------------


def test_rrq_without_options_gets_data_1_at_512_bytes():
    session = make(2000)
    actions = session.start(0.0)
    assert [decode_tftp(d) for d in sends(actions)] == [Data(1, expected_bytes(0, 512))]
    assert session.state is State.SENDING and session.deadline == 1.0


def test_rrq_with_only_unknown_or_bad_options_gets_data_1_not_an_empty_oack():
    session = make(2000, [("multicast", ""), ("blksize", "huge")])
    assert blocks(session.start(0.0)) == [1]


def test_rrq_with_options_gets_an_oack_then_data_1_after_ack_0():
    session = make(100_000, [("tsize", "0"), ("blksize", "1432")])
    first = session.start(0.0)
    assert [decode_tftp(d) for d in sends(first)] == [
        OptionAck((("tsize", "100000"), ("blksize", "1432")))
    ]
    assert session.state is State.OACK_SENT
    assert session.receive(encode_ack(1), 0.01) == [], "ACK 1 before ACK 0 is ignored"
    second = session.receive(encode_ack(0), 0.01)
    assert [decode_tftp(d) for d in sends(second)] == [Data(1, expected_bytes(0, 1432))]


def test_start_twice_sends_nothing_the_second_time():
    session = make(100)
    session.start(0.0)
    assert session.start(0.1) == []


def test_inputs_before_start_are_ignored():
    session = make(100)
    assert session.receive(encode_ack(1), 0.0) == []
    assert session.expire(100.0) == [] and session.deadline is None
    assert session.state is State.IDLE


# --- lockstep -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "payload_sizes"),
    [
        (0, [0]),
        (1, [1]),
        (511, [511]),
        (512, [512, 0]),
        (513, [512, 1]),
        (1024, [512, 512, 0]),
    ],
)
def test_lockstep_ends_with_a_short_block_empty_when_size_is_a_multiple(size, payload_sizes):
    session = make(size)
    pending, seen = session.start(0.0), []
    while not session.finished:
        (datagram,) = sends(pending)
        data = decode_data(datagram)
        seen.append(len(data.payload))
        pending = session.receive(encode_ack(data.block), 0.0)
    assert seen == payload_sizes
    done = finish_of(pending)
    assert done is not None and done.stats.outcome == "complete"


def test_complete_transfer_reports_stats():
    session = make(3000, [("blksize", "1024"), ("TSize", "0")], now=10.0)
    done = run_lossless(session, WindowClient(blksize=1024), now=12.5)
    assert done.stats.filename == "boot/file.bin" and done.stats.mode == "octet"
    assert (done.stats.size, done.stats.blksize, done.stats.windowsize) == (3000, 1024, 1)
    assert done.stats.options == {"blksize": "1024", "tsize": "3000"}
    assert (done.stats.blocks_sent, done.stats.bytes_sent, done.stats.retransmits) == (3, 3000, 0)
    assert (done.stats.started, done.stats.ended) == (10.0, 12.5)
    assert (done.stats.outcome, done.stats.error) == ("complete", None)
    assert session.finished and session.deadline is None and session.stats == done.stats


def test_duplicate_ack_never_causes_a_resend():
    """Sorcerer's Apprentice: answering each duplicate ACK would double every later block."""
    session = make(5000)
    session.start(0.0)
    assert blocks(session.receive(encode_ack(1), 0.1)) == [2]
    assert session.receive(encode_ack(1), 0.1) == []
    assert blocks(session.receive(encode_ack(2), 0.2)) == [3]
    assert session.receive(encode_ack(1), 0.2) == [] and session.receive(encode_ack(0), 0.2) == []


def test_ack_for_a_block_not_yet_sent_is_ignored():
    session = make(5000)
    session.start(0.0)
    assert session.receive(encode_ack(2), 0.1) == []
    assert session.receive(encode_ack(40000), 0.1) == []
    assert blocks(session.receive(encode_ack(1), 0.1)) == [2]


def test_data_is_read_block_by_block_at_its_offset():
    reads: list[tuple[int, int]] = []

    class Recording(PatternSource):
        def read(self, offset: int, length: int) -> bytes:
            reads.append((offset, length))
            return super().read(offset, length)

    session = ReadSession(ReadRequest("f"), Recording(1500), SessionLimits(), 0.0)
    run_lossless(session, WindowClient(blksize=512))
    assert reads == [(0, 512), (512, 512), (1024, 512)]


# --- windows (RFC 7440) -------------------------------------------------------------------


def _windowed(size: int = 10 * 512 + 100, window: int = 4) -> ReadSession:
    session = make(size, [("windowsize", str(window))])
    session.start(0.0)
    return session


def test_window_sends_windowsize_blocks_then_waits_for_the_ack_of_the_last():
    session = _windowed()
    assert blocks(session.receive(encode_ack(0), 0.0)) == [1, 2, 3, 4]
    assert session.receive(encode_ack(4), 0.0) != []
    assert session.receive(encode_ack(4), 0.0) == [], "a duplicate ACK is not a new window"


def test_a_window_is_one_send_window_whose_datagrams_differ_only_in_the_last():
    """What lets the adapter send a window as one UDP GSO buffer of equal segments."""
    session = _windowed(size=5 * 512 + 100)
    (window,) = session.receive(encode_ack(0), 0.0)
    assert isinstance(window, SendWindow)
    assert [len(datagram) for datagram in window.datagrams] == [516] * 4
    (tail,) = session.receive(encode_ack(4), 0.0)
    assert isinstance(tail, SendWindow)
    assert [len(datagram) for datagram in tail.datagrams] == [516, 104]


def test_ack_of_an_earlier_block_in_the_window_restarts_the_window_after_it():
    session = _windowed()
    session.receive(encode_ack(0), 0.0)
    assert blocks(session.receive(encode_ack(4), 0.0)) == [5, 6, 7, 8]
    assert blocks(session.receive(encode_ack(6), 0.0)) == [7, 8, 9, 10]
    assert blocks(session.receive(encode_ack(10), 0.0)) == [11]
    done = finish_of(session.receive(encode_ack(11), 0.0))
    assert done is not None and done.stats.retransmits == 2


def test_window_is_cut_at_the_final_block():
    session = _windowed(size=3 * 512, window=16)
    assert blocks(session.receive(encode_ack(0), 0.0)) == [1, 2, 3, 4]
    assert decode_data(sends(session.receive(encode_ack(2), 0.0))[-1]).payload == b""


def test_windowsize_is_clamped_to_the_servers_maximum():
    session = make(100_000, [("windowsize", "64")], SessionLimits(max_windowsize=8))
    session.start(0.0)
    assert len(blocks(session.receive(encode_ack(0), 0.0))) == 8


@pytest.mark.parametrize("window", [1, 3, 16])
@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 8 * 16, 8 * 16 + 1, 1000])
def test_windowed_transfer_delivers_every_byte_in_order(window, size):
    session = make(size, [("blksize", "8"), ("windowsize", str(window))])
    client = WindowClient(blksize=8, windowsize=window)
    done = run_lossless(session, client)
    assert done.stats.outcome == "complete" and (client.received, client.corrupt) == (size, 0)


# --- block numbers wrap 65535 -> 0 --------------------------------------------------------


def test_block_after_65535_is_block_0_and_the_ack_of_0_moves_on():
    session = make(8 * 65540, [("blksize", "8")])
    pending = session.start(0.0)
    for expected in range(65535):
        pending = session.receive(encode_ack(expected), 0.0)
    assert blocks(pending) == [65535]
    assert blocks(session.receive(encode_ack(65535), 0.0)) == [0]
    assert session.receive(encode_ack(65535), 0.0) == [], "the old ACK is a duplicate"
    assert blocks(session.receive(encode_ack(0), 0.0)) == [1]


@pytest.mark.parametrize("window", [1, 7, 16])
def test_transfer_past_the_block_number_wrap_arrives_intact(window):
    """70,001 blocks of 8 bytes: the counter wraps once; every byte is checked on arrival."""
    size = 8 * 70_000
    session = make(size, [("blksize", "8"), ("windowsize", str(window))])
    client = WindowClient(blksize=8, windowsize=window)
    done = run_lossless(session, client)
    assert done.stats.outcome == "complete" and done.stats.blocks_sent == 70_001
    assert (client.received, client.corrupt) == (size, 0)


def test_go_back_across_the_wrap_restarts_after_the_right_block():
    session = make(8 * 70_000, [("blksize", "8"), ("windowsize", "7")])
    session.start(0.0)
    window = blocks(session.receive(encode_ack(0), 0.0))
    while 0 not in window:  # ACK whole windows until one straddles the wrap
        window = blocks(session.receive(encode_ack(window[-1]), 0.0))
    assert window == [65535, 0, 1, 2, 3, 4, 5]
    assert blocks(session.receive(encode_ack(2), 0.0)) == [3, 4, 5, 6, 7, 8, 9]


@pytest.mark.slow
def test_200_mib_at_blksize_512_arrives_intact():
    """The issue's acceptance case: 409,601 blocks, the counter wraps six times."""
    size = 200 * 1024 * 1024
    client = WindowClient(blksize=512)
    done = run_lossless(make(size), client)
    assert done.stats.outcome == "complete" and done.stats.blocks_sent == size // 512 + 1
    assert (client.received, client.corrupt) == (size, 0)


# --- timeouts -----------------------------------------------------------------------------


def test_expire_before_the_deadline_does_nothing():
    session = make(100)
    session.start(0.0)
    assert session.expire(0.999) == [] and session.deadline == 1.0


def test_expire_a_rounding_error_before_the_deadline_counts_as_due():
    """callLater(deadline - now) can fire a few ulps early; that must not stall the timer."""
    session = make(100)
    session.start(0.1)
    assert session.deadline is not None
    assert blocks(session.expire(session.deadline - 1e-9)) == [1]


def test_clock_stepping_back_never_makes_the_timer_negative():
    session = make(100_000)
    session.start(10.0)
    session.receive(encode_ack(1), 5.0)
    assert session.deadline == pytest.approx(5.0 + SessionLimits().min_timeout)


def test_unanswered_block_is_resent_max_retries_times_then_the_session_times_out_silently():
    """Without an RTT sample the timer is the fixed initial one, so this is tftpd's schedule,
    and then ``linger`` seconds of silence for a client that answers only its own timer."""
    session = make(100_000)
    original = sends(session.start(0.0))
    for tick in range(1, 5):
        assert sends(session.expire(float(tick))) == original
        assert session.deadline == tick + 1.0
    assert sends(session.expire(5.0)) == original
    assert session.deadline == 22.0  # the sixth second of resending, then linger (16 s)
    done = finish_of(session.expire(22.0))
    assert done is not None and sends(session.expire(22.0)) == []
    assert (done.stats.outcome, done.stats.retransmits) == ("timeout", 5)
    assert done.stats.error == "no ACK of block 1 after 22 s"


def test_a_lost_ack_of_the_last_block_ends_the_session_without_the_linger():
    """A client that has the last block is done and will not ask again: the slot is freed
    after the resends alone, as before the linger."""
    session = make(100)  # one block: the first is the last
    session.start(0.0)
    for tick in range(1, 6):
        session.expire(float(tick))
    assert session.deadline == 6.0
    done = finish_of(session.expire(6.0))
    assert done is not None and done.stats.error == "no ACK of block 1 after 6 s"


def test_a_client_that_answers_only_its_own_timer_is_heard_during_the_linger():
    """atftp re-ACKs a duplicate block once, then only when its own timer (2 s here) fires;
    every resend restarts that timer. Both ACKs of block 1 lost: its timer fires in the
    silence after the last resend, and the transfer goes on."""
    session = make(100_000)
    session.start(0.0)
    for tick in range(1, 6):
        session.expire(float(tick))
    assert session.deadline == 22.0
    following = session.receive(encode_ack(1), 5.0 + 2.0)
    assert blocks(following) == [2]


def test_retries_is_a_patience_in_timeouts_not_a_count_of_resends():
    """etc/pxed.yaml's promise: (retries + 1) x timeout of silence, however many resends."""
    session = make(100_000, limits=SessionLimits(max_retries=2, initial_timeout=1.0))
    session.start(0.0)
    session.receive(encode_ack(1), 0.01)  # a fast round trip: the timer drops to its floor
    resends, deadline = 0, session.deadline
    while deadline is not None and (done := finish_of(session.expire(deadline))) is None:
        resends += 1
        deadline = session.deadline
    assert resends > 2
    assert done is not None and done.stats.ended == pytest.approx(0.01 + 3 * 1.0 + 16.0)


def test_oack_is_never_resent_on_the_timer_so_atftp_never_sees_two():
    """atftp aborts on a second OACK ("unexpected OACK"): when its ACK 0 is lost, the
    session waits for atftp's own resend of that ACK instead (patience, then linger)."""
    session = make(100, [("tsize", "0")])
    session.start(0.0)
    assert session.deadline == 22.0
    assert session.expire(5.0) == []
    assert blocks(session.receive(encode_ack(0), 5.0)) == [1]


def test_unanswered_oack_times_out_after_patience_and_linger():
    session = make(100, [("tsize", "0")])
    session.start(0.0)
    done = finish_of(session.expire(22.0))
    assert done is not None and done.stats.error == "no ACK of the OACK after 22 s"


def test_repeated_request_gets_the_oack_again_and_a_fresh_wait():
    """The client's RRQ came again: its OACK was lost."""
    session = make(100, [("tsize", "0")])
    oack = sends(session.start(0.0))
    assert sends(session.repeat(3.0)) == oack
    assert session.deadline == 25.0
    assert session.expire(22.0) == []


def test_repeated_request_once_data_flows_is_ignored():
    session = make(100_000, [("tsize", "0")])
    session.start(0.0)
    session.receive(encode_ack(0), 0.01)
    assert session.repeat(0.02) == []
    assert session.state is State.SENDING


def test_timeout_resends_the_whole_unacknowledged_window():
    session = _windowed()
    session.receive(encode_ack(0), 0.0)
    session.receive(encode_ack(2), 0.01)
    deadline = session.deadline
    assert deadline is not None
    assert blocks(session.expire(deadline)) == [3, 4, 5, 6]


def test_retransmit_timer_adapts_to_the_measured_round_trip():
    session = make(100_000)
    session.start(0.0)
    session.receive(encode_ack(1), 0.01)
    assert session.deadline == pytest.approx(0.01 + 0.05), "floored at min_timeout"
    deadline = session.deadline
    assert deadline is not None and blocks(session.expire(deadline)) == [2]
    assert session.deadline == pytest.approx(deadline + 0.1), "backs off, doubling"


def test_ack_of_a_resent_block_is_no_rtt_sample():
    """Karn's rule: the ACK may answer either send, so the backed-off timer stays."""
    session = make(100_000)
    session.start(0.0)
    session.expire(1.0)
    session.receive(encode_ack(1), 1.001)
    assert session.deadline == pytest.approx(2.001)


def test_negotiated_timeout_is_the_ceiling_of_the_timer_and_sets_the_patience():
    session = make(100_000, [("timeout", "3")])
    session.start(0.0)
    assert session.deadline == 6 * 3.0 + 16.0  # the OACK waits, never resent on the timer
    session.receive(encode_ack(0), 0.2)
    session.receive(encode_ack(1), 0.4)
    deadline = session.deadline
    assert deadline is not None and deadline < 3.0
    while (done := finish_of(session.expire(deadline))) is None:
        assert session.deadline is not None and session.deadline - deadline <= 3.0 + 16.0 + 1e-9
        deadline = session.deadline
    assert done.stats.ended == pytest.approx(0.4 + 6 * 3.0 + 16.0)


def test_resends_per_window_are_bounded_even_from_the_timer_floor():
    limits = SessionLimits()
    session = make(100_000, limits=limits)
    session.start(0.0)
    session.receive(encode_ack(1), 0.001)
    expiries = 0
    while not session.finished:
        assert session.deadline is not None
        session.expire(session.deadline)
        expiries += 1
    bound = math.ceil(math.log2(limits.initial_timeout / limits.min_timeout))
    assert expiries <= bound + limits.max_retries + 2


# --- errors and illegal datagrams ---------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "outcome"),
    [(ErrorCode.OPTION_REFUSED, "size-probe"), (ErrorCode.NOT_DEFINED, "client-error")],
)
def test_error_right_after_the_oack(code, outcome):
    """UEFI asks tsize, reads the OACK and aborts with ERROR 8: a size probe, not a failure."""
    session = make(100, [("tsize", "0"), ("blksize", "1468")])
    session.start(0.0)
    actions = session.receive(encode_tftp(Error(code, "User aborted the transfer")), 0.1)
    done = finish_of(actions)
    assert sends(actions) == [] and done is not None
    assert (done.stats.outcome, done.stats.error) == (
        outcome,
        f"ERROR {int(code)}: User aborted the transfer",
    )
    assert session.finished and session.deadline is None


@pytest.mark.parametrize("code", [ErrorCode.OPTION_REFUSED, ErrorCode.DISK_FULL, 42])
def test_error_during_data_ends_the_session_as_a_client_error(code):
    session = make(5000)
    session.start(0.0)
    done = finish_of(session.receive(encode_tftp(Error(code, "no")), 0.1))
    assert done is not None and done.stats.outcome == "client-error"


@pytest.mark.parametrize(
    ("datagram", "reason"),
    [
        (encode_tftp(Data(1, b"x")), "unexpected Data during a read transfer"),
        (encode_tftp(ReadRequest("f")), "unexpected ReadRequest during a read transfer"),
        (encode_tftp(WriteRequest("f")), "unexpected WriteRequest during a read transfer"),
        (encode_tftp(OptionAck()), "unexpected OptionAck during a read transfer"),
        (b"\xff\xff", "malformed packet: TFTP: unknown opcode 65535 (TFTP has 1-6), at offset 0"),
        (b"\x00\x04\x00", "malformed packet: ACK: block number truncated: 1 of 2 bytes"),
        (b"", "malformed packet: TFTP: opcode truncated"),
    ],
)
def test_illegal_or_malformed_datagram_from_the_peer_gets_error_4_and_ends(datagram, reason):
    for options in ([], [("blksize", "1024")]):  # during DATA and right after the OACK
        session = make(5000, options)
        session.start(0.0)
        actions = session.receive(datagram, 0.1)
        (answer,) = sends(actions)
        error = decode_tftp(answer)
        assert isinstance(error, Error) and error.code == ErrorCode.ILLEGAL_OPERATION
        assert error.message.startswith(reason)
        done = finish_of(actions)
        assert done is not None and done.stats.outcome == "protocol-error"
        assert done.stats.error is not None and done.stats.error.startswith(reason)


def test_file_that_shrinks_during_the_transfer_ends_it_with_error_0():
    source = PatternSource(2000, real_size=1000)
    session = ReadSession(ReadRequest("f"), source, SessionLimits(), 0.0)
    session.start(0.0)
    actions = session.receive(encode_ack(1), 0.1)
    error = decode_tftp(sends(actions)[0])
    assert isinstance(error, Error) and error.code == ErrorCode.NOT_DEFINED
    done = finish_of(actions)
    assert done is not None and done.stats.outcome == "protocol-error"
    assert done.stats.error == "file changed size during the transfer (block 2)"


def test_unknown_tid_answer_is_one_encode_call():
    """The adapter answers strangers itself; the encoder gives it the datagram."""
    assert encode_tftp(Error(ErrorCode.UNKNOWN_TID, "unknown transfer ID")) == (
        b"\x00\x05\x00\x05unknown transfer ID\x00"
    )


# --- properties ---------------------------------------------------------------------------

# Each example is a whole session of up to 40 steps, so a twentieth of the grammar budget.
LINGER = SessionLimits().linger
STATEFUL_EXAMPLES = max(50, FUZZ_EXAMPLES // 20)


class SessionUnderAnyInput(RuleBasedStateMachine):
    """Any order of any input: the engine never raises, never sends past the file,
    sends nothing after its one Finish, and always has a deadline while it lives."""

    @initialize(
        size=st.integers(0, 3000),
        blksize=st.sampled_from([None, "8", "512", "1468", "65464"]),
        window=st.sampled_from([None, "1", "3", "16"]),
        timeout=st.sampled_from([None, "1", "2"]),
        tsize=st.booleans(),
        start=st.floats(0, 1e6),
    )
    def begin(self, size, blksize, window, timeout, tsize, start):
        options = [("blksize", blksize), ("windowsize", window), ("timeout", timeout)]
        options = [(name, value) for name, value in options if value is not None]
        if tsize:
            options.append(("tsize", "0"))
        self.limits = SessionLimits()
        self.session = make(size, options, self.limits, start)
        self.size, self.blksize = size, self.session.parameters.blksize
        self.final = size // self.blksize + 1
        self.ceiling = float(timeout or self.limits.initial_timeout)
        self.now = start
        self.finished = False
        self.highest = 0
        self.check(self.session.start(start))

    def check(self, actions: list[Action]) -> None:
        assert not (self.finished and actions), "nothing after Finish"
        done = finish_of(actions)
        for datagram in sends(actions):
            message = decode_tftp(datagram)
            if isinstance(message, Data):
                assert 1 <= message.block <= self.final, "no block beyond the file"
                offset = (message.block - 1) * self.blksize
                length = min(self.blksize, self.size - offset)
                assert message.payload == expected_bytes(offset, length)
                self.highest = max(self.highest, message.block)
            else:
                assert isinstance(message, OptionAck | Error)
        if done is not None:
            self.finished = True
            assert done.stats.outcome in {
                "complete",
                "client-error",
                "size-probe",
                "timeout",
                "protocol-error",
            }

    @invariant()
    def deadline_while_alive(self):
        assert self.session.finished == self.finished
        assert (self.session.deadline is None) == self.finished

    @rule(kind=st.sampled_from(["highest", "below", "same-again", "future", "zero"]))
    def ack(self, kind):
        block = {
            "highest": self.highest,
            "below": max(0, self.highest - 2),
            "same-again": self.highest,
            "future": self.highest + 5,
            "zero": 0,
        }[kind]
        self.check(self.session.receive(encode_ack(block & 0xFFFF), self.now))
        if kind == "same-again":
            self.check(self.session.receive(encode_ack(block & 0xFFFF), self.now))

    @rule(block=st.integers(0, 0xFFFF))
    def ack_anything(self, block):
        self.check(self.session.receive(encode_ack(block), self.now))

    @rule(code=st.integers(0, 9))
    def error(self, code):
        self.check(self.session.receive(encode_tftp(Error(code, "bye")), self.now))

    @rule(
        datagram=st.sampled_from(
            [
                encode_tftp(Data(1, b"x")),
                encode_tftp(ReadRequest("f")),
                encode_tftp(WriteRequest("f")),
                encode_tftp(OptionAck((("blksize", "8"),))),
            ]
        )
        | st.binary(max_size=12)
    )
    def other_datagram(self, datagram):
        self.check(self.session.receive(datagram, self.now))

    @rule()
    def request_repeated(self):
        self.check(self.session.repeat(self.now))

    @rule(dt=st.floats(0, 10))
    def time_passes_then_expire(self, dt):
        self.now += dt
        self.check(self.session.expire(self.now))

    @precondition(lambda self: not self.finished)
    @rule()
    def expire_at_deadline(self):
        deadline = self.session.deadline
        patience = (self.limits.max_retries + 1) * self.ceiling  # an OACK waits it all
        assert deadline is not None and deadline - self.now <= patience + LINGER + 1e-9
        self.now = max(self.now, deadline)
        self.check(self.session.expire(self.now))

    @precondition(lambda self: not self.finished)
    @rule()
    def client_vanishes(self):
        """From any state, with no more ACKs the session times out after bounded resends."""
        bound = math.ceil(math.log2(self.ceiling / self.limits.min_timeout))
        bound += self.limits.max_retries + 2
        for _ in range(bound):
            deadline = self.session.deadline
            assert deadline is not None
            self.now = max(self.now, deadline)
            self.check(self.session.expire(self.now))
            if self.finished:
                return
        raise AssertionError(f"still alive after {bound} expiries")


SessionUnderAnyInput.TestCase.settings = settings(
    max_examples=STATEFUL_EXAMPLES, stateful_step_count=40, deadline=None
)
test_session_under_any_input = SessionUnderAnyInput.TestCase


@settings(max_examples=STATEFUL_EXAMPLES, deadline=None)
@given(
    size=st.integers(0, 6000),
    blksize=st.sampled_from([8, 64, 512]),
    window=st.sampled_from([1, 2, 4, 16]),
    drops=st.lists(st.booleans(), max_size=80),
)
def test_lossy_network_still_delivers_every_byte_in_order(size, blksize, window, drops):
    """Datagrams lost either way are recovered by the timer and go-back; when the session
    gives up instead, it is because at least max_retries+1 datagrams in a row were lost."""
    session = make(size, [("blksize", str(blksize)), ("windowsize", str(window))])
    client = WindowClient(blksize=blksize, windowsize=window)
    losses = iter(drops)
    now = 0.0
    pending = session.start(now)
    for _ in range(100_000):
        if (done := finish_of(pending)) is not None:
            break
        answers = [
            client.on_datagram(datagram) for datagram in sends(pending) if not next(losses, False)
        ]
        now += 0.001
        pending = []
        for answer in answers:
            if answer is not None and not next(losses, False):
                pending.extend(session.receive(answer, now))
        while not pending and session.state is State.OACK_SENT:
            # Only the client's timer moves this state on, as every real client's does:
            # its RRQ again while no OACK came, else its ACK 0 again, once a second.
            assert session.deadline is not None
            if now + 1.0 >= session.deadline:
                break
            now += 1.0
            if not next(losses, False):
                again = session.receive(encode_ack(0), now) if client.oack_seen else None
                pending = session.repeat(now) if again is None else again
        if not pending:
            assert session.deadline is not None
            now = max(now, session.deadline)
            pending = session.expire(now)
    else:
        raise AssertionError("transfer did not end")
    if done.stats.outcome == "complete":
        assert (client.received, client.corrupt) == (size, 0)
    else:
        assert done.stats.outcome == "timeout" and sum(drops) >= SessionLimits().max_retries + 1


def test_forward_ack_after_a_resend_drops_the_backoff() -> None:
    """Two timeouts double the wait twice; the ACK that moves the transfer on must bring
    the next deadline back to the measured timeout, or a lossy link slows to a crawl
    (Karn's rule keeps that ACK's own round trip out of the estimate)."""
    session = make(size=10 * 512, limits=SessionLimits(initial_timeout=1.0, min_timeout=0.05))
    session.start(0.0)
    session.receive(encode_ack(1), 0.01)  # a 10 ms round trip: timeout floored at 50 ms
    assert session.deadline == pytest.approx(0.06)
    session.expire(0.06)
    session.expire(0.16)
    assert session.deadline == pytest.approx(0.36)  # backed off: 50 -> 100 -> 200 ms
    session.receive(encode_ack(2), 0.4)
    assert session.deadline == pytest.approx(0.45)


def test_a_late_ack_is_stale_even_when_the_server_allows_windowsize_65535():
    """tftp.max_windowsize accepts 65535, but a window over half the block-number space
    would read a late ACK (one block before the last ACK) as the ACK of the whole next
    window and skip blocks the client never got; the window is capped so it cannot."""
    session = make(
        8 * 140_000,
        [("blksize", "8"), ("windowsize", "65535")],
        SessionLimits(max_windowsize=65535),
    )
    session.start(0.0)
    first = blocks(session.receive(encode_ack(0), 0.0))
    assert len(first) <= 32767
    last = first[-1]
    session.receive(encode_ack(last - 1), 0.0)  # go back: the last block was lost
    assert session.receive(encode_ack(last - 2), 0.0) == [], "a late ACK moves nothing"


def _both_ways(session: ReadSession, datagram: bytes, now: float) -> list[bytes]:
    """What the adapter does: next_lockstep first, receive when it says None."""
    following = session.next_lockstep(datagram, now)
    if following is None:
        return sends(session.receive(datagram, now))
    return [following]


def _observable(session: ReadSession) -> tuple:
    return (session.state, session.deadline, session.bytes_acknowledged, session.stats)


@settings(max_examples=max(FUZZ_EXAMPLES // 20, 50), deadline=None)
@given(
    size=st.integers(0, 5000),
    real_size=st.integers(0, 5000),
    blksize=st.sampled_from([None, "8", "512", "1468"]),
    window=st.sampled_from([None, "1", "4"]),
    steps=st.lists(
        st.tuples(
            st.sampled_from(["ack-sent", "ack-earlier", "ack-any", "error", "junk", "expire"]),
            st.integers(0, 0xFFFF),
            st.floats(0, 3),
        ),
        max_size=60,
    ),
)
def test_next_lockstep_is_receive_for_its_case_and_none_otherwise(
    size, real_size, blksize, window, steps
):
    """The adapter's per-block fast path may never change what the engine does: two
    sessions fed the same inputs, one through receive alone and one through
    next_lockstep first, send the same datagrams and end in the same state, including
    windows, resends, stale ACKs and a file that shrinks under the transfer."""
    options = [(n, v) for n, v in (("blksize", blksize), ("windowsize", window)) if v]
    plain, fast = (
        ReadSession(
            ReadRequest("f", "octet", tuple(options)),
            PatternSource(size, min(size, real_size)),
            SessionLimits(),
            0.0,
        )
        for _ in range(2)
    )
    now = 0.0
    assert sends(plain.start(now)) == sends(fast.start(now))
    for kind, number, dt in steps:
        now += dt
        sent = plain._sent  # the block in flight, as the client would ACK it
        datagram = {
            "ack-sent": encode_ack(sent & 0xFFFF),
            "ack-earlier": encode_ack(max(0, sent - 1) & 0xFFFF),
            "ack-any": encode_ack(number),
            "error": encode_tftp(Error(0, "bye")),
            "junk": number.to_bytes(4, "big"),
        }.get(kind)
        if datagram is None:
            assert sends(plain.expire(now)) == sends(fast.expire(now))
        else:
            assert sends(plain.receive(datagram, now)) == _both_ways(fast, datagram, now)
        assert _observable(plain) == _observable(fast)


def test_next_lockstep_answers_the_ack_of_the_block_in_flight_with_the_next_block():
    session = make(size=3 * 512)
    session.start(0.0)
    assert decode_data(session.next_lockstep(encode_ack(1), 0.01)).block == 2
    assert session.next_lockstep(encode_ack(1), 0.02) is None, "a duplicate is receive's"
    assert session.next_lockstep(encode_tftp(Error(0, "x")), 0.02) is None
