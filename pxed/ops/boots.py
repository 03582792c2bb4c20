"""Each host's current boot as phases with times: what the status page draws in a storm.

A rack powered on at once is dozens of hosts each going DHCP, loader, config, kernel,
initrd, Kickstart, callback (:mod:`pxed.ops.phases` tells which step an event is).
:class:`Boots` keeps, per MAC, only the boot in progress or last finished: each phase's
first start, last end, attempts and whether its last attempt failed. So the operator
sees who is stuck where, and who retried, without reading timelines.

When a boot begins anew is a judgement on the order of phases, since no event says so:

- a DHCP DISCOVER after a kernel or initrd started but before the initrd completed is a
  machine reset mid-boot: a new boot; after the callback, the next power-on: a new boot;
- a DISCOVER once the initrd is in and before the callback is the installer's own DHCP,
  and one after the loader started is iPXE's (chainloaded): the same boot, not drawn;
- a DISCOVER while DHCP is still unanswered or acknowledged but before any file is a
  firmware retry (firmware sends another only when it got no usable offer);
- a loader fetched after the kernel started is a reset too (the installer died);
- a REQUEST with no boot to join (an installed OS renewing its lease) is no boot.

Memory is bounded by a constant: at most :data:`MAX_BOOTS` hosts (least recently active
forgotten first), seven phases each, and boots idle for :data:`WINDOW` seconds drop out.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pxed.config.model import Config
from pxed.events import Event, HttpRequestStarted, HttpResponse
from pxed.ops.phases import PHASES, BootFiles, Step, boot_file_names, boot_files, step_of
from pxed.ops.timeline import MacForIp, event_mac

# A rack or two powering on together; beyond that the page is no longer "at a glance".
MAX_BOOTS = 512
# Boots in progress or finished within the hour; an install that runs longer between its
# Kickstart and its callback comes back as a row with the callback alone.
WINDOW = 3600.0

_AFTER_LOADER = ("kernel", "initrd", "kickstart", "callback")


@dataclass
class Phase:
    """A phase of one boot: first start, last end (None while a transfer of it runs)."""

    name: str
    start: float
    end: float | None = None
    attempts: int = 1
    failed: bool = False
    detail: str = ""
    running: int = 0  # transfers of this phase started and not ended

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "start": self.start,
            "end": self.end,
            "attempts": self.attempts,
            "failed": self.failed,
            "detail": self.detail,
        }


@dataclass
class Boot:
    mac: str
    start: float
    last: float
    phases: dict[str, Phase] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        shown = [self.phases[name].as_json() for name in PHASES if name in self.phases]
        return {"mac": self.mac, "start": self.start, "last": self.last, "phases": shown}

    def done(self, name: str) -> bool:
        phase = self.phases.get(name)
        return phase is not None and phase.end is not None and not phase.failed


class Boots:
    """The current boot of each recently active MAC, bounded in hosts and in time."""

    def __init__(self, max_boots: int = MAX_BOOTS, window: float = WINDOW) -> None:
        self.max_boots = max_boots
        self.window = window
        self._boots: OrderedDict[str, Boot] = OrderedDict()

    def add(self, mac: str, time: float, step: Step) -> None:
        boot = self._boots.pop(mac, None)
        if boot is not None and boot.last < time - self.window:
            boot = None
        if boot is None or _begins_anew(boot, step):
            if step.phase == "dhcp" and step.mark == "end":
                return  # a lease renewed, no boot
            boot = Boot(mac, time, time)
        elif step.phase == "dhcp" and _dhcp_is_over(boot):
            self._boots[mac] = boot
            return  # the installer's or iPXE's own DHCP
        _apply(boot, time, step)
        boot.last = time
        self._boots[mac] = boot  # most recently active last
        while len(self._boots) > self.max_boots:
            self._boots.popitem(last=False)

    def recent(self, now: float) -> list[Boot]:
        """Boots active within the window, the earliest started first."""
        return sorted(
            (boot for boot in self._boots.values() if boot.last >= now - self.window),
            key=lambda boot: (boot.start, boot.mac),
        )


def _begins_anew(boot: Boot, step: Step) -> bool:
    if step.phase == "dhcp" and step.mark != "end":
        if "callback" in boot.phases:
            return True
        mid_boot = "kernel" in boot.phases or "initrd" in boot.phases
        return mid_boot and not boot.done("initrd")
    if step.phase == "loader" and step.mark != "end":
        return any(name in boot.phases for name in _AFTER_LOADER)
    return False


def _dhcp_is_over(boot: Boot) -> bool:
    """DHCP done and files fetched since: later exchanges belong to another program."""
    return boot.done("dhcp") and any(name in boot.phases for name in PHASES[1:])


def _apply(boot: Boot, time: float, step: Step) -> None:
    phase = boot.phases.get(step.phase)
    if phase is None:
        phase = boot.phases[step.phase] = Phase(step.phase, time)
    elif step.mark != "end" and (phase.failed or _dhcp_retry(step)):
        phase.attempts += 1
    phase.detail = step.detail or phase.detail
    if step.mark == "start":
        # A client runs one DHCP exchange at a time (a DISCOVER again restarts it), but may
        # run transfers side by side (a tsize probe and the fetch itself).
        phase.running = 1 if step.phase == "dhcp" else phase.running + 1
        phase.end = None
        phase.failed = False  # a retry under way; attempts tells it is one
        return
    if step.mark == "end":
        phase.running = max(0, phase.running - 1)
    if phase.running == 0:
        phase.end = time
    phase.failed = not step.ok


def _dhcp_retry(step: Step) -> bool:
    """Every DISCOVER after the first of a boot is the firmware trying again."""
    return step.phase == "dhcp" and step.mark == "start"


class BootsSubscriber:
    """Feeds :class:`Boots` from the event bus; never raises into the publisher.

    TFTP and most HTTP events carry no MAC: TFTP ones are matched like the timeline's,
    HTTP ones by the client's address, and only for paths that may be a boot file.
    Only hosts pxed installs are followed: inventory hosts, and unknown MACs when
    ``dhcp.unknown_hosts`` names a profile; a flood of refused MACs evicts no boot.
    The profiles' file names are worked out once per loaded config: this runs for
    every DHCP exchange.
    """

    def __init__(self, boots: Boots, config: Callable[[], Config], mac_for_ip: MacForIp) -> None:
        self.boots = boots
        self.config = config
        self.mac_for_ip = mac_for_ip
        self._for: Config | None = None
        self._names: frozenset[str] = frozenset()
        self._files: dict[str | None, BootFiles] = {}

    def __call__(self, event: Event) -> None:
        try:
            found = self._step(event)
        except Exception:
            return  # a lease database hiccup must not fail the adapter that published
        if found is not None:
            self.boots.add(found[0], event.time, found[1])

    def _step(self, event: Event) -> tuple[str, Step] | None:
        config = self.config()
        if config is not self._for:
            self._for, self._names, self._files = config, boot_file_names(config), {}
        mac = self._mac(event)
        if mac is None:
            return None
        host = config.host(mac)
        profile = host.profile if host is not None else config.dhcp.unknown_profile
        if host is None and profile is None:
            return None
        files = self._files.get(profile)
        if files is None:
            files = self._files[profile] = boot_files(config, config.profiles.get(profile or ""))
        step = step_of(event, files)
        return None if step is None else (mac, step)

    def _mac(self, event: Event) -> str | None:
        if event.mac is not None or not isinstance(event, HttpRequestStarted | HttpResponse):
            return event_mac(event, self.mac_for_ip)
        if event.path.rpartition("/")[2] not in self._names:
            return None
        return self.mac_for_ip(event.client)
