"""The Twisted TFTP adapter on a fake UDP reactor: ports, timers, refusals, logs, counters.

Every test ends by checking that only the listeners are still bound and no
timer is pending, because a leaked port or DelayedCall per transfer is what
takes a boot server down after a few thousand boots.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.logger import LogLevel, capturedLogs, formatEvent

from protocols.tftp.wire import (
    Ack,
    Data,
    Error,
    ErrorCode,
    OptionAck,
    ReadRequest,
    WriteRequest,
    decode_tftp,
    encode_tftp,
)
from pxed.tftp.service import (
    LISTENER_BUFFER,
    MAX_DATAGRAM,
    TRANSFER_DATAGRAM,
    TftpService,
    TftpSettings,
)
from pxed.tftp.sources import BytesSource, ProviderChain, StaticFile, StaticRoot
from tests.support.fake_udp import FakeUDPReactor
from tests.support.fuzz import FUZZ_EXAMPLES

SERVER = ("10.213.7.1", 69)
OTHER_SERVER = ("10.213.8.1", 69)
CLIENT = ("10.213.7.50", 2070)
PAYLOAD = bytes(range(256)) * 5 + b"tail"  # 1284 bytes: DATA 1, 2 full, DATA 3 short
# Each example runs a whole service and its timers: the grammar fuzz count would take minutes.
fuzz_settings = settings(max_examples=min(FUZZ_EXAMPLES, 2000), deadline=None)


class Harness:
    """A started TftpService on a fake reactor plus a scripted client."""

    def __init__(self, root: Path, **settings: int) -> None:
        self.reactor = FakeUDPReactor()
        self.root = StaticRoot(root)
        self.service = TftpService(
            TftpSettings(listen=(SERVER[0], OTHER_SERVER[0]), **settings),
            ProviderChain([self.root]),
            self.reactor,
            loop=self.reactor,
        )
        self.service.privilegedStartService()
        self.service.startService()
        self.cursor = 0

    def request(self, message: object, client=CLIENT, to=SERVER) -> None:
        datagram = message if isinstance(message, bytes) else encode_tftp(message)
        self.reactor.deliver(datagram, to, client)

    def send(self, message: object, to: tuple[str, int], client=CLIENT) -> None:
        datagram = message if isinstance(message, bytes) else encode_tftp(message)
        self.reactor.deliver(datagram, to, client)

    def replies(self) -> list[tuple[tuple[str, int], object, tuple[str, int]]]:
        """Everything the server wrote since the last call: (from, message, to)."""
        new = self.reactor.sent[self.cursor :]
        self.cursor = len(self.reactor.sent)
        return [(src, decode_tftp(datagram), dst) for src, datagram, dst in new]

    def only_reply(self):
        (reply,) = self.replies()
        return reply

    def run_out_the_clock(self) -> None:
        """Fire timers one after another until none is left (bounded: 1000 steps)."""
        for _ in range(1000):
            calls = self.reactor.getDelayedCalls()
            if not calls:
                return
            self.reactor.advance(max(0.0, min(c.getTime() for c in calls) - self.reactor.seconds()))

    def assert_nothing_leaked(self) -> None:
        bound = sorted(port.address for port in self.reactor.open_ports)
        assert bound == sorted([SERVER, OTHER_SERVER])
        assert self.reactor.getDelayedCalls() == []
        assert self.root.open_files == 0
        assert self.service.stats.active_sessions == 0


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "pxelinux.0").write_bytes(PAYLOAD)
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "text").write_bytes(b"a\nb\r")
    return tmp_path


@pytest.fixture
def h(root: Path) -> Iterator[Harness]:
    yield Harness(root)


def _fetch_lockstep(h: Harness, client=CLIENT, to=SERVER) -> tuple[bytes, tuple[str, int]]:
    """RRQ without options, then ACK every block; returns the data and the transfer's port."""
    h.request(ReadRequest("pxelinux.0"), client=client, to=to)
    received = b""
    while True:
        src, message, dst = h.only_reply()
        assert isinstance(message, Data) and dst == client
        received += message.payload
        h.send(Ack(message.block), to=src, client=client)
        if len(message.payload) < 512:
            return received, src


def test_one_listener_per_address_with_large_receive_buffers(h: Harness) -> None:
    """Where pxed may not force its buffer past rmem_max, it asks for it the plain way."""
    listeners = h.reactor.open_ports
    assert [(p.address, p.max_packet_size, p.socket.receive_buffer) for p in listeners] == [
        (SERVER, MAX_DATAGRAM, LISTENER_BUFFER),
        (OTHER_SERVER, MAX_DATAGRAM, LISTENER_BUFFER),
    ]


def test_listeners_are_bound_in_privileged_start(root: Path) -> None:
    """twistd binds port 69 as root in privilegedStartService, then drops privileges."""
    reactor = FakeUDPReactor()
    service = TftpService(
        TftpSettings(listen=(SERVER[0],)), ProviderChain([]), reactor, loop=reactor
    )
    service.privilegedStartService()
    assert len(reactor.open_ports) == 1
    service.startService()
    assert len(reactor.open_ports) == 1


def test_lockstep_transfer_runs_on_its_own_port_at_the_request_address(h: Harness) -> None:
    data, port = _fetch_lockstep(h)
    assert data == PAYLOAD
    assert port[0] == SERVER[0] and port != SERVER
    transfer_port = next(p for p in h.reactor.ports if p.address == port)
    assert transfer_port.max_packet_size == TRANSFER_DATAGRAM  # ACKs and ERRORs only
    assert transfer_port.protocol.noisy is False
    assert h.service.stats.outcomes["complete"] == 1
    assert h.service.stats.bytes_sent == len(PAYLOAD)
    h.assert_nothing_leaked()


def test_request_at_the_second_address_is_answered_from_that_address(h: Harness) -> None:
    data, port = _fetch_lockstep(h, to=OTHER_SERVER)
    assert data == PAYLOAD and port[0] == OTHER_SERVER[0]
    h.assert_nothing_leaked()


def test_options_are_acknowledged_and_clamped(h: Harness) -> None:
    h.request(ReadRequest("pxelinux.0", options=(("tsize", "0"), ("blksize", "9000"))))
    src, oack, _ = h.only_reply()
    assert isinstance(oack, OptionAck)
    assert dict(oack.options) == {"tsize": str(len(PAYLOAD)), "blksize": "1468"}
    h.send(Ack(0), to=src)
    _, data, _ = h.only_reply()
    assert data == Data(1, PAYLOAD)
    h.send(Ack(1), to=src)
    assert h.replies() == []
    h.assert_nothing_leaked()


def test_configured_blksize_ceiling_is_used(root: Path) -> None:
    h = Harness(root, max_blksize=512)
    h.request(ReadRequest("pxelinux.0", options=(("blksize", "1468"),)))
    _, oack, _ = h.only_reply()
    assert dict(oack.options) == {"blksize": "512"}


def test_stranger_gets_error_5_and_the_transfer_goes_on(h: Harness) -> None:
    h.request(ReadRequest("pxelinux.0"))
    src, _first, _ = h.only_reply()
    stranger = ("10.213.7.66", 4444)
    h.send(Ack(1), to=src, client=stranger)
    reply_src, error, dst = h.only_reply()
    assert (reply_src, dst) == (src, stranger)
    assert isinstance(error, Error) and error.code == ErrorCode.UNKNOWN_TID
    h.send(Ack(1), to=src)
    _, second, dst = h.only_reply()
    assert second.block == 2 and dst == CLIENT


def test_same_client_ip_from_another_port_is_a_stranger_too(h: Harness) -> None:
    h.request(ReadRequest("pxelinux.0"))
    src, _, _ = h.only_reply()
    h.send(Ack(1), to=src, client=(CLIENT[0], CLIENT[1] + 1))
    assert h.only_reply()[1].code == ErrorCode.UNKNOWN_TID


def test_silent_client_times_out_and_everything_is_released(h: Harness) -> None:
    h.request(ReadRequest("pxelinux.0"))
    for _ in range(100):
        if h.service.stats.active_sessions == 0:
            break
        h.reactor.advance(1.0)
    resent = [m for _, m, _ in h.replies() if isinstance(m, Data)]
    assert len(resent) >= 2  # the first block went out again before giving up
    assert h.service.stats.outcomes["timeout"] == 1
    h.assert_nothing_leaked()


def test_client_error_ends_the_transfer(h: Harness) -> None:
    h.request(ReadRequest("pxelinux.0"))
    src, _, _ = h.only_reply()
    h.send(Error(ErrorCode.NOT_DEFINED, "cancelled"), to=src)
    assert h.replies() == []
    assert h.service.stats.outcomes["client-error"] == 1
    h.assert_nothing_leaked()


def test_uefi_size_probe_is_logged_at_debug_not_as_a_failure(h: Harness) -> None:
    """OVMF asks tsize, gets the OACK, then sends ERROR 8 and asks again from a new port."""
    with capturedLogs() as events:
        h.request(ReadRequest("pxelinux.0", options=(("tsize", "0"), ("blksize", "1468"))))
        src, _, _ = h.only_reply()
        h.send(Error(ErrorCode.OPTION_REFUSED, "User aborted the transfer"), to=src)
    (event,) = [e for e in events if e.get("outcome")]
    assert event["outcome"] == "size-probe"
    assert event["log_level"] == LogLevel.debug
    h.assert_nothing_leaked()


def test_one_structured_event_per_transfer(h: Harness) -> None:
    with capturedLogs() as events:
        h.request(ReadRequest("pxelinux.0", options=(("blksize", "1024"), ("windowsize", "4"))))
        src, _, _ = h.only_reply()
        h.send(Ack(0), to=src)
        blocks = [m for _, m, _ in h.replies()]
        h.send(Ack(blocks[-1].block), to=src)
    (event,) = [e for e in events if e.get("outcome")]
    assert event["log_level"] == LogLevel.info
    assert {k: event[k] for k in ("client", "file", "size", "blksize", "windowsize")} == {
        "client": "10.213.7.50:2070",
        "file": "pxelinux.0",
        "size": len(PAYLOAD),
        "blksize": 1024,
        "windowsize": 4,
    }
    assert event["retransmits"] == 0 and event["duration"] >= 0
    assert event["outcome"] == "complete"


def test_missing_file_gets_error_1_from_the_addresss_refusal_port_not_the_listener(
    h: Harness,
) -> None:
    h.request(ReadRequest("vmlinuz"))
    src, error, dst = h.only_reply()
    assert src[0] == SERVER[0] and src != SERVER and dst == CLIENT
    assert error.code == ErrorCode.FILE_NOT_FOUND
    assert h.service.stats.outcomes["not-found"] == 1
    h.request(WriteRequest("vmlinuz"))
    assert h.only_reply()[0] == src
    h.request(ReadRequest("vmlinuz"), to=OTHER_SERVER)
    assert h.only_reply()[0][0] == OTHER_SERVER[0]
    h.assert_nothing_leaked()


def test_pxelinux_config_probe_misses_are_debug_but_other_misses_are_info(h: Harness) -> None:
    with capturedLogs() as events:
        h.request(ReadRequest("pxelinux.cfg/01-52-54-00-12-34-56"))
        h.request(ReadRequest("vmlinuz"))
    levels = [e["log_level"] for e in events if e.get("outcome") == "not-found"]
    assert levels == [LogLevel.debug, LogLevel.info]


def test_a_flood_of_misses_from_one_client_is_answered_and_counted_but_logged_by_sample(
    h: Harness,
) -> None:
    burst = h.service._sampler.burst
    with capturedLogs() as events:
        for _ in range(burst + 10):
            h.request(ReadRequest("vmlinuz"))
        h.reactor.advance(h.service._sampler.window)
        h.request(ReadRequest("vmlinuz"))
    assert len(h.replies()) == burst + 11
    assert h.service.stats.outcomes["not-found"] == burst + 11
    assert h.service.stats.refusals_unlogged == 10
    logged = [e for e in events if e.get("outcome") == "not-found"]
    assert len(logged) == burst + 1
    assert logged[-1]["hidden"] == 10 and logged[-1]["address"] == CLIENT[0]
    assert "10 more like it from 10.213.7.50 not logged" in formatEvent(logged[-1])
    h.assert_nothing_leaked()


@pytest.mark.parametrize("path", ["../etc/passwd", "a/../../x", "..\\x"])
def test_traversal_gets_access_violation(h: Harness, path: str) -> None:
    h.request(ReadRequest(path))
    assert h.only_reply()[1].code == ErrorCode.ACCESS_VIOLATION
    h.assert_nothing_leaked()


def test_write_request_is_refused_read_only(h: Harness) -> None:
    h.request(WriteRequest("upload.bin"))
    error = h.only_reply()[1]
    assert (error.code, error.message) == (ErrorCode.ACCESS_VIOLATION, "pxed is read-only")
    h.assert_nothing_leaked()


def test_malformed_request_gets_error_4_with_the_reason(h: Harness) -> None:
    h.request(b"\x00\x01pxelinux.0")  # file name without its NUL, no mode
    error = h.only_reply()[1]
    assert error.code == ErrorCode.ILLEGAL_OPERATION
    assert "file name" in error.message
    h.assert_nothing_leaked()


def test_unknown_mode_gets_error_4(h: Harness) -> None:
    h.request(ReadRequest("pxelinux.0", mode="mail"))
    assert h.only_reply()[1].code == ErrorCode.ILLEGAL_OPERATION
    h.assert_nothing_leaked()


@pytest.mark.parametrize(
    "datagram", [b"", b"\x00", b"\x00\x09junk", encode_tftp(Ack(1)), encode_tftp(Error(0, "x"))]
)
def test_junk_and_stray_packets_at_the_listener_are_dropped_silently(
    h: Harness, datagram: bytes
) -> None:
    """Answering an ERROR with an ERROR could start a ping-pong with another server."""
    h.request(datagram)
    assert h.replies() == []
    h.assert_nothing_leaked()


@fuzz_settings
@given(st.binary(max_size=80))
def test_no_datagram_at_the_listener_raises_or_leaks(tmp_path_factory, datagram: bytes) -> None:
    root = tmp_path_factory.getbasetemp() / "adapter-fuzz"
    root.mkdir(exist_ok=True)
    h = Harness(root)
    h.request(datagram)
    h.run_out_the_clock()
    h.assert_nothing_leaked()


@fuzz_settings
@given(st.lists(st.binary(max_size=20), max_size=6))
def test_no_datagram_inside_a_transfer_raises_or_leaks(tmp_path_factory, datagrams) -> None:
    root = tmp_path_factory.getbasetemp() / "adapter-fuzz-2"
    root.mkdir(exist_ok=True)
    (root / "f").write_bytes(b"x" * 3000)
    h = Harness(root)
    h.request(ReadRequest("f", options=(("tsize", "0"),)))
    src, _, _ = h.only_reply()
    for datagram in datagrams:
        h.send(datagram, to=src)
    h.run_out_the_clock()
    h.assert_nothing_leaked()


def test_sessions_past_the_global_limit_are_left_unanswered_and_counted_busy(root: Path) -> None:
    h = Harness(root, max_sessions=2)
    for port in (1001, 1002, 1003):
        h.request(ReadRequest("pxelinux.0"), client=(f"10.213.7.{port - 950}", port))
    assert [type(m).__name__ for _, m, _ in h.replies()] == ["Data", "Data"]
    assert h.service.stats.outcomes["busy"] == 1


def test_sessions_past_the_per_client_limit_are_left_unanswered(root: Path) -> None:
    h = Harness(root, max_per_client=2)
    for port in (1001, 1002, 1003):
        h.request(ReadRequest("pxelinux.0"), client=("10.213.7.50", port))
    h.request(ReadRequest("pxelinux.0"), client=("10.213.7.51", 1004))
    destinations = [dst for _, _, dst in h.replies()]
    assert destinations == [("10.213.7.50", 1001), ("10.213.7.50", 1002), ("10.213.7.51", 1004)]


def test_a_deferred_client_that_repeats_its_request_is_served_once_a_slot_frees(
    root: Path,
) -> None:
    h = Harness(root, max_sessions=1)
    h.request(ReadRequest("pxelinux.0"), client=("10.213.7.50", 1001))
    h.request(ReadRequest("pxelinux.0"), client=("10.213.7.51", 1002))
    h.service.server.running[("10.213.7.50", 1001)].abort("shutdown", "test", False)
    h.reactor.advance(0)
    h.request(ReadRequest("pxelinux.0"), client=("10.213.7.51", 1002))
    destinations = [dst for _, _, dst in h.replies()]
    assert destinations == [("10.213.7.50", 1001), ("10.213.7.51", 1002)]


def test_a_finished_session_frees_its_slot(root: Path) -> None:
    h = Harness(root, max_sessions=1)
    _fetch_lockstep(h)
    _fetch_lockstep(h, client=("10.213.7.51", 3000))
    assert h.service.stats.outcomes == {"complete": 2}


def test_retransmitted_request_does_not_start_a_second_transfer(h: Harness) -> None:
    h.request(ReadRequest("pxelinux.0"))
    h.request(ReadRequest("pxelinux.0"))
    assert len(h.replies()) == 1
    assert h.service.stats.active_sessions == 1


def test_a_late_copy_of_the_request_after_the_first_ack_does_not_restart_the_transfer(
    h: Harness,
) -> None:
    """A network may deliver a duplicate RRQ after the client has ACKed block 1; taking it
    for a reboot would move the transfer to a port the client does not know."""
    h.request(ReadRequest("pxelinux.0"))
    old, _, _ = h.only_reply()
    h.send(Ack(1), to=old)
    h.replies()
    h.reactor.advance(0.5)  # within tftp.timeout (1 s) of the start
    assert {src for src, _, _ in h.replies()} <= {old}  # resends of block 2, if any
    h.request(ReadRequest("pxelinux.0"))
    assert h.replies() == []
    h.send(Ack(2), to=old)
    (src, message, _), *_ = h.replies()
    assert (src, message) == (old, Data(3, PAYLOAD[1024:]))
    assert h.service.stats.outcomes["superseded"] == 0


class _ReportsLater:
    """The reactor as the transfer loop's thread sees it: what crosses over waits."""

    def __init__(self, fake: FakeUDPReactor) -> None:
        self.fake = fake
        self.pending: list = []

    def __getattr__(self, name: str):
        return getattr(self.fake, name)

    def callFromThread(self, func, *args, **kwargs) -> None:
        self.pending.append((func, args, kwargs))


def test_the_same_request_right_after_a_transfer_ended_starts_a_new_one(root: Path) -> None:
    """A transfer ends in the transfer loop's thread and the service hears of it a moment
    later; a new request in between must be served, not taken for a late copy."""
    fake = FakeUDPReactor()
    reactor = _ReportsLater(fake)
    settings = TftpSettings(listen=(SERVER[0],))
    service = TftpService(settings, ProviderChain([StaticRoot(root)]), reactor, loop=fake)
    service.startService()
    fake.deliver(encode_tftp(ReadRequest("empty")), SERVER, CLIENT)
    ((src, _, _),) = fake.sent
    fake.deliver(encode_tftp(Ack(1)), src, CLIENT)  # done; "finished" has not crossed yet
    fake.deliver(encode_tftp(ReadRequest("empty")), SERVER, CLIENT)
    assert len(fake.sent) == 2 and fake.sent[1][0] != src
    for func, args, kwargs in reactor.pending:
        func(*args, **kwargs)
    assert service.stats.outcomes["complete"] == 1 and service.stats.active_sessions == 1


def test_new_request_from_a_busy_port_replaces_the_old_transfer(h: Harness) -> None:
    """A rebooted ROM that reuses its port must not wait for the old transfer to time out."""
    h.request(ReadRequest("pxelinux.0"))
    old, _, _ = h.only_reply()
    h.send(Ack(1), to=old)
    h.reactor.advance(1.5)  # a reboot takes longer than tftp.timeout
    h.replies()
    h.request(ReadRequest("pxelinux.0"))
    ((new, message, _),) = (
        h.replies()
    )  # no ERROR from the old port: it could be taken as the answer
    assert new != old and message == Data(1, PAYLOAD[:512])
    assert h.service.stats.active_sessions == 1
    assert h.service.stats.outcomes["superseded"] == 1


def test_stopping_the_service_ends_transfers_and_closes_every_port(h: Harness) -> None:
    h.request(ReadRequest("pxelinux.0"))
    _src, _, _ = h.only_reply()
    stopped = h.service.stopService()
    assert h.only_reply()[1].code == ErrorCode.NOT_DEFINED
    assert stopped.called
    assert h.reactor.open_ports == [] and h.reactor.getDelayedCalls() == []
    assert h.root.open_files == 0 and h.service.stats.outcomes["shutdown"] == 1


def test_netascii_mode_converts_and_tsize_is_the_converted_size(h: Harness) -> None:
    h.request(ReadRequest("text", mode="NetASCII", options=(("tsize", "0"),)))
    src, oack, _ = h.only_reply()
    assert dict(oack.options) == {"tsize": "6"}
    h.send(Ack(0), to=src)
    assert h.only_reply()[1] == Data(1, b"a\r\nb\r\0")


def test_empty_file_is_one_empty_block(h: Harness) -> None:
    h.request(ReadRequest("empty"))
    src, data, _ = h.only_reply()
    assert data == Data(1, b"")
    h.send(Ack(1), to=src)
    h.assert_nothing_leaked()


class _Failing:
    """A disk that fails under the transfer (EIO from the second block)."""

    def open(self, path: str, client: tuple[str, int]) -> _Failing:
        self.closed = False
        return self

    def size(self) -> int:
        return 2000

    def read(self, offset: int, length: int) -> bytes:
        if offset:
            raise OSError(5, "Input/output error")
        return b"x" * length

    def close(self) -> None:
        self.closed = True


def test_a_read_error_ends_the_transfer_with_error_0_and_releases_it() -> None:
    reactor = FakeUDPReactor()
    files = _Failing()
    service = TftpService(
        TftpSettings(listen=(SERVER[0],)), ProviderChain([files]), reactor, loop=reactor
    )
    service.startService()
    reactor.deliver(encode_tftp(ReadRequest("f")), SERVER, CLIENT)
    ((src, _, _),) = reactor.sent
    reactor.deliver(encode_tftp(Ack(1)), src, CLIENT)
    error = decode_tftp(reactor.sent[-1][1])
    assert isinstance(error, Error) and error.code == ErrorCode.NOT_DEFINED
    assert files.closed and [p.address for p in reactor.open_ports] == [SERVER]
    assert reactor.getDelayedCalls() == [] and service.stats.outcomes["error"] == 1


class _Exploding:
    def open(self, path: str, client: tuple[str, int]) -> BytesSource:
        raise RuntimeError("provider bug")


def test_a_provider_bug_is_logged_and_answered_with_error_0() -> None:
    reactor = FakeUDPReactor()
    service = TftpService(
        TftpSettings(listen=(SERVER[0],)), ProviderChain([_Exploding()]), reactor, loop=reactor
    )
    service.startService()
    with capturedLogs() as events:
        reactor.deliver(encode_tftp(ReadRequest("f")), SERVER, CLIENT)
    assert any(e.get("log_failure") for e in events)
    assert decode_tftp(reactor.sent[-1][1]) == Error(ErrorCode.NOT_DEFINED, "cannot read file")
    assert [p.address for p in reactor.open_ports] == [SERVER]
    assert service.stats.outcomes["error"] == 1


def test_a_netascii_conversion_error_closes_the_file(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Netascii reads the whole file to size it; a failure there must not leak the open file."""

    def unreadable(self, offset: int, length: int) -> bytes:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(StaticFile, "read", unreadable)
    h.request(ReadRequest("text", mode="netascii"))
    assert h.only_reply()[1].code == ErrorCode.NOT_DEFINED
    h.assert_nothing_leaked()


CLIENTS = [("10.213.7.50", 2070), ("10.213.7.50", 2071), ("10.213.7.51", 2070)]
FILES = ["pxelinux.0", "one", "nope"]  # three blocks, one block, missing
_operation = st.one_of(
    st.tuples(st.just("rrq"), st.sampled_from(CLIENTS), st.sampled_from(FILES),
              st.sampled_from([(), (("tsize", "0"),), (("windowsize", "4"), ("blksize", "600"))])),
    st.tuples(st.just("ack"), st.sampled_from(CLIENTS), st.integers(0, 4)),
    st.tuples(st.just("ack-last"), st.sampled_from(CLIENTS)),
    st.tuples(st.just("ack-last"), st.sampled_from(CLIENTS)),
    st.tuples(st.just("error"), st.sampled_from(CLIENTS), st.sampled_from([0, 8])),
    st.tuples(st.just("stranger"), st.integers(0, 4)),
    st.tuples(st.just("junk"), st.sampled_from(CLIENTS), st.binary(max_size=8)),
    st.tuples(st.just("tick"), st.floats(0.01, 3.0)),
)  # fmt: skip


@fuzz_settings
@given(st.lists(_operation, max_size=30), st.booleans())
def test_any_interleaving_of_clients_keeps_the_books_straight(
    tmp_path_factory, operations, stop_at_end: bool
) -> None:
    """Requests, ACKs, errors, strangers, junk and time in any order: never an exception,
    the session count always matches the open transfer ports, and in the end (clock run
    out, or the service stopped) every port, timer and file is released."""
    root = tmp_path_factory.getbasetemp() / "adapter-interleave"
    root.mkdir(exist_ok=True)
    (root / "pxelinux.0").write_bytes(PAYLOAD)
    (root / "one").write_bytes(b"x" * 100)
    h = Harness(root, max_per_client=2)
    transfer_port: dict[tuple[str, int], tuple[str, int]] = {}
    last_block: dict[tuple[str, int], int] = {}
    for op in operations:
        kind, *args = op
        if kind == "rrq":
            client, name, options = args
            h.request(ReadRequest(name, options=options), client=client)
        elif kind == "tick":
            h.reactor.advance(args[0])
        else:
            for src, message, dst in h.replies():
                if src[1] != 69:
                    transfer_port[dst] = src
                    last_block[dst] = message.block if isinstance(message, Data) else 0
            client = args[0] if kind != "stranger" else CLIENTS[0]
            port = transfer_port.get(client)
            if port is None:
                continue
            if kind == "ack":
                h.send(Ack(args[1]), to=port, client=client)
            elif kind == "ack-last":
                h.send(Ack(last_block[client]), to=port, client=client)
            elif kind == "error":
                h.send(Error(args[1], "x"), to=port, client=client)
            elif kind == "stranger":
                h.send(Ack(args[0]), to=port, client=("10.213.7.99", 1))
            else:
                h.send(args[1], to=port, client=client)
        transfers = [p for p in h.reactor.open_ports if p.port != 69 and p.interface]
        live = [p for p in transfers if not getattr(p.protocol, "done", True)]
        assert h.service.stats.active_sessions == len(live)
    if stop_at_end:
        h.service.stopService()
        assert h.reactor.open_ports == [] and h.reactor.getDelayedCalls() == []
        assert h.root.open_files == 0 and h.service.stats.active_sessions == 0
    else:
        h.run_out_the_clock()
        h.assert_nothing_leaked()


def test_transfers_lists_a_running_transfer_with_its_progress(h: Harness) -> None:
    """The status page's "transfers in progress": who, what, how far, with which options."""
    h.request(ReadRequest("pxelinux.0"))
    src, first, _ = h.only_reply()
    assert isinstance(first, Data)
    (running,) = h.service.transfers()
    assert running["client"] == f"{CLIENT[0]}:{CLIENT[1]}"
    assert running["file"] == "pxelinux.0"
    assert (running["size"], running["acknowledged"]) == (len(PAYLOAD), 0)
    assert (running["blksize"], running["windowsize"]) == (512, 1)
    h.send(Ack(1), to=src)
    h.only_reply()
    (running,) = h.service.transfers()
    assert running["acknowledged"] == 512
    h.send(Ack(2), to=src)
    h.only_reply()
    h.send(Ack(3), to=src)
    assert h.service.transfers() == []
    h.assert_nothing_leaked()


def test_refusals_alone_do_not_pile_up_closed_ports(h: Harness) -> None:
    """Each refusal's port close was kept until a transfer ended: a server that only
    answers misses (a scanner, a client probing names) grew that list without bound."""
    for n in range(200):
        h.request(ReadRequest(f"missing-{n}"))
    assert len(h.service._closing) <= 1
    h.assert_nothing_leaked()


@pytest.mark.parametrize(
    "failure",
    [BlockingIOError(11, "busy"), OSError(105, "No buffer space"), ConnectionRefusedError()],
)
def test_a_send_the_kernel_refuses_is_a_lost_datagram_the_timer_resends(
    h: Harness, failure: OSError
) -> None:
    """A full socket buffer (EAGAIN, ENOBUFS) or a late ICMP must not end the transfer."""
    h.request(ReadRequest("pxelinux.0"))
    src, _, _ = h.only_reply()
    h.reactor.port_at(src).socket.sendto_error = failure
    h.send(Ack(1), to=src)
    assert h.replies() == [], "DATA 2 was refused by the socket"
    h.reactor.advance(1.0)
    assert [message for _, message, _ in h.replies()] == [Data(2, PAYLOAD[512:1024])]
    h.send(Ack(2), to=src)
    h.send(Ack(3), to=src)
    assert h.service.stats.outcomes["complete"] == 1
    h.assert_nothing_leaked()


def test_a_send_error_that_is_a_bug_ends_the_transfer_with_error_0(h: Harness) -> None:
    h.request(ReadRequest("pxelinux.0"))
    src, _, _ = h.only_reply()
    h.reactor.port_at(src).socket.sendto_error = OSError(90, "Message too long")
    h.send(Ack(1), to=src)
    (_, message, _) = h.only_reply()
    assert isinstance(message, Error) and message.code == ErrorCode.NOT_DEFINED
    assert h.service.stats.outcomes["error"] == 1
    h.assert_nothing_leaked()


def test_acks_keep_one_delayed_call_that_fires_at_the_moved_deadline(h: Harness) -> None:
    """One DelayedCall per transfer, not one per ACK; an early firing re-arms, not resends."""
    h.request(ReadRequest("pxelinux.0"))
    src, _, _ = h.only_reply()
    (armed,) = h.reactor.getDelayedCalls()
    h.reactor.advance(0.5)
    h.send(Ack(1), to=src)
    h.replies()
    assert h.reactor.getDelayedCalls() == [armed] and armed.getTime() == 1.0
    h.reactor.advance(0.5)
    assert h.replies() == [], "the old deadline is not the block's: nothing is resent"
    (rearmed,) = h.reactor.getDelayedCalls()
    deadline = h.service.server.running[CLIENT].session.deadline
    assert rearmed.getTime() == deadline and deadline > 1.0
    h.reactor.advance(deadline - h.reactor.seconds())
    assert [message for _, message, _ in h.replies()] == [Data(2, PAYLOAD[512:1024])]
    h.run_out_the_clock()
    h.assert_nothing_leaked()


def _fetch_windowed(h: Harness) -> tuple[bytes, tuple[str, int]]:
    """RRQ with windowsize 2 at blksize 512, ACK 0 then the last block of each window."""
    h.request(ReadRequest("pxelinux.0", options=(("windowsize", "2"),)))
    src, oack, _ = h.only_reply()
    assert oack == OptionAck((("windowsize", "2"),))
    h.send(Ack(0), to=src)
    received = b""
    while True:
        window = [message for _, message, _ in h.replies()]
        assert all(isinstance(message, Data) for message in window)
        received += b"".join(message.payload for message in window)
        h.send(Ack(window[-1].block), to=src)
        if len(window[-1].payload) < 512:
            return received, src


def test_a_window_goes_out_as_one_gso_send_cut_into_its_datagrams(h: Harness) -> None:
    h.request(ReadRequest("pxelinux.0", options=(("windowsize", "2"),)))
    src, _, _ = h.only_reply()
    socket = h.reactor.port_at(src).socket
    h.send(Ack(0), to=src)
    assert socket.segment == 516
    assert [message for _, message, _ in h.replies()] == [
        Data(1, PAYLOAD[:512]),
        Data(2, PAYLOAD[512:1024]),
    ]
    h.send(Ack(2), to=src)
    assert [message for _, message, _ in h.replies()] == [Data(3, PAYLOAD[1024:])]
    h.send(Ack(3), to=src)
    assert h.service.stats.outcomes["complete"] == 1
    h.assert_nothing_leaked()


def test_without_gso_a_window_is_sent_datagram_by_datagram(root: Path) -> None:
    h = Harness(root)
    original = h.reactor.listenUDP

    def listen_without_gso(*args, **kwargs):
        port = original(*args, **kwargs)
        port.socket.gso = False
        return port

    h.reactor.listenUDP = listen_without_gso
    assert _fetch_windowed(h)[0] == PAYLOAD
    assert h.service.stats.outcomes["complete"] == 1
    h.assert_nothing_leaked()


def test_a_gso_send_the_path_refuses_falls_back_for_the_rest_of_the_transfer(
    h: Harness,
) -> None:
    """EINVAL from a GSO send (path MTU below the segment): the window still goes out."""
    h.request(ReadRequest("pxelinux.0", options=(("windowsize", "2"),)))
    src, _, _ = h.only_reply()
    socket = h.reactor.port_at(src).socket
    socket.sendto_error = OSError(22, "Invalid argument")
    h.send(Ack(0), to=src)
    assert [message.block for _, message, _ in h.replies()] == [1, 2]
    assert socket.segment == 0, "UDP_SEGMENT is cleared, or single sends would fail too"
    h.send(Ack(2), to=src)
    assert [message.block for _, message, _ in h.replies()] == [3]
    h.send(Ack(3), to=src)
    assert h.service.stats.outcomes["complete"] == 1
    h.assert_nothing_leaked()


@pytest.mark.parametrize("blksize", [8192, 32768, 65464])
def test_windows_of_blocks_over_the_path_mtu_still_arrive(root: Path, blksize: int) -> None:
    """A 1500-byte link: GSO refuses segments over the MTU, where plain sends fragment."""
    (root / "big").write_bytes((bytes(range(256)) * (blksize // 64 + 1))[: 4 * blksize])
    h = Harness(root, max_blksize=65464)
    original = h.reactor.listenUDP

    def listen_on_a_1500_byte_link(*args, **kwargs):
        port = original(*args, **kwargs)
        port.socket.mtu = 1500
        return port

    h.reactor.listenUDP = listen_on_a_1500_byte_link
    options = (("blksize", str(blksize)), ("windowsize", "4"))
    h.request(ReadRequest("big", options=options))
    src, _, _ = h.only_reply()
    h.send(Ack(0), to=src)
    window = [message for _, message, _ in h.replies()]
    assert [message.block for message in window] == [1, 2, 3, 4]
    h.send(Ack(4), to=src)
    assert [message for _, message, _ in h.replies()] == [Data(5, b"")]
    h.send(Ack(5), to=src)
    assert h.service.stats.outcomes["complete"] == 1
    h.assert_nothing_leaked()


def test_a_file_that_grows_during_a_transfer_is_sent_at_its_size_when_it_began(
    h: Harness, root: Path
) -> None:
    """What tsize promised: a read-ahead past 32 KiB, taken after the growth, holds bytes
    written past the old end, and none of them is sent."""
    original = bytes(range(256)) * 156 + b"tail"  # 39,940 bytes: more than one read-ahead
    (root / "growing").write_bytes(original)
    h.request(ReadRequest("growing"), client=CLIENT, to=SERVER)
    src, message, _ = h.only_reply()
    with (root / "growing").open("ab") as grown:
        grown.write(b"appended" * 200)
    received = b""
    while True:
        assert isinstance(message, Data)
        received += message.payload
        h.send(Ack(message.block), to=src, client=CLIENT)
        if len(message.payload) < 512:
            break
        src, message, _ = h.only_reply()
    assert received == original
    assert h.service.stats.outcomes["complete"] == 1
