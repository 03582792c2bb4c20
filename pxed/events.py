"""What happened to a client, as typed events: the adapters publish, the operator's views
subscribe.

The per-host timeline and /metrics used to learn what happened by reading log events
(matching namespaces and field names in what was written for people). Now each adapter
publishes one typed event per thing that happened to a client (a DHCP or DHCPv6
exchange, a TFTP transfer or refusal, an HTTP request's start and its response, a
Kickstart request, an install callback, a host state change) on the daemon's one
:class:`EventBus`, and logs
the same event's line (a transfer's or request's start is not logged: its end is). The
timeline, the boot view (pxed.ops.boots), /metrics and the status page subscribe;
nothing reads log text.

Every event knows its time, the client's MAC when the adapter knows it (TFTP and HTTP
know only the address: a subscriber that needs the MAC looks it up), its timeline
``KIND``, the ``FORMAT`` of its one log line, and its fields.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from time import time
from typing import Any, ClassVar

from twisted.logger import Logger, LogLevel

log = Logger(namespace="pxed.events")


@dataclass(frozen=True)
class Event:
    time: float
    mac: str | None

    KIND: ClassVar[str] = ""
    FORMAT: ClassVar[str] = ""

    def fields(self) -> dict[str, Any]:
        """The event's own fields (everything but its time), as the log line carries them.

        A copy of the instance's dict, in field order: ``dataclasses.fields`` cost more
        than the rest of a DHCP exchange's event, and a comprehension five times a copy."""
        fields = vars(self).copy()
        del fields["time"]
        return fields

    def text(self) -> str:
        """The line people read, in the log and on the timeline."""
        return self.FORMAT.format_map(vars(self))


@dataclass(frozen=True)
class DhcpExchange(Event):
    KIND = "dhcp"
    FORMAT = "dhcp {kind} from {mac} xid {xid:#010x} on {interface}: {outcome} {ip}: {reason}"

    kind: str  # DISCOVER, REQUEST, ... or BOOTP
    xid: int
    interface: str
    port: int
    client: str
    outcome: str  # offer, ack, nak, bootreply, refused, ignored
    ip: str
    reason: str


@dataclass(frozen=True)
class Dhcp6Exchange(Event):
    """One DHCPv6 client message and what pxed did with it. ``mac`` is None when the
    client is known by its DUID alone (no link-layer DUID, relay option 79 or EUI-64
    source address): ``who`` names it then."""

    KIND = "dhcp"
    FORMAT = "dhcp6 {kind} from {who} ({client}) on {interface}: {outcome} {address}: {reason}"

    who: str  # the MAC, else "DUID <hex>", else the sender's address
    kind: str  # SOLICIT, REQUEST, ..., INFORMATION-REQUEST (the client's, under any relay)
    xid: int
    interface: str
    port: int  # 547, or 4011 for EDK2's boot service request (proxy mode)
    client: str  # [address]:port of the sender (the relay, if relayed)
    relayed: bool
    outcome: str  # advertise, reply, ignored
    address: str  # the first address the answer gives, else "-"
    reason: str


@dataclass(frozen=True)
class TftpTransferStarted(Event):
    """A read request admitted and its transfer's port bound (not logged: its end is)."""

    KIND = "tftp"
    FORMAT = "tftp started: {client} {file} ({size} bytes, {mode})"

    client: str
    file: str
    size: int
    mode: str


@dataclass(frozen=True)
class TftpTransferEnded(Event):
    KIND = "tftp"
    FORMAT = (
        "tftp {outcome}: {client} {file} {size} bytes in {duration:.3f} s, "
        "blksize {blksize} windowsize {windowsize}, {retransmits} retransmits"
    )

    client: str
    file: str
    outcome: str  # complete, size-probe, timeout, client-error, protocol-error, ...
    size: int
    duration: float
    blksize: int
    windowsize: int
    retransmits: int
    bytes_sent: int
    error: str | None


@dataclass(frozen=True)
class TftpRefused(Event):
    """A request answered with an ERROR or left unanswered (busy), or a transfer pxed
    ended itself."""

    KIND = "tftp"
    FORMAT = "tftp {outcome}: {client} {file}: {message}"

    client: str
    file: str
    # not-found, refused, busy, malformed, write-refused, superseded, evicted, shutdown
    outcome: str
    message: str
    code: int | None = None  # the TFTP error code sent, if one was (busy: none)


@dataclass(frozen=True)
class HttpRequestStarted(Event):
    """A request's headers are in and its resource is being looked up (not logged: its
    response is). A kernel or initrd over HTTP takes seconds: the boot view shows it
    running from here."""

    KIND = "http"
    FORMAT = "http {method} {path}: started by {client}"

    method: str
    path: str
    client: str


@dataclass(frozen=True)
class HttpResponse(Event):
    KIND = "http"
    FORMAT = "http {method} {path}: {status} to {client}"

    method: str
    path: str
    status: int
    client: str
    size: int


@dataclass(frozen=True)
class KickstartRequest(Event):
    """A request for an answer file of any family (the name and KIND predate preseed)."""

    KIND = "kickstart"
    FORMAT = "{family} of {mac} for {requester}: {outcome} ({detail})"

    family: str  # kickstart, preseed
    requester: str
    outcome: str  # served, refused, forged header refused
    detail: str  # the template served, or the identity rule that refused


@dataclass(frozen=True)
class CallbackReceived(Event):
    KIND = "callback"
    FORMAT = "{outcome} callback for {mac} from {requester}: {verdict}"

    requester: str
    outcome: str  # done, failed
    verdict: str  # accepted, or why not


@dataclass(frozen=True)
class StateChanged(Event):
    KIND = "state"
    FORMAT = "host {mac}: {old} -> {new} ({source})"

    old: str
    new: str
    source: str


def log_line(logger: Logger, level: LogLevel, event: Event) -> None:
    """Log ``event``'s line: the event dict ``logger.emit(level, event.FORMAT, **fields)``
    would make, handed to the same observer.

    Without ``Logger.emit``'s per-call costs, a tenth of a DHCP exchange's: the level
    checked against a fresh sorted list of every ``LogLevel``, the fields copied into
    keyword arguments and those into the event. ``level`` is a ``LogLevel`` by its type."""
    record = event.fields()
    record["log_logger"] = logger
    record["log_level"] = level
    record["log_namespace"] = logger.namespace
    record["log_source"] = logger.source
    record["log_format"] = event.FORMAT
    record["log_time"] = time()
    logger.observer(record)


class EventBus:
    """Hands each published event to every subscriber, in the publisher's thread and turn.

    A subscriber with a ``kinds`` attribute (a tuple of event classes) is handed only
    events of those classes: /metrics' counters want one kind each, and every DHCP
    exchange called each of them to be turned away. Who gets which class is worked out
    on its first event (a handful of classes exist: the memory is bounded by code)."""

    def __init__(self) -> None:
        self._subscribers: list[Callable[[Event], None]] = []
        self._routes: dict[type[Event], list[Callable[[Event], None]]] = {}

    def subscribe(self, subscriber: Callable[[Event], None]) -> None:
        self._subscribers.append(subscriber)
        self._routes.clear()

    def publish(self, event: Event) -> None:
        """A failing subscriber is logged; the publisher and the other subscribers go on."""
        route = self._routes.get(type(event))
        if route is None:
            route = self._routes[type(event)] = [
                subscriber for subscriber in self._subscribers if _wants(subscriber, event)
            ]
        for subscriber in route:
            try:
                subscriber(event)
            except Exception:
                log.failure("an event subscriber failed on {event}", event=type(event).__name__)


def _wants(subscriber: Callable[[Event], None], event: Event) -> bool:
    kinds: tuple[type[Event], ...] | None = getattr(subscriber, "kinds", None)
    return kinds is None or isinstance(event, kinds)
