"""trees, profiles and hosts: the inventory, and the references between its parts."""

from __future__ import annotations

import shutil
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from pxed.config import (
    AnswerFile,
    Config,
    ConfigError,
    DhcpBoot,
    Loaders,
    load_config,
    parse_config,
)

CONFIGS = Path(__file__).parents[1] / "configs"
# tftp.root: somewhere absent, so kernels of tree-less profiles are not looked for.
HEAD = "server:\n  address: 10.213.7.1\n  interfaces: [veth0]\ntftp: {root: /nonexistent}\n"
FULL = HEAD + (
    "dhcp:\n  mode: full\n  subnets:\n    - network: 10.213.7.0/24\n"
    "      range: [10.213.7.100, 10.213.7.200]\n"
)  # hosts: starts at line 10
PROFILE = "profiles:\n  web:\n    kernel: vmlinuz\n    initrd: initrd.img\n"


def load(text: str, path: str | Path = "/cfg/pxed.yaml") -> Config:
    return parse_config(text, path)


def errors(text: str, path: str | Path = "/cfg/pxed.yaml") -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, path)
    return [str(problem) for problem in caught.value.errors]


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    """A copy of configs/good.yaml with the tree, ISO and template it names."""
    shutil.copy(CONFIGS / "good.yaml", tmp_path / "pxed.yaml")
    images = tmp_path / "trees/rocky9/images/pxeboot"
    images.mkdir(parents=True)
    (images / "vmlinuz").write_bytes(b"kernel")
    (images / "initrd.img").write_bytes(b"initrd")
    (tmp_path / "isos").mkdir()
    (tmp_path / "isos/alma9.iso").write_bytes(b"")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates/web.ks.j2").write_text("text\nreboot\n{{ pxed_done }}\n")
    (tmp_path / "tftp").mkdir()
    for loader in ("pxelinux.0", "syslinux.efi", "grubx64.efi"):
        (tmp_path / "tftp" / loader).write_bytes(b"")
    return tmp_path


def test_three_planted_mistakes_are_all_reported_at_their_lines():
    with pytest.raises(ConfigError) as caught:
        load_config(CONFIGS / "three-mistakes.yaml")
    found = [(p.line, p.column, p.key) for p in caught.value.errors]
    assert found == [
        (9, 3, "tftp.max_windowsiz"),
        (20, 10, "hosts[1].mac"),
        (25, 14, "hosts[2].profile"),
    ]
    assert (
        str(caught.value)
        .splitlines()[1]
        .endswith(
            "three-mistakes.yaml:20:10: hosts[1].mac: unquoted 52:54:00:12:34:56 was read as the "
            "integer 41135085296; quote it"
        )
    )


def test_a_good_inventory_loads_into_typed_objects(lab: Path):
    config = load_config(lab / "pxed.yaml")
    assert config.warnings == ()
    assert config.trees["rocky9"].path == lab / "trees/rocky9"
    assert config.trees["alma9"].iso == lab / "isos/alma9.iso"
    assert config.trees["alma9"].source == lab / "isos/alma9.iso"
    web = config.profiles["rocky9-web"]
    assert (web.tree, web.kernel, web.initrd) == (
        "rocky9",
        "images/pxeboot/vmlinuz",
        "images/pxeboot/initrd.img",
    )
    assert web.answer_file == AnswerFile("kickstart", lab / "templates/web.ks.j2")
    assert web.loader == Loaders(uefi="grubx64.efi")
    assert web.vars["packages"] == ("nginx",)
    web01, db01 = config.hosts
    assert (web01.mac, web01.hostname, web01.ip, web01.netboot) == (
        "52:54:00:12:34:56", "web01", IPv4Address("10.213.7.21"), "once",
    )  # fmt: skip
    assert web01.vars["role"] == "web"
    assert (db01.mac, db01.ip, db01.netboot) == ("52:54:00:ab:cd:ef", None, "always")
    assert config.dhcp.unknown_profile == "rocky9-web" and config.dhcp.allow_unknown


@pytest.mark.parametrize(
    "spelling", ["52:54:00:AB:CD:EF", "52-54-00-ab-cd-ef", "5254.00ab.cdef", "525400ABCDEF"]
)
def test_hosts_are_found_by_mac_in_any_common_spelling(lab: Path, spelling: str):
    config = load_config(lab / "pxed.yaml")
    host = config.host(spelling)
    assert host is not None and host.hostname == "db01"


def test_an_unknown_or_malformed_mac_finds_no_host(lab: Path):
    config = load_config(lab / "pxed.yaml")
    assert config.host("52:54:00:00:00:00") is None
    assert config.host("not a mac") is None


def test_a_profile_boot_loader_overrides_only_what_it_sets(lab: Path):
    config = load_config(lab / "pxed.yaml")
    boot = config.dhcp.boot.with_profile(config.profiles["rocky9-web"].loader)
    assert boot == DhcpBoot(
        bios="pxelinux.0",
        uefi="grubx64.efi",
        ipxe=config.dhcp.boot.ipxe,
        uefi_http=config.dhcp.boot.uefi_http,
        default_arch="none",
    )


def test_a_kernel_missing_from_a_present_tree_folder_is_an_error(lab: Path):
    (lab / "trees/rocky9/images/pxeboot/vmlinuz").unlink()
    (message,) = errors((lab / "pxed.yaml").read_text(), lab / "pxed.yaml")
    assert message == (
        f"{lab / 'pxed.yaml'}:28:13: profiles.rocky9-web.kernel: images/pxeboot/vmlinuz is not "
        f"in {lab / 'trees/rocky9'}"
    )


def test_an_absent_tree_is_a_warning_and_its_kernel_is_not_checked(lab: Path):
    shutil.rmtree(lab / "trees")
    config = load_config(lab / "pxed.yaml")
    assert [w.key for w in config.warnings] == ["trees.rocky9.path"]
    assert "does not exist (yet)" in config.warnings[0].message


def test_a_missing_kickstart_template_is_an_error(lab: Path):
    (lab / "templates/web.ks.j2").unlink()
    (message,) = errors((lab / "pxed.yaml").read_text(), lab / "pxed.yaml")
    assert message.endswith(
        f"profiles.rocky9-web.kickstart: template {lab / 'templates/web.ks.j2'} does not exist"
    )


def test_without_a_tree_the_kernel_is_looked_for_in_an_existing_tftp_root(tmp_path: Path):
    text = (
        "server: {address: 10.0.0.1, interfaces: [veth0]}\n"
        + f"tftp:\n  root: {tmp_path}\n"
        + PROFILE
    )
    assert errors(text) == [
        f"/cfg/pxed.yaml:6:13: profiles.web.kernel: vmlinuz is not in {tmp_path}",
        f"/cfg/pxed.yaml:7:13: profiles.web.initrd: initrd.img is not in {tmp_path}",
    ]


def test_a_tree_needs_exactly_one_of_path_and_iso():
    text = HEAD + "trees:\n  a: {path: /x, iso: /y.iso}\n  b: {}\n"
    assert errors(text) == [
        "/cfg/pxed.yaml:6:22: trees.a.iso: give path or iso, not both",
        "/cfg/pxed.yaml:7:6: trees.b: needs path (a folder) or iso (an ISO 9660 image, served "
        "without mounting)",
    ]


def test_a_tree_path_that_is_a_file_or_an_iso_that_is_a_folder_is_an_error(tmp_path: Path):
    (tmp_path / "f").write_text("")
    text = HEAD + f"trees:\n  a:\n    path: {tmp_path / 'f'}\n  b:\n    iso: {tmp_path}\n"
    assert errors(text) == [
        f"/cfg/pxed.yaml:7:11: trees.a.path: {tmp_path / 'f'} is not a folder",
        f"/cfg/pxed.yaml:9:10: trees.b.iso: {tmp_path} is not a file",
    ]


def test_tree_and_profile_names_must_be_safe_in_urls():
    text = HEAD + "trees:\n  rocky 9:\n    path: /x\n"
    (message,) = errors(text)
    assert message.startswith("/cfg/pxed.yaml:6:3: trees.rocky 9: 'rocky 9' is not a name")


def test_a_profile_naming_a_missing_tree_gets_a_suggestion():
    text = HEAD + "trees:\n  rocky9: {path: /srv/x}\n" + PROFILE + "    tree: rocky8\n"
    assert errors(text) == [
        "/cfg/pxed.yaml:11:11: profiles.web.tree: no tree named 'rocky8'; did you mean 'rocky9'?"
    ]


def test_a_tree_with_errors_is_not_reported_again_where_a_profile_names_it():
    text = HEAD + "trees:\n  rocky9: {path: 9}\n" + PROFILE + "    tree: rocky9\n"
    assert len(errors(text)) == 1


def test_profiles_need_kernel_and_initrd():
    text = HEAD + "profiles:\n  web:\n    append: quiet\n"
    assert errors(text) == [
        "/cfg/pxed.yaml:7:5: profiles.web.initrd: missing (required)",
        "/cfg/pxed.yaml:7:5: profiles.web.kernel: missing (required)",
    ]


@pytest.mark.parametrize("path", ["/boot/vmlinuz", "../vmlinuz", "images/../../x", "a\\\\b"])
def test_kernel_paths_stay_inside_the_tree(path: str):
    (message,) = errors(HEAD + f'profiles:\n  web:\n    kernel: "{path}"\n    initrd: i\n')
    assert "must be a relative path with '/' and no '..' components" in message


def test_append_placeholders_are_checked_and_tree_url_needs_a_tree():
    text = HEAD + PROFILE + '    append: "inst.repo={tree_url} inst.ks={ks_uri}"\n'
    (message,) = errors(text)
    assert "profiles.web.append: unknown placeholder {ks_uri}" in message
    text = HEAD + PROFILE + '    append: "inst.repo={tree_url}"\n'
    assert errors(text) == [
        "/cfg/pxed.yaml:9:13: profiles.web.append: uses {tree_url} but has no tree"
    ]


def test_profile_names_ignore_and_local_are_reserved_for_unknown_hosts():
    (message,) = errors(HEAD + "profiles:\n  local:\n    kernel: k\n    initrd: i\n")
    assert message.startswith("/cfg/pxed.yaml:6:3: profiles.local: reserved word")


def test_hosts_need_a_mac():
    assert errors(FULL + "hosts:\n  - hostname: web01\n") == [
        "/cfg/pxed.yaml:11:5: hosts[0].mac: missing (required)"
    ]


def test_a_bad_mac_says_what_a_mac_looks_like():
    (message,) = errors(FULL + 'hosts:\n  - mac: "52:54:00:12:34"\n')
    assert message == (
        "/cfg/pxed.yaml:11:10: hosts[0].mac: not a MAC address: '52:54:00:12:34' "
        "(expected six hex pairs, like 52:54:00:12:34:56)"
    )


def test_duplicate_macs_hostnames_and_reserved_ips_name_the_first_line():
    text = FULL + (
        'hosts:\n  - {mac: "52:54:00:00:00:01", hostname: web01, ip: 10.213.7.21}\n'
        '  - {mac: "52-54-00-00-00-01", hostname: WEB01, ip: 10.213.7.21}\n'
    )
    assert errors(text) == [
        "/cfg/pxed.yaml:12:11: hosts[1].mac: 52:54:00:00:00:01 is already used by the host "
        "at line 11",
        "/cfg/pxed.yaml:12:42: hosts[1].hostname: WEB01 is already used by the host at line 11",
        "/cfg/pxed.yaml:12:53: hosts[1].ip: 10.213.7.21 is already used by the host at line 11",
    ]


def test_a_reserved_ip_must_be_in_a_subnet_and_not_its_broadcast_address():
    text = FULL + (
        'hosts:\n  - {mac: "52:54:00:00:00:01", ip: 10.213.8.21}\n'
        '  - {mac: "52:54:00:00:00:02", ip: 10.213.7.255}\n'
    )
    assert errors(text) == [
        "/cfg/pxed.yaml:11:36: hosts[0].ip: 10.213.8.21 is in no dhcp subnet (10.213.7.0/24)",
        "/cfg/pxed.yaml:12:36: hosts[1].ip: 10.213.7.255 is the network or broadcast address "
        "of 10.213.7.0/24",
    ]


def test_a_reserved_ip_inside_the_dynamic_range_is_a_warning():
    config = load(FULL + 'hosts:\n  - {mac: "52:54:00:00:00:01", ip: 10.213.7.150}\n')
    (warning,) = [w for w in config.warnings if w.key.startswith("hosts")]
    assert warning.key == "hosts[0].ip" and "inside the dynamic range" in warning.message


def test_a_leasing_subnet_without_dns_is_a_warning_naming_the_installer_stall():
    (warning,) = [w for w in load(FULL).warnings if w.key.endswith("dns")]
    assert warning.key == "dhcp.subnets[0].dns"
    assert "Name server addresses" in warning.message


def test_a_subnet_that_names_dns_servers_has_no_dns_warning():
    config = load(FULL + "      dns: [10.213.7.1]\n")
    assert not [w for w in config.warnings if w.key.endswith("dns")]


def test_a_host_declaring_an_arch_without_a_loader_is_a_warning_naming_the_key():
    host = 'hosts:\n  - {mac: "52:54:00:00:00:01", profile: web, arch: arm64}\n'
    (warning,) = [w for w in load(FULL + PROFILE + host).warnings if w.key.startswith("hosts")]
    assert warning.key == "hosts[0].arch"
    assert "set dhcp.boot.arm64 or the profile's loader.arm64" in warning.message


def test_a_host_arch_served_by_its_profiles_loader_or_dhcp_boot_is_quiet():
    profile = PROFILE + "    loader: {arm64: grubaa64.efi}\n"
    hosts = (
        'hosts:\n  - {mac: "52:54:00:00:00:01", profile: web, arch: arm64}\n'
        '  - {mac: "52:54:00:00:00:02", profile: web, arch: uefi}\n'
        '  - {mac: "52:54:00:00:00:03", arch: riscv64}\n'  # no profile: boots locally
    )
    assert not [w for w in load(FULL + profile + hosts).warnings if w.key.startswith("hosts")]


def test_an_unknown_host_arch_is_an_error_listing_the_choices():
    (message,) = errors(HEAD + PROFILE + 'hosts:\n  - {mac: "52:54:00:00:00:01", arch: x86}\n')
    assert message == (
        "/cfg/pxed.yaml:10:38: hosts[0].arch: 'x86' is not one of: bios, uefi, uefi_http, "
        "uefi32, arm32, arm64, riscv64, loongarch64, arm64_http"
    )


def test_a_host_naming_a_missing_profile_gets_a_suggestion():
    text = HEAD + PROFILE + 'hosts:\n  - mac: "52:54:00:00:00:01"\n    profile: wbe\n'
    assert errors(text) == [
        "/cfg/pxed.yaml:11:14: hosts[0].profile: no profile named 'wbe'; did you mean 'web'?"
    ]


def test_a_host_also_on_the_deny_list_is_a_contradiction():
    text = HEAD + 'dhcp:\n  deny: ["52:54:00:00:00:01"]\nhosts:\n  - mac: "52:54:00:00:00:01"\n'
    assert errors(text) == [
        "/cfg/pxed.yaml:8:10: hosts[0].mac: 52:54:00:00:00:01 is also in dhcp.deny"
    ]


def test_netboot_is_once_always_or_never():
    (message,) = errors(HEAD + 'hosts:\n  - {mac: "52:54:00:00:00:01", netboot: twice}\n')
    assert message.endswith("hosts[0].netboot: 'twice' is not one of: once, always, never")


def test_host_entries_must_be_mappings_and_vars_too():
    text = HEAD + 'hosts:\n  - "52:54:00:00:00:01"\n  - {mac: "52:54:00:00:00:02", vars: [a]}\n'
    assert errors(text) == [
        "/cfg/pxed.yaml:6:5: hosts[0]: expected a mapping of keys, got '52:54:00:00:00:01'",
        "/cfg/pxed.yaml:7:38: hosts[1].vars: expected a mapping, got a list",
    ]


@pytest.mark.parametrize(
    ("keys", "allow", "policy"),
    [
        ("", False, "ignore"),
        ("  allow_unknown: true\n", True, "local"),
        ("  allow_unknown: false\n", False, "ignore"),
        ("  unknown_hosts: local\n", True, "local"),
        ("  unknown_hosts: web\n", True, "web"),
        ("  unknown_hosts: ignore\n", False, "ignore"),
        ("  allow_unknown: true\n  unknown_hosts: web\n", True, "web"),
    ],
)
def test_unknown_host_policy_agrees_with_allow_unknown(keys: str, allow: bool, policy: str):
    dhcp = load(HEAD + PROFILE + "dhcp:\n" + keys).dhcp
    assert (dhcp.allow_unknown, dhcp.unknown_hosts) == (allow, policy)


def test_unknown_hosts_contradicting_allow_unknown_is_an_error():
    (message,) = errors(HEAD + "dhcp:\n  allow_unknown: false\n  unknown_hosts: local\n")
    assert message == (
        "/cfg/pxed.yaml:7:18: dhcp.unknown_hosts: local contradicts dhcp.allow_unknown: false"
    )


def test_unknown_hosts_naming_a_missing_profile_is_an_error():
    (message,) = errors(HEAD + PROFILE + "dhcp:\n  unknown_hosts: webb\n")
    assert message.endswith(
        "dhcp.unknown_hosts: 'webb' is not ignore, local or a profile name; did you mean 'web'?"
    )


def test_install_section_values():
    config = load(
        HEAD + "install:\n  kickstart_open: true\n  loop_fetches: 5\n  loop_window: 600\n"
    )
    assert (config.install.kickstart_open, config.install.loop_fetches) == (True, 5)
    assert config.install.loop_window == 600
