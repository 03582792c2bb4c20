"""``/metrics``: pxed's live counters in Prometheus text format.

Nothing here counts DHCP or TFTP itself: the adapters keep their own
counters (``DhcpService.stats``, ``Dhcp6Service.stats``, ``TftpService.stats``)
and a collector reads them at scrape time, so a scrape costs nothing between scrapes and the
numbers are the ones the adapters log. Three things the adapters do not
count are counted here: HTTP responses by status and the blksize and
windowsize TFTP transfers negotiated (both from the daemon's typed events,
``pxed.events``), and hosts by install state (read from the lifecycle
database).

Each daemon gets its own ``CollectorRegistry``: prometheus_client's global
registry would mix in process metrics and leak between tests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry
from twisted.web.resource import Resource
from twisted.web.server import Request

from pxed.events import Event, HttpResponse, TftpTransferEnded

if TYPE_CHECKING:
    from pxed.datagram.batching import DatagramStats
    from pxed.tftp.service import TftpStats


@dataclass
class HttpStats:
    """HTTP responses by status code (every request the site finished)."""

    statuses: Counter[int] = field(default_factory=Counter)
    kinds: ClassVar[tuple[type[Event], ...]] = (HttpResponse,)  # what the bus hands it

    def __call__(self, event: Event) -> None:
        """Event subscriber: one count per finished request."""
        if isinstance(event, HttpResponse):
            self.statuses[event.status] += 1


@dataclass
class Negotiated:
    """How many finished TFTP transfers ran with each blksize and windowsize."""

    blksize: Counter[int] = field(default_factory=Counter)
    windowsize: Counter[int] = field(default_factory=Counter)
    kinds: ClassVar[tuple[type[Event], ...]] = (TftpTransferEnded,)  # what the bus hands it

    def __call__(self, event: Event) -> None:
        """Event subscriber: the TFTP adapter's one event per finished transfer carries both."""
        if isinstance(event, TftpTransferEnded):
            self.blksize[event.blksize] += 1
            self.windowsize[event.windowsize] += 1


@dataclass
class Sources:
    """Where the numbers live; a service that is off is None and its metrics are left out."""

    tftp: TftpStats | None = None
    dhcp: DatagramStats | None = None
    dhcp6: DatagramStats | None = None
    http: HttpStats | None = None
    negotiated: Negotiated | None = None
    host_states: Callable[[], Mapping[str, int]] | None = None
    server: str = ""  # server.name: the ``server`` label of the DHCP counters (docs/ha.md)


class PxedCollector(Collector):
    """Reads :class:`Sources` at every scrape."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        s = self.sources
        if s.dhcp is not None:
            yield from dhcp_metrics(s.dhcp, s.server)
        if s.dhcp6 is not None:
            yield from dhcp_metrics(
                s.dhcp6, s.server, "pxed_dhcp6", "DHCPv6", "advertise, reply, ignored"
            )
        if s.tftp is not None:
            yield from tftp_metrics(s.tftp)
        if s.negotiated is not None:
            yield from negotiated_metrics(s.negotiated)
        if s.http is not None:
            yield _counter_by(
                "pxed_http_requests", "HTTP responses by status code", "status", s.http.statuses
            )
        if s.host_states is not None:
            hosts = GaugeMetricFamily("pxed_hosts", "Hosts by install state", labels=["state"])
            for state, count in sorted(s.host_states().items()):
                hosts.add_metric([state], count)
            yield hosts


def dhcp_metrics(
    stats: DatagramStats,
    server: str,
    prefix: str = "pxed_dhcp",
    what: str = "DHCP",
    outcomes: str = "offer, ack, nak, ignored, refused, peer",
) -> Iterator[Metric]:
    """DHCP's counters, or DHCPv6's under ``pxed_dhcp6_``: the two adapters count alike.

    Each carries the ``server`` label (server.name): two servers sharing a database
    (docs/ha.md) scraped into one Prometheus say which did what."""
    messages = CounterMetricFamily(
        f"{prefix}_messages",
        f"{what} requests by message type and what pxed did ({outcomes}...)",
        labels=["server", "type", "outcome"],
    )
    for (kind, outcome), count in sorted(stats.messages.items()):
        messages.add_metric([server, kind, outcome], count)
    yield messages
    for name, help_text, value in (
        ("replies_sent", f"{what} replies sent", stats.replies_sent),
        ("commits", f"{what} lease commits", stats.commits),
        (
            "commit_failures",
            f"{what} lease commits that failed (their replies were not sent)",
            stats.commit_failures,
        ),
        (
            "takeovers",
            f"{what} requests of a live peer's clients answered here: it evidently does not "
            "hear them (docs/ha.md)",
            stats.takeovers,
        ),
    ):
        family = CounterMetricFamily(f"{prefix}_{name}", help_text, labels=["server"])
        family.add_metric([server], value)
        yield family


def tftp_metrics(stats: TftpStats) -> Iterator[Metric]:
    yield _counter_by(
        "pxed_tftp_transfers",
        "TFTP requests by outcome (complete, not-found, refused, timeout, busy...)",
        "outcome",
        stats.outcomes,
    )
    yield CounterMetricFamily(
        "pxed_tftp_refusals_unlogged",
        "TFTP refusals counted in pxed_tftp_transfers but, in a flood of one kind, not logged",
        stats.refusals_unlogged,
    )
    yield CounterMetricFamily("pxed_tftp_sent_bytes", "TFTP payload bytes sent", stats.bytes_sent)
    yield CounterMetricFamily(
        "pxed_tftp_retransmits", "TFTP blocks sent again after a timeout", stats.retransmits
    )
    yield GaugeMetricFamily(
        "pxed_tftp_active_sessions", "TFTP transfers in progress", stats.active_sessions
    )


def negotiated_metrics(negotiated: Negotiated) -> Iterator[Metric]:
    yield _counter_by(
        "pxed_tftp_negotiated_blksize",
        "Finished TFTP transfers by the block size they ran with",
        "blksize",
        negotiated.blksize,
    )
    yield _counter_by(
        "pxed_tftp_negotiated_windowsize",
        "Finished TFTP transfers by the window size they ran with",
        "windowsize",
        negotiated.windowsize,
    )


def _counter_by(name: str, text: str, label: str, counts: Mapping[Any, int]) -> Metric:
    family = CounterMetricFamily(name, text, labels=[label])
    for value, count in sorted(counts.items()):
        family.add_metric([str(value)], count)
    return family


def registry_for(sources: Sources) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(PxedCollector(sources))
    return registry


class MetricsResource(Resource):
    """``GET /metrics``."""

    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self.registry = registry

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode())
        request.setHeader(b"cache-control", b"no-store")
        return generate_latest(self.registry)
