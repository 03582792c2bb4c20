"""The status page's resources: the page, the JSON reads, and the callbacks still reachable."""

from __future__ import annotations

import dataclasses
import json
from io import BytesIO
from pathlib import Path

import pytest
from twisted.internet.address import IPv4Address
from twisted.web.resource import Resource, getChildForRequest
from twisted.web.test.requesthelper import DummyRequest

from pxed.ops.operations import Operations
from pxed.ops.status import mount_status
from pxed.provisioning.inventory import Inventory
from pxed.provisioning.lifecycle import Lifecycle
from pxed.provisioning.resources import Provisioning, mount
from pxed.provisioning.tftp_files import ProvisionFiles
from tests.support.provision_lab import KIOSK, WEB, lab_config
from tests.support.rendering import rendered

SECRET = b"t" * 32


def make_site(tmp_path: Path, notice: str | None = None) -> Resource:
    config = lab_config(tmp_path)
    config = dataclasses.replace(config, server=dataclasses.replace(config.server, notice=notice))
    inventory = Inventory(config)
    lifecycle = Lifecycle.open(config.server.state_dir)
    files = ProvisionFiles(inventory, lifecycle, lambda: 50.0)
    provisioning = Provisioning(inventory, lifecycle, SECRET, files, lambda: 50.0)
    root = Resource()
    mount(root, provisioning)
    mount_status(root, Operations(provisioning, lambda: 50.0))
    return root


@pytest.fixture
def site(tmp_path: Path) -> Resource:
    return make_site(tmp_path)


def get(root: Resource, path: str, method: bytes = b"GET") -> tuple[int, bytes, DummyRequest]:
    req = DummyRequest([part.encode() for part in path.removeprefix("/").split("/")])
    req.method = method
    req.client = IPv4Address("TCP", "10.213.7.99", 40000)
    req.content = BytesIO(b"")
    body = rendered(getChildForRequest(root, req), req)
    return req.responseCode or 200, body, req


def test_the_page_is_html_at_the_root_only(site: Resource) -> None:
    code, body, req = get(site, "/")
    assert code == 200 and b"<title>pxed status</title>" in body
    assert req.responseHeaders.getRawHeaders(b"content-type") == [b"text/html; charset=utf-8"]
    assert get(site, "/nosuch")[0] == 404


def test_hosts_lists_every_inventory_host_ready_until_seen(site: Resource) -> None:
    code, body, _ = get(site, "/api/hosts")
    rows = {row["mac"]: row for row in json.loads(body)}
    assert code == 200 and WEB in rows and KIOSK in rows
    assert rows[WEB]["state"] == "ready" and rows[WEB]["ip"] == "10.213.7.21"
    assert rows[WEB]["last_seen"] is None


def test_an_empty_timeline_is_an_empty_list(site: Resource) -> None:
    assert json.loads(get(site, f"/api/hosts/{WEB}/timeline")[1]) == {"mac": WEB, "events": []}


def test_leases_are_empty_before_dhcp_ever_ran_and_transfers_null_with_tftp_off(
    site: Resource,
) -> None:
    assert json.loads(get(site, "/api/leases")[1]) == []
    assert json.loads(get(site, "/api/transfers")[1]) == {"tftp_active": None, "tftp": []}


def test_install_callbacks_still_reach_the_callback_resource(site: Resource) -> None:
    code, body, _ = get(site, f"/api/hosts/{WEB}/done", b"POST")
    assert code == 403 and b"wrong or missing token" in body


def test_the_page_shows_server_notice_escaped_above_everything(tmp_path: Path) -> None:
    site = make_site(tmp_path, "No configuration found: put pxed.yaml on <pxed-data>.")
    body = get(site, "/")[1].decode()
    notice = '<p id="notice">No configuration found: put pxed.yaml on &lt;pxed-data&gt;.</p>'
    assert notice in body and body.index(notice) < body.index('id="summary"')


def test_the_page_has_no_notice_when_the_config_sets_none(site: Resource) -> None:
    assert b'id="notice"' not in get(site, "/")[1]


def test_on_a_shared_database_the_page_names_this_server_and_each_state_its_server(
    tmp_path: Path, postgres_url: str
) -> None:
    from pxed.provisioning.pg_lifecycle import PostgresLifecycle

    config = lab_config(tmp_path)
    server = dataclasses.replace(config.server, database=postgres_url, name="pxe1")
    config = dataclasses.replace(config, server=server)
    inventory = Inventory(config)
    lifecycle = PostgresLifecycle.open_database(postgres_url, "pxe1")
    other = PostgresLifecycle.open_database(postgres_url, "pxe2")
    other.done(WEB, 40.0)
    other.close()
    files = ProvisionFiles(inventory, lifecycle, lambda: 50.0)
    provisioning = Provisioning(inventory, lifecycle, SECRET, files, lambda: 50.0)
    root = Resource()
    mount_status(root, Operations(provisioning, lambda: 50.0))
    assert b"<h1>pxed pxe1</h1>" in get(root, "/")[1]
    rows = {row["mac"]: row for row in json.loads(get(root, "/api/hosts")[1])}
    assert (rows[WEB]["state"], rows[WEB]["server"]) == ("installed", "pxe2")
    assert rows[KIOSK]["server"] is None
    lifecycle.close()
