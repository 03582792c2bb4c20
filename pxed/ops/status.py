"""The operator's HTTP side: the status page at ``/``, its JSON API, ``/metrics``, ``/healthz``.

``mount_status(root, operations)`` adds them to the site. ``/api/hosts``
already carries the installers' ``POST .../done|failed`` callbacks
(pxed/provisioning/resources.py); :class:`HostsApi` takes its place, answers the GETs
and hands every POST to the callback resource unchanged.

- ``GET /api/hosts``: inventory hosts (and unknown hosts pxed tracks) with
  state, last seen, address and profile.
- ``GET /api/hosts/<mac>/timeline``: that host's recent events, oldest first.
- ``GET /api/leases``: the DHCP lease table.
- ``GET /api/boots``: each recently active host's current boot, its phases with start
  and end times, attempts and failures (pxed/ops/boots.py), and the server's ``now``
  for the page's time axis.
- ``GET /api/transfers``: TFTP transfers in progress: client, file, bytes
  acknowledged of the size, blksize, windowsize, start time.
- ``GET /healthz``: 200 and the services that run, 503 if one stopped or the lease
  database fails (its reason under ``database``).

The page is static HTML with a little vanilla JavaScript that reads these.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from typing import Any, Protocol, cast

from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import Request

from pxed.config import parse_mac
from pxed.ops.metrics import MetricsResource, registry_for
from pxed.ops.operations import Operations
from pxed.provisioning.lifecycle import HostState, State

JSON_TYPE = b"application/json"


def mount_status(root: Resource, operations: Operations) -> None:
    """Add ``/``, ``/metrics``, ``/healthz`` and the ``/api`` reads to ``root``."""
    root.putChild(b"", StatusPage(operations))
    root.putChild(b"metrics", MetricsResource(registry_for(operations.sources())))
    root.putChild(b"healthz", HealthResource(operations))
    api = root.children.get(b"api")
    if api is None:
        api = Resource()
        root.putChild(b"api", api)
    api.putChild(b"hosts", HostsApi(operations, api.children.get(b"hosts")))
    api.putChild(b"leases", LeasesApi(operations))
    api.putChild(b"transfers", TransfersApi(operations))
    api.putChild(b"boots", BootsApi(operations))


def _json(request: Request, value: object, code: int = http.OK) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"content-type", JSON_TYPE)
    request.setHeader(b"cache-control", b"no-store")
    return json.dumps(value, indent=1).encode() + b"\n"


NOTICE_SLOT = b"<!-- server.notice -->"
TITLE = b"<h1>pxed</h1>"


class StatusPage(Resource):
    """``GET /``: the page itself (pxed/ops/static/status.html), with ``server.notice``, and
    with ``server.database`` this server's name in the title.

    The notice is put in by the server, not fetched by the page's script: it is what
    someone must read even with JavaScript off (the appliance without a configuration
    says there how to provide one), and it follows a reload because the config is read
    per request.
    """

    isLeaf = True

    def __init__(self, operations: Operations) -> None:
        super().__init__()
        self.operations = operations
        self.html = resources.files("pxed.ops").joinpath("static/status.html").read_bytes()

    def render_GET(self, request: Request) -> bytes:
        if request.postpath not in ([], [b""]):
            request.setResponseCode(http.NOT_FOUND)
            return b"not found\n"
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        server = self.operations.provisioning.inventory.config.server
        page = self.html
        if server.database is not None:  # one of several pxed: say which
            page = page.replace(TITLE, f"<h1>pxed {html.escape(server.label)}</h1>".encode())
        if server.notice is None:
            return page
        shown = f'<p id="notice">{html.escape(server.notice)}</p>'.encode()
        return page.replace(NOTICE_SLOT, shown)


class HealthResource(Resource):
    isLeaf = True

    def __init__(self, operations: Operations) -> None:
        super().__init__()
        self.operations = operations

    def render_GET(self, request: Request) -> bytes:
        running = {name: bool(s.running) for name, s in self.operations.services.items()}
        database = self.operations.database_problem()
        healthy = all(running.values()) and database is None
        body: dict[str, object] = {"status": "ok" if healthy else "degraded", "services": running}
        if database is not None:
            body["database"] = database
        return _json(request, body, http.OK if healthy else http.SERVICE_UNAVAILABLE)


class HostsApi(Resource):
    """``/api/hosts[/<mac>/timeline]`` reads; POSTs go to the install callbacks."""

    isLeaf = True

    def __init__(self, operations: Operations, callbacks: Resource | None) -> None:
        super().__init__()
        self.operations = operations
        self.callbacks = callbacks

    def render_GET(self, request: Request) -> bytes:
        parts = [part.decode("latin-1") for part in request.postpath or [] if part]
        if not parts:
            return _json(request, host_rows(self.operations))
        if len(parts) == 2 and parts[1] == "timeline":
            try:
                mac = parse_mac(parts[0])
            except ValueError as error:
                return _json(request, {"error": str(error)}, http.NOT_FOUND)
            events = [entry.as_json() for entry in self.operations.timeline.events(mac)]
            return _json(request, {"mac": mac, "events": events})
        return _json(request, {"error": "use /api/hosts or /api/hosts/<mac>/timeline"}, 404)

    def render_POST(self, request: Request) -> bytes | int:
        if self.callbacks is None:
            return _json(request, {"error": "install callbacks are not served"}, 404)
        result: bytes | int = self.callbacks.render(request)
        return result


def host_rows(operations: Operations) -> list[dict[str, Any]]:
    """One row per inventory host, then unknown hosts pxed has states for."""
    inventory = operations.provisioning.inventory
    config = inventory.config
    states = {state.mac: state for state in operations.provisioning.lifecycle.all()}
    leased = lease_addresses(operations)
    rows = []
    for host in config.hosts:
        state = states.pop(host.mac, HostState(host.mac, State.READY, 0.0, "", ()))
        ip = str(host.ip) if host.ip is not None else leased.get(host.mac)
        rows.append(_row(operations, state, host.hostname, host.profile, ip, host.netboot))
    for state in states.values():
        unknown = config.dhcp.unknown_profile
        rows.append(_row(operations, state, None, unknown, leased.get(state.mac), "once"))
    return rows


def _row(
    operations: Operations,
    state: HostState,
    hostname: str | None,
    profile: str | None,
    ip: str | None,
    netboot: str,
) -> dict[str, Any]:
    seen = operations.timeline.last_seen(state.mac)
    return {
        "mac": state.mac,
        "hostname": hostname,
        "profile": profile,
        "netboot": netboot,
        "state": state.state.value,
        "since": state.since or None,
        "source": state.source or None,
        "server": state.server or None,  # the pxed that made the change (server.database)
        "ip": ip,
        "last_seen": seen if seen is not None else (state.since or None),
    }


def lease_rows(operations: Operations) -> list[dict[str, Any]]:
    rows = operations.provisioning.inventory.leases.rows()
    return [
        {"mac": mac, "ip": ip, "expires": expires, "hostname": hostname}
        for mac, ip, expires, hostname in rows
    ]


def lease_addresses(operations: Operations) -> dict[str, str]:
    return {row["mac"]: row["ip"] for row in lease_rows(operations)}


class LeasesApi(Resource):
    isLeaf = True

    def __init__(self, operations: Operations) -> None:
        super().__init__()
        self.operations = operations

    def render_GET(self, request: Request) -> bytes:
        return _json(request, lease_rows(self.operations))


class _TransferList(Protocol):
    """What ``/api/transfers`` reads of the TFTP service (``pxed.tftp.service.TftpService``)."""

    def transfers(self) -> list[dict[str, Any]]: ...


class TransfersApi(Resource):
    isLeaf = True

    def __init__(self, operations: Operations) -> None:
        super().__init__()
        self.operations = operations

    def render_GET(self, request: Request) -> bytes:
        tftp = self.operations.services.get("tftp")
        if tftp is None:
            return _json(request, {"tftp_active": None, "tftp": []})
        # services holds each service as an IService; the "tftp" one is the TFTP service.
        running = cast(_TransferList, tftp).transfers()
        return _json(request, {"tftp_active": len(running), "tftp": running})


class BootsApi(Resource):
    """``GET /api/boots``: what the page's boot view draws, with hostnames from the inventory."""

    isLeaf = True

    def __init__(self, operations: Operations) -> None:
        super().__init__()
        self.operations = operations

    def render_GET(self, request: Request) -> bytes:
        now = self.operations.clock()
        config = self.operations.provisioning.inventory.config
        rows = []
        for boot in self.operations.boots.recent(now):
            host = config.host(boot.mac)
            rows.append({**boot.as_json(), "hostname": host.hostname if host else None})
        return _json(request, {"now": now, "boots": rows})
