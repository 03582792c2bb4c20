"""Operations against a real ``twistd -n pxed`` on 127.0.0.1, driven by curl.

/metrics is parsed with prometheus_client's own parser before and after real
TFTP and HTTP traffic; /healthz answers; a host's timeline over HTTP lists its
transfers and its Kickstart; and with ``logging: {json: true}`` every
log line is JSON and the ones about the client carry its MAC, including a
TFTP transfer, which knows only the client's address (127.0.0.2 is the
host's reservation).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lab.procs import Background
from tests.interop.test_provision_lifecycle import TWISTD, WEB, Pxed, free_port, write_config

pytestmark = pytest.mark.interop

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def pxed(tmp_path: Path) -> Iterator[Pxed]:
    http_port, tftp_port = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
    config = write_config(tmp_path, http_port, tftp_port)
    config.write_text(config.read_text() + "logging: {json: true}\n")
    argv = [str(TWISTD), "-n", "--pidfile="]
    proc = Background([*argv, "pxed", "--config", str(config)], tmp_path / "pxed.log")
    try:
        proc.wait_for_output(f"Site starting on {http_port}", timeout=30)
        yield Pxed(tmp_path, config, http_port, tftp_port, proc)
    finally:
        proc.stop()


def scrape(pxed: Pxed) -> Samples:
    code, body = pxed.curl(f"{pxed.base}/metrics")
    assert code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body + "\n")
        for sample in family.samples
    }


def tftp_curl(pxed: Pxed, name: str) -> str:
    _, body = pxed.curl(
        "--interface", "127.0.0.2", "--tftp-blksize", "1024",
        f"tftp://127.0.0.1:{pxed.tftp_port}/{name}",
    )  # fmt: skip
    return body


def traffic(pxed: Pxed) -> None:
    """A boot's worth of requests from the host's reserved address."""
    assert "KERNEL ::/vmlinuz" in tftp_curl(pxed, "pxelinux.cfg/01-52-54-00-12-34-56")
    assert tftp_curl(pxed, "vmlinuz") == "kernel"
    assert pxed.curl(f"{pxed.base}/tftp/initrd.img") == (200, "initrd")
    assert pxed.curl("--interface", "127.0.0.2", f"{pxed.base}/ks/{WEB}")[0] == 200
    assert pxed.curl(f"{pxed.base}/tftp/nothing-here")[0] == 404


def test_metrics_move_with_real_tftp_and_http_traffic(pxed: Pxed) -> None:
    before = scrape(pxed)
    traffic(pxed)
    after = scrape(pxed)

    def moved(name: str, *labels: tuple[str, str]) -> float:
        key = (name, tuple(sorted(labels)))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert moved("pxed_tftp_transfers_total", ("outcome", "complete")) == 2
    assert moved("pxed_tftp_sent_bytes_total") >= len("kernel") + 100
    assert moved("pxed_tftp_negotiated_blksize_total", ("blksize", "1024")) == 2
    assert moved("pxed_http_requests_total", ("status", "200")) >= 2  # + the first scrape
    assert moved("pxed_http_requests_total", ("status", "404")) == 1
    assert after[("pxed_hosts", (("state", "installing"),))] == 1
    assert after[("pxed_tftp_active_sessions", ())] == 0


def test_healthz_lists_the_running_services(pxed: Pxed) -> None:
    code, body = pxed.curl(f"{pxed.base}/healthz")
    assert code == 200
    assert json.loads(body) == {"status": "ok", "services": {"tftp": True, "http": True}}


def test_the_timeline_over_http_lists_the_hosts_transfers_and_kickstart(pxed: Pxed) -> None:
    traffic(pxed)
    code, body = pxed.curl(f"{pxed.base}/api/hosts/{WEB}/timeline")
    assert code == 200
    events = json.loads(body)["events"]
    tftp = [
        (e["fields"]["file"], e["fields"].get("outcome")) for e in events if e["kind"] == "tftp"
    ]
    assert tftp == [
        ("pxelinux.cfg/01-52-54-00-12-34-56", None),  # started: a stuck transfer still shows
        ("pxelinux.cfg/01-52-54-00-12-34-56", "complete"),
        ("vmlinuz", None),
        ("vmlinuz", "complete"),
    ]
    kinds = [e["kind"] for e in events]
    # The request's own event is logged when its response is finished, after what it caused.
    assert kinds.index("tftp") < kinds.index("kickstart") < kinds.index("http")
    assert any(e["fields"].get("path") == f"/ks/{WEB}" for e in events if e["kind"] == "http")


def test_json_log_lines_parse_and_carry_the_clients_mac(pxed: Pxed) -> None:
    traffic(pxed)
    lines = [line for line in pxed.proc.output().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    tftp = [r for r in records if r["log_namespace"] == "pxed.tftp" and r.get("file")]
    assert {r["file"]: r["mac"] for r in tftp} == {
        "pxelinux.cfg/01-52-54-00-12-34-56": WEB,
        "vmlinuz": WEB,  # matched by the reserved address
    }
    served = [r for r in records if r.get("outcome") == "served" and "requester" in r]
    assert served and served[0]["mac"] == WEB and served[0]["log_level"] == "info"
    assert all("log_time" in r and "log_text" in r for r in records)
