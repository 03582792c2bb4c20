"""Provisioning inside ``twistd pxed``: the shared objects, and reload on SIGHUP.

``build_provisioning`` makes the one Inventory every generated file and
Kickstart reads through, the host states (in ``server.state_dir``, or in
``server.database`` through ``pxed.provisioning.pg_states``) and the callback
secret; pxed/daemon/services.py hands ``provisioning.files`` to the TFTP chain
and mounts the HTTP resources.

SIGHUP reloads the config file: it is read, validated in full (templates
rendered and checked, tree images indexed) and prepared in a worker thread,
then swapped in at once in the reactor, or refused with every error logged
while the old config keeps serving. Transfers and downloads in
flight keep the objects they started with; DHCP keeps its leases and sockets.
What a reload changes: hosts, profiles, vars, install settings, the
unknown-hosts policy, the URLs pxed hands out, the trees TFTP and HTTP serve
(/trees/), and what DHCP answers (boot files, subnets and pools, options, the
allow/deny lists, authoritative, and the mode when it needs no new socket).
Keys tied to a socket or to something opened at start need a restart
(``pxed.provisioning.inventory.RESTART_KEYS``: server.interfaces and state_dir, the tftp
section, http.enabled/listen/listen6/port, the DHCP ports, logging, and a DHCP mode
that needs more sockets, such as full to proxy); a reload that changes one
logs a warning naming it, keeps its running value and applies the rest.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from functools import partial
from types import FrameType
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger

from pxed.config import Config
from pxed.config.model import ServerConfig
from pxed.provisioning.host_states import HostStates
from pxed.provisioning.inventory import Inventory
from pxed.provisioning.lifecycle import Lifecycle
from pxed.provisioning.resources import Provisioning
from pxed.provisioning.sqlite_states import SqliteStates
from pxed.provisioning.tftp_files import ProvisionFiles
from pxed.provisioning.tokens import kickstart_signature, load_secret

log = Logger(namespace="pxed.provision")

Handler = Callable[[int, FrameType | None], Any] | int | None


def build_provisioning(
    config: Config, reactor: Any, resolve: Callable[[Config], str]
) -> Provisioning:
    """The objects provisioning shares; ``resolve`` gives the address clients reach pxed at."""
    inventory = Inventory(config, resolve)
    lifecycle = open_states(config.server, reactor)
    secret = callback_secret(config.server)
    sign = partial(kickstart_signature, secret)
    files = ProvisionFiles(inventory, lifecycle, reactor.seconds, sign)
    return Provisioning(inventory, lifecycle, secret, files, reactor.seconds)


def open_lifecycle(server: ServerConfig) -> Lifecycle:
    """Host states in ``server.database`` when it is set, else in SQLite in ``state_dir``."""
    if server.database is None:
        return Lifecycle.open(server.state_dir)
    from pxed.provisioning.pg_lifecycle import PostgresLifecycle

    return PostgresLifecycle.open_database(server.database, server.label)


def open_states(server: ServerConfig, reactor: Any) -> HostStates:
    """The daemon's host states: SQLite's lifecycle with a reactor turn's install ends
    committed together, or PostgreSQL's queried in a thread of its own, which polls
    every row into a snapshot until the reactor stops."""
    if server.database is None:
        return SqliteStates(Lifecycle.open(server.state_dir), reactor)
    from pxed.database.worker import Worker
    from pxed.provisioning.pg_states import PostgresStates

    states = PostgresStates.open(server.database, server.label, Worker(reactor, "pxed-hosts"))
    states.start(reactor)
    reactor.addSystemEventTrigger("before", "shutdown", states.close)
    return states


def callback_secret(server: ServerConfig) -> bytes:
    """The secret every pxed sharing the host states signs callbacks with."""
    if server.database is None:
        return load_secret(server.state_dir)
    from pxed.provisioning.pg_lifecycle import shared_secret

    return shared_secret(server.database)


class ReloadOnHangup(Service):
    """Installs a SIGHUP handler that reloads ``inventory`` without stalling the reactor.

    Rendering and checking every Kickstart costs milliseconds a host: in the reactor
    thread a reload of a few hundred hosts held DHCP, HTTP and TFTP requests for seconds
    (benchmarks/README.md).
    """

    name = "reload"

    def __init__(self, inventory: Inventory, reactor: Any) -> None:
        self.inventory = inventory
        self.reactor = reactor
        self._previous: Handler = None
        self._loading: Deferred[None] | None = None
        self._again = False

    def startService(self) -> None:
        super().startService()
        self._previous = signal.signal(signal.SIGHUP, self._hangup)

    def stopService(self) -> None:
        super().stopService()
        signal.signal(signal.SIGHUP, self._previous or signal.SIG_DFL)

    def _hangup(self, signum: int, frame: FrameType | None) -> None:
        # A signal handler runs between two bytecodes of whatever the reactor was
        # doing; callFromThread defers the reload to a clean point of the loop.
        self.reactor.callFromThread(self.reload)

    def reload(self) -> Deferred[None]:
        """Load in a worker thread, swap in the reactor; one reload at a time.

        A SIGHUP during a reload asks for one more after it, which reads the file as it
        is then: the last signal's edit is never lost, and two loads never race to swap.
        """
        if self._loading is not None:
            self._again = True
            return self._loading
        log.info("SIGHUP: reloading {path}", path=str(self.inventory.config.path))
        pool = self.reactor.getThreadPool()
        loaded = deferToThreadPool(self.reactor, pool, self.inventory.load_again)
        loading = loaded.addCallbacks(self.inventory.swap, self.inventory.refused).addBoth(
            self._loaded
        )
        if not loading.called:
            self._loading = loading
        return loading

    def _loaded(self, result: object) -> None:
        self._loading = None
        if self._again:
            self._again = False
            self.reload()
