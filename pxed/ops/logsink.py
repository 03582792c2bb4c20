"""pxed's log observer: a level threshold, text or JSON lines, and Twisted's UDP noise demoted.

Twisted's ``udp.Port`` logs "X starting on N" and "(UDP Port N Closed)" for
every port unconditionally (``noisy = False`` only silences the protocol's own
start/stop lines). A TFTP server opens a port per transfer, so at info level
those two lines would outnumber the transfer events. As MAAS does for its TFTP
server, they are demoted to debug here rather than dropped.

twistd takes the observer from the application's ``ILogObserver`` component,
and a tap module never sees the application, except that twistd calls
``setServiceParent(application)`` on the service ``makeService`` returned, just
before it starts logging. ``LoggingRoot`` is a ``MultiService`` that sets the
component at that moment: make it the top service and twistd logs through
``pxed_observer`` with the config's ``logging.level`` and ``logging.json``.

That component replaces the observer twistd would have made, so it must write
where twistd would have: stdout in the foreground, else ``--logfile`` (default
``twistd.log``). A daemon's stdout is /dev/null, so writing there lost every
line after the fork (:func:`twistd_log_sink`). It must also keep twistd's
SIGUSR1: twistd installs its handler only for the observer it makes itself,
and without one SIGUSR1 (logrotate's usual ``postrotate``) kills the process.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import Callable, Mapping
from typing import Any, TextIO, cast

from twisted.application.service import MultiService
from twisted.logger import FileLogObserver, ILogObserver, LogEvent, LogLevel
from twisted.python.logfile import LogFile
from zope.interface import implementer

from pxed.ops.logguard import EscapedFields, FloodLimit
from pxed.ops.loglines import ClassicLines

# Per-transfer ports log with this prefix (see pxed.tftp.service); listeners keep their own.
EPHEMERAL_PREFIX = "pxed-tftp-transfer"
_PORT_NOISE = re.compile(rf"^({EPHEMERAL_PREFIX} starting on \d+|\(UDP Port \d+ Closed\))$")
# What twisted.python.log.msg's lines carry as their format (the port lines are such).
_LEGACY_FORMATS = (None, "{log_text}")


def is_port_noise(event: LogEvent) -> bool:
    """A Twisted UDP port open/close line from a per-transfer port."""
    message = event.get("message")
    if event.get("log_format") not in _LEGACY_FORMATS or not message:
        return False
    return bool(_PORT_NOISE.match(" ".join(str(part) for part in message)))


@implementer(ILogObserver)
class Threshold:
    """Passes on the events at ``level`` and above, port noise demoted to debug first.

    What Twisted's ``FilteringLogObserver`` does with a ``LogLevelFilterPredicate``
    (events without a level or a namespace dropped too) and a predicate demoting the
    noise, in one call: that chain compared levels through constantly's Python
    comparisons and walked the namespace's parts, for every event including the
    DISCOVERs' debug lines it drops in a DHCP storm."""

    def __init__(self, inner: ILogObserver, level: LogLevel) -> None:
        self.inner = inner
        self.passing = frozenset(shown for shown in LogLevel.iterconstants() if shown >= level)

    def __call__(self, event: LogEvent) -> None:
        if event.get("log_format") in _LEGACY_FORMATS and is_port_noise(event):
            event["log_level"] = LogLevel.debug
        if event.get("log_level") in self.passing and event.get("log_namespace"):
            self.inner(event)


def pxed_observer(
    level: str | LogLevel = "info",
    json: bool = False,
    sink: TextIO | None = None,
    mac_for_ip: Callable[[str], str | None] | None = None,
) -> ILogObserver:
    """Text (or JSON lines) to ``sink`` (stdout), at ``level`` and above, port noise demoted,
    client strings escaped and floods limited (pxed.ops.logguard)."""
    out = sink if sink is not None else sys.stdout
    if json:
        from pxed.ops.jsonlog import JsonLines  # jsonlog imports this module

        inner: ILogObserver = JsonLines(out, mac_for_ip)  # JSON escapes control characters
    else:
        inner = EscapedFields(FileLogObserver(out, ClassicLines()))
    least = LogLevel.levelWithName(level) if isinstance(level, str) else level
    return Threshold(FloodLimit(inner), least)


def twistd_log_sink(twistd: Mapping[str, Any] | None) -> TextIO | None:
    """The file twistd's own options say to log to; None means stdout.

    ``twistd`` is twistd's parsed options (a tap's ``options.parent``): as
    twistd does, stdout for ``--logfile -`` or ``-n`` without ``--logfile``,
    else the named file or ``twistd.log``, opened now (before the daemon
    changes directory).
    """
    if twistd is None:
        return None
    name = twistd.get("logfile")
    if name == "-" or (twistd.get("nodaemon") and not name):
        return None
    log_file: LogFile = LogFile.fromFullPath(name or "twistd.log")
    if signal.getsignal(signal.SIGUSR1) in (None, signal.SIG_DFL):
        signal.signal(signal.SIGUSR1, lambda number, frame: _rotated(log_file))
    # Not an IO, but what twistd itself gives textFileLogObserver: it writes and flushes.
    return cast(TextIO, log_file)


def _rotated(log_file: LogFile) -> None:
    """SIGUSR1, in the reactor's thread: rotate as twistd does, or follow logrotate.

    Once logrotate has moved the file away, LogFile.rotate() does nothing (it
    rotates only a file still at its path) and lines would go on into the
    moved file: open a new one at the path instead.
    """
    from twisted.internet import reactor

    def rotate() -> None:
        if os.path.exists(log_file.path):
            log_file.rotate()
        else:
            log_file.reopen()

    reactor.callFromThread(rotate)  # type: ignore[attr-defined]


class LoggingRoot(MultiService):
    """pxed's top service: installs ``pxed_observer`` as twistd's log observer when parented.

    The observer exists before the inventory does (twistd makes it before the
    services start), so JSON lines look up the MAC behind a client address
    through ``mac_for_ip``, which the daemon points at its inventory once built.
    """

    def __init__(
        self, level: str | LogLevel = "info", json: bool = False, sink: TextIO | None = None
    ) -> None:
        super().__init__()
        self.level = level
        self.json = json
        self.sink = sink
        self.lookup: Callable[[str], str | None] = lambda ip: None

    def mac_for_ip(self, ip: str) -> str | None:
        return self.lookup(ip)

    def setServiceParent(self, parent: Any) -> None:
        if hasattr(parent, "setComponent"):
            observer = pxed_observer(self.level, self.json, self.sink, self.mac_for_ip)
            parent.setComponent(ILogObserver, observer)
        super().setServiceParent(parent)
