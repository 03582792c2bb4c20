"""The TFTP listener's decisions, sans-I/O: repeats, reboots, limits, modes, malformed input."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from protocols.tftp.server import (
    LATE_COPY_WINDOW,
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
from protocols.tftp.wire import Ack, ErrorCode, ReadRequest, WriteRequest, encode_tftp

CLIENT = ("10.0.0.5", 2070)
LIMITS = ListenerLimits(max_sessions=3, max_per_client=2, timeout=1.0)


@dataclass
class Transfer:
    """A stand-in for the adapter's transfer: what the listener reads of one."""

    request: ReadRequest
    started: float
    heard: bool = False
    done: bool = False
    size_probe: bool = False


def rrq(name: str = "pxelinux.0", mode: str = "octet", **options: str) -> bytes:
    return encode_tftp(ReadRequest(name, mode, tuple(options.items())))


def begin(server: TftpServer[Transfer], datagram: bytes, client=CLIENT, now=0.0) -> Transfer:
    """Receive ``datagram``, expect a Start, and begin its transfer as the adapter would."""
    actions = server.receive(datagram, client, now)
    assert isinstance(actions[-1], Start), actions
    transfer = Transfer(actions[-1].request, now)
    server.begun(client, transfer)
    return transfer


def test_a_read_request_starts_a_transfer():
    server: TftpServer[Transfer] = TftpServer(LIMITS)
    [action] = server.receive(rrq(tsize="0"), CLIENT, 0.0)
    assert action == Start(CLIENT, ReadRequest("pxelinux.0", "octet", (("tsize", "0"),)))


def test_a_write_request_is_refused_pxed_is_read_only():
    server: TftpServer[Transfer] = TftpServer(LIMITS)
    datagram = encode_tftp(WriteRequest("up.bin", "octet", ()))
    [action] = server.receive(datagram, CLIENT, 0.0)
    assert action == Refuse(
        CLIENT, "up.bin", ErrorCode.ACCESS_VIOLATION, "pxed is read-only", "write-refused"
    )


def test_a_malformed_request_gets_error_4_and_malformed_junk_is_dropped():
    server: TftpServer[Transfer] = TftpServer(LIMITS)
    [refused] = server.receive(b"\x00\x01no-terminator", CLIENT, 0.0)
    assert isinstance(refused, Refuse) and refused.code == ErrorCode.ILLEGAL_OPERATION
    assert refused.outcome == "malformed"
    [dropped] = server.receive(b"\x00\x09junk", CLIENT, 0.0)
    assert isinstance(dropped, Drop)


def test_an_ack_at_the_listener_is_ignored():
    server: TftpServer[Transfer] = TftpServer(LIMITS)
    assert server.receive(encode_tftp(Ack(1)), CLIENT, 0.0) == [Ignore(CLIENT, "Ack")]


def test_an_unknown_mode_is_refused_as_malformed():
    server: TftpServer[Transfer] = TftpServer(LIMITS)
    [action] = server.receive(rrq(mode="mail"), CLIENT, 0.0)
    assert isinstance(action, Refuse) and action.message == "unsupported mode 'mail'"


def test_a_retransmitted_request_lets_the_running_transfer_answer():
    server: TftpServer[Transfer] = TftpServer(LIMITS)
    begin(server, rrq())
    assert server.receive(rrq(), CLIENT, 30.0) == [Repeat(CLIENT, "pxelinux.0")]


def test_a_late_copy_within_the_timeout_of_the_start_is_still_a_repeat():
    server: TftpServer[Transfer] = TftpServer(LIMITS)
    transfer = begin(server, rrq())
    transfer.heard = True
    assert server.receive(rrq(), CLIENT, 0.5) == [Repeat(CLIENT, "pxelinux.0")]


def test_the_same_request_after_the_client_answered_is_a_rebooted_client():
    server: TftpServer[Transfer] = TftpServer(LIMITS)
    transfer = begin(server, rrq())
    transfer.heard = True
    actions = server.receive(rrq(), CLIENT, 5.0)
    assert actions == [
        Supersede(transfer, "superseded", "a new request came from the same port"),
        Start(CLIENT, transfer.request),
    ]


def test_another_file_from_a_busy_port_supersedes_its_transfer():
    server: TftpServer[Transfer] = TftpServer(LIMITS)
    transfer = begin(server, rrq())
    actions = server.receive(rrq("ldlinux.c32"), CLIENT, 0.1)
    assert actions[0] == Supersede(
        transfer, "superseded", "a new request came from the same port"
    ) and isinstance(actions[1], Start)


def test_a_transfer_whose_end_is_on_its_way_is_not_repeated():
    server: TftpServer[Transfer] = TftpServer(LIMITS)
    transfer = begin(server, rrq())
    transfer.done = True
    assert server.receive(rrq(), CLIENT, 0.1) == [Start(CLIENT, transfer.request)]


def test_a_late_copy_of_a_size_probes_request_starts_no_ghost_transfer():
    """The ROM repeated its RRQ before the OACK reached it; the listener read the copy
    after the probe had ended: answering it sent an OACK to a closed port for 12-22 s."""
    server: TftpServer[Transfer] = TftpServer(LIMITS)
    probe = begin(server, rrq(tsize="0"))
    probe.done = probe.size_probe = True
    late = Ignore(CLIENT, "late copy of the request of a transfer that has ended")
    assert server.receive(rrq(tsize="0"), CLIENT, 0.3) == [late]  # its end is on its way
    server.ended(CLIENT, probe, 0.4)
    assert server.receive(rrq(tsize="0"), CLIENT, 1.3) == [late]
    assert server.receive(rrq(tsize="0"), CLIENT, 0.4 + LATE_COPY_WINDOW - 0.1) == [late]


def test_after_a_probe_a_new_request_or_the_same_one_past_the_late_copy_window_is_served():
    server: TftpServer[Transfer] = TftpServer(LIMITS)
    probe = begin(server, rrq(tsize="0"))
    probe.done = probe.size_probe = True
    server.ended(CLIENT, probe, 0.4)
    assert isinstance(server.receive(rrq(), CLIENT, 0.5)[0], Start)  # the read, without tsize
    other = ("10.0.0.5", 2071)
    probe = begin(server, rrq(tsize="0"), other)
    probe.done = probe.size_probe = True
    server.ended(other, probe, 2.0)
    assert isinstance(server.receive(rrq(tsize="0"), other, 2.0 + LATE_COPY_WINDOW)[0], Start)


def test_the_same_request_right_after_a_complete_read_is_served():
    """tftp-hpa's interactive client reads a file again from the same port."""
    server: TftpServer[Transfer] = TftpServer(LIMITS)
    read = begin(server, rrq())
    read.done = read.heard = True
    server.ended(CLIENT, read, 0.2)
    assert isinstance(server.receive(rrq(), CLIENT, 0.3)[0], Start)


def test_past_max_per_client_a_request_is_deferred_unanswered_and_an_end_makes_room():
    server: TftpServer[Transfer] = TftpServer(LIMITS)
    first = begin(server, rrq(), ("10.0.0.5", 1))
    begin(server, rrq(), ("10.0.0.5", 2))
    [busy] = server.receive(rrq(), ("10.0.0.5", 3), 0.0)
    assert busy == Defer(
        ("10.0.0.5", 3), "pxelinux.0", "max_per_client (2) transfers from this address"
    )
    server.ended(("10.0.0.5", 1), first, 0.0)
    assert isinstance(server.receive(rrq(), ("10.0.0.5", 3), 0.0)[0], Start)


def test_past_max_sessions_a_request_gets_no_error_that_would_end_a_firmware_boot():
    """iPXE, EDK2 and pxelinux end a download on any ERROR, busy included; silence makes
    them repeat the RRQ (docs/firmware.md)."""
    server: TftpServer[Transfer] = TftpServer(LIMITS)
    for host in range(3):
        begin(server, rrq(), (f"10.0.0.{host}", 69))
    [busy] = server.receive(rrq(), ("10.0.0.9", 69), 0.0)
    assert busy == Defer(("10.0.0.9", 69), "pxelinux.0", "max_sessions (3) transfers running")


def test_in_a_storm_running_transfers_keep_their_slots_and_repeats_are_admitted_in_turn():
    """Twelve clients for three slots, each repeating its RRQ while unanswered: nobody
    running is disturbed, each slot freed goes to the next repeat, and all get served."""
    server: TftpServer[Transfer] = TftpServer(LIMITS)
    waiting = [(f"10.0.1.{host}", 2000 + host) for host in range(12)]
    running: dict[tuple[str, int], Transfer] = {}
    served, now = 0, 0.0
    while waiting or running:
        for client in list(waiting):
            actions = server.receive(rrq(), client, now)
            assert not any(isinstance(action, Supersede | Refuse) for action in actions)
            if isinstance(start := actions[-1], Start):
                running[client] = Transfer(start.request, now, heard=True)
                server.begun(client, running[client])
                waiting.remove(client)
        assert len(running) <= LIMITS.max_sessions
        now += 0.5  # the clients' retry timer; the oldest transfer ends
        client, transfer = next(iter(running.items()))
        transfer.done = True
        server.ended(client, transfer, now)
        del running[client]
        served += 1
    assert served == 12


def full(server: TftpServer[Transfer], now: float = 0.0) -> list[Transfer]:
    return [begin(server, rrq(), (f"10.0.0.{host}", 69), now) for host in range(3)]


def test_at_max_sessions_a_transfer_never_answered_gives_its_slot_to_a_new_request():
    server: TftpServer[Transfer] = TftpServer(LIMITS)
    oldest, *_ = full(server)  # forged sources: none of them ever answers
    newcomer = ("10.0.0.9", 69)
    evict, start = server.receive(rrq(), newcomer, LIMITS.timeout)
    assert isinstance(evict, Supersede) and evict.transfer is oldest
    assert evict.outcome == "evicted" and start == Start(newcomer, oldest.request)


def test_at_max_sessions_a_transfer_answered_or_still_young_keeps_its_slot():
    server: TftpServer[Transfer] = TftpServer(LIMITS)
    first, second, third = full(server)
    first.heard = second.heard = True  # real clients: they answered
    [busy] = server.receive(rrq(), ("10.0.0.9", 69), LIMITS.timeout / 2)  # third is young
    assert isinstance(busy, Defer)
    evict, _ = server.receive(rrq(), ("10.0.0.9", 69), LIMITS.timeout)
    assert isinstance(evict, Supersede) and evict.transfer is third


def test_an_evicted_transfer_is_neither_evicted_again_nor_repeated():
    server: TftpServer[Transfer] = TftpServer(LIMITS)
    first, second, third = full(server)
    second.heard = third.heard = True
    assert isinstance(server.receive(rrq(), ("10.0.0.9", 69), 5.0)[0], Supersede)
    server.begun(("10.0.0.9", 69), Transfer(first.request, 5.0))
    [busy] = server.receive(rrq(), ("10.0.0.8", 69), 5.0)  # its end has not reached us yet
    assert isinstance(busy, Defer)
    # The evicted client's own retry is a new request, not a repeat of the evicted transfer.
    assert server.receive(rrq(), ("10.0.0.0", 69), 5.0) == [busy_for(("10.0.0.0", 69))]
    server.ended(("10.0.0.0", 69), first, 5.0)
    assert server.active == 3


def busy_for(client: tuple[str, int]) -> Defer:
    return Defer(client, "pxelinux.0", "max_sessions (3) transfers running")


CLIENTS = st.sampled_from([("10.0.0.1", 1), ("10.0.0.1", 2), ("10.0.0.1", 3), ("10.0.0.2", 1)])
DATAGRAMS = st.sampled_from(
    [
        *(rrq(), rrq("ldlinux.c32"), rrq(mode="mail")),
        *(b"\x00\x02w\x00octet\x00", b"\x00\x04\x00\x01", b"\x00\x01bad", b"\xff\xff"),
    ]
)


class ListenerMachine(RuleBasedStateMachine):
    """Any interleaving of datagrams, starts, answers and ends keeps the listener's books right."""

    def __init__(self) -> None:
        super().__init__()
        self.server: TftpServer[Transfer] = TftpServer(LIMITS)
        self.transfers: list[tuple[tuple[str, int], Transfer]] = []
        self.evicted: list[Transfer] = []
        self.now = 0.0

    @rule(datagram=DATAGRAMS, client=CLIENTS, wait=st.floats(0, 3))
    def datagram(self, datagram: bytes, client: tuple[str, int], wait: float) -> None:
        self.now += wait
        running = self.server.running.get(client)
        actions = self.server.receive(datagram, client, self.now)
        *before, last = actions
        assert all(isinstance(action, Supersede) for action in before)
        assert len(before) <= 2
        for action in before:
            assert isinstance(action, Supersede) and not action.transfer.done
            if action.outcome == "evicted":
                assert not action.transfer.heard
                assert self.now - action.transfer.started >= LIMITS.timeout
                assert all(action.transfer is not gone for gone in self.evicted)
                self.evicted.append(action.transfer)
            else:
                assert action.transfer is running
        if isinstance(last, Repeat):
            assert running is not None and running.request.filename == last.filename
        if isinstance(last, Start):
            transfer = Transfer(last.request, self.now)
            self.server.begun(client, transfer)
            self.transfers.append((client, transfer))

    @rule(data=st.data())
    def client_answers_or_transfer_ends(self, data: st.DataObject) -> None:
        if not self.transfers:
            return
        index = data.draw(st.integers(0, len(self.transfers) - 1))
        client, transfer = self.transfers[index]
        if data.draw(st.booleans()):
            transfer.heard = True
        else:
            transfer.done = True
            transfer.size_probe = data.draw(st.booleans())
            self.server.ended(client, transfer, self.now)
            del self.transfers[index]
            self.evicted = [gone for gone in self.evicted if gone is not transfer]

    @invariant()
    def books_match_the_transfers_begun(self) -> None:
        assert self.server.active == len(self.transfers)
        assert self.server.active - len(self.evicted) <= LIMITS.max_sessions
        for address in {client[0] for client, _ in self.transfers}:
            count = sum(1 for client, _ in self.transfers if client[0] == address)
            assert self.server.transfers_from(address) == count <= LIMITS.max_per_client


ListenerMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=30)
test_listener_books_hold_under_any_interleaving = ListenerMachine.TestCase


def test_a_repeated_datagram_is_decoded_once_and_answered_the_same(monkeypatch):
    from protocols.tftp import server as listener

    decoded: list[bytes] = []
    real = listener.decode_tftp

    def counting(datagram: bytes):
        decoded.append(datagram)
        return real(datagram)

    monkeypatch.setattr(listener, "decode_tftp", counting)
    listener._decoded.cache_clear()
    server: TftpServer[Transfer] = TftpServer(LIMITS)
    junk = b"\x00\x01no-terminator"
    answers = [server.receive(d, CLIENT, 0.0) for d in (rrq("a"), junk, rrq("a"), junk)]
    assert answers[0] == answers[2] == [Start(CLIENT, ReadRequest("a", "octet", ()))]
    assert answers[1] == answers[3] and isinstance(answers[1][0], Refuse)
    assert decoded == [rrq("a"), junk]


def test_a_request_longer_than_512_bytes_is_decoded_each_time_not_remembered():
    from protocols.tftp import server as listener

    listener._decoded.cache_clear()
    server: TftpServer[Transfer] = TftpServer(LIMITS)
    long = rrq("x" * 600)
    assert server.receive(long, CLIENT, 0.0) == [Start(CLIENT, ReadRequest("x" * 600))]
    assert listener._decoded.cache_info().currsize == 0
