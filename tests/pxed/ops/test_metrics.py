"""/metrics and /healthz: the adapters' counters in Prometheus text, read back with its parser."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from prometheus_client.parser import text_string_to_metric_families
from twisted.application.service import Service
from twisted.web.test.requesthelper import DummyRequest

from pxed.datagram.batching import DatagramStats
from pxed.events import TftpRefused, TftpTransferEnded
from pxed.ops.metrics import (
    HttpStats,
    MetricsResource,
    Negotiated,
    Sources,
    registry_for,
)
from pxed.tftp.service import TftpStats


def samples(sources: Sources) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, keyed by (name, sorted labels)."""
    request = DummyRequest([])
    body = MetricsResource(registry_for(sources)).render_GET(request)
    assert request.responseHeaders.getRawHeaders(b"content-type")[0].startswith(b"text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def test_dhcp_messages_are_counted_by_server_type_and_outcome() -> None:
    dhcp = DatagramStats()
    dhcp.messages[("DISCOVER", "offer")] += 3
    dhcp.messages[("REQUEST", "ack")] += 2
    dhcp.messages[("DISCOVER", "peer")] += 4
    dhcp.replies_sent = 5
    dhcp.takeovers = 1
    got = samples(Sources(dhcp=dhcp, server="pxe1"))
    offer = (("outcome", "offer"), ("server", "pxe1"), ("type", "DISCOVER"))
    assert got[("pxed_dhcp_messages_total", offer)] == 3
    ack = (("outcome", "ack"), ("server", "pxe1"), ("type", "REQUEST"))
    assert got[("pxed_dhcp_messages_total", ack)] == 2
    peer = (("outcome", "peer"), ("server", "pxe1"), ("type", "DISCOVER"))
    assert got[("pxed_dhcp_messages_total", peer)] == 4
    assert got[("pxed_dhcp_replies_sent_total", (("server", "pxe1"),))] == 5
    assert got[("pxed_dhcp_takeovers_total", (("server", "pxe1"),))] == 1


def test_dhcpv6_messages_are_counted_apart_from_dhcp() -> None:
    dhcp6 = DatagramStats()
    dhcp6.messages[("SOLICIT", "advertise")] += 4
    dhcp6.messages[("malformed", "dropped")] += 2
    dhcp6.replies_sent, dhcp6.commits = 4, 3
    got = samples(Sources(dhcp6=dhcp6, server="pxe2"))
    solicit = (("outcome", "advertise"), ("server", "pxe2"), ("type", "SOLICIT"))
    assert got[("pxed_dhcp6_messages_total", solicit)] == 4
    malformed = (("outcome", "dropped"), ("server", "pxe2"), ("type", "malformed"))
    assert got[("pxed_dhcp6_messages_total", malformed)] == 2
    assert got[("pxed_dhcp6_replies_sent_total", (("server", "pxe2"),))] == 4
    assert got[("pxed_dhcp6_commits_total", (("server", "pxe2"),))] == 3
    assert not any(name.startswith("pxed_dhcp_") for name, _ in got)


def test_tftp_transfers_bytes_retransmits_sessions_and_unlogged_refusals() -> None:
    tftp = TftpStats(Counter({"complete": 4, "not-found": 1}), 9000, 2, 1, 7)
    got = samples(Sources(tftp=tftp))
    assert got[("pxed_tftp_transfers_total", (("outcome", "complete"),))] == 4
    assert got[("pxed_tftp_transfers_total", (("outcome", "not-found"),))] == 1
    assert got[("pxed_tftp_sent_bytes_total", ())] == 9000
    assert got[("pxed_tftp_retransmits_total", ())] == 2
    assert got[("pxed_tftp_active_sessions", ())] == 1
    assert got[("pxed_tftp_refusals_unlogged_total", ())] == 7


def test_negotiated_options_are_read_from_the_tftp_transfer_event() -> None:
    negotiated = Negotiated()
    ended = TftpTransferEnded(1.0, None, "c:1", "f", "complete", 9, 0.1, 1468, 4, 0, 9, None)
    negotiated(ended)
    negotiated(ended)
    negotiated(TftpRefused(1.0, None, "c:1", "x", "not-found", "no"))  # a refusal: no options
    got = samples(Sources(negotiated=negotiated))
    assert got[("pxed_tftp_negotiated_blksize_total", (("blksize", "1468"),))] == 2
    assert got[("pxed_tftp_negotiated_windowsize_total", (("windowsize", "4"),))] == 2
    assert len(got) == 2


def test_http_statuses_and_host_states() -> None:
    http = HttpStats(Counter({200: 7, 403: 1}))
    got = samples(Sources(http=http, host_states=lambda: {"ready": 2, "installed": 1}))
    assert got[("pxed_http_requests_total", (("status", "200"),))] == 7
    assert got[("pxed_http_requests_total", (("status", "403"),))] == 1
    assert got[("pxed_hosts", (("state", "installed"),))] == 1


def test_a_service_that_is_off_has_no_metrics() -> None:
    assert samples(Sources()) == {}


def test_each_registry_is_private_to_its_daemon() -> None:
    """Two daemons in one process (tests) must not see each other's counters."""
    one = samples(Sources(http=HttpStats(Counter({200: 1}))))
    two = samples(Sources(http=HttpStats(Counter({404: 1}))))
    assert list(one) != list(two)


def test_healthz_is_ok_while_every_service_runs_and_503_when_one_stopped(tmp_path) -> None:
    from pxed.ops.status import HealthResource

    running, stopped = Service(), Service()
    running.startService()

    class Ops:
        services = {"tftp": running, "dhcp": stopped}

        def database_problem(self) -> None:
            return None

    request = DummyRequest([])
    body = json.loads(HealthResource(Ops()).render_GET(request))  # type: ignore[arg-type]
    assert request.responseCode == 503
    assert body == {"status": "degraded", "services": {"tftp": True, "dhcp": False}}
    stopped.startService()
    request = DummyRequest([])
    body = json.loads(HealthResource(Ops()).render_GET(request))  # type: ignore[arg-type]
    assert (request.responseCode or 200) == 200 and body["status"] == "ok"


@pytest.mark.parametrize("service", ["dhcp", "dhcp6"])
def test_healthz_is_503_with_the_reason_while_the_lease_database_fails(service: str) -> None:
    from pxed.ops.operations import Operations
    from pxed.ops.status import HealthResource

    dhcp = Service()
    dhcp.startService()
    dhcp.store = type("Store", (), {"problem": "server.database x: lease writes rolled back"})()  # type: ignore[attr-defined]

    class Ops:
        services = {service: dhcp}
        database_problem = Operations.database_problem

    request = DummyRequest([])
    body = json.loads(HealthResource(Ops()).render_GET(request))  # type: ignore[arg-type]
    assert request.responseCode == 503
    assert body["database"] == "server.database x: lease writes rolled back"
    dhcp.store.problem = None  # type: ignore[attr-defined]
    request = DummyRequest([])
    body = json.loads(HealthResource(Ops()).render_GET(request))  # type: ignore[arg-type]
    assert (request.responseCode or 200) == 200 and "database" not in body


def test_healthz_is_503_when_the_tftp_transfer_loop_died(tmp_path) -> None:
    """A listener without its transfer loop takes requests it can never serve: say so."""
    from pxed.ops.status import HealthResource
    from pxed.tftp.service import TftpService, TftpSettings
    from pxed.tftp.sources import ProviderChain, StaticRoot
    from tests.support.fake_udp import FakeUDPReactor

    class DeadLoop(FakeUDPReactor):
        alive = False  # as TransferLoop.alive says once its thread died

    reactor = FakeUDPReactor()
    files = ProviderChain([StaticRoot(tmp_path)])
    tftp = TftpService(TftpSettings(listen=("127.0.0.1",)), files, reactor, loop=DeadLoop())
    tftp.startService()

    class Ops:
        services = {"tftp": tftp}

        def database_problem(self) -> None:
            return None

    request = DummyRequest([])
    body = json.loads(HealthResource(Ops()).render_GET(request))  # type: ignore[arg-type]
    assert request.responseCode == 503 and body["services"] == {"tftp": False}
