"""pxed's text lines are exactly the lines Twisted's textFileLogObserver would write."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.logger import LogLevel, formatEventAsClassicLogText, formatTime, timeFormatRFC3339
from twisted.python.failure import Failure

from pxed.ops.loglines import ClassicLines
from tests.support.fuzz import property_settings


def twisted_line(event: dict[str, Any]) -> str | None:
    return formatEventAsClassicLogText(
        event, formatTime=lambda when: formatTime(when, timeFormatRFC3339)
    )


def event(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "log_format": "dhcp {kind} from {mac} xid {xid:#010x}: {outcome!r}",
        "log_level": LogLevel.info,
        "log_namespace": "pxed.dhcp",
        "log_time": 1_700_000_000.25,
        "kind": "REQUEST",
        "mac": "52:54:00:12:34:56",
        "xid": 0x1234,
        "outcome": "ack",
    }
    base.update(fields)
    return base


def test_a_dhcp_line_is_twisteds_line() -> None:
    e = event()
    assert ClassicLines()(e) == twisted_line(e)


def test_multi_line_text_is_indented_as_twisted_does() -> None:
    e = event(log_format="first\nsecond {mac}")
    assert ClassicLines()(e) == twisted_line(e)


def test_events_off_the_common_path_are_left_to_twisted() -> None:
    lines = ClassicLines()
    failure = Failure(ZeroDivisionError("division by zero"))
    for e in [
        event(log_format="{missing}"),
        event(log_format="{callable()}", callable=lambda: "called"),
        event(log_format="{empty}", empty=""),
        event(log_format=None),
        event(log_failure=failure),
        event(log_system="udp-67"),
        event(log_time=None),
        event(log_level=None),
    ]:
        assert lines(e) == twisted_line(e), e


@property_settings
@given(st.lists(st.floats(0, 4e9, allow_nan=False), min_size=1, max_size=8))
def test_timestamps_match_around_second_boundaries(times: list[float]) -> None:
    """One formatter across many events: its remembered second never shows in the wrong one."""
    lines = ClassicLines()
    near = [t for base in times for t in (base, float(int(base)) - 1e-7, int(base) + 0.9999996)]
    for when in near:
        e = event(log_time=when)
        assert lines(e) == twisted_line(e)
