"""pxed.daemon.services wires the DHCPv4 heartbeat's share of the pools into DHCPv6.

With a shared database, DHCPv6's free-address probe walks this server's share first
(docs/ha.md), and only the DHCPv4 heartbeat knows the live set that decides it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from twisted.application.service import MultiService, Service

from pxed.config import load_config
from pxed.daemon.services import add_services
from tests.interop.dhcp_runner import write_config


class FakeHeartbeat:
    def share(self) -> Any:  # a bound method: what the daemon must hand DHCPv6
        raise AssertionError("not called while the services are built")


class FakeDhcp(Service):
    def __init__(self, heartbeat: FakeHeartbeat | None) -> None:
        self.heartbeat = heartbeat

    def prepare_reload(self, *_: Any) -> None:
        raise AssertionError("no reload here")


def _config(tmp_path: Path, database: str | None, dhcp: bool = True) -> Path:
    path = write_config(tmp_path / "pxed.yaml", "lo", tmp_path / "state", [], mode="full")
    config = json.loads(path.read_text())
    if database is not None:
        config["server"].update(database=database, name="pxe1")
    if not dhcp:
        config["dhcp"] = {"mode": "off"}
    subnet = {"prefix": "fd00:216::/64", "range": ["fd00:216::100", "fd00:216::1ff"]}
    config["dhcp6"] = {"mode": "full", "interfaces": ["lo"], "subnets": [subnet]}
    path.write_text(json.dumps(config))
    return path


def _handed(monkeypatch: pytest.MonkeyPatch, heartbeat: FakeHeartbeat | None) -> list[Any]:
    """Build DHCP with ``heartbeat`` and DHCPv6 as fakes; the shares DHCPv6 was handed."""
    import pxed.dhcp.service
    import pxed.dhcp6.service

    shares: list[Any] = []

    def dhcp6_service(config: Any, reactor: Any, events: Any, share: Any) -> FakeDhcp:
        shares.append(share)
        return FakeDhcp(None)

    monkeypatch.setattr(pxed.dhcp.service, "dhcp_service", lambda *_: FakeDhcp(heartbeat))
    monkeypatch.setattr(pxed.dhcp6.service, "dhcp6_service", dhcp6_service)
    return shares


def test_with_a_shared_database_dhcpv6_gets_the_dhcpv4_heartbeats_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    heartbeat = FakeHeartbeat()
    shares = _handed(monkeypatch, heartbeat)
    add_services(MultiService(), load_config(_config(tmp_path, postgres_url)))
    assert shares == [heartbeat.share]


def test_without_a_heartbeat_dhcpv6_probes_the_whole_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shares = _handed(monkeypatch, None)
    add_services(MultiService(), load_config(_config(tmp_path, None)))
    assert shares == [None]


def test_with_dhcpv4_off_dhcpv6_probes_the_whole_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    shares = _handed(monkeypatch, FakeHeartbeat())
    add_services(MultiService(), load_config(_config(tmp_path, postgres_url, dhcp=False)))
    assert shares == [None]
