"""pxed/tftp/refusals.py: a flood of one kind of refusal is counted, and only sampled."""

from __future__ import annotations

from pxed.tftp import refusals
from pxed.tftp.refusals import RefusalSampler


def test_the_first_burst_of_a_kind_is_shown_and_the_rest_counted() -> None:
    sampler = RefusalSampler(burst=3, window=10.0)
    shown = [sampler.show("10.0.0.5", "not-found", 0.0) for _ in range(5)]
    assert shown == [0, 0, 0, None, None]


def test_the_next_window_shows_again_and_says_how_many_were_hidden() -> None:
    sampler = RefusalSampler(burst=2, window=10.0)
    for _ in range(5):
        sampler.show("10.0.0.5", "not-found", 0.0)
    assert sampler.show("10.0.0.5", "not-found", 10.0) == 3
    assert sampler.show("10.0.0.5", "not-found", 10.0) == 0


def test_kinds_are_the_client_address_and_the_outcome() -> None:
    sampler = RefusalSampler(burst=1, window=10.0)
    assert sampler.show("10.0.0.5", "not-found", 0.0) == 0
    assert sampler.show("10.0.0.5", "busy", 0.0) == 0
    assert sampler.show("10.0.0.6", "not-found", 0.0) == 0
    assert sampler.show("10.0.0.5", "not-found", 0.0) is None


def test_a_boots_pxelinux_probes_are_all_shown() -> None:
    """About ten pxelinux.cfg/ names miss per boot; each belongs on the host's timeline."""
    sampler = RefusalSampler()
    assert all(sampler.show("10.0.0.5", "not-found", 0.0) == 0 for _ in range(13))


def test_forged_addresses_cost_bounded_memory(monkeypatch) -> None:
    monkeypatch.setattr(refusals, "KINDS_KEPT", 8)
    sampler = RefusalSampler(burst=1, window=10.0)
    for n in range(100):
        assert sampler.show(f"10.0.{n // 256}.{n % 256}", "not-found", 0.0) == 0
    assert len(sampler._kinds) == 8
    assert sampler.show("10.0.0.99", "not-found", 0.0) is None  # among the last 8, still known
