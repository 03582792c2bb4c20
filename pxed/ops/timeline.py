"""Per-host boot timelines: what each MAC did, with times, from the daemon's typed events.

The adapters publish one event per DHCP exchange, TFTP transfer or refusal,
HTTP response about a boot, Kickstart request, callback and state change
(``pxed.events``); a timeline is those events, sorted by MAC. Most events name
the client's MAC; TFTP knows only the client's address, so its events are
matched to a MAC through the per-MAC file name they ask for
(``pxelinux.cfg/01-<mac>``) or the host's reserved or leased address.

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
from typing import Any

from pxed.config import parse_mac
from pxed.events import (
    Event,
    HttpRequestStarted,
    TftpRefused,
    TftpTransferEnded,
    TftpTransferStarted,
)

# GRUB asks for grub.cfg-01-<mac> with colons too: pxed's grub/grub.cfg uses $net_default_mac.
MAC_IN_NAME = re.compile(r"(?:^|[/\\])(?:01-|grub\.cfg-01-)([0-9a-f]{2}(?:[-:][0-9a-f]{2}){5})$")

# ip -> MAC (or None): a reservation or a lease.
MacForIp = Callable[[str], str | None]


@dataclass(frozen=True)
class Entry:
    """One thing a host did: when, which protocol, what pxed logged, and the event's fields.

    Made from the event when the timeline is read (:meth:`of`): the timeline keeps the
    events themselves, as a DHCP storm adds thousands a second and few are ever read."""

    time: float
    kind: str
    text: str
    fields: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, event: Event) -> Entry:
        return cls(event.time, event.KIND, event.text(), _plain(event))

    def as_json(self) -> dict[str, Any]:
        return {"time": self.time, "kind": self.kind, "text": self.text, "fields": self.fields}


class _Book:
    """Events per MAC, at most ``per_mac`` each and ``max_macs`` MACs (least recent dropped)."""

    def __init__(self, per_mac: int, max_macs: int) -> None:
        self.per_mac = per_mac
        self.max_macs = max_macs
        self.macs: OrderedDict[str, deque[Event]] = OrderedDict()

    def add(self, mac: str, event: Event) -> None:
        events = self.macs.pop(mac, None)
        if events is None:
            events = deque(maxlen=self.per_mac)
        events.append(event)
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

    def add(self, mac: str, event: Event) -> None:
        (self._hosts if self.known(mac) else self._strangers).add(mac, event)

    def events(self, mac: str) -> list[Entry]:
        events = self._hosts.macs.get(mac) or self._strangers.macs.get(mac) or ()
        return [Entry.of(event) for event in events]

    def last_seen(self, mac: str) -> float | None:
        events = self._hosts.macs.get(mac) or self._strangers.macs.get(mac)
        return events[-1].time if events else None

    def macs(self) -> Iterator[str]:
        return iter([*self._hosts.macs, *self._strangers.macs])


def event_mac(event: Event, mac_for_ip: MacForIp) -> str | None:
    """The client MAC an event is about: its own, a per-MAC file name, or its address."""
    if event.mac is not None:
        return event.mac
    if not isinstance(event, TftpTransferStarted | TftpTransferEnded | TftpRefused):
        return None  # an HTTP response without a MAC in its path is no boot step
    found = MAC_IN_NAME.search(event.file.lower())
    if found:
        return parse_mac(found.group(1))
    return mac_for_ip(event.client.rpartition(":")[0] or event.client)


class TimelineSubscriber:
    """Feeds a :class:`Timeline` from the event bus; never raises into the publisher."""

    def __init__(self, timeline: Timeline, mac_for_ip: MacForIp) -> None:
        self.timeline = timeline
        self.mac_for_ip = mac_for_ip

    def __call__(self, event: Event) -> None:
        if isinstance(event, HttpRequestStarted):
            return  # its response says the same, with the status
        try:
            mac = event_mac(event, self.mac_for_ip)
        except Exception:
            return  # a lease database hiccup must not fail the adapter that published
        if mac is not None:
            self.timeline.add(mac, event)


def _plain(event: Event) -> dict[str, Any]:
    """The event's fields, JSON-friendly."""
    return {
        key: value if isinstance(value, (int, float, bool, type(None))) else str(value)
        for key, value in event.fields().items()
    }
