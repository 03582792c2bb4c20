"""Config -> DHCP engine settings: reservations, profile loaders, deny list, subnets, ports."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from protocols.dhcp.leases import MemoryLeaseStore
from protocols.dhcp.options import MessageType
from protocols.dhcp.policy import BootFamily
from protocols.dhcp.server import DhcpServer, Mode, Settings
from pxed.config import parse_config
from pxed.dhcp.settings import engine_settings
from tests.protocols.dhcp_engine_support import ON_LAB, reply_packet, request

CONFIG = """
server:
  interfaces: [veth0]
tftp:
  root: tftp
http:
  port: 8080
dhcp:
  mode: proxy
  authoritative: false
  allow_unknown: false
  server_port: 1067
  client_port: 1068
  deny: ["52-54-00-DE-AD-00"]
  decline_quarantine: 120
  subnets:
    - network: 10.213.7.0/24
      range: [10.213.7.100, 10.213.7.200]
      router: 10.213.7.1
      dns: [10.213.7.1]
      domain: lab.internal
      lease_time: 600
    - network: 10.213.8.0/24
  boot:
    bios: undionly.kpxe
    default_arch: uefi
profiles:
  web:
    kernel: vmlinuz
    initrd: initrd.img
    loader: {uefi: grubx64.efi}
hosts:
  - mac: "52:54:00:12:34:56"
    hostname: web01
    ip: 10.213.7.21
    profile: web
  - mac: "5254.00ab.cdef"
"""


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """A config folder whose tftp root holds the profile's kernel and initrd."""
    (tmp_path / "tftp").mkdir()
    for name in ("vmlinuz", "initrd.img"):
        (tmp_path / "tftp" / name).write_bytes(b"")
    return tmp_path / "pxed.yaml"


def load(config_path: Path, text: str = CONFIG) -> Settings:
    return engine_settings(parse_config(text, config_path), IPv4Address("10.213.7.1"))


def test_hosts_become_reservations_with_their_profile_loaders(config_path):
    hosts = load(config_path).hosts
    web = hosts["52:54:00:12:34:56"]
    assert (web.ip, web.hostname) == (IPv4Address("10.213.7.21"), "web01")
    assert web.loader == {BootFamily.UEFI: "grubx64.efi"}
    bare = hosts["52:54:00:ab:cd:ef"]
    assert (bare.ip, bare.loader) == (None, {})


def test_deny_list_is_normalised_to_the_engines_mac_form(config_path):
    assert load(config_path).deny == frozenset({"52:54:00:de:ad:00"})


def test_subnets_carry_pool_router_dns_domain_and_lease_time(config_path):
    lab, remote = load(config_path).subnets
    assert lab.network == IPv4Network("10.213.7.0/24")
    assert lab.pool == (IPv4Address("10.213.7.100"), IPv4Address("10.213.7.200"))
    assert (lab.routers, lab.dns, lab.domain, lab.lease_time) == (
        (IPv4Address("10.213.7.1"),),
        (IPv4Address("10.213.7.1"),),
        "lab.internal",
        600,
    )
    assert (remote.pool, remote.routers) == (None, ())


def test_boot_templates_ports_mode_and_policy_come_through(config_path):
    s = load(config_path)
    assert s.boot.files[BootFamily.BIOS] == "undionly.kpxe"
    assert s.boot.files[BootFamily.UEFI] == "syslinux.efi"
    assert (s.boot.http_port, s.boot.unknown_arch) == (8080, BootFamily.UEFI)
    assert (s.mode, s.authoritative, s.allow_unknown) == (Mode.PROXY, False, False)
    assert (s.ports.server, s.ports.client, s.ports.proxy) == (1067, 1068, 4011)
    assert s.decline_time == 120.0


def test_missing_server_address_is_the_first_interfaces_address(config_path):
    assert load(config_path).server_address == IPv4Address("10.213.7.1")
    with_address = CONFIG.replace("server:\n", "server:\n  address: 10.213.7.9\n")
    assert load(config_path, with_address).server_address == IPv4Address("10.213.7.9")


def test_default_arch_none_sends_no_boot_file_to_an_architecture_without_a_loader(config_path):
    """The default: a PowerPC (option 93 = 12) PXE client gets an address and no loader."""
    settings = load(config_path, CONFIG.replace("    default_arch: uefi\n", ""))
    assert settings.boot.unknown_arch is None
    engine = DhcpServer(replace(settings, mode=Mode.FULL, allow_unknown=True), MemoryLeaseStore())
    pxe = ((60, "PXEClient:Arch:00012:UNDI:003000"), (93, (12,)))
    action = engine.handle_datagram(request(MessageType.DISCOVER, options=pxe), ON_LAB, now=0.0)
    offer = reply_packet(action)
    assert offer.yiaddr != IPv4Address(0)
    assert (offer.boot_file, offer.siaddr) == ("", IPv4Address(0))
