"""The running view of hosts and profiles: one object every provisioning path reads through.

``Inventory.config`` is replaced as a whole on reload (SIGHUP), never edited, so
a request sees either the old config or the new one, never half of each; a
transfer or download already running keeps the objects it started with.
A reload validates the new file in full first (``answers.checked`` renders and
checks every answer file too), then lets every service that follows reloads
(DHCP, the HTTP trees) build what it needs from it; if anything is wrong the
errors are logged and the old config keeps serving. Only when every part is
ready is the config swapped and each service's part put in force, in the
same reactor turn.

Keys bound to a socket or to a file opened at start (``RESTART_KEYS``) keep
their running value until pxed restarts; a reload that changes one says so.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from ipaddress import IPv4Address
from pathlib import Path
from typing import Protocol

from twisted.logger import Logger
from twisted.python.failure import Failure

from pxed.config import Config, ConfigError, Host, load_config, parse_mac
from pxed.dhcp.leases import DATABASE_NAME, read_holder, read_leases
from pxed.netif import advertised_address, advertised_address6
from pxed.provisioning.answers import checked, stand_in_host
from pxed.provisioning.urls import Urls, for_requester, url_host

log = Logger(namespace="pxed.inventory")

AddressResolver = Callable[[Config], str]
Apply = Callable[[], None]
# A service's part of a reload: build everything it needs from the new config (raising
# ReloadRefused if it cannot), and return the step that puts it in force. The step runs
# only once every part is ready, so it must not fail.
Prepare = Callable[[Config], Apply]

# Sockets, the state databases, TFTP's settings and root, and the log observer are set up
# once at start. A section name stands for every key in it.
RESTART_KEYS = (
    "server.interfaces",
    "server.state_dir",
    "server.database",
    "server.peer_timeout",  # the heartbeat's, started with DHCP
    "server.peer_ack_delay",  # read when DHCP starts, as the heartbeat
    "tftp",
    "http.enabled",
    "http.listen",
    "http.listen6",
    "http.port",
    "dhcp.server_port",
    "dhcp.client_port",
    "logging",
)
# DHCP sockets per mode: off none, full the server port, proxy that and udp/4011. A reload
# may move down this order (the extra sockets stay open, unused) but not up.
_DHCP_SOCKETS = {"off": 0, "full": 1, "proxy": 2}


class ReloadRefused(Exception):
    """A service cannot take the new config (say, a tree image that does not read)."""


Pinned = list[tuple[str, object, object]]


def pin_restart_keys(started: Config, new: Config) -> tuple[Config, Pinned]:
    """``new`` with each key that needs a restart set back to its value at start.

    Also returns (key, running value, value in the file) for each key so pinned.
    """
    pinned: Pinned = []
    for key in RESTART_KEYS:
        section, _, name = key.partition(".")
        running, wanted = getattr(started, section), getattr(new, section)
        names = [name] if name else [f.name for f in fields(running)]
        stale = [n for n in names if getattr(running, n) != getattr(wanted, n)]
        if stale:
            kept = {n: getattr(running, n) for n in stale}
            new = replace(new, **{section: replace(wanted, **kept)})
            pinned += [(f"{section}.{n}", kept[n], getattr(wanted, n)) for n in stale]
    if _DHCP_SOCKETS[new.dhcp.mode] > _DHCP_SOCKETS[started.dhcp.mode]:
        pinned.append(("dhcp.mode", started.dhcp.mode, new.dhcp.mode))
        new = replace(new, dhcp=replace(new.dhcp, mode=started.dhcp.mode))
    return new, pinned


def host_for(config: Config, mac: str) -> Host | None:
    """The host entry for ``mac``, or, when ``dhcp.unknown_hosts`` names a profile, a stand-in.

    An unknown MAC under a default profile installs once like any listed host,
    so it gets the same lifecycle and loop breaker.
    """
    known = config.host(mac)
    if known is not None:
        return known
    profile = config.dhcp.unknown_profile
    try:
        mac = parse_mac(mac)
    except ValueError:
        return None
    if profile is None or mac in config.dhcp.deny:
        return None
    return stand_in_host(mac, profile)


LeaseRow = tuple[str, str, float | None, str | None]  # mac, ip, expires, hostname


class LeaseSource(Protocol):
    """Where the Kickstart's identity rule and the status page learn the DHCP leases."""

    def mac_for(self, ip: IPv4Address, now: float) -> str | None:
        """The MAC holding ``ip`` by an unexpired lease, if any."""

    def rows(self) -> list[LeaseRow]:
        """Every lease, by address."""


class LeaseLookup:
    """The leases read from the SQLite lease file (read-only), for a pxed whose DHCP
    server runs elsewhere or not yet; the daemon swaps in its own server's (see
    pxed.dhcp.service.ServedLeases), which a PostgreSQL lease store needs.

    Opened per query: the database may appear only once the DHCP side first
    starts, and a Kickstart request is rare enough that a connect costs nothing.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / DATABASE_NAME

    def mac_for(self, ip: IPv4Address, now: float) -> str | None:
        if not self.path.exists():
            return None
        try:
            return read_holder(self.path, ip, now)
        except sqlite3.Error as error:
            log.warn("cannot read leases from {path}: {error}", path=self.path, error=error)
            return None

    def rows(self) -> list[LeaseRow]:
        if not self.path.exists():
            return []
        try:
            return read_leases(self.path)
        except sqlite3.Error:
            return []


class Inventory:
    """The current config, how clients reach pxed, and the host behind an address."""

    def __init__(self, config: Config, resolve: AddressResolver = advertised_address) -> None:
        self._resolve = resolve
        self.started = config
        self.config = config
        self._followers: list[Prepare] = []
        self.urls6 = urls6(config)
        self.urls = self._urls4(config, self.urls6)
        self.leases: LeaseSource = LeaseLookup(config.server.state_dir)

    def host(self, mac: str) -> Host | None:
        return host_for(self.config, mac)

    def _urls4(self, config: Config, v6: Urls | None) -> Urls:
        """The URLs for IPv4 clients; an IPv6-only pxed (server.address6, no IPv4 address
        and no interface to find one on) has no IPv4 clients, and its IPv6 URLs stand in."""
        if config.server.address is None and not config.server.interfaces and v6 is not None:
            return v6
        return Urls(self._resolve(config), config.http.port)

    def urls_for(self, requester: str) -> Urls:
        """The URLs for a client at ``requester``, in the address family it came in on."""
        return for_requester(self.urls, self.urls6, requester)

    def mac_for_ip(self, ip: str, now: float) -> str | None:
        """The MAC behind ``ip``: a host's reservation, else its DHCP lease."""
        try:
            address = IPv4Address(ip)
        except ValueError:
            return None
        for host in self.config.hosts:
            if host.ip == address:
                return host.mac
        return self.leases.mac_for(address, now)

    def follow(self, prepare: Prepare) -> None:
        """Make ``prepare`` part of every reload (see ``Prepare``)."""
        self._followers.append(prepare)

    def reload(self) -> bool:
        """Load the config file again; swap it in only if it is entirely valid.

        All in the calling thread; ``pxed.provisioning.service`` runs ``load_again`` in a
        worker thread and ``swap`` in the reactor instead.
        """
        try:
            loaded = self.load_again()
        except Exception:
            self.refused(Failure())
            return False
        self.swap(loaded)
        return True

    def load_again(self) -> Reloaded:
        """The config file read, checked and prepared for every follower, not in force yet.

        Changes nothing this object or a follower serves from, so it may run in a worker
        thread: rendering and checking every Kickstart takes milliseconds a host, and
        indexing a new ISO image longer. Raises ConfigError, ReloadRefused, or what failed.
        """
        config, pinned = pin_restart_keys(self.started, checked(load_config(self.config.path)))
        v6 = urls6(config)
        steps = [prepare(config) for prepare in self._followers]
        return Reloaded(config, self._urls4(config, v6), v6, pinned, steps)

    def swap(self, loaded: Reloaded) -> None:
        """Put ``loaded`` in force, all in one reactor turn, and say what it changed."""
        config = loaded.config
        for warning in config.warnings:
            log.warn("config warning: {warning}", warning=str(warning))
        for key, running, wanted in loaded.pinned:
            log.warn(
                "reload: {key} changed to {wanted} in the file, but needs a restart of pxed;"
                " {running} stays in force until then",
                key=key,
                running=_shown(running),
                wanted=_shown(wanted),
            )
        self.config, self.urls, self.urls6 = config, loaded.urls, loaded.urls6
        for step in loaded.steps:
            step()
        log.info(
            "reloaded {path}: {hosts} hosts, {profiles} profiles, {trees} trees",
            path=str(config.path),
            hosts=len(config.hosts),
            profiles=len(config.profiles),
            trees=len(config.trees),
        )

    def refused(self, failure: Failure) -> None:
        """Log why ``load_again`` failed; the config in force keeps serving."""
        path = str(self.config.path)
        error = failure.value
        if isinstance(error, ConfigError):
            for problem in error.errors:
                log.error("reload refused: {problem}", problem=str(problem))
            log.error(
                "reload of {path} refused ({count} errors); the previous config keeps serving",
                path=path,
                count=len(error.errors),
            )
        elif isinstance(error, ReloadRefused):
            log.error(
                "reload of {path} refused: {reason}; the previous config keeps serving",
                path=path,
                reason=str(error),
            )
        else:  # a resolver failure (interface gone) must not take the running config down
            log.failure(
                "reload of {path} refused; the previous config keeps serving", failure, path=path
            )


@dataclass(frozen=True)
class Reloaded:
    """What ``Inventory.load_again`` prepared: ``swap`` puts it in force."""

    config: Config
    urls: Urls
    urls6: Urls | None  # None: HTTP listens on no IPv6 address
    pinned: Pinned
    steps: list[Apply]


def urls6(config: Config) -> Urls | None:
    """The URLs for clients that came over IPv6, or None when HTTP has no IPv6 address."""
    address = advertised_address6(config)
    return None if address is None else Urls(url_host(str(address)), config.http.port)


def _shown(value: object) -> str:
    """A config value as the YAML file spells it (lists as ``[a, b]``, not reprs)."""
    if isinstance(value, tuple):
        return "[" + ", ".join(str(item) for item in value) + "]"
    return str(value)
