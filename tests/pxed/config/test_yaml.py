"""The YAML layer of the config loader: pitfall 9, duplicate keys, marks, every error at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from pxed.config import ConfigError, ConfigProblem, load_config, parse_config

HEAD = "server:\n  address: 10.213.7.1\n  interfaces: [veth0]\n"


def errors(text: str, path: str = "/cfg/pxed.yaml") -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, path)
    return [str(problem) for problem in caught.value.errors]


def test_unquoted_sexagesimal_mac_is_rejected_with_its_source_text_and_a_fix():
    """Unquoted 52:54:00:12:34:56 is the integer 41135085296 in YAML 1.1: say so, say quote it."""
    text = HEAD + "hosts:\n  - mac: 52:54:00:12:34:56\n"
    assert errors(text) == [
        "/cfg/pxed.yaml:5:10: hosts[0].mac: unquoted 52:54:00:12:34:56 was read as the "
        "integer 41135085296; quote it"
    ]


def test_unquoted_mac_in_the_third_host_names_index_2():
    text = HEAD + (
        'hosts:\n  - mac: "52:54:00:00:00:01"\n  - mac: "52:54:00:00:00:02"\n'
        "  - mac: 52:54:00:12:34:56\n"
    )
    assert errors(text) == [
        "/cfg/pxed.yaml:7:10: hosts[2].mac: unquoted 52:54:00:12:34:56 was read as the "
        "integer 41135085296; quote it"
    ]


def test_unquoted_mac_with_hex_letters_is_already_a_string_and_accepted():
    config = parse_config(HEAD + "hosts:\n  - mac: 52:54:00:AB:cd:EF\n", "/cfg/pxed.yaml")
    assert config.hosts[0].mac == "52:54:00:ab:cd:ef"


def test_duplicate_keys_are_errors_naming_both_lines():
    text = "server:\n  address: 10.213.7.1\n  interfaces: [veth0]\n  address: 10.213.7.2\n"
    assert errors(text) == [
        "/cfg/pxed.yaml:4:3: server.address: duplicate key 'address'; first set at line 2, "
        "column 3 (YAML would silently keep only the last)"
    ]


def test_duplicate_top_level_sections_are_errors():
    text = HEAD + "tftp:\n  port: 69\ntftp:\n  port: 70\n"
    assert errors(text) == [
        "/cfg/pxed.yaml:6:1: tftp: duplicate key 'tftp'; first set at line 4, column 1 "
        "(YAML would silently keep only the last)"
    ]


def test_duplicate_keys_inside_free_form_vars_are_errors_too():
    text = HEAD + 'hosts:\n  - mac: "52:54:00:00:00:01"\n    vars: {role: web, role: db}\n'
    assert errors(text) == [
        "/cfg/pxed.yaml:6:23: hosts[0].vars.role: duplicate key 'role'; first set at line 6, "
        "column 12 (YAML would silently keep only the last)"
    ]


def test_unquoted_off_for_dhcp_mode_means_off():
    """YAML 1.1 reads `off` as false; docs/configuration.md says take false as off."""
    assert parse_config(HEAD + "dhcp:\n  mode: off\n", "/cfg/x.yaml").dhcp.mode == "off"


def test_dhcp_mode_true_is_not_a_mode():
    assert errors(HEAD + "dhcp:\n  mode: on\n") == [
        "/cfg/pxed.yaml:5:9: dhcp.mode: unquoted on was read as the boolean true; quote it"
    ]


def test_leading_zero_integers_are_refused_because_yaml_reads_them_as_octal():
    assert errors(HEAD + "tftp:\n  port: 0755\n") == [
        "/cfg/pxed.yaml:5:9: tftp.port: 0755 is read as octal (493) by YAML 1.1; drop the leading 0"
    ]


def test_base_60_integers_are_refused():
    assert errors(HEAD + "dhcp:\n  decline_quarantine: 10:00\n") == [
        "/cfg/pxed.yaml:5:23: dhcp.decline_quarantine: 10:00 is read as base 60 (600) by "
        "YAML 1.1; write the number"
    ]


def test_a_string_key_given_a_number_says_quote_it():
    assert errors(HEAD + 'hosts:\n  - mac: "52:54:00:00:00:01"\n    hostname: 1.5\n') == [
        "/cfg/pxed.yaml:6:15: hosts[0].hostname: unquoted 1.5 was read as the number 1.5; quote it"
    ]


def test_unknown_keys_suggest_the_close_name():
    assert errors(HEAD + "tftp:\n  max_blocksize: 1400\n") == [
        "/cfg/pxed.yaml:5:3: tftp.max_blocksize: unknown key 'max_blocksize'; "
        "did you mean 'max_blksize'?"
    ]


def test_unknown_keys_without_a_close_name_list_the_choices():
    (message,) = errors(HEAD + "http:\n  zzz: 1\n")
    assert message.endswith(
        "unknown key 'zzz'; expected one of: enabled, header_timeout, listen, listen6, "
        "max_connections, max_per_client, port"
    )


def test_unknown_top_level_section_suggests_the_close_one():
    (message,) = errors(HEAD + "profile:\n  a: {}\n")
    assert message == (
        "/cfg/pxed.yaml:4:1: profile: unknown key 'profile'; did you mean 'profiles'?"
    )


def test_every_error_is_collected_in_file_order_not_just_the_first():
    text = HEAD + "tftp:\n  port: 70000\nhttp:\n  port: http\ndhcp:\n  mode: fully\n"
    assert errors(text) == [
        "/cfg/pxed.yaml:5:9: tftp.port: 70000 is out of range 1-65535",
        "/cfg/pxed.yaml:7:9: http.port: expected a whole number, got the string 'http'",
        "/cfg/pxed.yaml:9:9: dhcp.mode: 'fully' is not one of: full, proxy, off",
    ]


def test_a_syntax_error_is_one_problem_at_its_position():
    (message,) = errors("server:\n  address: [10.0.0.1\n")
    assert message.startswith("/cfg/pxed.yaml:3:1: YAML syntax: ")


def test_an_empty_file_is_an_error():
    assert errors("") == ["/cfg/pxed.yaml: the file is empty; see etc/pxed.yaml for every key"]


def test_a_top_level_list_is_an_error():
    assert errors("- a\n") == ["/cfg/pxed.yaml:1:1: expected a mapping of keys, got a list"]


def test_python_tags_on_lists_are_refused():
    (message,) = errors(HEAD + "vars:\n  x: !!python/object/apply:os.system [true]\n")
    assert message == (
        "/cfg/pxed.yaml:5:6: vars.x: tag tag:yaml.org,2002:python/object/apply:os.system "
        "is not allowed in a pxed config"
    )


def test_unknown_tags_on_scalars_are_refused_by_the_safe_constructors():
    (message,) = errors(HEAD + "vars:\n  x: !!python/name:os.system ''\n")
    assert message.startswith("/cfg/pxed.yaml:5:6: vars.x: could not determine a constructor")


def test_tagged_sections_are_refused():
    (message,) = errors(HEAD + "tftp: !!omap {port: 69}\n")
    assert message.endswith("tftp: tag tag:yaml.org,2002:omap is not allowed in a pxed config")


def test_merge_keys_work_and_explicit_keys_win_over_merged_ones():
    text = HEAD + (
        "hosts:\n"
        '  - &web {mac: "52:54:00:00:00:01", netboot: always, vars: {role: web}}\n'
        '  - <<: *web\n    mac: "52:54:00:00:00:02"\n'
    )
    config = parse_config(text, "/cfg/x.yaml")
    assert [h.mac for h in config.hosts] == ["52:54:00:00:00:01", "52:54:00:00:00:02"]
    assert config.hosts[1].netboot == "always"
    assert config.hosts[1].vars["role"] == "web"


def test_free_form_vars_are_immutable():
    config = parse_config(HEAD + "vars:\n  ntp: [a, b]\n  x: {y: 1}\n", "/cfg/x.yaml")
    assert config.vars["ntp"] == ("a", "b")
    with pytest.raises(TypeError):
        config.vars["x"]["y"] = 2  # type: ignore[index]


def test_config_error_str_is_every_problem_one_per_line():
    error = ConfigError(
        [ConfigProblem("f", 3, 1, "b", "second"), ConfigProblem("f", 1, 2, "a", "first")]
    )
    assert str(error) == "f:1:2: a: first\nf:3:1: b: second"


def test_load_config_reports_an_unreadable_file(tmp_path: Path):
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "missing.yaml")
    assert (
        str(caught.value) == f"{tmp_path / 'missing.yaml'}: cannot read: No such file or directory"
    )


def test_load_config_reports_a_file_that_is_not_utf8(tmp_path: Path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"vars:\n  x: caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)
