"""Kickstart rendering: Jinja2 with every variable, pykickstart's verdict, errors at their line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pxed.config import Config, ConfigError, load_config
from pxed.provisioning.answers import check_config, checked, render
from pxed.provisioning.kickstart import check_one
from pxed.provisioning.tokens import host_token
from pxed.provisioning.urls import Urls

URLS = Urls("10.213.7.1", 8080)
SECRET = b"s" * 32
GOOD = """text
url --url={{ tree_url }}
network --bootproto=dhcp --hostname={{ host.hostname }}
rootpw --iscrypted {{ vars.hash }}
{% for disk in vars.disks %}
ignoredisk --drives={{ disk }}
{% endfor %}
reboot
{{ pxed_done }}
{{ pxed_failed }}
"""


def write_lab(tmp_path: Path, template: str, extra_host: str = "") -> Path:
    (tmp_path / "tree").mkdir(exist_ok=True)
    for image in ("vmlinuz", "initrd.img"):
        (tmp_path / "tree" / image).write_bytes(b"image")
    (tmp_path / "web.ks.j2").write_text(template)
    config = tmp_path / "pxed.yaml"
    config.write_text(
        f"""server: {{address: 10.213.7.1, state_dir: {tmp_path}/state}}
tftp: {{enabled: false}}
http: {{listen: [127.0.0.1], port: 8080}}
vars: {{hash: "$6$global", disks: [sdb]}}
trees:
  rocky: {{path: {tmp_path}/tree}}
profiles:
  web:
    tree: rocky
    kernel: vmlinuz
    initrd: initrd.img
    kickstart: web.ks.j2
    vars: {{hash: "$6$profile"}}
hosts:
  - {{mac: "52:54:00:12:34:56", hostname: web01, profile: web, vars: {{hash: "$6$host"}}}}
  - {{mac: "52:54:00:12:34:57", hostname: web02, profile: web}}
{extra_host}"""
    )
    return config


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(write_lab(tmp_path, GOOD))


def test_a_rendered_kickstart_has_host_profile_and_global_vars_most_specific_first(config: Config):
    web01 = render(config, config.hosts[0], URLS, SECRET).text
    web02 = render(config, config.hosts[1], URLS, SECRET).text
    assert "url --url=http://10.213.7.1:8080/trees/rocky/\n" in web01
    assert "--hostname=web01\n" in web01
    assert "rootpw --iscrypted $6$host\n" in web01
    assert "rootpw --iscrypted $6$profile\n" in web02
    assert "ignoredisk --drives=sdb\nreboot\n" in web01  # {% %} lines leave no blank line


def test_pxed_done_and_failed_post_the_hosts_own_token_to_its_callbacks(config: Config):
    text = render(config, config.hosts[0], URLS, SECRET).text
    token = host_token(SECRET, "52:54:00:12:34:56")
    assert "%post --nochroot\n" in text and "%onerror\n" in text
    assert (
        f"curl -fsS -X POST --data token={token} "
        "http://10.213.7.1:8080/api/hosts/52:54:00:12:34:56/done" in text
    )
    assert "http://10.213.7.1:8080/api/hosts/52:54:00:12:34:56/failed" in text
    assert token != host_token(SECRET, "52:54:00:12:34:57")


def test_pykickstart_rejects_an_unknown_command_with_its_line():
    verdict = check_one("text\nreboot\nfrobnicate --now\n")
    assert verdict is not None and verdict[0] == 3
    assert "Unknown command: frobnicate" in verdict[1]


def test_an_unclosed_quote_is_a_problem_not_a_crash():
    verdict = check_one("text\nnetwork --hostname='web\n")
    assert verdict is not None and verdict[0] == 2
    assert "No closing quotation" in verdict[1]


def test_checking_names_template_line_host_and_error_for_a_bad_command(tmp_path: Path):
    """The rendered line is 5 (the loop adds none) but the template line is what the user edits."""
    template = GOOD.replace("reboot\n", "reboot\nbogus_command --yes\n")
    with pytest.raises(ConfigError) as caught:
        checked(load_config(write_lab(tmp_path, template)))
    problems = [str(p) for p in caught.value.errors]
    assert len(problems) == 2  # one per host that uses the template
    assert problems[0] == (
        f"{tmp_path}/web.ks.j2:9:1: hosts[0]: host web01 (52:54:00:12:34:56): rendered line 7: "
        "pykickstart: Unknown command: bogus_command"
    )
    assert "hosts[1]: host web02" in problems[1]


def test_an_undefined_variable_is_an_error_at_its_template_line(tmp_path: Path):
    template = GOOD.replace("reboot\n", "reboot\nlang {{ vars.language }}\n")
    with pytest.raises(ConfigError) as caught:
        checked(load_config(write_lab(tmp_path, template)))
    first = caught.value.errors[0]
    assert (first.file, first.line, first.key) == (f"{tmp_path}/web.ks.j2", 9, "hosts[0]")
    assert "'dict object' has no attribute 'language'" in first.message
    assert "StrictUndefined" in first.message


def test_a_jinja_syntax_error_points_at_its_line(tmp_path: Path):
    template = GOOD.replace("reboot\n", "reboot\n{% if %}\n")
    with pytest.raises(ConfigError) as caught:
        checked(load_config(write_lab(tmp_path, template)))
    assert caught.value.errors[0].line == 9
    assert "Jinja2" in caught.value.errors[0].message


def test_a_host_specific_value_breaks_only_that_host(tmp_path: Path):
    """Rendering per host catches a value that breaks one host's Kickstart only."""
    extra = (
        '  - {mac: "52:54:00:12:34:58", hostname: web03, profile: web, vars: {disks: ["sdb\'"]}}\n'
    )
    with pytest.raises(ConfigError) as caught:
        checked(load_config(write_lab(tmp_path, GOOD, extra)))
    assert [p.key for p in caught.value.errors] == ["hosts[2]"]
    assert caught.value.errors[0].line == 6  # the ignoredisk line inside the loop


def test_the_unknown_hosts_profile_is_rendered_for_a_stand_in_host(tmp_path: Path):
    path = write_lab(tmp_path, GOOD.replace("{{ host.hostname }}", "{{ host.hostname.upper() }}"))
    path.write_text(path.read_text().replace("tftp:", "dhcp: {unknown_hosts: web}\ntftp:", 1))
    with pytest.raises(ConfigError) as caught:
        checked(load_config(path))
    assert [p.key for p in caught.value.errors] == ["dhcp.unknown_hosts"]


def test_check_config_of_the_reference_config_is_clean():
    root = Path(__file__).resolve().parents[3]
    assert check_config(load_config(root / "etc/pxed.yaml")) == ([], [])


def test_a_template_without_pxed_done_is_a_warning_for_once_hosts(tmp_path: Path):
    config = checked(load_config(write_lab(tmp_path, GOOD.replace("{{ pxed_done }}", ""))))
    warnings = [str(w) for w in config.warnings]
    assert warnings == [
        f"{tmp_path}/web.ks.j2: hosts[0]: warning: never reports done ({{{{ pxed_done }}}} "
        "missing): netboot once hosts will reinstall at every boot until the loop breaker "
        "stops them"
    ]
