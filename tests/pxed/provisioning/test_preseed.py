"""Preseed answer files: rendered per host like a Kickstart, judged by debconf-set-selections."""

from __future__ import annotations

import fcntl
import re
import shutil
from pathlib import Path

import pytest

from pxed.config import ConfigError, load_config
from pxed.provisioning import preseed
from pxed.provisioning.answers import checked, render
from pxed.provisioning.inventory import Inventory
from pxed.provisioning.tokens import host_token
from pxed.provisioning.urls import Urls
from tests.support.provision_lab import DEB, DEB_HOST, PRESEED, lab_config, write_lab

URLS = Urls("10.213.7.1", 8080)
SECRET = b"p" * 32
SYSTEM_DEBCONF = Path("/var/cache/debconf/config.dat")

needs_debconf = pytest.mark.skipif(
    shutil.which(preseed.CHECKER) is None, reason="debconf-set-selections (debconf) not installed"
)


def deb_lab(root: Path, template: str = PRESEED) -> Path:
    path = write_lab(root, extra=DEB_HOST)
    (root / "deb.preseed.j2").write_text(template)
    return path


def test_a_preseed_renders_with_the_same_host_data_as_a_kickstart(tmp_path: Path):
    config = lab_config(tmp_path, extra=DEB_HOST)
    host = config.host(DEB)
    assert host is not None
    (tmp_path / "deb.preseed.j2").write_text(
        "d-i netcfg/get_hostname string {{ host.hostname }}\n"
        "d-i mirror/http/hostname string {{ server }}:{{ http_port }}\n"
        "d-i preseed/include string {{ preseed_url }}.extra\n"
        "d-i apt-setup/local0/repository string {{ tree_url }} bookworm main\n"
    )
    text = render(config, host, URLS, SECRET).text
    assert "get_hostname string deb01\n" in text
    assert "mirror/http/hostname string 10.213.7.1:8080\n" in text
    assert f"include string http://10.213.7.1:8080/preseed/{DEB}.extra\n" in text
    assert "repository string http://10.213.7.1:8080/trees/rocky9/ bookworm main\n" in text


def test_pxed_done_is_a_late_command_posting_the_token_in_a_header_not_the_url(tmp_path: Path):
    config = lab_config(tmp_path, extra=DEB_HOST)
    host = config.host(DEB)
    assert host is not None
    text = render(config, host, URLS, SECRET, generation=2).text
    token = host_token(SECRET, DEB, 2)
    late = re.search(r"^d-i preseed/late_command string (.*)$", text, re.MULTILINE)
    assert late is not None
    assert f"POST /api/hosts/{DEB}/done HTTP/1.0\\r\\n" in late[1]
    assert f"X-Pxed-Token: {token}\\r\\n" in late[1]
    assert "| nc -w 30 10.213.7.1 8080 |" in late[1]


def test_pxed_done_uses_no_wget_option_the_installers_busybox_lacks(tmp_path: Path):
    """d-i's busybox wget knows neither --header nor --post-data (docs/firmware.md)."""
    config = lab_config(tmp_path, extra=DEB_HOST)
    host = config.host(DEB)
    assert host is not None
    text = render(config, host, URLS, SECRET).text
    assert "wget" not in text.split("late_command", 1)[1]


def test_pxed_failed_in_a_preseed_is_an_error_that_says_why(tmp_path: Path):
    path = deb_lab(tmp_path, PRESEED + "d-i preseed/early_command string {{ pxed_failed }}\n")
    with pytest.raises(ConfigError) as caught:
        checked(load_config(path))
    [problem] = caught.value.errors
    assert (problem.file, problem.line) == (f"{tmp_path}/deb.preseed.j2", 5)
    assert "no hook that runs when an install fails" in problem.message


@needs_debconf
def test_a_line_debconf_set_selections_cannot_parse_is_a_config_error_at_its_line(tmp_path: Path):
    path = deb_lab(tmp_path, PRESEED.replace("d-i mirror/", "d-i mirror/http/country\nd-i mirror/"))
    with pytest.raises(ConfigError) as caught:
        checked(load_config(path))
    [problem] = [str(p) for p in caught.value.errors]
    assert problem == (
        f"{tmp_path}/deb.preseed.j2:2:1: hosts[4]: host deb01 ({DEB}): rendered line 2: "
        "debconf-set-selections: error: parse error on line 2"
    )


@needs_debconf
def test_an_unknown_type_is_refused_because_the_installer_would_ask_that_question():
    verdict = preseed.check(["d-i netcfg/get_hostname strng web01\n"])[0]
    assert verdict == (
        1,
        "debconf-set-selections: warning: Unknown type strng, skipping line 1 "
        "(debian-installer would ask that question)",
    )


@needs_debconf
def test_one_run_judges_many_files_and_each_complaint_goes_to_its_own_file_and_line():
    good = "d-i netcfg/get_hostname string web01\n"
    no_newline = "d-i netcfg/get_domain string lab"
    continued = "d-i preseed/late_command string \\\n  true; \\\n  true\n"
    texts = [good, no_newline, good + "oops\n", continued, continued + good + "d-i x/y\n", good]
    assert preseed.check(texts) == [
        None,
        None,
        (2, "debconf-set-selections: error: parse error on line 2"),
        None,
        (5, "debconf-set-selections: error: parse error on line 5"),
        None,
    ]


@needs_debconf
def test_a_refusal_does_not_echo_the_line_which_may_hold_a_password_hash():
    verdict = preseed.check(["d-i passwd/root-password-crypted\n"])[0]
    assert verdict is not None and "passwd" not in verdict[1]


@needs_debconf
def test_the_check_works_while_apt_holds_the_system_debconf_database():
    """docs/pitfalls.md #14: as root, plain --checkonly fails without a word during apt runs."""
    if not SYSTEM_DEBCONF.exists():
        pytest.skip(f"{SYSTEM_DEBCONF} does not exist here")
    with SYSTEM_DEBCONF.open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # what apt's debconf frontend holds while it runs
        assert preseed.check(["d-i netcfg/get_hostname string web01\n"])[0] is None


def test_without_debconf_set_selections_a_preseed_is_refused_with_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(preseed, "CHECKER", "debconf-set-selections-not-here")
    verdict = preseed.check(["d-i netcfg/get_hostname string web01\n"])[0]
    assert verdict is not None and "install Debian's debconf package" in verdict[1]


def test_a_complaint_that_names_no_line_is_judged_again_file_by_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Perl's line numbers say whose a complaint is; without one, each file is run alone."""
    fake = tmp_path / "debconf-set-selections"
    fake.write_text(
        "#!/bin/sh\n"
        'echo "run $#" >> "$0.runs"\n'
        "shift\n"  # --checkonly
        'grep -q bad "$@" && echo "error: Cannot find a question for x/y" >&2 && exit 1\n'
        "exit 0\n"
    )
    fake.chmod(0o755)
    monkeypatch.setattr(preseed, "CHECKER", str(fake))
    good, bad = "d-i a/b string good\n", "d-i a/b string bad\n"
    assert preseed.check([good, bad, good]) == [
        None,
        (0, f"{fake}: error: Cannot find a question for x/y"),
        None,
    ]
    assert preseed.check([]) == []
    assert (tmp_path / "debconf-set-selections.runs").read_text().split("\n")[:4] == [
        "run 4",  # --checkonly and three files
        "run 2",
        "run 2",
        "run 2",
    ]


def test_a_profile_names_one_answer_file(tmp_path: Path):
    path = write_lab(tmp_path)
    path.write_text(
        path.read_text().replace(
            "preseed: deb.preseed.j2", "preseed: deb.preseed.j2\n    kickstart: web.ks.j2"
        )
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    [problem] = caught.value.errors
    assert problem.key == "profiles.deb.kickstart"
    assert "a profile has one answer file; 'preseed' already names it" in problem.message


def test_an_append_naming_the_other_familys_url_is_an_error(tmp_path: Path):
    path = write_lab(tmp_path)
    path.write_text(path.read_text().replace('append: "console=ttyS0"', 'append: "ks={ks_url}"'))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    [problem] = caught.value.errors
    assert problem.key == "profiles.deb.append"
    assert problem.message == "uses {ks_url} but the profile's answer file is preseed"


@needs_debconf
def test_a_reload_to_a_broken_preseed_is_refused_and_the_old_one_keeps_serving(tmp_path: Path):
    path = deb_lab(tmp_path)
    inventory = Inventory(checked(load_config(path)))
    (tmp_path / "broken.preseed.j2").write_text(PRESEED + "d-i oops\n")
    path.write_text(path.read_text().replace("deb.preseed.j2", "broken.preseed.j2"))
    assert not inventory.reload()
    host = inventory.config.host(DEB)
    assert host is not None
    assert "get_hostname string deb01" in render(inventory.config, host, URLS, SECRET).text
