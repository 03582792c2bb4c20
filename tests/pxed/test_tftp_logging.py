"""pxed's log observer: threshold, and Twisted's per-transfer UDP port lines demoted to debug."""

from __future__ import annotations

import io
import json

from twisted.logger import Logger, LogLevel, LogPublisher
from twisted.python import log as legacy

from pxed.logging import is_port_noise, pxed_observer, use_pxed_logging


def _legacy_event(text: str) -> dict:
    """What twisted.internet.udp's log.msg(text) becomes for a new-style observer."""
    events: list[dict] = []
    publisher = legacy.LogPublisher(events.append, events.append)
    publisher.msg(text)
    return events[0]


def test_transfer_port_open_and_close_lines_are_noise() -> None:
    assert is_port_noise(_legacy_event("pxed-tftp-transfer starting on 40123"))
    assert is_port_noise(_legacy_event("(UDP Port 40123 Closed)"))


def test_listener_start_and_other_lines_are_not_noise() -> None:
    assert not is_port_noise(_legacy_event("_Listener starting on 69"))
    assert not is_port_noise(_legacy_event("pxed-tftp-transfer starting on 40123 and more"))
    assert not is_port_noise({"log_format": "tftp {outcome}", "message": ()})


def _emit(observer, level: LogLevel, text: str, **fields) -> None:
    publisher = LogPublisher(observer)
    Logger(namespace="pxed.tftp", observer=publisher).emit(level, text, **fields)


def test_observer_keeps_info_and_drops_debug_by_default() -> None:
    sink = io.StringIO()
    observer = pxed_observer("info", sink=sink)
    _emit(observer, LogLevel.debug, "tftp size-probe")
    _emit(observer, LogLevel.info, "tftp complete: {file}", file="pxelinux.0")
    observer(_legacy_event("(UDP Port 40123 Closed)"))
    assert "size-probe" not in sink.getvalue()
    assert "tftp complete: pxelinux.0" in sink.getvalue()
    assert "Closed" not in sink.getvalue()


def test_debug_level_shows_everything() -> None:
    sink = io.StringIO()
    observer = pxed_observer("debug", sink=sink)
    _emit(observer, LogLevel.debug, "tftp size-probe")
    observer(_legacy_event("(UDP Port 40123 Closed)"))
    assert "size-probe" in sink.getvalue() and "Closed" in sink.getvalue()


def test_json_lines_keep_the_named_fields() -> None:
    sink = io.StringIO()
    _emit(pxed_observer("info", json=True, sink=sink), LogLevel.info, "x", file="f", size=3)
    event = json.loads(sink.getvalue().strip("\x1e\n"))
    assert (event["file"], event["size"]) == ("f", 3)


def test_use_pxed_logging_sets_twistds_observer_component() -> None:
    from twisted.application.service import Application
    from twisted.logger import ILogObserver

    application = Application("pxed")
    use_pxed_logging(application, "warn")
    assert application.getComponent(ILogObserver, None) is not None


def test_logging_root_hands_twistd_the_observer_when_parented() -> None:
    """twistd calls setServiceParent(application) on makeService's result, then starts logging."""
    from twisted.application.service import Application, IService
    from twisted.logger import ILogObserver

    from pxed.logging import LoggingRoot

    application = Application("pxed")
    root = LoggingRoot("debug", json=True)
    root.setServiceParent(application)
    assert application.getComponent(ILogObserver, None) is not None
    assert root.parent is IService(application)
