"""`pxed hosts`: list install states; `rearm MAC` makes a host install again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pxed.provisioning.lifecycle import Lifecycle, State
from tests.support.provision_lab import KIOSK, WEB, lab_config, write_lab

ROOT = Path(__file__).resolve().parents[3]


def pxed(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pxed", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_hosts_lists_every_inventory_host_with_its_state(tmp_path: Path):
    config = lab_config(tmp_path)
    states = Lifecycle.open(config.server.state_dir)
    states.done(WEB, 1_700_000_000.0)
    states.kickstart_fetched(KIOSK, 1.0, limit=3, window=10)
    result = pxed("hosts", "--config", str(config.path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "MAC",
        "HOSTNAME",
        "PROFILE",
        "NETBOOT",
        "STATE",
        "SINCE",
        "BY",
        "KS",
        "FETCHES",
    ]
    assert lines[1].split() == [
        WEB,
        "web01",
        "web",
        "once",
        "installed",
        "2023-11-14",
        "22:13:20Z",
        "callback",
        "0",
    ]
    assert lines[2].split()[:5] == [KIOSK, "kiosk01", "kiosk", "always", "installing"]
    assert lines[3].split()[4:6] == ["ready", "-"]


def test_rearm_makes_a_looping_host_ready(tmp_path: Path):
    config = lab_config(tmp_path)
    states = Lifecycle.open(config.server.state_dir)
    for now in (1.0, 2.0, 3.0, 4.0):
        states.kickstart_fetched(WEB, now, limit=2, window=100)
    result = pxed("hosts", "--config", str(config.path), "rearm", "52-54-00-12-34-56")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{WEB}: looping -> ready; it installs at its next network boot\n"
    assert states.get(WEB).state is State.READY


def test_rearm_of_a_mac_pxed_never_heard_of_fails(tmp_path: Path):
    path = write_lab(tmp_path)
    result = pxed("hosts", "--config", str(path), "rearm", "52:54:00:aa:bb:cc")
    assert result.returncode == 1
    assert "neither in" in result.stderr


def test_hosts_and_leases_work_while_a_template_is_broken(tmp_path: Path):
    """Reading state must not render Kickstarts: a broken one is `pxed check`'s to report."""
    path = write_lab(tmp_path)
    (tmp_path / "web.ks.j2").write_text("{% if %}\n")
    assert pxed("check", str(path)).returncode == 1
    hosts = pxed("hosts", "--config", str(path))
    assert hosts.returncode == 0, hosts.stderr
    assert WEB in hosts.stdout
    leases = pxed("leases", "--config", str(path))
    assert "no lease database" in leases.stderr


def test_with_server_database_hosts_shows_which_server_made_each_change(
    tmp_path: Path, postgres_url: str
):
    from pxed.provisioning.pg_lifecycle import PostgresLifecycle

    path = write_lab(tmp_path)
    path.write_text(
        path.read_text().replace("server: {", f"server: {{database: '{postgres_url}', ", 1)
    )
    one = PostgresLifecycle.open_database(postgres_url, "pxe1")
    two = PostgresLifecycle.open_database(postgres_url, "pxe2")
    one.kickstart_fetched(KIOSK, 1.0, limit=3, window=10)
    two.done(WEB, 1_700_000_000.0)
    result = pxed("hosts", "--config", str(path))
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    assert rows[WEB][4] == "installed" and rows[WEB][7] == "callback@pxe2"
    assert rows[KIOSK][4] == "installing" and rows[KIOSK][7] == "kickstart@pxe1"
    one.close()
    two.close()
