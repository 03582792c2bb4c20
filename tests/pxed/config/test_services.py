"""The server, tftp, dhcp and http sections: types, defaults, ranges and the checks between them."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address
from pathlib import Path

import pytest

from pxed.config import Config, ConfigError, parse_config

HEAD = "server:\n  address: 10.213.7.1\n  interfaces: [veth0]\n"
SUBNET = "  subnets:\n    - network: 10.213.7.0/24\n      range: [10.213.7.100, 10.213.7.200]\n"


def load(text: str, path: str = "/cfg/pxed.yaml") -> Config:
    return parse_config(text, path)


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "/cfg/pxed.yaml")
    return [str(problem) for problem in caught.value.errors]


def test_defaults_are_the_ones_config_md_gives():
    config = load(HEAD)
    assert config.server.state_dir == Path("/var/lib/pxed")
    assert (config.tftp.enabled, config.tftp.root, config.tftp.port) == (
        True,
        Path("/srv/tftp"),
        69,
    )
    assert (config.tftp.max_blksize, config.tftp.max_windowsize) == (1468, 16)
    assert (config.tftp.max_sessions, config.tftp.max_per_client) == (1000, 16)
    assert (config.tftp.timeout, config.tftp.retries) == (1, 5)
    assert (config.dhcp.server_port, config.dhcp.client_port) == (67, 68)
    assert (config.http.enabled, config.http.port, config.http.listen) == (True, 80, ())
    assert config.dhcp.boot.bios == "pxelinux.0"
    assert config.dhcp.boot.uefi == "syslinux.efi"
    assert config.dhcp.boot.ipxe == "http://{server}:{http_port}/boot/{mac}.ipxe"
    assert config.dhcp.boot.uefi_http == "http://{server}:{http_port}/tftp/snponly.efi"
    assert config.dhcp.boot.default_arch == "none"
    assert config.dhcp.decline_quarantine == 600
    assert (config.install.kickstart_open, config.install.loop_fetches) == (False, 3)
    assert (config.logging.json, config.logging.level) == (False, "info")


def test_dhcp_is_off_unless_asked_for():
    """A DHCP server nobody meant to start breaks a LAN: mode defaults to off."""
    assert load(HEAD).dhcp.mode == "off"
    assert not load(HEAD).dhcp.enabled


def test_addresses_are_ipaddress_types():
    config = load(
        HEAD + "tftp:\n  listen: [10.213.7.1, 10.213.8.1]\n" + "dhcp:\n  mode: full\n" + SUBNET
    )
    assert config.server.address == IPv4Address("10.213.7.1")
    assert config.tftp.listen == (IPv4Address("10.213.7.1"), IPv4Address("10.213.8.1"))
    subnet = config.dhcp.subnets[0]
    assert subnet.network == IPv4Network("10.213.7.0/24")
    assert subnet.range == (IPv4Address("10.213.7.100"), IPv4Address("10.213.7.200"))
    assert subnet.lease_time == 3600


def test_server_address_may_be_left_to_start_up_when_interfaces_are_given():
    """The first address of the first interface is only known on the running host."""
    config = load("server:\n  interfaces: [br0]\n")
    assert config.server.address is None
    assert config.server.interfaces == ("br0",)


def test_no_address_and_no_interfaces_is_an_error():
    assert (
        "/cfg/pxed.yaml: server: set server.address or server.interfaces: pxed must tell "
        "clients an address (next-server, HTTP URLs); server.address6 alone for an IPv6-only pxed"
    ) in errors("logging:\n  json: true\n")


def test_relative_paths_resolve_against_the_config_folder():
    config = load(HEAD + "  state_dir: state\ntftp:\n  root: ../tftp\n", "/cfg/etc/pxed.yaml")
    assert config.server.state_dir == Path("/cfg/etc/state")
    assert config.tftp.root == Path("/cfg/etc/../tftp")
    assert config.path == Path("/cfg/etc/pxed.yaml")


def test_leases_stay_in_sqlite_unless_server_database_names_postgresql():
    assert load(HEAD).server.database is None
    assert load(HEAD + "  database: null\n").server.database is None
    url = "postgresql://pxed@db.example.net/pxed?sslmode=verify-full"
    assert load(HEAD + f"  database: '{url}'\n").server.database == url


def test_a_database_that_is_not_a_postgresql_url_is_an_error_at_its_line():
    assert errors(HEAD + "  database: mysql://pxed@db/pxed\n") == [
        "/cfg/pxed.yaml:4:13: server.database: 'mysql://pxed@db/pxed' is not a postgresql://"
        " URL (like postgresql://pxed@db.example.net/pxed); leave it out to keep leases in"
        " SQLite in server.state_dir"
    ]


def test_a_missing_tftp_root_is_a_warning_not_an_error(tmp_path: Path):
    """The operator may mount it later; pxed check still says so."""
    config = load(HEAD + f"tftp:\n  root: {tmp_path / 'absent'}\n")
    (warning,) = config.warnings
    assert str(warning).startswith("/cfg/pxed.yaml:5:9: tftp.root: warning: ")
    assert "does not exist (yet)" in str(warning)


def test_a_tftp_root_that_is_a_file_is_an_error(tmp_path: Path):
    (tmp_path / "file").write_text("")
    assert errors(HEAD + f"tftp:\n  root: {tmp_path / 'file'}\n") == [
        f"/cfg/pxed.yaml:5:9: tftp.root: {tmp_path / 'file'} is not a folder"
    ]


def test_tftp_listening_on_0_0_0_0_is_refused_because_replies_must_leave_from_the_request_address():
    (message,) = errors(HEAD + "tftp:\n  listen: [0.0.0.0]\n")
    assert message.startswith("/cfg/pxed.yaml:5:12: tftp.listen[0]: 0.0.0.0 cannot work for TFTP")


def test_services_without_interfaces_need_listen_addresses():
    text = "server:\n  address: 127.0.0.1\ntftp:\n  port: 6969\nhttp:\n  port: 8080\n"
    assert errors(text) == [
        "/cfg/pxed.yaml:4:3: tftp.listen: tftp has nowhere to listen: give tftp.listen or "
        "server.interfaces (or set tftp.enabled: false)",
        "/cfg/pxed.yaml:6:3: http.listen: http has nowhere to listen: give http.listen or "
        "server.interfaces (or set http.enabled: false)",
    ]


def test_an_explicitly_empty_listen_without_interfaces_is_reported_at_the_list():
    """listen: [] passed `pxed check` and then stopped twistd with NoListenAddress."""
    text = "server:\n  address: 127.0.0.1\ntftp:\n  listen: []\nhttp:\n  enabled: false\n"
    assert errors(text) == [
        "/cfg/pxed.yaml:4:11: tftp.listen: tftp has nowhere to listen: give tftp.listen or "
        "server.interfaces (or set tftp.enabled: false)",
    ]


def test_disabled_services_need_no_addresses():
    text = "server:\n  address: 127.0.0.1\ntftp:\n  enabled: false\nhttp:\n  enabled: no\n"
    config = load(text)
    assert not config.tftp.enabled and not config.http.enabled


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("max_blksize", "65465", "65465 is out of range 8-65464"),
        ("max_blksize", "7", "7 is out of range 8-65464"),
        ("max_windowsize", "0", "0 is out of range 1-32767"),
        ("max_windowsize", "40000", "40000 is out of range 1-32767"),
        ("port", "0", "0 is out of range 1-65535"),
        ("port", "true", "expected a whole number, got the boolean true"),
        ("port", "69.5", "expected a whole number, got the number 69.5"),
        ("max_sessions", "[1]", "expected a whole number, got a list"),
        ("enabled", "1", "expected true or false, got the integer 1"),
        ("listen", "10.0.0.1", "expected a list, got '10.0.0.1'"),
    ],
)
def test_tftp_values_are_range_and_type_checked(key: str, value: str, message: str):
    assert errors(HEAD + f"tftp:\n  {key}: {value}\n") == [
        f"/cfg/pxed.yaml:5:{len(key) + 5}: tftp.{key}: {message}"
    ]


def test_bad_addresses_and_networks_say_what_they_expected():
    text = HEAD + (
        "dhcp:\n  mode: full\n  subnets:\n    - network: 10.213.7.1/24\n"
        "      router: 10.213.7.256\n"
    )
    problems = errors(text)
    assert problems[0].startswith(
        "/cfg/pxed.yaml:7:16: dhcp.subnets[0].network: not an IPv4 network like 10.213.7.0/24: "
        "'10.213.7.1/24' ("
    )
    assert problems[1].startswith(
        "/cfg/pxed.yaml:8:15: dhcp.subnets[0].router: not an IPv4 address: '10.213.7.256'"
    )


def test_interface_names_are_checked():
    (message,) = errors("server:\n  address: 10.0.0.1\n  interfaces: [eth0:1]\n")
    assert "server.interfaces[0]: 'eth0:1' is not a network interface name" in message


def test_a_bad_interface_name_is_reported_once_not_again_by_every_service():
    text = "server:\n  interfaces: [eth0:1]\ndhcp:\n  mode: proxy\n"
    assert len(errors(text)) == 1


def test_server_address_must_be_one_a_client_can_use():
    (message,) = errors("server:\n  address: 0.0.0.0\n  interfaces: [br0]\n")
    assert message.endswith("server.address: 0.0.0.0 cannot be given to clients as the server")


def test_dhcp_needs_interfaces_and_full_mode_needs_a_subnet():
    text = "server:\n  address: 127.0.0.1\ntftp: {enabled: false}\nhttp: {enabled: false}\n"
    assert errors(text + "dhcp:\n  mode: full\n") == [
        "/cfg/pxed.yaml:6:9: dhcp.mode: dhcp.mode full needs at least one subnet",
        "/cfg/pxed.yaml:6:9: dhcp.mode: dhcp.mode full needs server.interfaces "
        "(DHCP listens on one socket per interface)",
    ]


def test_proxy_dhcp_needs_no_subnet():
    assert load(HEAD + "dhcp:\n  mode: proxy\n").dhcp.mode == "proxy"


def test_subnet_range_must_lie_inside_its_network_and_not_be_reversed():
    text = HEAD + (
        "dhcp:\n  mode: full\n  subnets:\n    - network: 10.213.7.0/24\n"
        "      range: [10.213.7.100, 10.213.8.5]\n"
        "    - network: 10.213.9.0/24\n      range: [10.213.9.50, 10.213.9.10]\n"
        "    - network: 10.213.10.0/24\n      range: [10.213.10.0, 10.213.10.9]\n"
        "      router: 10.213.11.1\n"
    )
    assert errors(text) == [
        "/cfg/pxed.yaml:8:14: dhcp.subnets[0].range: 10.213.8.5 is outside 10.213.7.0/24",
        "/cfg/pxed.yaml:10:14: dhcp.subnets[1].range: 10.213.9.50 comes after 10.213.9.10",
        "/cfg/pxed.yaml:12:14: dhcp.subnets[2].range: 10.213.10.0 is the network or broadcast "
        "address of 10.213.10.0/24",
        "/cfg/pxed.yaml:13:15: dhcp.subnets[2].router: 10.213.11.1 is outside 10.213.10.0/24",
    ]


def test_overlapping_subnets_are_an_error():
    text = HEAD + (
        "dhcp:\n  mode: full\n  subnets:\n    - network: 10.213.0.0/16\n"
        "    - network: 10.213.7.0/24\n"
    )
    assert errors(text) == ["/cfg/pxed.yaml:8:7: dhcp.subnets[1]: overlaps subnet 10.213.0.0/16"]


def test_subnet_without_network_is_reported_at_the_subnet():
    assert errors(HEAD + "dhcp:\n  mode: full\n  subnets:\n    - router: 10.0.0.1\n") == [
        "/cfg/pxed.yaml:7:7: dhcp.subnets[0].network: missing (required)"
    ]


def test_dhcp_and_tftp_ports_must_not_collide():
    text = (
        HEAD
        + "tftp:\n  port: 6767\ndhcp:\n  mode: proxy\n  server_port: 6767\n  client_port: 6767\n"
    )
    assert errors(text) == [
        "/cfg/pxed.yaml:8:16: dhcp.server_port: equals tftp.port",
        "/cfg/pxed.yaml:9:16: dhcp.client_port: equals server_port",
    ]


def test_deny_list_macs_are_normalised():
    config = load(HEAD + 'dhcp:\n  deny: ["52-54-00-AA-BB-CC", "5254.00aa.bbcd"]\n')
    assert config.dhcp.deny == frozenset({"52:54:00:aa:bb:cc", "52:54:00:aa:bb:cd"})


def test_boot_file_placeholders_are_checked_at_load():
    (message,) = errors(HEAD + 'dhcp:\n  boot:\n    ipxe: "http://{server}/{hostnme}.ipxe"\n')
    assert message == (
        "/cfg/pxed.yaml:6:11: dhcp.boot.ipxe: unknown placeholder {hostnme}; "
        "known: {http_port}, {mac}, {server}"
    )


def test_unbalanced_braces_in_boot_files_are_reported():
    (message,) = errors(HEAD + 'dhcp:\n  boot:\n    bios: "pxe{linux.0"\n')
    assert "dhcp.boot.bios: bad placeholder" in message


def test_boot_loader_missing_from_an_existing_tftp_root_is_a_warning(tmp_path: Path):
    (tmp_path / "pxelinux.0").write_bytes(b"")
    config = load(HEAD + f"tftp:\n  root: {tmp_path}\ndhcp:\n  mode: proxy\n")
    assert [str(w) for w in config.warnings] == [
        f"/cfg/pxed.yaml:5:9: dhcp.boot.uefi: warning: syslinux.efi (default) is not in {tmp_path}"
    ]


def test_default_arch_is_an_enumeration():
    assert load(HEAD + "dhcp:\n  boot:\n    default_arch: bios\n").dhcp.boot.default_arch == "bios"
    (message,) = errors(HEAD + "dhcp:\n  boot:\n    default_arch: arm\n")
    assert message.endswith("'arm' is not one of: none, bios, uefi")


def test_logging_level_and_json():
    config = load(HEAD + "logging:\n  json: true\n  level: debug\n")
    assert (config.logging.json, config.logging.level) == (True, "debug")


def test_config_objects_are_frozen():
    config = load(HEAD)
    with pytest.raises(AttributeError):
        config.tftp.port = 70  # type: ignore[misc]


def test_server_notice_is_read_as_written_and_absent_by_default():
    assert load(HEAD).server.notice is None
    text = HEAD + '  notice: "No configuration found: attach a disk labelled pxed-data."\n'
    assert load(text).server.notice == "No configuration found: attach a disk labelled pxed-data."


def test_an_empty_server_notice_is_an_error():
    assert any("server.notice: must not be empty" in e for e in errors(HEAD + '  notice: ""\n'))


# -- IPv6 listen addresses ----------------------------------------------------------------


def test_ipv6_listen_addresses_keep_a_link_local_addresss_zone_for_binding():
    config = load(
        HEAD
        + 'tftp:\n  listen6: ["2001:db8:7::1", "fe80::1%veth0"]\n'
        + 'http:\n  listen6: ["fd00:7::1"]\n'
    )
    assert config.tftp.listen6 == (IPv6Address("2001:db8:7::1"), IPv6Address("fe80::1%veth0"))
    assert config.tftp.listen6[1].scope_id == "veth0"
    assert config.http.listen6 == (IPv6Address("fd00:7::1"),)
    assert (load(HEAD).tftp.listen6, load(HEAD).http.listen6) == ((), ())


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"fe80::1"', "fe80::1 is link-local: name the interface it is on, like fe80::1%br0"),
        ('"2001:db8::1%veth0"', "a zone (%veth0) belongs on link-local addresses only"),
        ('"::"', ":: is refused"),
        ('"ff02::1"', "ff02::1 is not an address of this host to listen on"),
        ('"::ffff:10.0.0.1"', "is not an address of this host to listen on"),
        ('"10.213.7.1"', "not an IPv6 address (like 2001:db8::1 or fe80::1%br0): '10.213.7.1'"),
    ],
)
@pytest.mark.parametrize("section", ["tftp", "http"])
def test_a_bad_ipv6_listen_address_is_an_error_naming_file_line_and_key(
    section: str, value: str, message: str
):
    (error,) = errors(HEAD + f"{section}:\n  listen6: [{value}]\n")
    assert error.startswith(f"/cfg/pxed.yaml:5:13: {section}.listen6[0]: "), error
    assert message in error


def test_ipv6_listen_addresses_alone_are_somewhere_to_listen():
    """An IPv6-only service needs neither server.interfaces nor an IPv4 listen address."""
    text = 'server:\n  address: 127.0.0.1\ntftp:\n  listen6: ["::1"]\nhttp:\n  listen6: ["::1"]\n'
    assert load(text).http.listen == ()


def test_server_address6_is_given_to_clients_so_it_refuses_a_zone():
    assert load(HEAD + '  address6: "2001:db8:7::1"\n').server.address6 == IPv6Address(
        "2001:db8:7::1"
    )
    (error,) = errors(HEAD + '  address6: "fe80::1%veth0"\n')
    assert error.startswith("/cfg/pxed.yaml:4:13: server.address6: fe80::1%veth0: a zone")
    assert "RFC 6874" in error
    (error,) = errors(HEAD + '  address6: "::"\n')
    assert error.endswith(":: cannot be given to clients as the server")


def test_peer_timeout_defaults_to_three_seconds_and_must_outlast_two_heartbeats():
    assert load(HEAD).server.peer_timeout == 3
    assert load(HEAD + "  peer_timeout: 10\n").server.peer_timeout == 10
    (error,) = errors(HEAD + "  peer_timeout: 1\n")
    assert error.startswith("/cfg/pxed.yaml:4:17: server.peer_timeout: ")


def test_peer_ack_delay_defaults_to_ten_seconds_of_secs_and_is_checked_where_written():
    assert load(HEAD).server.peer_ack_delay == 10
    assert load(HEAD + "  peer_ack_delay: 4\n").server.peer_ack_delay == 4
    (error,) = errors(HEAD + "  peer_ack_delay: 0\n")
    assert error.startswith("/cfg/pxed.yaml:4:19: server.peer_ack_delay: ")
    (error,) = errors(HEAD + "  peer_ack_delay: soon\n")
    assert error.startswith("/cfg/pxed.yaml:4:19: server.peer_ack_delay: expected a whole number")
