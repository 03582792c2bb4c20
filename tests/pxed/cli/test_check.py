"""`pxed check FILE`: the shipped configs pass, a bad file exits 1 with every problem listed."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pxed.cli import check
from pxed.config import load_config
from pxed.config.build import KEYS

ROOT = Path(__file__).resolve().parents[3]
CONFIGS = Path(__file__).parents[1] / "configs"


def pxed_check(path: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pxed", "check", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("name", ["etc/pxed.yaml", "etc/demo.yaml"])
def test_shipped_configs_check_clean(name: str):
    """CI runs this: the reference config and the demo config must always validate."""
    result = pxed_check(name)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{name}: ok")
    assert " error" not in result.stderr


def test_a_bad_file_exits_1_and_lists_every_error_with_its_line():
    result = pxed_check(CONFIGS / "three-mistakes.yaml")
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    path = CONFIGS / "three-mistakes.yaml"
    assert [line for line in lines if "warning" not in line] == [
        f"{path}:9:3: tftp.max_windowsiz: unknown key 'max_windowsiz'; did you mean "
        "'max_windowsize'?",
        f"{path}:20:10: hosts[1].mac: unquoted 52:54:00:12:34:56 was read as the integer "
        "41135085296; quote it",
        f"{path}:25:14: hosts[2].profile: no profile named 'rocky9-db'; did you mean 'rocky9-web'?",
        f"{path}: 3 errors",
    ]


def test_bad_ipv6_listen_addresses_are_reported_with_file_line_and_key(tmp_path: Path):
    path = tmp_path / "pxed.yaml"
    path.write_text(
        'server: {address: 127.0.0.1, address6: "fe80::1%br0"}\n'
        'tftp:\n  listen: [127.0.0.1]\n  listen6: ["fe80::1", "2001:db8::1%br0"]\n'
        'http:\n  listen6: ["::"]\n'
    )
    result = pxed_check(path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{path}:1:40: server.address6: fe80::1%br0: a zone (%br0) names one of pxed's own "
        "interfaces and means nothing to a client (RFC 6874); give the address without it",
        f"{path}:4:13: tftp.listen6[0]: fe80::1 is link-local: name the interface it is on, "
        "like fe80::1%br0 (quote it in YAML)",
        f"{path}:4:24: tftp.listen6[1]: 2001:db8::1%br0: a zone (%br0) belongs on link-local "
        "addresses only",
        f"{path}:6:13: http.listen6[0]: :: is refused: it would take IPv4 too, clashing with "
        "the listen addresses, and TFTP must answer from the address each request came to; "
        "list the IPv6 addresses",
        f"{path}: 4 errors",
    ]


def test_a_missing_file_exits_1():
    result = pxed_check("/nonexistent/pxed.yaml")
    assert result.returncode == 1
    assert "/nonexistent/pxed.yaml: cannot read: No such file or directory" in result.stderr


def test_warnings_are_printed_but_do_not_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "pxed.yaml"
    path.write_text("server: {address: 127.0.0.1}\ntftp:\n  listen: [127.0.0.1]\n  root: absent\n"
                    "http: {enabled: false}\n")  # fmt: skip
    assert check.run(argparse.Namespace(file=str(path))) == 0
    out, err = capsys.readouterr()
    assert out == f"{path}: ok (1 warning)\n"
    assert err == (
        f"{path}:4:9: tftp.root: warning: {tmp_path / 'absent'} does not exist (yet); files "
        "cannot be served until it exists\n"
    )


def _documented(node: object, pattern: str, found: dict[str, set[str]]) -> None:
    """Collect the keys a YAML document uses, in KEYS' notation (`[]` items, `*` names)."""
    if isinstance(node, dict):
        found.setdefault(pattern, set()).update(node)
        named = pattern in ("trees", "profiles", "profiles.*.cpus")
        for key, value in node.items():
            child = f"{pattern}.*" if named else f"{pattern}.{key}" if pattern else key
            if key != "vars":
                _documented(value, child, found)
    elif isinstance(node, list):
        for item in node:
            _documented(item, f"{pattern}[]", found)


def test_the_reference_config_shows_every_key_the_loader_accepts():
    """etc/pxed.yaml is the documentation: a key added to the loader must appear there too."""
    found: dict[str, set[str]] = {}
    text = (ROOT / "etc/pxed.yaml").read_text()
    _documented(yaml.safe_load(text), "", found)
    missing = {where: sorted(set(keys) - found.get(where, set())) for where, keys in KEYS.items()}
    cpus = missing.pop("profiles.*.cpus")  # CPU names: one example, the others in its comment
    assert {where: keys for where, keys in missing.items() if keys} == {}
    assert all(cpu in text for cpu in cpus)


def test_the_reference_config_has_three_profiles_and_four_hosts_with_existing_templates():
    config = load_config(ROOT / "etc/pxed.yaml")
    assert len(config.profiles) == 3 and len(config.hosts) == 4
    for profile in config.profiles.values():
        assert profile.answer_file is not None and profile.answer_file.template.is_file()
        assert profile.answer_file.template.parent == ROOT / "etc/templates"


def _with_database(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "pxed.yaml"
    (tmp_path / "tftp").mkdir(exist_ok=True)
    path.write_text(
        f"server: {{address: 127.0.0.1, database: '{url}'}}\n"
        "tftp: {listen: [127.0.0.1], root: tftp}\nhttp: {enabled: false}\n"
    )
    return path


def test_check_says_the_database_schema_version_and_what_start_will_migrate(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
):
    from pxed.database.connection import connect
    from pxed.database.migrations import SCHEMA_VERSION, migrate

    path = _with_database(tmp_path, postgres_url)
    assert check.run(argparse.Namespace(file=str(path))) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{path}: ok",
        f"server.database {postgres_url}: schema version 0, {SCHEMA_VERSION} migration"
        f"{'s' if SCHEMA_VERSION != 1 else ''} pending (pxed applies them at start)",
    ]
    with connect(postgres_url) as conn:
        migrate(conn)
    assert check.run(argparse.Namespace(file=str(path))) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"server.database {postgres_url}: schema version {SCHEMA_VERSION}, up to date"
    )


def test_check_fails_in_one_line_when_the_database_cannot_be_reached(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    url = f"postgresql://pxed:secret@/pxed?host={tmp_path}"
    path = _with_database(tmp_path, url)
    assert check.run(argparse.Namespace(file=str(path))) == 1
    out, err = capsys.readouterr()
    assert out == f"{path}: ok\n"
    (line,) = err.splitlines()
    assert line.startswith(f"server.database postgresql://pxed:***@/pxed?host={tmp_path}:")
    assert "cannot connect" in line and "secret" not in line
