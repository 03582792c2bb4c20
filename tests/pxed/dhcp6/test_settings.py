"""The dhcp6 section and hosts as the engine's Settings."""

from __future__ import annotations

from ipaddress import IPv6Address
from pathlib import Path

from protocols.dhcp.policy import BootFamily
from protocols.dhcp.server import Mode
from protocols.dhcpv6.duid import DuidLl
from pxed.config import parse_config
from pxed.dhcp6.settings import engine_settings6

TEXT = """
server: {address: 10.0.0.1, interfaces: [eth0], state_dir: /tmp}
tftp: {enabled: false}
http: {enabled: false, port: 8080}
dhcp6:
  mode: full
  rapid_commit: true
  subnets:
    - prefix: fd00:213:7::/64
      range: ["fd00:213:7::100", "fd00:213:7::1ff"]
      lease_time: 600
  boot: {uefi: "tftp://[{server6}]/grubx64.efi", default_arch: uefi}
hosts:
  - {mac: "52:54:00:00:00:01", duid: "00:03:00:01:52:54:00:00:00:01", ip6: "fd00:213:7::21"}
  - {mac: "52:54:00:00:00:02"}
"""
DUID = DuidLl(1, bytes.fromhex("525400aabbcc"))


def test_subnets_hosts_and_boot_urls_become_engine_settings(tmp_path: Path):
    settings = engine_settings6(parse_config(TEXT, tmp_path / "pxed.yaml"), DUID)
    assert settings.mode is Mode.FULL and settings.rapid_commit
    (link,) = settings.links
    assert link.lease_time == 600 and link.t1 == 300
    (host,) = settings.hosts  # the one with a DHCPv6 identity or reservation
    assert host.duid == bytes.fromhex("00030001525400000001")
    assert host.address == IPv6Address("fd00:213:7::21") and host.mac == "52:54:00:00:00:01"
    assert settings.boot.urls[BootFamily.UEFI] == "tftp://[{server6}]/grubx64.efi"
    assert BootFamily.BIOS not in settings.boot.urls
    assert settings.boot.unknown_arch is BootFamily.UEFI and settings.boot.http_port == 8080


def test_solicit_limits_and_the_offer_cap_reach_the_engine(tmp_path: Path):
    text = TEXT.replace(
        "  rapid_commit: true\n",
        "  rapid_commit: true\n  solicit_burst: 4\n  solicit_rate: 2\n  max_offered_percent: 10\n",
    )
    settings = engine_settings6(parse_config(text, tmp_path / "pxed.yaml"), DUID)
    assert (settings.solicit_burst, settings.solicit_rate, settings.max_offered) == (4, 2.0, 0.1)
    defaults = engine_settings6(parse_config(TEXT, tmp_path / "pxed.yaml"), DUID)
    assert (defaults.solicit_burst, defaults.solicit_rate, defaults.max_offered) == (8, 1.0, 0.25)


def test_preference_and_release_quarantine_reach_the_engine(tmp_path: Path):
    text = TEXT.replace(
        "  rapid_commit: true\n",
        "  rapid_commit: true\n  preference: 0\n  release_quarantine: 0\n",
    )
    settings = engine_settings6(parse_config(text, tmp_path / "pxed.yaml"), DUID)
    assert (settings.preference, settings.release_time) == (0, 0.0)
    defaults = engine_settings6(parse_config(TEXT, tmp_path / "pxed.yaml"), DUID)
    assert (defaults.preference, defaults.release_time) == (255, 600.0)
