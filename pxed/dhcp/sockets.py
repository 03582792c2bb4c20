"""The DHCP server's sockets: one per served interface, made by hand for the options Twisted lacks.

docs/pitfalls.md #4: a DHCP server must bind 0.0.0.0 (a socket bound
to the interface address never sees a 255.255.255.255 broadcast), and
Twisted cannot tell which interface a datagram came in on.  So each served
interface gets its own socket with SO_BINDTODEVICE, set before bind(): the
kernel then hands it only that interface's datagrams and sends its replies out
of that interface.  SO_BROADCAST lets replies go to 255.255.255.255;
SO_REUSEADDR lets one socket per interface share the port (and another DHCP
server on the host, as proxyDHCP beside one needs).
"""

from __future__ import annotations

import socket

# A burst of DISCOVERs (a rack powering on, perfdhcp) must queue, not drop,
# while a batch is committed.  SO_RCVBUF is capped at net.core.rmem_max (212992
# bytes unless raised: about 300 queued requests, as the kernel counts them), so
# pxed asks with SO_RCVBUFFORCE, which root may (twistd opens the sockets as root).
RECEIVE_BUFFER = 4 * 1024 * 1024
SO_RCVBUFFORCE = 33  # asm-generic/socket.h; Python's socket module lacks it


class DhcpSocketError(Exception):
    """A DHCP socket cannot be opened on an interface; the message says which and why."""


def open_dhcp_socket(interface: str, port: int) -> socket.socket:
    """A non-blocking UDP socket on 0.0.0.0:``port`` that sees only ``interface``'s traffic."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        _large_receive_buffer(sock)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        sock.bind(("0.0.0.0", port))
        sock.setblocking(False)
    except OSError as error:
        sock.close()
        raise DhcpSocketError(
            f"dhcp: cannot listen on interface {interface} udp/{port}: {error.strerror}"
            " (pxed needs root or CAP_NET_RAW + CAP_NET_BIND_SERVICE for this)"
        ) from None
    return sock


def _large_receive_buffer(sock: socket.socket) -> None:
    """``RECEIVE_BUFFER`` past rmem_max where pxed may (root or CAP_NET_ADMIN); else as
    much as rmem_max allows, which a sysctl raises."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
