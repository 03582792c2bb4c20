"""HTTP connections capped in total and per client, and headers that must arrive in time.

Issue 18's slowloris: thousands of connections each trickling a header line held
pxed at its open-file limit, because the idle timeout restarted on every byte.
"""

from __future__ import annotations

import pytest
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.web.resource import Resource

from pxed.web.guard import GuardedChannel, GuardedSite, Limits


def site(**limits: float) -> tuple[GuardedSite, Clock]:
    clock = Clock()
    root = Resource()
    root.putChild(b"", _Hello())
    return GuardedSite(root, clock, Limits(**limits)), clock  # type: ignore[arg-type]


class _Hello(Resource):
    isLeaf = True

    def render_GET(self, request: object) -> bytes:
        return b"hello"


def connect(s: GuardedSite, host: str) -> tuple[GuardedChannel | None, StringTransport]:
    address = (IPv6Address if ":" in host else IPv4Address)("TCP", host, 40000)
    channel = s.buildProtocol(address)
    transport = StringTransport(peerAddress=address)
    if channel is not None:
        channel.makeConnection(transport)
    return channel, transport


@pytest.mark.parametrize(
    ("client", "neighbour"), [("10.0.0.5", "10.0.0.6"), ("2001:db8::5", "2001:db8::6")]
)
def test_past_max_per_client_a_connection_is_refused_at_accept_and_others_still_connect(
    client: str, neighbour: str
):
    """An IPv6 address counts as one client, as an IPv4 one does."""
    s, _ = site(max_per_client=3)
    channels = [connect(s, client)[0] for _ in range(4)]
    assert [c is not None for c in channels] == [True, True, True, False]
    assert connect(s, neighbour)[0] is not None
    first = channels[0]
    assert first is not None
    first.connectionLost(None)  # type: ignore[arg-type]
    assert connect(s, client)[0] is not None


def test_past_max_connections_everyone_is_refused_until_one_closes():
    s, _ = site(max_connections=2)
    a, _ = connect(s, "10.0.0.1")
    connect(s, "10.0.0.2")
    assert connect(s, "10.0.0.3")[0] is None and s.refused == 1
    assert a is not None
    a.connectionLost(None)  # type: ignore[arg-type]
    assert connect(s, "10.0.0.3")[0] is not None


def test_a_trickle_of_header_lines_does_not_move_the_deadline():
    s, clock = site(header_timeout=10)
    channel, transport = connect(s, "10.0.0.5")
    assert channel is not None
    channel.dataReceived(b"GET / HTTP/1.1\r\n")
    for n in range(4):
        clock.advance(2)
        channel.dataReceived(b"X-Slow-%d: 1\r\n" % n)
    assert not transport.disconnecting
    clock.advance(2.5)
    assert transport.disconnecting


def test_headers_in_time_are_answered_and_a_kept_alive_connection_gets_a_new_deadline():
    s, clock = site(header_timeout=10)
    channel, transport = connect(s, "10.0.0.5")
    assert channel is not None
    channel.dataReceived(b"GET / HTTP/1.1\r\nHost: pxed\r\n\r\n")
    assert transport.value().endswith(b"hello")
    clock.advance(9)
    assert not transport.disconnecting  # the first deadline was cancelled
    clock.advance(2)
    assert transport.disconnecting  # the next request's headers never came


def test_the_access_log_never_keeps_a_token_sent_in_the_url():
    from twisted.web.test.requesthelper import DummyRequest

    from pxed.web.guard import access_line

    request = DummyRequest([b"api", b"hosts", b"m", b"done"])
    request.uri = b"/api/hosts/m/done?a=1&token=s3cr3t-value&b=2"
    request.method = b"POST"
    request.code = 400
    request.sentLength = 0
    line = access_line("[07/Dec/2026:13:00:00 +0000]", request)
    assert "s3cr3t" not in line and "token=<redacted>&b=2" in line


def test_the_access_log_never_keeps_a_signed_kickstart_urls_signature():
    from twisted.web.test.requesthelper import DummyRequest

    from pxed.web.guard import access_line

    request = DummyRequest([b"ks", b"52:54:00:12:34:57", b"0123abcd" * 4])
    request.uri = b"/ks/52:54:00:12:34:57/" + b"0123abcd" * 4
    request.method = b"GET"
    request.code = 200
    request.sentLength = 10
    line = access_line("[07/Dec/2026:13:00:00 +0000]", request)
    assert "0123abcd" not in line and '"GET /ks/52:54:00:12:34:57/<redacted> HTTP' in line
