"""Which step of a network boot an event is: DHCP, loader, config, kernel, initrd,
Kickstart or callback, and whether it starts, ends or is the whole step.

Pure functions of an event and the host's profile (what its kernel, initrd and loaders
are called); :mod:`pxed.ops.boots` strings the steps into one boot per host.

File names are matched the way clients spell them: TFTP names with or without a
leading ``/`` (pxelinux's ``::/vmlinuz``), ``trees/<tree>/<path>`` for a tree's files
over TFTP, and over HTTP ``/trees/<tree>/<path>`` or ``/tftp/<path>`` (tftp.root).
A TFTP file that is neither a config, a kernel nor an initrd is the loader's
(pxelinux's ``ldlinux.c32``, GRUB's modules); an HTTP path that is none of them is no
boot step (an installer fetches thousands of packages from /trees).
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from dataclasses import dataclass
from typing import Literal

from pxed.config.model import Config, Profile
from pxed.events import (
    CallbackReceived,
    Dhcp6Exchange,
    DhcpExchange,
    Event,
    HttpRequestStarted,
    HttpResponse,
    KickstartRequest,
    TftpRefused,
    TftpTransferEnded,
    TftpTransferStarted,
)

BOOT_SERVICE_PORT = 4011  # EDK2 asks a DHCPv6 proxy for its boot file here
PHASES = ("dhcp", "loader", "config", "kernel", "initrd", "kickstart", "callback")
Mark = Literal["start", "end", "once"]

# pxelinux.cfg/<anything>, grub.cfg and grub.cfg-01-<mac>; over HTTP also /boot/<mac>.ipxe.
_CONFIG = re.compile(r"(^|/)(pxelinux\.cfg/|grub\.cfg)")
# TFTP transfer outcomes that are no failure: a tsize probe is the firmware asking the size.
_TFTP_FINE = ("complete", "size-probe")
# Refusals that end a transfer already started (TftpService.aborted); others come before one.
_TFTP_ABORTS = ("superseded", "evicted", "shutdown")


@dataclass(frozen=True)
class Step:
    """One event as a boot step: which phase, start/end/once, fine or not, and what."""

    phase: str
    mark: Mark
    ok: bool
    detail: str


@dataclass(frozen=True)
class BootFiles:
    """What a host's profile calls its boot files, as paths relative to the tree or tftp.root."""

    tree: str | None
    kernels: frozenset[str]
    initrds: frozenset[str]
    loaders: frozenset[str]

    def phase_of(self, name: str, http: bool) -> str | None:
        """``loader``, ``config``, ``kernel``, ``initrd``, or None for an unrelated HTTP path."""
        path = _relative(name, http, self.tree)
        if _CONFIG.search(path) or (http and path.startswith("boot/")):
            return "config"
        if path in self.kernels:
            return "kernel"
        if path in self.initrds:
            return "initrd"
        if not http or path in self.loaders:
            return "loader"
        return None


def boot_files(config: Config, profile: Profile | None) -> BootFiles:
    """The profile's files; without a profile only loaders and configs are recognised."""
    boot = config.dhcp.boot if profile is None else config.dhcp.boot.with_profile(profile.loader)
    names = (getattr(boot, f.name) for f in dataclasses.fields(boot) if f.name != "default_arch")
    loaders = {_loader_path(name) for name in names if name}
    if profile is None:
        return BootFiles(None, frozenset(), frozenset(), frozenset(loaders))
    images = [*profile.cpus.values()]
    kernels = {profile.kernel, *(i.kernel for i in images)}
    initrds = {profile.initrd, *(i.initrd for i in images)}
    return BootFiles(
        profile.tree,
        frozenset(p.lstrip("/") for p in kernels),
        frozenset(p.lstrip("/") for p in initrds),
        frozenset(loaders),
    )


def boot_file_names(config: Config) -> frozenset[str]:
    """The base names of every profile's boot files: an HTTP path ending in none of them
    is no boot step, and costs no MAC lookup."""
    names: set[str] = set()
    for profile in (None, *config.profiles.values()):
        files = boot_files(config, profile)
        names.update(posixpath.basename(f) for f in files.kernels | files.initrds | files.loaders)
    return frozenset(names)


def step_of(event: Event, files: BootFiles) -> Step | None:
    """The boot step ``event`` is for a host with ``files``, or None if it is none."""
    if isinstance(event, DhcpExchange):
        return _dhcp_step(event)
    if isinstance(event, Dhcp6Exchange):
        return _dhcp6_step(event)
    if isinstance(event, KickstartRequest):
        return Step("kickstart", "once", event.outcome == "served", event.outcome)
    if isinstance(event, CallbackReceived):
        ok = event.outcome == "done" and event.verdict == "accepted"
        return Step("callback", "once", ok, f"{event.outcome}: {event.verdict}")
    return _transfer_step(event, files)


def _dhcp_step(event: DhcpExchange) -> Step | None:
    """A DISCOVER starts the phase, the ACK ends it; refusals and NAKs are failures."""
    detail = f"{event.kind} {event.outcome}"
    if event.outcome == "refused":
        return Step("dhcp", "once", False, detail)
    if event.kind == "DISCOVER" and event.outcome == "offer":
        return Step("dhcp", "start", True, detail)
    if event.kind == "REQUEST" and event.outcome in ("ack", "nak"):
        return Step("dhcp", "end", event.outcome == "ack", detail)
    if event.outcome == "bootreply":
        return Step("dhcp", "once", True, detail)
    return None  # INFORM, RELEASE, what pxed ignores: no step of a boot


def _dhcp6_step(event: Dhcp6Exchange) -> Step | None:
    """DHCPv6's DISCOVER and ACK: an ADVERTISE to a SOLICIT starts the phase, a REPLY to
    a REQUEST ends it (fine if it gave an address), a rapid-commit REPLY to a SOLICIT is
    the whole phase, and so is the boot service's REPLY on udp/4011 (proxy mode: the
    address came from another server)."""
    detail = f"{event.kind} {event.outcome}"
    if event.kind == "SOLICIT" and event.outcome == "advertise":
        return Step("dhcp", "start", True, detail)
    if event.outcome != "reply":
        return None  # what pxed ignores: no step of a boot
    if event.port == BOOT_SERVICE_PORT:
        return Step("dhcp", "once", True, detail)
    if event.kind == "SOLICIT":
        return Step("dhcp", "once", event.address != "-", detail)
    if event.kind == "REQUEST":
        return Step("dhcp", "end", event.address != "-", detail)
    return None  # RENEW, RELEASE, INFORMATION-REQUEST, ...: no step of a boot


def _transfer_step(event: Event, files: BootFiles) -> Step | None:
    if isinstance(event, TftpTransferStarted):
        return _file_step(files, event.file, False, "start", True, "")
    if isinstance(event, TftpTransferEnded):
        fine = event.outcome in _TFTP_FINE
        return _file_step(files, event.file, False, "end", fine, event.outcome)
    if isinstance(event, TftpRefused):
        if event.outcome == "not-found" and files.phase_of(event.file, False) == "config":
            return None  # pxelinux probes a dozen config names; the missing ones are routine
        mark: Mark = "end" if event.outcome in _TFTP_ABORTS else "once"
        return _file_step(files, event.file, False, mark, False, event.outcome)
    if isinstance(event, HttpRequestStarted):
        return _file_step(files, event.path, True, "start", True, "")
    if isinstance(event, HttpResponse):
        return _file_step(files, event.path, True, "end", event.status < 400, str(event.status))
    return None


def _file_step(
    files: BootFiles, name: str, http: bool, mark: Mark, ok: bool, outcome: str
) -> Step | None:
    phase = files.phase_of(name, http)
    if phase is None:
        return None
    return Step(phase, mark, ok, f"{name} {outcome}".rstrip())


def _relative(name: str, http: bool, tree: str | None) -> str:
    path = name.lstrip("/")
    if http and path.startswith("tftp/"):
        path = path.removeprefix("tftp/")
    if tree is not None and path.startswith(f"trees/{tree}/"):
        path = path.removeprefix(f"trees/{tree}/")
    return path


def _loader_path(name: str) -> str:
    """A loader as a file path: an HTTP boot URL's path, a TFTP name without its ``/``."""
    if "://" in name:
        name = name.split("://", 1)[1].partition("/")[2]
        return name.removeprefix("tftp/")
    return name.lstrip("/")
