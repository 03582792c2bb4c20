"""pxed/daemon/services.py wires the TFTP service from the config's tftp section."""

from __future__ import annotations

import socket
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from types import SimpleNamespace

import pytest
from twisted.application.service import MultiService

from pxed.config import load_config
from pxed.daemon.services import add_services, tftp_service
from pxed.netif import NoListenAddress
from tests.support.fake_udp import FakeUDPReactor

LOOPBACK = (IPv4Address("127.0.0.1"),)


def _config(root: Path, enabled: bool = True, listen=LOOPBACK, interfaces=(), listen6=()):
    tftp = SimpleNamespace(
        enabled=enabled,
        root=root,
        listen=listen,
        port=6969,
        max_blksize=1468,
        max_windowsize=16,
        max_sessions=1000,
        timeout=2,
        retries=5,
        max_per_client=16,
        listen6=listen6,
    )
    return SimpleNamespace(tftp=tftp, server=SimpleNamespace(interfaces=interfaces))


def _yaml(tmp_path: Path, tftp_enabled: str) -> Path:
    (tmp_path / "root").mkdir()
    config = tmp_path / "pxed.yaml"
    config.write_text(
        "server: {address: 127.0.0.1, state_dir: state}\n"
        f"tftp: {{enabled: {tftp_enabled}, root: root, listen: [127.0.0.1], port: 6969,"
        " timeout: 2, max_per_client: 4}\n"
        'dhcp: {mode: "off"}\n'
        "http: {enabled: false}\n"
    )
    return config


def test_enabled_tftp_adds_a_service_named_tftp(tmp_path: Path) -> None:
    top = MultiService()
    add_services(top, load_config(_yaml(tmp_path, "true")))
    service = top.getServiceNamed("tftp")
    assert service.settings.listen == ("127.0.0.1",)
    assert (service.settings.port, service.settings.max_per_client) == (6969, 4)
    assert service.limits[socket.AF_INET].initial_timeout == 2


def test_disabled_tftp_adds_no_tftp_service(tmp_path: Path) -> None:
    top = MultiService()
    add_services(top, load_config(_yaml(tmp_path, "false")))
    assert "tftp" not in [service.name for service in top]


def test_empty_listen_means_the_interfaces_addresses(tmp_path: Path) -> None:
    reactor = FakeUDPReactor()
    service = tftp_service(_config(tmp_path, listen=(), interfaces=("lo",)), reactor)
    service.privilegedStartService()
    assert [port.address for port in reactor.open_ports] == [("127.0.0.1", 6969)]


def test_no_listen_and_no_interfaces_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NoListenAddress, match=r"set tftp\.listen"):
        tftp_service(_config(tmp_path, listen=()), FakeUDPReactor())


def test_service_serves_from_the_configured_root(tmp_path: Path) -> None:
    """The chain ends at the root: a file there is what an RRQ gets."""
    (tmp_path / "pxelinux.0").write_bytes(b"loader")
    service = tftp_service(_config(tmp_path), FakeUDPReactor())
    source = service.files.open("/pxelinux.0", ("127.0.0.1", 1234))
    assert source.read(0, 100) == b"loader"
    source.close()


def test_ipv6_listen_addresses_join_the_interfaces_ipv4_ones(tmp_path: Path) -> None:
    config = _config(tmp_path, listen=(), interfaces=("lo",), listen6=(IPv6Address("::1"),))
    service = tftp_service(config, FakeUDPReactor())
    assert service.settings.listen == ("127.0.0.1", "::1")


def test_over_ipv6_the_largest_block_fills_the_same_frame_as_over_ipv4(tmp_path: Path) -> None:
    """An IPv6 header is 20 bytes longer: 1468 fills a 1500-byte frame over IPv4, 1448 over
    IPv6 (a 1468-byte block would go out in two fragments)."""
    service = tftp_service(_config(tmp_path), FakeUDPReactor())
    assert service.limits[socket.AF_INET].max_blksize == 1468
    assert service.limits[socket.AF_INET6].max_blksize == 1448
