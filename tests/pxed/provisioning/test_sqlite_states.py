"""Install ends (done, failed, rearm) of one reactor turn: one transaction, one fsync, then
each callback's answer; a failed commit answers 503 and changes nothing (SQLite)."""

from __future__ import annotations

import sqlite3
from io import BytesIO
from pathlib import Path

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.web.resource import Resource, getChildForRequest
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest

from pxed.events import Event
from pxed.provisioning.lifecycle import InstallEnd, Lifecycle, LifecycleError, State
from pxed.provisioning.resources import Provisioning, mount
from pxed.provisioning.service import open_states
from pxed.provisioning.sqlite_states import SqliteStates
from pxed.provisioning.tokens import host_token
from tests.pxed.provisioning.test_resources import (
    SECRET,
    WEB_IP,
    arp,
    provisioning,
)
from tests.support.provision_lab import KIOSK, WEB, lab_config

KIOSK_IP = "10.213.7.77"
ONE, TWO = "52:54:00:aa:00:01", "52:54:00:aa:00:02"


@pytest.fixture
def states(tmp_path: Path) -> Lifecycle:
    return Lifecycle.open(tmp_path / "state")


def statements(lifecycle: Lifecycle) -> list[str]:
    """Every statement the lifecycle's connection runs from now on."""
    seen: list[str] = []
    lifecycle._conn.set_trace_callback(seen.append)
    return seen


def refuse_writes_of(lifecycle: Lifecycle, mac: str) -> None:
    """Make the database refuse any write of ``mac``'s row, as a full disk would."""
    for event in ("INSERT", "UPDATE"):
        lifecycle._conn.execute(
            f"CREATE TRIGGER full_{event.lower()} BEFORE {event} ON hosts"
            f" WHEN NEW.mac = '{mac}' BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )


# --- the lifecycle: many ends, one transaction ------------------------------------------------


def test_ends_of_several_hosts_are_one_transaction_with_one_fsynced_commit(states: Lifecycle):
    states.kickstart_fetched(ONE, 1.0, 3, 3600)
    states.kickstart_fetched(TWO, 1.0, 3, 3600)
    ran = statements(states)
    ends = [InstallEnd(ONE, "done", 2.0), InstallEnd(TWO, "failed", 2.0)]
    after = states.end_installs([*ends, InstallEnd(ONE, "rearm", 3.0)])
    assert [(s.mac, s.state) for s in after] == [
        (ONE, State.INSTALLED),
        (TWO, State.FAILED),
        (ONE, State.READY),
    ]
    assert ran[0] == "PRAGMA synchronous=FULL"
    assert ran.count("BEGIN IMMEDIATE") == 1 and ran.count("COMMIT") == 1
    assert states.get(ONE).generation == 2  # the rearm saw the done before it
    assert states.get(TWO).state is State.FAILED


def test_ends_are_published_in_order_once_committed(states: Lifecycle):
    published: list[Event] = []
    states.events.subscribe(published.append)
    states.end_installs([InstallEnd(ONE, "done", 2.0), InstallEnd(ONE, "rearm", 3.0)])
    assert [(e.mac, e.old, e.new) for e in published] == [  # type: ignore[attr-defined]
        (ONE, "ready", "installed"),
        (ONE, "installed", "ready"),
    ]


def test_a_refused_write_rolls_back_every_end_of_the_batch_and_publishes_none(states: Lifecycle):
    states.kickstart_fetched(ONE, 1.0, 3, 3600)
    states.kickstart_fetched(TWO, 1.0, 3, 3600)
    refuse_writes_of(states, TWO)
    published: list[Event] = []
    states.events.subscribe(published.append)
    with pytest.raises(LifecycleError, match="host state changes not saved: database or disk"):
        states.end_installs([InstallEnd(ONE, "done", 2.0), InstallEnd(TWO, "done", 2.0)])
    assert states.get(ONE).state is State.INSTALLING and states.get(ONE).generation == 0
    assert not states._conn.in_transaction and published == []
    assert states.done(ONE, 3.0).state is State.INSTALLED  # the next transaction works


def test_an_end_committed_is_on_disk_for_the_next_opener(tmp_path: Path):
    """What a kill -9 right after the answer leaves: the COMMIT, fsynced, is in the file."""
    first = Lifecycle.open(tmp_path)
    first.end_installs([InstallEnd(ONE, "done", 2.0), InstallEnd(TWO, "done", 2.0)])
    again = sqlite3.connect(tmp_path / "hosts.sqlite3")
    assert again.execute("SELECT mac, state FROM hosts ORDER BY mac").fetchall() == [
        (ONE, "installed"),
        (TWO, "installed"),
    ]


# --- the callbacks of one reactor turn --------------------------------------------------------


class Turns:
    """The callback resources over SqliteStates on a Clock, callbacks posted without ending
    the reactor turn."""

    def __init__(self, tmp_path: Path) -> None:
        base = provisioning(tmp_path)
        assert isinstance(base.lifecycle, Lifecycle)
        self.lifecycle = base.lifecycle
        self.clock = Clock()
        states = SqliteStates(base.lifecycle, self.clock)
        self.p = Provisioning(
            base.inventory, states, SECRET, base.files, lambda: 100.0, base.neighbours
        )
        arp(self.p, **{KIOSK_IP.replace(".", "_"): KIOSK})
        self.root = Resource()
        mount(self.root, self.p)
        for mac in (WEB, KIOSK):
            self.lifecycle.kickstart_fetched(mac, 50.0, 3, 3600)  # installing

    def post(self, mac: str, client: str, what: str = "done") -> DummyRequest:
        path = f"/api/hosts/{mac}/{what}"
        req = DummyRequest([part.encode() for part in path.strip("/").split("/")])
        req.uri, req.method = path.encode(), b"POST"
        req.client = IPv4Address("TCP", client, 40000)
        token = host_token(SECRET, mac, self.p.lifecycle.get(mac).generation)
        req.content = BytesIO(f"token={token}".encode())
        assert getChildForRequest(self.root, req).render(req) is NOT_DONE_YET
        return req


def answer(req: DummyRequest) -> tuple[int, str]:
    return req.responseCode or 200, b"".join(req.written).decode()


def test_callbacks_of_one_turn_are_one_commit_and_each_is_answered_only_after_it(
    tmp_path: Path,
):
    turns = Turns(tmp_path)
    ran = statements(turns.lifecycle)
    web, kiosk = turns.post(WEB, WEB_IP), turns.post(KIOSK, KIOSK_IP, "failed")
    assert "COMMIT" not in ran
    assert (web.finished, kiosk.finished) == (0, 0) and web.written == kiosk.written == []
    turns.clock.advance(0)  # the end of the turn
    assert ran.count("BEGIN IMMEDIATE") == 1 and ran.count("COMMIT") == 1
    assert answer(web) == (200, f"{WEB}: installed\n")
    assert answer(kiosk) == (200, f"{KIOSK}: failed\n")
    assert web.finished == kiosk.finished == 1


def test_a_failed_commit_answers_every_callback_of_the_turn_503_and_changes_no_state(
    tmp_path: Path,
):
    turns = Turns(tmp_path)
    refuse_writes_of(turns.lifecycle, KIOSK)
    web, kiosk = turns.post(WEB, WEB_IP), turns.post(KIOSK, KIOSK_IP)
    turns.clock.advance(0)
    for req, mac in ((web, WEB), (kiosk, KIOSK)):
        code, body = answer(req)
        assert code == 503 and body.startswith(f"cannot answer for {mac} now: ")
        assert "host state changes not saved: database or disk is full" in body
        state = turns.lifecycle.get(mac)
        assert (state.state, state.generation) == (State.INSTALLING, 0)  # the token still works


def test_a_callback_whose_installer_hung_up_is_committed_and_not_answered(tmp_path: Path):
    turns = Turns(tmp_path)
    web = turns.post(WEB, WEB_IP)
    web.processingFailed(ConnectionError("gone"))  # what Twisted does when the peer hangs up
    written = list(web.written)
    turns.clock.advance(0)
    assert turns.lifecycle.get(WEB).state is State.INSTALLED
    assert web.written == written


def test_the_daemon_keeps_sqlite_host_states_with_install_ends_grouped_by_turn(tmp_path: Path):
    states = open_states(lab_config(tmp_path).server, Clock())
    assert isinstance(states, SqliteStates)
