"""The text log line Twisted's ``textFileLogObserver`` writes, made without its per-event cost.

Under a DHCP storm every ACK is an info line, and Twisted spent most of a tenth
of a millisecond on each (benchmarks/dhcp_profile.py): ``formatWithCall`` runs
``string.Formatter`` in Python to allow ``{method()}`` in formats, and the
timestamp builds a time zone and a datetime per event.  pxed's formats never
call anything, so ``str.format_map`` gives the same text, and a timestamp that
names whole seconds is the same for every event of that second.

Anything off that common path (no format, a traceback, ``log_system``, a legacy
flattened event, a format that needs a call or does not fit its fields) goes
to Twisted's own formatter, so every line is byte for byte what it would write.
"""

from __future__ import annotations

import math

from twisted.logger import LogEvent, formatEventAsClassicLogText, formatTime, timeFormatRFC3339

# Events carrying these take Twisted's path: a traceback, a system name, a legacy event.
_TWISTED_KEYS = frozenset({"log_failure", "log_system", "log_flattened"})


class ClassicLines:
    """``formatEventAsClassicLogText`` with RFC 3339 timestamps, as textFileLogObserver uses."""

    def __init__(self) -> None:
        self._second: int | None = None
        self._stamp = ""

    def __call__(self, event: LogEvent) -> str | None:
        format = event.get("log_format")
        level = event.get("log_level")
        when = event.get("log_time")
        if type(format) is not str or level is None or when is None or _TWISTED_KEYS & event.keys():
            return self._twisted(event)
        try:
            text = format.format_map(event)
        except Exception:
            return self._twisted(event)
        if not text:
            return self._twisted(event)
        namespace = event.get("log_namespace", "-")
        line = f"{self._timestamp(when)} [{namespace}#{level.name}] {text}"
        return line.replace("\n", "\n\t") + "\n"

    def _timestamp(self, when: float) -> str:
        """The time zone offset changes only on a whole second, so one second, one text."""
        second = _second(when)
        if second != self._second:
            self._second, self._stamp = second, formatTime(when, timeFormatRFC3339)
        return self._stamp

    @staticmethod
    def _twisted(event: LogEvent) -> str | None:
        return formatEventAsClassicLogText(
            event, formatTime=lambda when: formatTime(when, timeFormatRFC3339)
        )


def _second(when: float) -> int:
    """The second ``datetime.fromtimestamp`` shows: it rounds to the microsecond first."""
    fraction, whole = math.modf(when)
    micro = round(fraction * 1e6)
    if micro >= 1_000_000:
        whole += 1
    elif micro < 0:
        whole -= 1
    return int(whole)
