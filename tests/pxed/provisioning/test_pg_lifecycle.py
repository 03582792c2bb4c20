"""Host states and the callback secret in PostgreSQL: two pxed servers share one install.

Two ``Provisioning`` objects, as two pxed daemons build them (``open_lifecycle`` and
``callback_secret`` from their configs), with their own state_dir and one database,
answer requests through their own HTTP resources in this process.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pxed.config import load_config
from pxed.provisioning.endings import InstallEndings
from pxed.provisioning.identity import Neighbours
from pxed.provisioning.inventory import Inventory
from pxed.provisioning.lifecycle import InstallEnd, LifecycleError, State
from pxed.provisioning.pg_lifecycle import PostgresLifecycle
from pxed.provisioning.resources import Provisioning
from pxed.provisioning.service import callback_secret, open_lifecycle
from pxed.provisioning.tftp_files import ProvisionFiles
from pxed.provisioning.tokens import kickstart_signature
from tests.pxed.provisioning.test_resources import ARP_HEAD, TURNS, WEB_IP, request
from tests.support.provision_lab import KIOSK, WEB, write_lab


def server(root: Path, name: str, url: str) -> Provisioning:
    path = write_lab(root / name)
    text = path.read_text()
    path.write_text(text.replace("server: {", f"server: {{name: {name}, database: '{url}', ", 1))
    config = load_config(path)
    lifecycle = open_lifecycle(config.server)
    secret = callback_secret(config.server)
    files = ProvisionFiles(
        Inventory(config),
        lifecycle,
        lambda: 100.0,
        lambda mac, g: kickstart_signature(secret, mac, g),
    )
    (root / name / "arp").write_text(ARP_HEAD)
    endings = InstallEndings(lifecycle, TURNS)
    neighbours = Neighbours(root / name / "arp")
    return Provisioning(
        Inventory(config), lifecycle, secret, files, lambda: 100.0, endings, neighbours
    )


@pytest.fixture
def pair(tmp_path: Path, postgres_url: str) -> Iterator[tuple[Provisioning, Provisioning]]:
    one, two = server(tmp_path, "pxe1", postgres_url), server(tmp_path, "pxe2", postgres_url)
    yield one, two
    one.lifecycle.close()
    two.lifecycle.close()


def test_a_kickstart_from_one_server_and_done_posted_to_the_other_installs_the_host(
    pair: tuple[Provisioning, Provisioning],
):
    one, two = pair
    code, kickstart = request(one, f"/ks/{WEB}", client=WEB_IP)
    assert code == 200 and two.lifecycle.get(WEB).state is State.INSTALLING
    token = re.search(r"--data token=(\w+)", kickstart)
    assert token is not None
    args = {b"token": [token.group(1).encode()]}
    done = request(two, f"/api/hosts/{WEB}/done", method=b"POST", args=args, client=WEB_IP)
    assert done == (200, f"{WEB}: installed\n")
    for either in pair:
        assert either.lifecycle.get(WEB).state is State.INSTALLED
        assert "LOCALBOOT 0" in request(either, "/boot/pxelinux.cfg/01-52-54-00-12-34-56")[1]
        assert "sanboot" in request(either, f"/boot/{WEB}.ipxe")[1]


def test_every_change_of_state_is_kept_with_the_server_that_made_it(
    pair: tuple[Provisioning, Provisioning],
):
    one, two = pair
    request(one, f"/ks/{WEB}", client=WEB_IP)
    two.lifecycle.done(WEB, 150.0)
    assert isinstance(one.lifecycle, PostgresLifecycle)
    assert [(old, new, by) for _, old, new, _, by in one.lifecycle.history(WEB)] == [
        ("ready", "installing", "pxe1"),
        ("installing", "installed", "pxe2"),
    ]
    assert one.lifecycle.get(WEB).server == "pxe2"


def test_both_servers_sign_with_the_one_secret_the_first_made(
    pair: tuple[Provisioning, Provisioning], postgres_url: str
):
    one, two = pair
    assert one.secret == two.secret and len(one.secret) == 32
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM secrets").fetchone() == (1,)


def test_a_database_gone_fails_the_call_with_a_clear_error_and_comes_back(
    pair: tuple[Provisioning, Provisioning], postgres_url: str
):
    """A dropped connection costs the call it broke, then the next one reconnects."""
    one, _ = pair
    assert isinstance(one.lifecycle, PostgresLifecycle)
    one.lifecycle.get(WEB)
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'pxed' AND pid <> pg_backend_pid()"
        )
    with pytest.raises(LifecycleError, match="host states"):
        one.lifecycle.get(WEB)
    assert one.lifecycle.get(WEB).state is State.READY


def test_a_change_that_fails_inside_its_transaction_leaves_no_transaction_open(
    pair: tuple[Provisioning, Provisioning], monkeypatch: pytest.MonkeyPatch
):
    one, _ = pair
    assert isinstance(one.lifecycle, PostgresLifecycle)
    real = one.lifecycle._row

    def broken(mac: str) -> None:
        one.lifecycle._run("SELECT no_such_column FROM hosts")

    monkeypatch.setattr(one.lifecycle, "_row", broken)
    with pytest.raises(LifecycleError, match="no_such_column"):
        one.lifecycle.done(WEB, 1.0)
    monkeypatch.setattr(one.lifecycle, "_row", real)
    assert one.lifecycle.done(WEB, 2.0).state is State.INSTALLED


def test_ends_of_several_hosts_commit_together_each_host_locked(
    pair: tuple[Provisioning, Provisioning], monkeypatch: pytest.MonkeyPatch
):
    one, two = pair
    assert isinstance(one.lifecycle, PostgresLifecycle)
    ran: list[tuple[str, tuple[object, ...]]] = []
    real = one.lifecycle._run

    def spied(sql: str, params: tuple[object, ...] = ()) -> object:
        ran.append((sql, params))
        return real(sql, params)

    monkeypatch.setattr(one.lifecycle, "_run", spied)
    ends = [InstallEnd(WEB, "done", 3.0), InstallEnd(KIOSK, "failed", 3.0)]
    assert [s.state for s in one.lifecycle.end_installs(ends)] == [State.INSTALLED, State.FAILED]
    locked = [params for sql, params in ran if "pg_advisory_xact_lock" in sql]
    assert locked == [(f"pxed host {WEB}",), (f"pxed host {KIOSK}",)]  # in MAC order
    assert [sql for sql, _ in ran].count("BEGIN") == 1
    assert [sql for sql, _ in ran].count("COMMIT") == 1
    assert isinstance(two.lifecycle, PostgresLifecycle)
    assert [new for _, _, new, _, _ in two.lifecycle.history(KIOSK)] == ["failed"]
