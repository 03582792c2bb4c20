"""The host's interfaces as pxed reads them: each one's primary IPv4 address.

One lookup serves every service: DHCP's server identifier on each interface,
the addresses TFTP and HTTP listen on when the config names none, and the
address pxed puts in the URLs it hands out when ``server.address`` is left out.
"""

from __future__ import annotations

import fcntl
import socket
import struct
from ipaddress import IPv4Address

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
