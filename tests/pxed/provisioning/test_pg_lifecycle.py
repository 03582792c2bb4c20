"""Host states and the callback secret in PostgreSQL: two pxed servers share one install.

Two ``Provisioning`` objects, as two pxed daemons build them (``PostgresStates`` and
``callback_secret`` from their configs, the database calls run inline here), with
their own state_dir and one database, answer requests through their own HTTP
resources and TFTP files in this process.  ``PostgresLifecycle`` itself is what
``pxed hosts`` uses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import psycopg
import pytest
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.python.failure import Failure

from pxed.config import Config, load_config
from pxed.database.pg_batches import Runner
from pxed.provisioning.identity import Neighbours
from pxed.provisioning.inventory import Inventory
from pxed.provisioning.lifecycle import InstallEnd, LifecycleError, State
from pxed.provisioning.pg_lifecycle import PostgresLifecycle
from pxed.provisioning.pg_states import PostgresStates
from pxed.provisioning.resources import Provisioning
from pxed.provisioning.service import callback_secret
from pxed.provisioning.tftp_files import ProvisionFiles
from pxed.provisioning.tokens import kickstart_signature
from tests.pxed.provisioning.test_resources import ARP_HEAD, WEB_IP, request
from tests.support.postgres import Inline
from tests.support.provision_lab import KIOSK, WEB, write_lab

T = TypeVar("T")
WEB_PXELINUX = "pxelinux.cfg/01-52-54-00-12-34-56"


def shared_config(root: Path, name: str, url: str) -> Config:
    """The lab's config as server ``name`` of several sharing ``url``."""
    path = write_lab(root / name)
    text = path.read_text()
    path.write_text(text.replace("server: {", f"server: {{name: {name}, database: '{url}', ", 1))
    (root / name / "arp").write_text(ARP_HEAD)
    return load_config(path)


class Held:
    """A database thread that runs nothing until ``release``: what the reactor sees while
    the database has not answered yet."""

    def __init__(self) -> None:
        self.queued: list[tuple[Callable[[], object], Deferred[object]]] = []

    def run(self, call: Callable[[], T]) -> Deferred[T]:
        answer: Deferred[T] = Deferred()
        self.queued.append((call, answer))  # type: ignore[arg-type]
        return answer

    def release(self) -> None:
        """Run what is queued, in order, and hand back the answers."""
        while self.queued:
            call, answer = self.queued.pop(0)
            maybeDeferred(call).chainDeferred(answer)

    def stop(self) -> None:
        self.release()


def server(root: Path, name: str, url: str, runner: Runner | None = None) -> Provisioning:
    """A pxed daemon's provisioning; its database calls run ``Inline`` unless ``runner``."""
    config = shared_config(root, name, url)
    assert config.server.database is not None
    states = PostgresStates.open(config.server.database, config.server.label, runner or Inline())
    secret = callback_secret(config.server)
    files = ProvisionFiles(
        Inventory(config),
        states,
        lambda: 100.0,
        lambda mac, g: kickstart_signature(secret, mac, g),
    )
    return Provisioning(
        Inventory(config), states, secret, files, lambda: 100.0, Neighbours(root / name / "arp")
    )


def answered(deferred: Deferred[T]) -> T:
    """The result a Deferred of an inline call already has (its failure raised)."""
    out: list[T | Failure] = []
    deferred.addBoth(out.append)
    assert out, "no answer yet"
    if isinstance(out[0], Failure):
        out[0].raiseException()
    return out[0]  # type: ignore[return-value]


def tftp_text(p: Provisioning, name: str) -> str:
    source = p.files.open(name, (WEB_IP, 2000))
    assert source is not None
    return source.read(0, source.size()).decode()


def states(p: Provisioning) -> PostgresStates:
    assert isinstance(p.lifecycle, PostgresStates)
    return p.lifecycle


@pytest.fixture
def pair(tmp_path: Path, postgres_url: str) -> Iterator[tuple[Provisioning, Provisioning]]:
    one, two = server(tmp_path, "pxe1", postgres_url), server(tmp_path, "pxe2", postgres_url)
    yield one, two
    states(one).close()
    states(two).close()


@pytest.fixture
def lifecycle(postgres_url: str) -> Iterator[PostgresLifecycle]:
    """The host states as ``pxed hosts`` reads and changes them."""
    opened = PostgresLifecycle.open_database(postgres_url, "pxe1")
    yield opened
    opened.close()


def test_a_kickstart_from_one_server_and_done_posted_to_the_other_installs_the_host(
    pair: tuple[Provisioning, Provisioning],
):
    one, two = pair
    code, kickstart = request(one, f"/ks/{WEB}", client=WEB_IP)
    fresh = answered(states(two).refresh(WEB))
    assert code == 200 and fresh.state is State.INSTALLING
    token = re.search(r"--data token=(\w+)", kickstart)
    assert token is not None
    args = {b"token": [token.group(1).encode()]}
    done = request(two, f"/api/hosts/{WEB}/done", method=b"POST", args=args, client=WEB_IP)
    assert done == (200, f"{WEB}: installed\n")
    for either in pair:
        either.seen(WEB, "dhcp")  # the next boot's DHCP exchange reads the host's row
        assert "LOCALBOOT 0" in tftp_text(either, WEB_PXELINUX)
        assert either.lifecycle.get(WEB).state is State.INSTALLED
        assert "LOCALBOOT 0" in request(either, "/boot/pxelinux.cfg/01-52-54-00-12-34-56")[1]
        assert "sanboot" in request(either, f"/boot/{WEB}.ipxe")[1]


def test_tftp_answers_from_the_states_as_last_read_without_waiting_for_the_database(
    tmp_path: Path, postgres_url: str, lifecycle: PostgresLifecycle
):
    """The other server took the done callback; this one's TFTP answers at once from what
    it read last, and the read its answer queued brings the change in for the next."""
    held = Held()
    one = server(tmp_path, "pxe1", postgres_url, held)
    lifecycle.kickstart_fetched(WEB, 100.0, 5, 3600.0)
    lifecycle.done(WEB, 150.0)
    assert "LOCALBOOT 0" not in tftp_text(one, WEB_PXELINUX)  # answered, nothing ran
    assert held.queued
    held.release()
    assert "LOCALBOOT 0" in tftp_text(one, WEB_PXELINUX)
    states(one).close()


def test_the_poll_reads_every_row_into_the_snapshot(
    tmp_path: Path, postgres_url: str, lifecycle: PostgresLifecycle
):
    held = Held()
    one = server(tmp_path, "pxe1", postgres_url, held)
    lifecycle.done(WEB, 150.0)
    polled = states(one).poll()
    assert one.lifecycle.get(WEB).state is State.READY and not one.lifecycle.known(WEB)
    held.release()
    assert polled.called and one.lifecycle.get(WEB).state is State.INSTALLED
    assert [state.mac for state in one.lifecycle.all()] == [WEB]
    states(one).close()


def test_every_change_of_state_is_kept_with_the_server_that_made_it(
    pair: tuple[Provisioning, Provisioning], lifecycle: PostgresLifecycle
):
    one, two = pair
    request(one, f"/ks/{WEB}", client=WEB_IP)
    answered(states(two).done(WEB, 150.0))
    assert [(old, new, by) for _, old, new, _, by in lifecycle.history(WEB)] == [
        ("ready", "installing", "pxe1"),
        ("installing", "installed", "pxe2"),
    ]
    answered(states(one).poll())
    assert one.lifecycle.get(WEB).server == "pxe2"


def test_both_servers_sign_with_the_one_secret_the_first_made(
    pair: tuple[Provisioning, Provisioning], postgres_url: str
):
    one, two = pair
    assert one.secret == two.secret and len(one.secret) == 32
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM secrets").fetchone() == (1,)


def test_a_database_gone_fails_the_call_with_a_clear_error_and_comes_back(
    lifecycle: PostgresLifecycle, postgres_url: str
):
    """A dropped connection costs the call it broke, then the next one reconnects."""
    lifecycle.get(WEB)
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'pxed' AND pid <> pg_backend_pid()"
        )
    with pytest.raises(LifecycleError, match="host states"):
        lifecycle.get(WEB)
    assert lifecycle.get(WEB).state is State.READY


def test_a_change_that_fails_inside_its_transaction_leaves_no_transaction_open(
    lifecycle: PostgresLifecycle, monkeypatch: pytest.MonkeyPatch
):
    real = lifecycle._row

    def broken(mac: str) -> None:
        lifecycle._run("SELECT no_such_column FROM hosts")

    monkeypatch.setattr(lifecycle, "_row", broken)
    with pytest.raises(LifecycleError, match="no_such_column"):
        lifecycle.done(WEB, 1.0)
    monkeypatch.setattr(lifecycle, "_row", real)
    assert lifecycle.done(WEB, 2.0).state is State.INSTALLED


def test_ends_of_several_hosts_are_one_transaction_each_host_locked_in_order(
    lifecycle: PostgresLifecycle, monkeypatch: pytest.MonkeyPatch
):
    ran: list[tuple[str, tuple[object, ...]]] = []
    real = lifecycle._run

    def spied(sql: str, params: tuple[object, ...] = ()) -> object:
        ran.append((sql, params))
        return real(sql, params)

    monkeypatch.setattr(lifecycle, "_run", spied)
    ends = [InstallEnd(KIOSK, "failed", 3.0), InstallEnd(WEB, "done", 3.0)]
    assert [s.state for s in lifecycle.end_installs(ends)] == [State.FAILED, State.INSTALLED]
    locked = [params for sql, params in ran if "pg_advisory_xact_lock" in sql]
    assert locked == [(f"pxed host {WEB}",), (f"pxed host {KIOSK}",)]  # in MAC order
    statements = [sql for sql, _ in ran]
    assert statements.count("BEGIN") == 1 and statements.count("COMMIT") == 1
    assert [new for _, _, new, _, _ in lifecycle.history(KIOSK)] == ["failed"]
