"""JSON log lines: one parseable object per event, named fields flat, the client's MAC added."""

from __future__ import annotations

import io
import json

from twisted.logger import Logger, LogLevel, LogPublisher

from pxed.ops.jsonlog import JsonLines, json_line

WEB = "52:54:00:12:34:56"


def lines_from(emit: object, mac_for_ip: dict[str, str] | None = None) -> list[dict[str, object]]:
    """Log through a private publisher into JsonLines; return the parsed lines."""
    sink = io.StringIO()
    publisher = LogPublisher(JsonLines(sink, (mac_for_ip or {}).get))
    emit(Logger(namespace="pxed.tftp", observer=publisher))  # type: ignore[operator]
    text = sink.getvalue()
    assert text.endswith("\n") and "\x1e" not in text  # plain lines, not RFC 7464 records
    return [json.loads(line) for line in text.splitlines()]


def test_each_event_is_one_json_line_with_its_fields_and_text() -> None:
    (record,) = lines_from(
        lambda log: log.info("tftp {outcome}: {client} {file}", outcome="complete",
                             client="10.213.7.21:2070", file="pxelinux.0", size=42)
    )  # fmt: skip
    assert record["log_text"] == "tftp complete: 10.213.7.21:2070 pxelinux.0"
    assert record["log_level"] == "info" and record["log_namespace"] == "pxed.tftp"
    assert record["size"] == 42 and record["file"] == "pxelinux.0"
    assert str(record["log_time"]).endswith("+00:00")


def test_a_tftp_event_gets_the_mac_behind_the_clients_address() -> None:
    (record,) = lines_from(
        lambda log: log.info("x {client}", client="10.213.7.21:2070", file="pxelinux.0"),
        {"10.213.7.21": WEB},
    )
    assert record["mac"] == WEB


def test_a_per_mac_file_name_gives_the_mac_without_a_lookup() -> None:
    (record,) = lines_from(
        lambda log: log.info("x", client="10.0.0.9:1", file="pxelinux.cfg/01-52-54-00-12-34-56")
    )
    assert record["mac"] == WEB


def test_an_event_about_an_unknown_client_says_so_with_a_null_mac() -> None:
    (record,) = lines_from(lambda log: log.info("x", client="10.0.0.9:1", file="a"))
    assert "mac" in record and record["mac"] is None


def test_an_event_about_no_client_has_no_mac_field() -> None:
    (record,) = lines_from(lambda log: log.info("dhcp: full mode on {interfaces}", interfaces="lo"))
    assert "mac" not in record


def test_a_failure_carries_its_traceback() -> None:
    def emit(log: Logger) -> None:
        try:
            raise OSError("disk gone")
        except OSError:
            log.failure("cannot read {file}", file="x")

    (record,) = lines_from(emit)
    assert record["log_level"] == "critical" and "disk gone" in str(record["log_traceback"])


def test_values_json_cannot_hold_are_written_as_text() -> None:
    event = {"log_format": "{x}", "x": object(), "log_namespace": "n", "log_level": LogLevel.info}
    assert json.loads(json_line(event, lambda ip: None))["x"].startswith("<object")


def test_the_daemons_json_log_filters_by_level_and_uses_its_inventorys_lookup() -> None:
    """LoggingRoot makes twistd's observer before the inventory exists; the lookup follows."""
    from twisted.application.service import Application
    from twisted.logger import ILogObserver

    from pxed.ops.logsink import LoggingRoot

    sink = io.StringIO()
    root = LoggingRoot("info", json=True, sink=sink)
    application = Application("pxed")
    root.setServiceParent(application)
    root.lookup = {"10.213.7.21": WEB}.get  # what twistd pxed sets once the inventory is built
    publisher = LogPublisher(application.getComponent(ILogObserver))
    log = Logger(namespace="pxed.tftp", observer=publisher)
    log.debug("hidden", client="10.213.7.21:1")
    log.info("shown", client="10.213.7.21:1")
    (line,) = sink.getvalue().splitlines()
    assert json.loads(line)["mac"] == WEB
