"""The sendfile body path over a real TCP connection on 127.0.0.1 (pytest-twisted's reactor)."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, protocol, reactor, task
from twisted.logger import globalLogPublisher
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers

import pxed.web.sendfile
from pxed.web.trees import HttpService, build_site
from tests.support.isoimage import make_iso

SIZE = 6 * 1024 * 1024 + 12345  # several sendfile chunks, not a multiple of anything


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, bytes]:
    root = tmp_path_factory.mktemp("sendfile")
    data = os.urandom(SIZE)
    (root / "tree").mkdir()
    (root / "tree" / "big.img").write_bytes(data)
    iso = make_iso(root / "tree", root / "big.iso")
    return root / "tree", iso, data


@pytest.fixture
def sendfile_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts os.sendfile calls, and shrinks the per-turn budget so the yield path runs too."""
    calls: list[int] = []
    real = os.sendfile

    def spy(out: int, in_: int, offset: int, count: int) -> int:
        calls.append(count)
        return real(out, in_, offset, count)

    monkeypatch.setattr(pxed.web.sendfile.os, "sendfile", spy)
    monkeypatch.setattr(pxed.web.sendfile, "SENDFILE_CHUNK", 256 * 1024)
    return calls


def _serve(payload: tuple[Path, Path, bytes]) -> tuple[HttpService, str]:
    tree, iso, _ = payload
    site = build_site(reactor, {"dir": tree, "iso": iso}, None)
    service = HttpService(reactor, site, 0, ["127.0.0.1"])
    service.privilegedStartService()
    service.startService()
    port = service.listening[0].getHost().port
    return service, f"http://127.0.0.1:{port}"


def _get(url: str, **headers: str) -> defer.Deferred[tuple[Any, bytes]]:
    agent = Agent(reactor)
    # Bytes only: Headers mixes str and bytes keys internally, which -bb rejects.
    raw = Headers({name.replace("_", "-").encode(): [v.encode()] for name, v in headers.items()})

    @defer.inlineCallbacks
    def go() -> Generator[Any, Any, tuple[Any, bytes]]:
        response = yield agent.request(b"GET", url.encode(), raw)
        body = yield readBody(response)
        return response, body

    return go()


@pytest.mark.parametrize("tree", ["dir", "iso"])
@pytest_twisted.inlineCallbacks
def test_whole_file_and_ranges_arrive_intact_over_tcp(
    payload: tuple[Path, Path, bytes], sendfile_calls: list[int], tree: str
) -> Generator[Any, Any, None]:
    data = payload[2]
    service, base = _serve(payload)
    try:
        url = f"{base}/trees/{tree}/big.img"
        response, body = yield _get(url)
        assert (response.code, body == data) == (200, True)
        response, body = yield _get(url, Range="bytes=1000000-4999999")
        assert (response.code, body == data[1000000:5000000]) == (206, True)
        response, body = yield _get(url, Range="bytes=0-99,-300000")
        assert response.code == 206
        assert data[:100] in body and data[-300000:] in body
        assert sendfile_calls, "the TCP path must use os.sendfile"
    finally:
        yield service.stopService()


@pytest_twisted.inlineCallbacks
def test_concurrent_clients_each_get_their_own_range(
    payload: tuple[Path, Path, bytes], sendfile_calls: list[int]
) -> Generator[Any, Any, None]:
    data = payload[2]
    service, base = _serve(payload)
    try:
        step = SIZE // 20
        spans = [(i * step, (i + 1) * step - 1) for i in range(20)]
        results = yield defer.gatherResults(
            [
                _get(f"{base}/trees/{('dir', 'iso')[i % 2]}/big.img", Range=f"bytes={a}-{b}")
                for i, (a, b) in enumerate(spans)
            ]
        )
        for (response, body), (a, b) in zip(results, spans, strict=True):
            assert response.code == 206
            assert body == data[a : b + 1]
    finally:
        yield service.stopService()


class _Impatient(protocol.Protocol):
    """Asks for the whole file and hangs up after the first bytes."""

    def __init__(self, path: bytes, gone: defer.Deferred[None]) -> None:
        self.path = path
        self.gone = gone

    def connectionMade(self) -> None:
        self.transport.write(b"GET " + self.path + b" HTTP/1.1\r\nHost: x\r\n\r\n")

    def dataReceived(self, data: bytes) -> None:
        self.transport.abortConnection()

    def connectionLost(self, reason: object) -> None:
        self.gone.callback(None)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@defer.inlineCallbacks
def _until(condition: Callable[[], bool]) -> Generator[Any, Any, bool]:
    for _ in range(200):  # at most about 2 s
        if condition():
            return True
        yield task.deferLater(reactor, 0.01, lambda: None)
    return condition()


@pytest_twisted.inlineCallbacks
def test_a_client_hanging_up_mid_transfer_releases_the_file(
    payload: tuple[Path, Path, bytes], sendfile_calls: list[int]
) -> Generator[Any, Any, None]:
    service, _ = _serve(payload)
    try:
        port = service.listening[0].getHost().port
        baseline = _open_fds()
        gone: defer.Deferred[None] = defer.Deferred()
        yield protocol.ClientCreator(reactor, _Impatient, b"/trees/dir/big.img", gone).connectTCP(
            "127.0.0.1", port
        )
        yield gone
        released = yield _until(lambda: _open_fds() <= baseline)
        assert released, "the per-response descriptor must be closed when the client leaves"
    finally:
        yield service.stopService()


@pytest.mark.parametrize("code", [errno.ETIMEDOUT, errno.EHOSTUNREACH, errno.ENOTCONN])
@pytest_twisted.inlineCallbacks
def test_a_client_lost_to_the_network_mid_transfer_is_a_hang_up_not_a_traceback(
    payload: tuple[Path, Path, bytes], monkeypatch: pytest.MonkeyPatch, code: int
) -> Generator[Any, Any, None]:
    """A PXE client powered off mid-download ends in ETIMEDOUT or EHOSTUNREACH from
    sendfile (the channel is not reading then, so only the write sees it). That is the
    same event as a reset: close quietly and release the file, no 'Unhandled Error'."""

    def lost(out: int, in_: int, offset: int, count: int) -> int:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(pxed.web.sendfile.os, "sendfile", lost)
    failures: list[object] = []

    def observer(event: dict[str, Any]) -> None:
        # log.err() from the reactor arrives as a legacy event: "failure", not "log_failure".
        failure = event.get("log_failure", event.get("failure"))
        if failure is not None:
            failures.append(failure)

    globalLogPublisher.addObserver(observer)
    service, _ = _serve(payload)
    try:
        port = service.listening[0].getHost().port
        baseline = _open_fds()
        gone: defer.Deferred[None] = defer.Deferred()
        yield protocol.ClientCreator(reactor, _Patient, b"/trees/dir/big.img", gone).connectTCP(
            "127.0.0.1", port
        )
        yield gone
        released = yield _until(lambda: _open_fds() <= baseline)
        assert released, "the per-response descriptor must be closed"
        assert failures == []
    finally:
        globalLogPublisher.removeObserver(observer)
        yield service.stopService()


class _Patient(_Impatient):
    """Asks for the whole file and waits for the server to close."""

    def dataReceived(self, data: bytes) -> None:
        pass
