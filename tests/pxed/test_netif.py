"""Interface addresses: one lookup for DHCP's server identifier, listen addresses and URLs."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from pxed.netif import NoListenAddress, interface_address, interface_addresses


def test_interface_address_reads_the_interfaces_ipv4_address():
    assert interface_address("lo") == IPv4Address("127.0.0.1")
    assert interface_addresses(("lo", "lo")) == ("127.0.0.1", "127.0.0.1")


def test_an_interface_without_an_address_is_a_sysadmin_readable_error():
    with pytest.raises(NoListenAddress, match="interface pxed-nonexistent0 has no IPv4 address"):
        interface_addresses(("lo", "pxed-nonexistent0"))
