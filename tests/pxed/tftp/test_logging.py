"""pxed's log observer: threshold, and Twisted's per-transfer UDP port lines demoted to debug."""

from __future__ import annotations

import io
import json
from pathlib import Path

from twisted.logger import Logger, LogLevel, LogPublisher
from twisted.python import log as legacy

from pxed.ops.logsink import is_port_noise, pxed_observer, twistd_log_sink


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


def test_logging_root_hands_twistd_the_observer_when_parented() -> None:
    """twistd calls setServiceParent(application) on makeService's result, then starts logging."""
    from twisted.application.service import Application, IService
    from twisted.logger import ILogObserver

    from pxed.ops.logsink import LoggingRoot

    application = Application("pxed")
    root = LoggingRoot("debug", json=True)
    root.setServiceParent(application)
    assert application.getComponent(ILogObserver, None) is not None
    assert root.parent is IService(application)


def test_twistds_log_sink_is_stdout_in_the_foreground_and_the_logfile_as_a_daemon(
    tmp_path: Path,
) -> None:
    """A daemon's stdout is /dev/null: pxed's observer must write to --logfile (or twistd.log)."""
    assert twistd_log_sink(None) is None
    assert twistd_log_sink({"nodaemon": True, "logfile": None}) is None
    assert twistd_log_sink({"nodaemon": True, "logfile": "-"}) is None
    sink = twistd_log_sink({"nodaemon": False, "logfile": str(tmp_path / "pxed.log")})
    assert sink is not None
    sink.write("a line\n")
    sink.flush()
    assert (tmp_path / "pxed.log").read_text() == "a line\n"


def test_make_service_logs_to_twistds_logfile_when_daemonized(tmp_path: Path) -> None:
    """`twistd --logfile F pxed` without -n: pxed's lines go to F, as twistd's own would."""
    from twisted.application.service import Application
    from twisted.logger import ILogObserver, globalLogPublisher

    from pxed.daemon.tap import Options, makeService

    (tmp_path / "tftp").mkdir()
    config = tmp_path / "pxed.yaml"
    config.write_text(
        "server: {address: 127.0.0.1, state_dir: state}\n"
        "tftp: {root: tftp, listen: [127.0.0.1], port: 16969}\n"
        'dhcp: {mode: "off"}\n'
        "http: {enabled: false}\n"
    )
    options = Options()
    options.parent = {"nodaemon": False, "logfile": str(tmp_path / "pxed.log")}
    options.parseOptions(["--config", str(config)])
    application = Application("pxed")
    makeService(options).setServiceParent(application)
    observer = ILogObserver(application)
    globalLogPublisher.addObserver(observer)
    try:
        Logger(namespace="pxed.test").info("daemonized line")
    finally:
        globalLogPublisher.removeObserver(observer)
    assert "daemonized line" in (tmp_path / "pxed.log").read_text()


def _start_fails(tmp_path: Path, http: str, match: str) -> None:
    """twistd prints a SystemExit's message and exits 1; any other exception is a traceback."""
    import pytest

    from pxed.daemon.tap import Options, makeService

    (tmp_path / "tftp").mkdir()
    config = tmp_path / "pxed.yaml"
    config.write_text(
        "server: {address: 127.0.0.1, state_dir: state}\n"
        "tftp: {root: tftp, listen: [127.0.0.1], port: 16969}\n"
        'dhcp: {mode: "off"}\n' + http
    )
    options = Options()
    options.parseOptions(["--config", str(config)])
    with pytest.raises(SystemExit, match=match):
        makeService(options)


def test_a_state_dir_pxed_cannot_use_stops_twistd_with_one_line_not_a_traceback(
    tmp_path: Path,
) -> None:
    (tmp_path / "state/hosts.sqlite3").mkdir(parents=True)  # a folder SQLite cannot open
    _start_fails(
        tmp_path,
        "http: {enabled: false}\n",
        r"^pxed cannot start: .*hosts\.sqlite3: cannot open",
    )


def test_a_tree_image_that_does_not_read_stops_twistd_with_one_line(tmp_path: Path) -> None:
    """An ISO named in trees: that is not an image is a host problem, said in one line."""
    (tmp_path / "junk.iso").write_bytes(b"not an image" * 1000)
    _start_fails(
        tmp_path,
        "http: {listen: [127.0.0.1], port: 18080}\ntrees: {junk: {iso: junk.iso}}\n",
        r"^pxed cannot start: .*junk",
    )
