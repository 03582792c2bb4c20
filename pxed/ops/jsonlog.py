"""JSON log lines: one object per event, its named fields flat, and the client's MAC.

Twisted's own ``jsonFileLogObserver`` writes RFC 7464 sequences (each record
led by an ASCII RS byte) with Twisted's bookkeeping inside, which ``jq`` and
most log shippers read badly. Here each event is one plain line: ``log_time``
(ISO 8601 UTC), ``log_level``, ``log_namespace``, ``log_text`` (the message as
the text log shows it), then the event's own fields (``mac``, ``client``,
``file``, ``outcome``...) as the adapter logged them.

Every event about a client carries ``mac``: DHCP and provisioning events log
it; a TFTP or HTTP event knows only the client's address, so the MAC comes
from the per-MAC file name or from the host's reservation or lease
(the same rule the timeline applies to its events).

The daemon hands the observer its address lookup (pxed.ops.logsink.LoggingRoot);
``twistd --logger pxed.ops.jsonlog.observer`` has none, so there a TFTP line
carries a MAC only when its file name names one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from twisted.logger import (
    ILogObserver,
    LogEvent,
)
from twisted.logger import formatEvent as format_event
from zope.interface import implementer

from pxed.config import parse_mac
from pxed.ops.logsink import pxed_observer
from pxed.ops.timeline import MAC_IN_NAME


def json_line(event: LogEvent, mac_for_ip: Callable[[str], str | None]) -> str:
    """The one-line JSON form of ``event`` (no trailing newline)."""
    record: dict[str, Any] = {
        "log_time": _iso(event.get("log_time")),
        "log_level": getattr(event.get("log_level"), "name", None),
        "log_namespace": event.get("log_namespace"),
        "log_text": format_event(event),
    }
    record.update((k, _plain(v)) for k, v in event.items() if not k.startswith("log_"))
    if not isinstance(record.get("mac"), str) and _about_a_client(event):
        try:
            record["mac"] = _client_mac(event, mac_for_ip)
        except Exception:
            record["mac"] = None  # a lease database error must not cost the log line
    failure = event.get("log_failure")
    if failure is not None:
        record["log_traceback"] = failure.getTraceback()
    return json.dumps(record, default=str, separators=(",", ":"))


def _client_mac(event: LogEvent, mac_for_ip: Callable[[str], str | None]) -> str | None:
    """The client MAC a log line is about: a MAC field, a per-MAC file name, or its address."""
    for name in ("mac", "client_mac"):
        value = event.get(name)
        if isinstance(value, str):
            try:
                return parse_mac(value)
            except ValueError:
                continue
    found = MAC_IN_NAME.search(str(event.get("file", "")).lower())
    if found:
        return parse_mac(found.group(1))
    client = event.get("client")
    if isinstance(client, str) and client:
        return mac_for_ip(client.rpartition(":")[0] or client)
    return None


def _about_a_client(event: LogEvent) -> bool:
    return any(name in event for name in ("mac", "client_mac", "client", "requester"))


def _iso(stamp: object) -> str | None:
    if not isinstance(stamp, (int, float)):
        return None
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="milliseconds")


def _plain(value: object) -> object:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


@implementer(ILogObserver)
class JsonLines:
    """A log observer writing :func:`json_line` records to ``sink``."""

    def __init__(self, sink: TextIO, mac_for_ip: Callable[[str], str | None] | None = None):
        self.sink = sink
        self.mac_for_ip = mac_for_ip or (lambda ip: None)

    def __call__(self, event: LogEvent) -> None:
        self.sink.write(json_line(event, self.mac_for_ip) + "\n")
        self.sink.flush()


def observer(level: str = "info", sink: TextIO | None = None) -> ILogObserver:
    """JSON lines on stdout at ``level``, Twisted's per-port noise demoted as in text mode.

    ``twistd --logger pxed.ops.jsonlog.observer pxed ...`` uses this as its log observer;
    ``logging.json: true`` in the config does the same without the flag.
    """
    return pxed_observer(level, json=True, sink=sink)
