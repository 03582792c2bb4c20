"""The log an attacker writes into: control characters escaped, floods limited and counted."""

from __future__ import annotations

import io

from twisted.logger import LogEvent, Logger, LogLevel, LogPublisher

from pxed.ops.logsink import pxed_observer


def logger_writing_to(out: io.StringIO, json: bool = False) -> Logger:
    publisher = LogPublisher()
    publisher.addObserver(pxed_observer("info", json, out))
    return Logger(namespace="pxed.dhcp", observer=publisher)


def malformed(reason: str, when: float) -> LogEvent:
    return {
        "log_namespace": "pxed.dhcp",
        "log_level": LogLevel.info,
        "log_format": "dhcp malformed datagram dropped: {reason}",
        "log_time": when,
        "outcome": "malformed",
        "reason": reason,
    }


def test_a_hostname_with_cr_lf_and_escapes_reaches_the_text_log_escaped():
    out = io.StringIO()
    evil = "web01\r\n2026-12-07T00:00:00+0000 [pxed.dhcp#info] forged\x1b[2J"
    logger_writing_to(out).info("dhcp ACK to {mac} hostname {hostname}", mac="m", hostname=evil)
    text = out.getvalue()
    assert text.count("\n") == 1 and "\r" not in text and "\x1b" not in text
    assert "web01\\x0d\\x0a2026-12-07" in text and "forged\\x1b[2J" in text


def test_a_traceback_keeps_its_lines():
    out = io.StringIO()
    try:
        raise ValueError("boom")
    except ValueError:
        logger_writing_to(out).failure("it failed")
    assert "Traceback" in out.getvalue() and out.getvalue().count("\n") > 3


def test_malformed_datagrams_are_sampled_and_the_rest_counted():
    """One info line per malformed datagram let anyone fill the disk."""
    out = io.StringIO()
    observe = pxed_observer("info", False, out)
    for n in range(60_000):
        observe(malformed(str(n), 1000.0 + n / 1000))  # 60,000 in a minute
    assert len(out.getvalue().splitlines()) == 20
    observe(malformed("later", 2000.0))  # a new window: written, with the count
    assert "(59980 more like this not logged)" in out.getvalue().splitlines()[-1]


def test_ordinary_events_are_never_limited():
    out = io.StringIO()
    log = logger_writing_to(out)
    for n in range(500):
        log.info("tftp complete: {file}", file=f"f{n}", outcome="complete")
    assert len(out.getvalue().splitlines()) == 500


def test_json_lines_carry_control_characters_escaped_by_json():
    out = io.StringIO()
    logger_writing_to(out, json=True).info("host {hostname}", hostname="a\x1bb\rc")
    line = out.getvalue()
    assert "\x1b" not in line and "\r" not in line and "\\u001b" in line
