"""Builds the Twisted service tree from a validated config."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from twisted.application.service import MultiService

from pxed.config import Config
from pxed.daemon.descriptors import budget, raise_limit
from pxed.events import EventBus
from pxed.files.iso9660 import IsoError
from pxed.netif import NoListenAddress, advertised_address, interface_addresses
from pxed.ops.operations import Operations, watch_requests
from pxed.ops.status import mount_status
from pxed.provisioning.inventory import Prepare, ReloadRefused
from pxed.provisioning.resources import Provisioning, mount
from pxed.provisioning.service import ReloadOnHangup, build_provisioning
from pxed.tftp.service import ListenerReactor, TftpService, TftpSettings
from pxed.tftp.sources import FileProvider, ProviderChain, StaticRoot
from pxed.web.guard import Limits
from pxed.web.trees import HttpService, Trees, build_site, site_trees

if TYPE_CHECKING:
    from twisted.internet.interfaces import (
        IReactorCore,
        IReactorSocket,
        IReactorTCP,
        IReactorThreads,
        IReactorTime,
        IReactorUDP,
    )

    class _Reactor(
        IReactorCore, IReactorTime, IReactorTCP, IReactorUDP, IReactorSocket, IReactorThreads
    ):
        """The interfaces of the installed reactor that pxed's services use."""


def add_services(top: MultiService, config: Config) -> Operations:
    """Attach one service per enabled protocol (TFTP, DHCP, DHCPv6, HTTP) to ``top``.

    DHCP, DHCPv6 and the HTTP trees follow the inventory's reloads; TFTP reads the
    inventory on every request already.
    """
    from twisted.internet import reactor as installed

    # Twisted declares twisted.internet.reactor with the interfaces every reactor has
    # (core, time, TCP, ...); the installed one also has the UDP, socket and thread ones.
    reactor = cast("_Reactor", installed)
    raise_limit(budget(config))
    provisioning = build_provisioning(config, reactor, advertised_address)
    inventory = provisioning.inventory
    ReloadOnHangup(inventory, reactor).setServiceParent(top)
    operations = Operations(provisioning, reactor.seconds)
    services = operations.services
    if config.tftp.enabled:
        services["tftp"] = tftp_service(config, reactor, provisioning.files, provisioning.events)
    share = None  # with a shared database, the DHCPv4 heartbeat shares out the pools
    if config.dhcp.enabled:
        from pxed.dhcp.service import ServedLeases, dhcp_service

        dhcp = services["dhcp"] = dhcp_service(
            config, reactor, provisioning.seen, provisioning.events
        )
        inventory.follow(dhcp.prepare_reload)
        inventory.leases = ServedLeases(dhcp)  # its own leases, whichever database keeps them
        share = None if dhcp.heartbeat is None else dhcp.heartbeat.share
    if config.dhcp6.enabled:
        from pxed.dhcp6.service import dhcp6_service

        dhcp6 = services["dhcp6"] = dhcp6_service(config, reactor, provisioning.events, share)
        inventory.follow(dhcp6.prepare_reload)
    if config.http.enabled:
        http = services["http"] = http_service(config, reactor, provisioning, operations)
        inventory.follow(reload_trees(site_trees(http.site)))
    for service in services.values():
        service.setServiceParent(top)
    return operations


def tftp_service(
    config: Config,
    reactor: ListenerReactor,
    generated: FileProvider | None = None,
    events: EventBus | None = None,
) -> TftpService:
    """The TFTP server for ``config``; its ``stats`` are what /metrics reads.

    Generated files (pxelinux.cfg/01-<mac>, GRUB configs) plug in as providers
    ahead of the root in the chain; the root comes last so anything they do not
    know is served from disk.
    """
    listen = listen_addresses(config.tftp.listen, config.tftp.listen6, config)
    if not listen:
        raise NoListenAddress(
            "tftp: no listen addresses and server.interfaces has none; set tftp.listen"
        )
    settings = TftpSettings.from_config(config.tftp, listen=listen)
    providers = [generated] if generated is not None else []
    chain = ProviderChain([*providers, StaticRoot(config.tftp.root)])
    return TftpService(settings, chain, reactor, events=events)


def http_service(
    config: Config,
    reactor: Any,
    provisioning: Provisioning | None = None,
    operations: Operations | None = None,
) -> HttpService:
    """pxed's HTTP site (/trees/, /tftp/, /ks/, /preseed/, /boot/, /api/, and the status
    page) on each listen address."""
    listen = listen_addresses(config.http.listen, config.http.listen6, config)
    if not listen:
        raise NoListenAddress(
            "http: no listen addresses and server.interfaces has none; set http.listen"
        )
    limits = Limits(
        config.http.max_connections, config.http.max_per_client, config.http.header_timeout
    )
    site = build_site(reactor, tree_sources(config), config.tftp.root, limits)
    if provisioning is not None:
        mount(site.resource, provisioning)
    if operations is not None:
        mount_status(site.resource, operations)
        watch_requests(site, operations)
    return HttpService(reactor, site, config.http.port, listen)


def listen_addresses(
    listen: tuple[IPv4Address, ...], listen6: tuple[IPv6Address, ...], config: Config
) -> tuple[str, ...]:
    """A service's IPv4 addresses (``listen``, else server.interfaces' addresses) and then
    its IPv6 ones, link-local ones with their zone (which binding needs)."""
    ipv4 = tuple(str(address) for address in listen)
    return (ipv4 or interface_addresses(config.server.interfaces)) + tuple(map(str, listen6))


def tree_sources(config: Config) -> dict[str, Path]:
    """Each tree's directory or ISO image, by name."""
    return {name: tree.source for name, tree in config.trees.items()}


def reload_trees(trees: Trees) -> Prepare:
    """/trees/'s part of a reload: new and changed images indexed first, swapped in later."""

    def prepare(config: Config) -> Callable[[], None]:
        try:
            loaded = trees.load(tree_sources(config))
        except IsoError as error:
            raise ReloadRefused(str(error)) from None
        return partial(trees.swap, loaded)

    return prepare
