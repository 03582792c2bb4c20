"""What an attacker cannot do to pxed's log: forge lines with control characters, or fill
the disk by repeating one cheap datagram.

Both wrap the observer that writes lines (text or JSON); the other observers
(timeline, metrics) still see every event, so counters stay exact.

- :class:`EscapedFields`: every string field an event carries (a hostname, a
  file name, a reason quoting client bytes) is shown with its control
  characters escaped (``pxed.text.printable``): a CR or ESC from a client never
  reaches the log raw. Twisted's own ``log_*`` fields (a traceback) are left be.
- :class:`FloodLimit`: warnings and errors, and events about a refused,
  malformed, dropped or ignored request (``NOISY_OUTCOMES``), are limited per
  kind (namespace, format, outcome): ``burst`` lines per ``window`` seconds,
  the rest counted and not written; the next line of that kind written says
  how many were suppressed.
  One info line per malformed datagram let anyone write 5.7 MB per 60,000.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from twisted.logger import ILogObserver, LogEvent, LogLevel
from zope.interface import implementer

from pxed.text import printable

# What anyone can provoke with one cheap datagram: refusals, junk, and answers to requests
# that change nothing (a RELEASE of a lease the sender does not hold, a NAK, a WRQ).
NOISY_OUTCOMES = frozenset(
    {"refused", "malformed", "dropped", "busy", "ignored", "nak", "not-found", "write-refused"}
)
MAX_KINDS = 1024  # distinct kinds remembered (a format string is code, so few exist)


@implementer(ILogObserver)
class EscapedFields:
    """Passes each event on with its string fields' control characters escaped."""

    def __init__(self, inner: ILogObserver) -> None:
        self.inner = inner

    def __call__(self, event: LogEvent) -> None:
        # One C-level test of all the strings at once, the key-by-key look only when it fails:
        # that look, a Python call per field, cost more than writing the line.
        strings = "".join([value for value in event.values() if isinstance(value, str)])
        if not strings.isprintable() and any(_unsafe(k, v) for k, v in event.items()):
            event = {
                key: printable(value) if _unsafe(key, value) else value
                for key, value in event.items()
            }
        self.inner(event)


def _unsafe(key: str, value: Any) -> bool:
    return isinstance(value, str) and not key.startswith("log_") and not value.isprintable()


@dataclass
class _Kind:
    started: float  # when this window began
    written: int = 0  # lines written in it
    suppressed: int = 0  # lines not written since the last one that was


@implementer(ILogObserver)
class FloodLimit:
    """Writes at most ``burst`` lines of one noisy kind per ``window`` seconds."""

    def __init__(self, inner: ILogObserver, burst: int = 20, window: float = 60.0) -> None:
        self.inner = inner
        self.burst = burst
        self.window = window
        self._kinds: OrderedDict[tuple[str, str, str], _Kind] = OrderedDict()

    def __call__(self, event: LogEvent) -> None:
        if not _noisy(event):
            self.inner(event)
            return
        key = (
            str(event.get("log_namespace", "")),
            str(event.get("log_format", "")),
            str(event.get("outcome", "")),
        )
        now = float(event.get("log_time", 0.0))
        kind = self._kinds.pop(key, None) or _Kind(now)
        self._kinds[key] = kind  # most recent last
        if len(self._kinds) > MAX_KINDS:
            self._kinds.popitem(last=False)
        if now - kind.started >= self.window:
            kind.started, kind.written = now, 0
        if kind.written >= self.burst:
            kind.suppressed += 1
            return
        kind.written += 1
        if kind.suppressed:
            event = {
                **event,
                "log_format": f"{event.get('log_format', '')} "
                "({suppressed} more like this not logged)",
                "suppressed": kind.suppressed,
            }
            kind.suppressed = 0
        self.inner(event)


def _noisy(event: LogEvent) -> bool:
    return event.get("log_level") in _LOUD or event.get("outcome") in NOISY_OUTCOMES


# Warnings and worse, as a set: constantly compares levels in Python.
_LOUD = frozenset(level for level in LogLevel.iterconstants() if level >= LogLevel.warn)
