"""Per-host boot timelines: what each MAC did, with times, read from pxed's own log events.

The adapters already log one structured event per DHCP request, TFTP
transfer, Kickstart served and state change; a timeline is those events,
sorted by MAC. So the timeline is a twisted.logger observer and the adapters
know nothing about it. Most events name the client's ``mac``; TFTP knows
only the client's address, so its events are matched to a MAC through the
per-MAC file name they ask for (``pxelinux.cfg/01-<mac>``) or the host's
reserved or leased address.

Memory is bounded: at most ``per_host`` events per MAC and ``max_hosts`` MACs
(the least recently active forgotten first), and far less for MACs that are
not inventory hosts (:class:`Timeline`). Nothing is persisted: the
timeline is for reading a boot in progress or just failed, the lifecycle
database keeps the durable state.
"""

from __future__ import annotations

import re
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from twisted.application.service import Service
from twisted.logger import ILogObserver, LogEvent, formatEvent, globalLogPublisher

from pxed.config import parse_mac

# Which log namespaces make timeline entries, and the kind each one is.
KINDS = {
    "pxed.dhcp": "dhcp",
    "pxed.tftp": "tftp",
    "pxed.http": "http",
    "pxed.provision": "kickstart",
    "pxed.lifecycle": "state",
}
MAC_FIELDS = ("mac", "client_mac")
# GRUB asks for grub.cfg-01-<mac> with colons too: pxed's grub/grub.cfg uses $net_default_mac.
_MAC_IN_NAME = re.compile(r"(?:^|[/\\])(?:01-|grub\.cfg-01-)([0-9a-f]{2}(?:[-:][0-9a-f]{2}){5})$")

# ip -> MAC (or None): a reservation or a lease.
MacForIp = Callable[[str], str | None]


@dataclass(frozen=True)
class Entry:
    """One thing a host did: when, which protocol, what pxed logged, and the event's fields."""

    time: float
    kind: str
    text: str
    fields: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"time": self.time, "kind": self.kind, "text": self.text, "fields": self.fields}


class _Book:
    """Events per MAC, at most ``per_mac`` each and ``max_macs`` MACs (least recent dropped)."""

    def __init__(self, per_mac: int, max_macs: int) -> None:
        self.per_mac = per_mac
        self.max_macs = max_macs
        self.macs: OrderedDict[str, deque[Entry]] = OrderedDict()

    def add(self, mac: str, entry: Entry) -> None:
        events = self.macs.pop(mac, None)
        if events is None:
            events = deque(maxlen=self.per_mac)
        events.append(entry)
        self.macs[mac] = events  # most recently active last
        while len(self.macs) > self.max_macs:
            self.macs.popitem(last=False)


class Timeline:
    """Recent events per MAC, bounded in both directions.

    Inventory hosts (``known``) keep ``per_host`` events each. Every other MAC,
    refused or unknown, keeps only ``per_stranger`` in a book of its own capped at
    ``max_strangers`` MACs: a LAN full of machines pxed does not serve (or one
    machine sending from random MACs) costs at most that much, never the hosts'
    timelines. With the defaults that is 1024 x 8 entries, a few MB.
    """

    def __init__(
        self,
        per_host: int = 200,
        max_hosts: int = 4096,
        known: Callable[[str], bool] = lambda mac: True,
        per_stranger: int = 8,
        max_strangers: int = 1024,
    ) -> None:
        self.known = known
        self._hosts = _Book(per_host, max_hosts)
        self._strangers = _Book(per_stranger, max_strangers)

    def add(self, mac: str, entry: Entry) -> None:
        (self._hosts if self.known(mac) else self._strangers).add(mac, entry)

    def events(self, mac: str) -> list[Entry]:
        return list(self._hosts.macs.get(mac) or self._strangers.macs.get(mac) or ())

    def last_seen(self, mac: str) -> float | None:
        events = self._hosts.macs.get(mac) or self._strangers.macs.get(mac)
        return events[-1].time if events else None

    def macs(self) -> Iterator[str]:
        return iter([*self._hosts.macs, *self._strangers.macs])


def event_kind(event: LogEvent) -> str | None:
    """The timeline kind of a log event, or None if it is not about a client."""
    kind = KINDS.get(event.get("log_namespace", ""))
    text = str(event.get("log_format", ""))
    if kind == "kickstart" and ("callback" in text or "failed install" in text):
        return "callback"
    if kind == "state" and event.get("source") == "callback":
        return "callback"
    return kind


def event_mac(event: LogEvent, mac_for_ip: MacForIp) -> str | None:
    """The client MAC an event is about: a MAC field, a per-MAC file name, or its address."""
    for name in MAC_FIELDS:
        value = event.get(name)
        if isinstance(value, str):
            try:
                return parse_mac(value)
            except ValueError:
                continue
    found = _MAC_IN_NAME.search(str(event.get("file", "")).lower())
    if found:
        return parse_mac(found.group(1))
    client = event.get("client")
    if isinstance(client, str) and client:
        return mac_for_ip(client.rpartition(":")[0] or client)
    return None


def _format(event: LogEvent) -> str:
    return formatEvent(event) if event.get("log_format") else ""


def _fields(event: LogEvent) -> dict[str, Any]:
    """The event's own named fields, JSON-friendly (twisted's log_* bookkeeping left out)."""
    return {
        key: value if isinstance(value, (int, float, bool, type(None))) else str(value)
        for key, value in event.items()
        if not key.startswith("log_")
    }


class TimelineObserver:
    """A log observer feeding a :class:`Timeline`; never raises (it runs inside log calls)."""

    def __init__(self, timeline: Timeline, mac_for_ip: MacForIp) -> None:
        self.timeline = timeline
        self.mac_for_ip = mac_for_ip

    def __call__(self, event: LogEvent) -> None:
        kind = event_kind(event)
        if kind is None:
            return
        try:
            mac = event_mac(event, self.mac_for_ip)
        except Exception:
            return  # a lease database hiccup must not break the caller's log line
        if mac is None:
            return
        entry = Entry(float(event.get("log_time", 0.0)), kind, _format(event), _fields(event))
        self.timeline.add(mac, entry)


class ObserverService(Service):
    """Keeps a log observer on the global publisher while pxed runs."""

    def __init__(self, observer: Callable[[LogEvent], None]) -> None:
        self.observer = observer

    def startService(self) -> None:
        super().startService()
        # Twisted types observers as ILogObserver; any callable taking the event is one.
        globalLogPublisher.addObserver(cast(ILogObserver, self.observer))

    def stopService(self) -> None:
        super().stopService()
        globalLogPublisher.removeObserver(cast(ILogObserver, self.observer))
