"""The DHCPv6 server's sockets: one per served interface, joined to ff02::1:2 there.

As for DHCPv4 (``pxed.dhcp.sockets``), Twisted cannot say which interface a
datagram came in on, so each interface gets its own socket bound to [::] with
SO_BINDTODEVICE: the kernel hands it that interface's datagrams only, and
the engine learns the link from the socket.  Clients send to the
All_DHCP_Relay_Agents_and_Servers group ff02::1:2 (RFC 8415 section 7.1), which
a socket only receives after IPV6_JOIN_GROUP on that interface's index.
IPV6_V6ONLY keeps the socket out of IPv4.  Replies go to the client's link-local
address with its scope (the interface), or to a relay's address.
"""

from __future__ import annotations

import socket
import struct
from ipaddress import IPv6Address

ALL_DHCP_RELAY_AGENTS_AND_SERVERS = IPv6Address("ff02::1:2")
RECEIVE_BUFFER = 4 * 1024 * 1024  # a burst of SOLICITs queues while a batch commits


class Dhcp6SocketError(Exception):
    """A DHCPv6 socket cannot be opened on an interface; the message says which and why."""


def open_dhcp6_socket(interface: str, port: int) -> socket.socket:
    """A non-blocking UDP socket on [::]:``port`` that sees only ``interface``'s traffic,
    member of ff02::1:2 there."""
    try:
        index = socket.if_nametoindex(interface)
    except OSError:
        raise Dhcp6SocketError(f"dhcp6: no interface named {interface}") from None
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        sock.bind(("::", port))
        group = ALL_DHCP_RELAY_AGENTS_AND_SERVERS.packed + struct.pack("@I", index)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, group)
        sock.setblocking(False)
    except OSError as error:
        sock.close()
        raise Dhcp6SocketError(
            f"dhcp6: cannot listen on interface {interface} udp/{port}: {error.strerror}"
            " (pxed needs root or CAP_NET_RAW + CAP_NET_BIND_SERVICE for this)"
        ) from None
    return sock


def interface_addresses6(interface: str) -> list[IPv6Address]:
    """The global and ULA addresses of ``interface`` (from /proc/net/if_inet6), in the
    kernel's order; link-local ones are left out: they say nothing of the link's prefix."""
    found = []
    try:
        with open("/proc/net/if_inet6", encoding="ascii") as table:
            lines = table.read().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if len(fields) == 6 and fields[5] == interface:
            address = IPv6Address(bytes.fromhex(fields[0]))
            if not (address.is_link_local or address.is_loopback or address.is_multicast):
                found.append(address)
    return found
