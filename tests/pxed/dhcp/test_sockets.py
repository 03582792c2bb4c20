"""The DHCP sockets: 0.0.0.0, bound to one device, broadcast and address reuse on."""

from __future__ import annotations

import os
import socket

import pytest

from pxed.dhcp.sockets import RECEIVE_BUFFER, DhcpSocketError, open_dhcp_socket


def test_socket_is_bound_to_the_device_on_all_addresses_with_broadcast_and_reuse():
    if os.geteuid() != 0:
        pytest.skip("SO_BINDTODEVICE needs root (CAP_NET_RAW)")
    sock = open_dhcp_socket("lo", 0)
    try:
        assert sock.getsockname()[0] == "0.0.0.0"
        device = sock.getsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, 16)
        assert device.rstrip(b"\0") == b"lo"
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST) == 1
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
        assert not sock.getblocking()
    finally:
        sock.close()


def test_unknown_interface_is_a_sysadmin_readable_error():
    with pytest.raises(DhcpSocketError, match="nosuchif0"):
        open_dhcp_socket("nosuchif0", 0)


def test_the_receive_buffer_is_large_whatever_rmem_max_says():
    """Root gets RECEIVE_BUFFER past net.core.rmem_max (Linux reports twice what was set)."""
    if os.geteuid() != 0:
        pytest.skip("SO_BINDTODEVICE and SO_RCVBUFFORCE need root")
    sock = open_dhcp_socket("lo", 0)
    try:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 2 * RECEIVE_BUFFER
    finally:
        sock.close()
