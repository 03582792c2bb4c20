"""The dhcp6 section and the hosts' DHCPv6 keys: parsed into typed values, every mistake
named with its file, line and key path."""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network

import pytest

from pxed.config import Config, ConfigError, parse_config

SERVER = "server: {address: 10.0.0.1, interfaces: [eth0], state_dir: /tmp}\n"
QUIET = "tftp: {enabled: false}\nhttp: {enabled: false}\n"
DHCP6 = (
    "dhcp6:\n"
    "  mode: full\n"
    "  subnets:\n"
    "    - prefix: fd00:213:7::/64\n"
    '      range: ["fd00:213:7::100", "fd00:213:7::1ff"]\n'
    '      dns: ["fd00:213:7::1"]\n'
)  # lines 4-9


def load(text: str) -> Config:
    return parse_config(SERVER + QUIET + text, "/cfg/pxed.yaml")


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(text)
    return [str(problem) for problem in caught.value.errors]


def test_a_full_dhcp6_section_reads_into_typed_subnets_and_defaults():
    config = load(DHCP6)
    dhcp6 = config.dhcp6
    assert dhcp6.mode == "full" and dhcp6.enabled
    (subnet,) = dhcp6.subnets
    assert subnet.prefix == IPv6Network("fd00:213:7::/64")
    assert subnet.range == (IPv6Address("fd00:213:7::100"), IPv6Address("fd00:213:7::1ff"))
    assert subnet.dns == (IPv6Address("fd00:213:7::1"),) and subnet.lease_time == 3600
    assert dhcp6.interfaces == () and not dhcp6.rapid_commit
    assert dhcp6.boot.uefi is None
    assert dhcp6.boot.uefi_http == "http://[{server6}]:{http_port}/tftp/snponly.efi"


def test_dhcp6_is_off_when_the_file_says_nothing():
    assert not load("").dhcp6.enabled


def test_full_mode_without_a_subnet_is_an_error_at_the_mode():
    assert errors("dhcp6: {mode: full}\n") == [
        "/cfg/pxed.yaml:4:15: dhcp6.mode: dhcp6.mode full needs at least one subnet"
    ]


def test_a_range_outside_its_prefix_names_the_line_and_key():
    text = DHCP6.replace("fd00:213:7::1ff", "fd00:213:8::1")
    assert errors(text) == [
        "/cfg/pxed.yaml:8:14: dhcp6.subnets[0].range: fd00:213:8::1 is outside fd00:213:7::/64"
    ]


def test_overlapping_prefixes_are_an_error():
    text = DHCP6 + "    - prefix: fd00:213::/32\n"
    (message,) = errors(text)
    assert "dhcp6.subnets[1]: overlaps subnet fd00:213:7::/64" in message


def test_a_boot_url_with_a_bare_server6_is_refused():
    text = DHCP6 + "  boot:\n    uefi: 'tftp://{server6}/grubx64.efi'\n"
    (message,) = errors(text)
    assert message.startswith("/cfg/pxed.yaml:11:11: dhcp6.boot.uefi: ")
    assert "[{server6}]" in message


def test_a_link_local_prefix_is_refused():
    (message,) = errors("dhcp6:\n  subnets:\n    - prefix: fe80::/64\n")
    assert "dhcp6.subnets[0].prefix: fe80::/64 is link-local" in message


def test_hosts_carry_a_duid_and_an_ipv6_reservation():
    text = DHCP6 + (
        "hosts:\n"
        '  - {mac: "52:54:00:00:00:01", duid: "00:03:00:01:52:54:00:00:00:01",'
        ' ip6: "fd00:213:7::21"}\n'
    )
    (host,) = load(text).hosts
    assert host.duid == bytes.fromhex("00030001525400000001")
    assert host.ip6 == IPv6Address("fd00:213:7::21")


def test_a_duid_that_no_client_can_send_is_refused():
    text = DHCP6 + 'hosts:\n  - {mac: "52:54:00:00:00:01", duid: "00:04:01:02"}\n'
    (message,) = errors(text)
    assert message.startswith("/cfg/pxed.yaml:11:38: hosts[0].duid: not a DUID")
    assert "expected exactly 16" in message


def test_an_ip6_outside_every_dhcp6_subnet_and_a_repeated_duid_are_errors():
    text = DHCP6 + (
        "hosts:\n"
        '  - {mac: "52:54:00:00:00:01", duid: "00:03:00:01:52:54:00:00:00:01",'
        ' ip6: "fd00:1::5"}\n'
        '  - {mac: "52:54:00:00:00:02", duid: "00-03-00-01-52-54-00-00-00-01"}\n'
    )
    found = errors(text)
    outside = "hosts[0].ip6: fd00:1::5 is in no dhcp6 subnet (fd00:213:7::/64)"
    assert any(outside in e for e in found)
    assert any("hosts[1].duid: 00:03:00:01:52:54:00:00:00:01 is already used" in e for e in found)
