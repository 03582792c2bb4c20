"""The host's interfaces as pxed reads them: each one's primary IPv4 address.

One lookup serves every service: DHCP's server identifier on each interface,
the addresses TFTP and HTTP listen on when the config names none, and the
address pxed puts in the URLs it hands out when ``server.address`` is left out
(and, for clients that came over IPv6, the IPv6 one).
"""

from __future__ import annotations

import fcntl
import socket
import struct
from ipaddress import IPv4Address, IPv6Address

from pxed.config import Config

SIOCGIFADDR = 0x8915


class NoListenAddress(Exception):
    """An interface pxed should serve has no IPv4 address, or a service has nothing to listen on."""


def interface_address(name: str) -> IPv4Address:
    """The interface's primary IPv4 address, as the kernel reports it (SIOCGIFADDR)."""
    request = struct.pack("256s", name.encode()[:15])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            answer = fcntl.ioctl(probe.fileno(), SIOCGIFADDR, request)
        except OSError as error:
            raise NoListenAddress(
                f"interface {name} has no IPv4 address ({error.strerror}); "
                "pxed serves only interfaces that have one"
            ) from None
    return IPv4Address(answer[20:24])


def interface_addresses(names: tuple[str, ...]) -> tuple[str, ...]:
    """The primary IPv4 address of each named interface, in order."""
    return tuple(str(interface_address(name)) for name in names)


def advertised_address(config: Config) -> str:
    """``server.address``, or else the first address of the first served interface."""
    if config.server.address is not None:
        return str(config.server.address)
    if not config.server.interfaces:
        raise NoListenAddress("server: no address given and server.interfaces is empty")
    return str(interface_address(config.server.interfaces[0]))


def advertised_address6(config: Config) -> IPv6Address | None:
    """``server.address6``, else the first ``http.listen6`` address that is not link-local,
    else the first link-local one without its zone: the zone is pxed's own name for its
    link and means nothing to a client (RFC 6874; docs/configuration.md). None: HTTP
    listens on no IPv6 address, so URLs can only point at its IPv4 ones."""
    if config.server.address6 is not None:
        return config.server.address6
    listed = config.http.listen6
    routable = [address for address in listed if not address.is_link_local]
    chosen = routable or listed
    return IPv6Address(int(chosen[0])) if chosen else None  # int() drops the zone
