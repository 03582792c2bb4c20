"""What the operator side of ``twistd pxed`` shares: timeline, counters, and how to wire them.

``add_services`` (pxed/daemon/services.py) builds one :class:`Operations`, hands it
the services it started, and mounts its HTTP resources on the site
(pxed/ops/status.py). The timeline, the boot view, the negotiated-options counter,
the HTTP status counter and the IPv6 address book subscribe to the daemon's event
bus (pxed.events).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from twisted.application.service import IService
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from pxed.config import parse_mac
from pxed.events import HttpRequestStarted, HttpResponse
from pxed.ops.addresses6 import Addresses6
from pxed.ops.boots import Boots, BootsSubscriber
from pxed.ops.metrics import HttpStats, Negotiated, Sources
from pxed.ops.timeline import Timeline, TimelineSubscriber
from pxed.provisioning.lifecycle import State
from pxed.provisioning.resources import Provisioning
from pxed.text import redacted

log = Logger(namespace="pxed.http")

IP_CACHE_SECONDS = 5.0
IP_CACHE_SIZE = 4096
# Requests about a client's boot or install; others (trees, status, metrics) are counted only:
# an installer fetches thousands of packages from /trees, which would bury the boot steps.
_CLIENT_PATHS = re.compile(r"^/(ks|preseed|boot|tftp|api/hosts/[^/]+/(done|failed))(/|$)")
# A MAC as a whole path segment or before an extension: /ks/<mac>, /boot/<mac>.ipxe, 01-<mac>.
_MAC_IN_PATH = re.compile(r"([0-9a-fA-F]{2}(?:[:-][0-9a-fA-F]{2}){5})(?=$|[/.])")


@dataclass
class Operations:
    """The daemon's running parts as the status page, /metrics and /healthz see them."""

    provisioning: Provisioning
    clock: Callable[[], float]
    timeline: Timeline = field(default_factory=Timeline)
    boots: Boots = field(default_factory=Boots)
    http: HttpStats = field(default_factory=HttpStats)
    negotiated: Negotiated = field(default_factory=Negotiated)
    addresses6: Addresses6 = field(default_factory=Addresses6)
    services: dict[str, IService] = field(default_factory=dict)
    _recent: dict[str, tuple[str | None, float]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        inventory = self.provisioning.inventory
        self.timeline.known = lambda mac: inventory.config.host(mac) is not None
        events = self.provisioning.events
        events.subscribe(self.addresses6)  # first: a REPLY's address is known to the others
        events.subscribe(TimelineSubscriber(self.timeline, self.mac_for_ip))
        events.subscribe(BootsSubscriber(self.boots, lambda: inventory.config, self.mac_for_ip))
        events.subscribe(self.negotiated)
        events.subscribe(self.http)

    def mac_for_ip(self, ip: str) -> str | None:
        """The MAC behind ``ip`` (reservation or lease), remembered for a few seconds.

        TFTP events ask this once per transfer (twice with JSON logs); a boot
        fetches a handful of files in a burst, and each answer otherwise costs a
        lease-database connection inside the reactor. An IPv6 address (TFTP names it in
        brackets) is looked up in what pxed's DHCPv6 replies gave, no database involved.
        """
        if ":" in ip:
            return self.addresses6.mac_for(ip)
        now = self.clock()
        known = self._recent.get(ip)
        if known is not None and known[1] > now:
            return known[0]
        if len(self._recent) >= IP_CACHE_SIZE:
            self._recent.clear()
        mac = self.provisioning.inventory.mac_for_ip(ip, now)
        self._recent[ip] = (mac, now + IP_CACHE_SECONDS)
        return mac

    def database_problem(self) -> str | None:
        """Why the DHCP or DHCPv6 lease database fails, while it does (PostgreSQL: no ACK
        or REPLY leaves)."""
        for name in ("dhcp", "dhcp6"):
            problem = getattr(getattr(self.services.get(name), "store", None), "problem", None)
            if isinstance(problem, str):
                return problem
        return None

    def sources(self) -> Sources:
        tftp, dhcp = self.services.get("tftp"), self.services.get("dhcp")
        return Sources(
            tftp=getattr(tftp, "stats", None),
            dhcp=getattr(dhcp, "stats", None),
            dhcp6=getattr(self.services.get("dhcp6"), "stats", None),
            http=self.http,
            negotiated=self.negotiated,
            host_states=self.host_states,
            server=self.provisioning.inventory.config.server.label,
        )

    def host_states(self) -> Counter[str]:
        """Inventory hosts by state (never seen counts as ready), plus unknown hosts pxed tracks."""
        states = {state.mac: state.state.value for state in self.provisioning.lifecycle.all()}
        counts: Counter[str] = Counter({state.value: 0 for state in State})
        for host in self.provisioning.inventory.config.hosts:
            counts[states.pop(host.mac, State.READY.value)] += 1
        counts.update(states.values())
        return counts


def watch_requests(site: Site, operations: Operations) -> None:
    """Publish every request as it starts and as it ends, and log those about a client's
    boot when they end."""
    previous = site.log
    lookup = site.getResourceFor

    def started(request: Request) -> Resource:
        """Twisted's Request.process looks up the resource once its headers are in."""
        path, mac, _ = _seen(request)
        event = HttpRequestStarted(
            time=operations.clock(),
            mac=mac,
            method=(request.method or b"").decode("latin-1"),
            path=path,
            client=request.getClientAddress().host,
        )
        operations.provisioning.events.publish(event)
        resource: Resource = lookup(request)
        return resource

    def finished(request: Request) -> None:
        previous(request)
        path, mac, about_a_boot = _seen(request)
        event = HttpResponse(
            time=operations.clock(),
            mac=mac,
            method=(request.method or b"").decode("latin-1"),
            path=path,
            status=request.code,
            client=request.getClientAddress().host,
            size=request.sentLength,
        )
        operations.provisioning.events.publish(event)
        if about_a_boot:
            log.info(event.FORMAT, **event.fields())

    setattr(site, "log", finished)  # noqa: B010 - an instance attribute, twisted calls factory.log
    setattr(site, "getResourceFor", started)  # noqa: B010 - likewise, Request.process calls it


_SEEN = "_pxed_seen"


def _seen(request: Request) -> tuple[str, str | None, bool]:
    """The request's path without credentials, the MAC it names, and whether it is about a
    boot: worked out at its start and kept on it for its end (the regexes cost about as
    much as the rest of both events together)."""
    known: tuple[str, str | None, bool] | None = getattr(request, _SEEN, None)
    if known is None:
        path = redacted((request.path or b"").decode("latin-1"))
        about_a_boot = _CLIENT_PATHS.match(path) is not None
        found = _MAC_IN_PATH.search(path) if about_a_boot else None
        known = (path, parse_mac(found.group(1)) if found else None, about_a_boot)
        setattr(request, _SEEN, known)
    return known
