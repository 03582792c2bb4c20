"""Builds the Twisted service tree from a validated config."""

from __future__ import annotations

import fcntl
import socket
import struct
from typing import Any

from twisted.application.service import MultiService

from pxed.sources import ProviderChain, StaticRoot
from pxed.tftp import Reactor, TftpService, TftpSettings
from pxed.web import HttpService, build_site

SIOCGIFADDR = 0x8915


class NoListenAddress(Exception):
    """A service has nothing to listen on: no addresses given and none found on the interfaces."""


def add_services(top: MultiService, config: Any) -> None:
    """Attach one service per enabled protocol (TFTP, DHCP, HTTP) to ``top``."""
    from twisted.internet import reactor

    if config.tftp.enabled:
        tftp_service(config, reactor).setServiceParent(top)
    if config.dhcp.enabled:
        from pxed.dhcp import dhcp_service

        dhcp_service(config, reactor).setServiceParent(top)
    if config.http.enabled:
        http_service(config, reactor).setServiceParent(top)


def tftp_service(config: Any, reactor: Reactor) -> TftpService:
    """The TFTP server for ``config``; its ``stats`` are what /metrics reads.

    Generated files (pxelinux.cfg/01-<mac>, GRUB configs) plug in as providers
    ahead of the root in the chain; the root comes last so anything they do not
    know is served from disk.
    """
    listen = config.tftp.listen or interface_addresses(config.server.interfaces)
    if not listen:
        raise NoListenAddress(
            "tftp: no listen addresses and server.interfaces has none; set tftp.listen"
        )
    settings = TftpSettings.from_config(config.tftp, listen=tuple(str(a) for a in listen))
    return TftpService(settings, ProviderChain([StaticRoot(config.tftp.root)]), reactor)


def http_service(config: Any, reactor: Any) -> HttpService:
    """pxed's HTTP site (/trees/, /tftp/) on each HTTP listen address."""
    listen = config.http.listen or interface_addresses(config.server.interfaces)
    if not listen:
        raise NoListenAddress(
            "http: no listen addresses and server.interfaces has none; set http.listen"
        )
    trees = {name: tree.path or tree.iso for name, tree in config.trees.items()}
    site = build_site(reactor, trees, config.tftp.root)
    return HttpService(reactor, site, config.http.port, [str(a) for a in listen])


def interface_addresses(names: tuple[str, ...]) -> tuple[str, ...]:
    """The primary IPv4 address of each named interface (what the DHCP side serves)."""
    addresses = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for name in names:
            request = struct.pack("256s", name.encode()[:15])
            try:
                answer = fcntl.ioctl(probe.fileno(), SIOCGIFADDR, request)
            except OSError as err:
                raise NoListenAddress(
                    f"interface {name}: no IPv4 address ({err.strerror})"
                ) from None
            addresses.append(socket.inet_ntoa(answer[20:24]))
    return tuple(addresses)
