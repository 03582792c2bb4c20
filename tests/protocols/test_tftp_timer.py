"""The adaptive retransmit timer: RFC 6298 estimate, bounded backoff, reset on progress."""

from protocols.tftp.timer import RetransmitTimer


def test_first_sample_sets_the_timeout_to_three_round_trips() -> None:
    """SRTT = R, RTTVAR = R/2, so RTO = R + 4 * R/2 = 3R (RFC 6298 2.2)."""
    timer = RetransmitTimer(initial=1.0, floor=0.01, ceiling=5.0)
    timer.sample(0.1)
    assert abs(timer.rto - 0.3) < 1e-9


def test_timeout_stays_between_floor_and_ceiling() -> None:
    """A LAN round trip must not make the server flood; a slow one never exceeds `timeout`."""
    timer = RetransmitTimer(initial=1.0, floor=0.05, ceiling=2.0)
    timer.sample(0.0001)
    assert timer.rto == 0.05
    timer.sample(10.0)
    assert timer.rto == 2.0


def test_backoff_doubles_up_to_the_ceiling() -> None:
    timer = RetransmitTimer(initial=1.0, floor=0.05, ceiling=3.0)
    timer.backoff()
    assert timer.rto == 2.0
    timer.backoff()
    assert timer.rto == 3.0


def test_progress_drops_the_backoff_back_to_the_estimate() -> None:
    """After a lossy stretch, the next block must not wait the backed-off time."""
    timer = RetransmitTimer(initial=1.0, floor=0.05, ceiling=4.0)
    timer.sample(0.1)
    estimate = timer.rto
    for _ in range(3):
        timer.backoff()
    assert timer.rto > estimate
    timer.progress()
    assert timer.rto == estimate


def test_progress_without_samples_returns_to_the_initial_timeout() -> None:
    timer = RetransmitTimer(initial=1.0, floor=0.05, ceiling=4.0)
    timer.backoff()
    timer.progress()
    assert timer.rto == 1.0
