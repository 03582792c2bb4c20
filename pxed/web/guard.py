"""HTTP connections a hostile client cannot pile up.

Slowloris: ~3,300 connections each sending one header line every 15 s held pxed
at its open-file limit (Twisted's idle timeout restarts on every byte), and TFTP
and /healthz failed with it. So:

- connections are capped in total (``http.max_connections``) and per client
  address (``http.max_per_client``); past either, a new connection is closed at
  accept, costing nothing;
- a request's headers must be complete within ``http.header_timeout`` seconds of
  the connection (or of the previous response, on a kept-alive one), however
  slowly they trickle in; then the connection is aborted;
- the access log never keeps a token sent in a URL (:func:`access_line`).

The open-file budget that keeps TFTP, DHCP and the databases working while HTTP
is at its cap is the daemon's (``pxed.daemon.descriptors``).
"""

from __future__ import annotations

# twisted.web parses a request's Content-Type with email.message, which imports
# email.policy on first use. Imported at start instead: after twistd --uid drops
# privileges the interpreter's own files may not be readable any more (a Python
# installed under /root), and the first POST died with ModuleNotFoundError.
import email.policy  # noqa: F401
from collections import Counter
from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IAddress, IDelayedCall
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel, combinedLogFormatter
from twisted.web.iweb import IAccessLogFormatter
from twisted.web.resource import Resource
from twisted.web.server import Request, Site
from zope.interface import provider

from pxed.config.defaults import default_int
from pxed.text import redacted

log = Logger(namespace="pxed.http")


class GuardedChannel(HTTPChannel):
    """An HTTP connection whose request headers have a deadline a trickle cannot move."""

    site: GuardedSite
    guard_client: str | None = None  # the address it counts against, until it closes
    _headers_due: IDelayedCall | None = None

    def connectionMade(self) -> None:
        super().connectionMade()
        self._expect_headers()

    def allHeadersReceived(self) -> None:
        self._headers_arrived()
        super().allHeadersReceived()

    def requestDone(self, request: Request) -> None:
        self._expect_headers()  # the next request's, cancelled if already buffered
        super().requestDone(request)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._headers_arrived()
        self.site.closed(self)
        super().connectionLost(reason)

    def _expect_headers(self) -> None:
        self._headers_arrived()
        self._headers_due = self.callLater(self.site.header_timeout, self._headers_late)

    def _headers_arrived(self) -> None:
        if self._headers_due is not None and self._headers_due.active():
            self._headers_due.cancel()
        self._headers_due = None

    def _headers_late(self) -> None:
        self._headers_due = None
        log.info(
            "http: request headers from {client} not complete after {seconds} s; closed",
            client=self.guard_client,
            seconds=self.site.header_timeout,
            outcome="dropped",
        )
        if self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]


@provider(IAccessLogFormatter)
def access_line(timestamp: str, request: Request) -> str:
    """Twisted's combined access-log line, with any credential in the URL blotted out."""
    return redacted(combinedLogFormatter(timestamp, request))


@dataclass(frozen=True)
class Limits:
    """The ``http:`` limits: connections in total and per client, the headers' deadline."""

    max_connections: int = default_int("http.max_connections")
    max_per_client: int = default_int("http.max_per_client")
    header_timeout: float = default_int("http.header_timeout")


DEFAULT_LIMITS = Limits()


class GuardedSite(Site):
    """A Site that caps its connections, in total and per client address."""

    # A plain HTTPChannel, not Twisted's wrapper that can switch to HTTP/2 after TLS
    # ALPN: pxed serves no TLS, and the wrapper would hide the channel's hooks.
    protocol = GuardedChannel  # type: ignore[assignment]

    def __init__(self, resource: Resource, reactor: Any, limits: Limits = DEFAULT_LIMITS) -> None:
        super().__init__(resource, reactor=reactor, logFormatter=access_line)
        self.max_connections = limits.max_connections
        self.max_per_client = limits.max_per_client
        self.header_timeout = limits.header_timeout
        self.open = 0
        self.refused = 0
        self._per_client: Counter[str] = Counter()

    def buildProtocol(self, addr: IAddress) -> GuardedChannel | None:  # type: ignore[override]
        client = str(getattr(addr, "host", ""))
        if self.open >= self.max_connections or self._per_client[client] >= self.max_per_client:
            self.refused += 1
            log.info(
                "http: connection from {client} refused: {open} open, {mine} from it",
                client=client,
                open=self.open,
                mine=self._per_client[client],
                outcome="refused",
            )
            return None  # the reactor closes the accepted socket at once
        channel = super().buildProtocol(addr)
        channel.guard_client = client
        self.open += 1
        self._per_client[client] += 1
        return channel  # type: ignore[no-any-return]

    def closed(self, channel: GuardedChannel) -> None:
        client = getattr(channel, "guard_client", None)
        if client is None:
            return
        channel.guard_client = None
        self.open -= 1
        self._per_client[client] -= 1
        if self._per_client[client] <= 0:
            del self._per_client[client]
