"""The daemon's host states in PostgreSQL never hold the reactor: every query runs in the
database thread, a stalled database delays only the HTTP requests that wait on it, and a
database that is down answers them 503, logged once with the MAC."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import psycopg
import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.logger import LogLevel, globalLogPublisher
from twisted.web.resource import Resource, getChildForRequest
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest

from pxed.database.worker import Worker
from pxed.provisioning import pg_lifecycle
from pxed.provisioning.lifecycle import State
from pxed.provisioning.pg_lifecycle import PostgresLifecycle
from pxed.provisioning.pg_states import PostgresStates
from pxed.provisioning.resources import Provisioning, mount
from tests.pxed.provisioning.test_pg_lifecycle import WEB_PXELINUX, server, states, tftp_text
from tests.pxed.provisioning.test_resources import WEB_IP
from tests.support.postgres import Inline, cluster
from tests.support.provision_lab import WEB


def pending(p: Provisioning, path: str, method: bytes = b"GET") -> DummyRequest:
    """``path`` rendered from WEB's address; it may be answered later."""
    root = Resource()
    mount(root, p)
    req = DummyRequest([part.encode() for part in path.strip("/").split("/")])
    req.uri = path.encode()
    req.method = method
    req.client = IPv4Address("TCP", WEB_IP, 40000)
    req.content = BytesIO(b"")
    assert getChildForRequest(root, req).render(req) is NOT_DONE_YET
    return req


def body(req: DummyRequest) -> str:
    return b"".join(req.written).decode()


@pytest.fixture
def threaded(tmp_path: Path, postgres_url: str) -> Iterator[Provisioning]:
    """pxe1 as the daemon runs it: its queries in a worker thread of its own."""
    p = server(tmp_path, "pxe1", postgres_url, Worker(reactor, "pxed-test-hosts"))
    yield p
    states(p).close()


@pytest_twisted.ensureDeferred
async def test_no_host_state_query_runs_on_the_reactor_thread(
    threaded: Provisioning, monkeypatch: pytest.MonkeyPatch
) -> None:
    reactor_thread = threading.get_ident()
    threads: list[int] = []
    real = PostgresLifecycle._run

    def recorded(self: PostgresLifecycle, sql: str, params: tuple[object, ...] = ()) -> Any:
        threads.append(threading.get_ident())
        return real(self, sql, params)

    monkeypatch.setattr(PostgresLifecycle, "_run", recorded)
    for path in (f"/ks/{WEB}", f"/boot/{WEB}.ipxe", f"/api/hosts/{WEB}/done"):
        method = b"POST" if path.startswith("/api") else b"GET"
        await pending(threaded, path, method).notifyFinish()
    tftp_text(threaded, WEB_PXELINUX)
    threaded.seen(WEB, "dhcp")
    await states(threaded).poll()
    assert threads and reactor_thread not in threads


@pytest_twisted.ensureDeferred
async def test_a_stalled_database_delays_no_tftp_or_dhcp_answer(
    threaded: Provisioning, postgres_url: str
) -> None:
    """Another session holds the hosts table: the Kickstart request waits for its row in
    the worker thread while TFTP and DHCP answer from the states as last read."""
    blocker = psycopg.connect(postgres_url)
    try:
        blocker.execute("LOCK TABLE hosts IN ACCESS EXCLUSIVE MODE")
        kickstart = pending(threaded, f"/ks/{WEB}")
        await _until_waiting_on_a_lock(postgres_url)
        assert "pxed: web01" in tftp_text(threaded, WEB_PXELINUX)
        threaded.seen(WEB, "dhcp")  # the DHCP adapter's bookkeeping returns at once
        assert threaded.lifecycle.get(WEB).state is State.READY
        assert not kickstart.finished  # the database was stalled all along
        blocker.rollback()
        await kickstart.notifyFinish()
    finally:
        blocker.close()
    assert kickstart.responseCode in (None, 200) and "network --hostname=web01" in body(kickstart)


async def _until_waiting_on_a_lock(url: str) -> None:
    """Until pxed's session waits on the table lock (bounded: 2,000 looks)."""
    with psycopg.connect(url, autocommit=True) as admin:
        for _ in range(2000):
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = 'pxed' AND wait_event_type = 'Lock'"
            ).fetchone()
            if row is not None and row[0] > 0:
                return
            await deferLater(reactor, 0.005, lambda: None)
    raise AssertionError("pxed's query never waited on the lock")


def test_with_the_database_down_install_requests_answer_503_logged_once_with_the_mac(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg_lifecycle, "RETRY_AFTER", 0.0)  # every call tries to connect
    errors: list[dict[str, Any]] = []

    def collect(event: dict[str, Any]) -> None:
        if event.get("log_namespace") == "pxed.lifecycle" and event["log_level"] >= LogLevel.warn:
            errors.append(event)

    with cluster() as database:
        url = database.start().url("postgres")
        p = server(tmp_path, "pxe1", url, Inline())
        assert "pxed: web01" in tftp_text(p, WEB_PXELINUX)
        database.stop()
        globalLogPublisher.addObserver(collect)
        try:
            answers = [
                pending(p, path, method)
                for path, method in (
                    (f"/ks/{WEB}", b"GET"),
                    (f"/boot/{WEB}.ipxe", b"GET"),
                    (f"/api/hosts/{WEB}/done", b"POST"),
                )
            ]
            assert "pxed: web01" in tftp_text(p, WEB_PXELINUX)  # the states as last read
            p.seen(WEB, "dhcp")
        finally:
            globalLogPublisher.removeObserver(collect)
        for answer in answers:
            assert answer.finished and answer.responseCode == 503
            assert body(answer).startswith(f"cannot answer for {WEB} now: server.database ")
            assert "host states" in body(answer)
        assert [event["mac"] for event in errors] == [WEB]
        database.start()
        assert pending(p, f"/boot/{WEB}.ipxe").responseCode is None  # 200: answered again
        assert isinstance(p.lifecycle, PostgresStates) and p.lifecycle.problem is None
        states(p).close()


def test_a_state_change_is_announced_on_the_reactor_side_once_committed(
    tmp_path: Path, postgres_url: str
) -> None:
    """The worker's lifecycle keeps its change for the reactor to publish."""
    p = server(tmp_path, "pxe1", postgres_url, Inline())
    seen: list[str] = []
    p.events.subscribe(lambda event: seen.append(type(event).__name__))
    done: Deferred[Any] = states(p).done(WEB, 10.0)
    assert done.called and seen == ["StateChanged"]
    states(p).close()
