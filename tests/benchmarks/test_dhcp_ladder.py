"""The DHCP ladders' shared arithmetic (benchmarks/dhcp_ladder.py), without a network."""

import struct
from pathlib import Path

from benchmarks.dhcp_ladder import Step, best, ladder, latencies, pcap_frames, perfdhcp_counts

PERFDHCP_OUTPUT = """\
***Rate statistics***
Rate: 499.8 4-way exchanges/second, expected rate: 500

***Statistics for: DISCOVER-OFFER***
sent packets: 1500
received packets: 1498
drops: 2

***Statistics for: REQUEST-ACK***
sent packets: 1498
received packets: 1497
drops: 1

"""


def _step(server: str, rate: int, percent: int) -> Step:
    """``rate`` exchanges begun in a second, ``percent`` of them answered."""
    answered = rate * percent // 100
    return Step(server, rate, rate, answered, 1.0, [1.0, 3.0], 0.5, answered)


def test_perfdhcp_counts_read_sent_and_received_per_exchange():
    assert perfdhcp_counts(PERFDHCP_OUTPUT) == {
        "DISCOVER-OFFER": (1500, 1498),
        "REQUEST-ACK": (1498, 1497),
    }


def test_each_answer_is_timed_from_the_oldest_unanswered_begin_of_its_client():
    messages = [(1, b"a", 10.0), (1, b"a", 10.5), (1, b"b", 11.0), (5, b"a", 12.0), (5, b"a", 12.5)]
    messages += [(5, b"c", 13.0)]  # an answer to no client that began: not timed
    assert latencies(messages, 1, 5) == [2000.0, 2000.0]


def test_pcap_frames_are_read_with_their_times(tmp_path: Path):
    pcap = tmp_path / "x.pcap"
    records = [(b"first", 100, 250_000), (b"second frame", 101, 0)]
    pcap.write_bytes(
        bytes(24)
        + b"".join(struct.pack("<IIII", s, us, len(f), len(f)) + f for f, s, us in records)
    )
    assert list(pcap_frames(pcap)) == [(b"first", 100.25), (b"second frame", 101.0)]


def test_step_figures_are_per_answered_exchange():
    step = Step("pxed", 50, 100, 99, 2.0, [float(n) for n in range(1, 101)], 0.099, 99)
    assert step.completion == 0.99
    assert step.per_second == 49.5
    assert step.p99 == 100.0
    assert round(step.cpu_ms, 6) == 1.0


def test_best_is_the_fastest_step_that_completed_99_percent():
    steps = [_step("pxed", 100, 100), _step("pxed", 200, 99), _step("pxed", 400, 98)]
    assert best(steps) is steps[1]
    assert best([_step("pxed", 100, 50)]) is None


def test_a_server_leaves_the_ladder_at_its_first_failing_rate_unless_it_runs_every_rate(
    capsys,
):
    answered = {("kea", 200): 90, ("pg", 200): 90}

    def run(make, rate):
        name = make()
        return _step(name, rate, answered.get((name, rate), 100))

    makers = {"kea": lambda: "kea", "pg": lambda: "pg"}
    results = ladder(makers, [100, 200, 400], 600.0, run, lambda step: step.server, {"pg"})
    assert [step.rate for step in results["kea"]] == [100, 200]
    assert [step.rate for step in results["pg"]] == [100, 200, 400]
    assert capsys.readouterr().out.split() == ["kea", "pg", "kea", "pg", "pg"]
