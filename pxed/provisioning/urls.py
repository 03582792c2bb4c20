"""The HTTP URLs pxed hands to clients, built in one place so configs and answer files agree."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Urls:
    """URLs on pxed's HTTP server as clients reach it (``server.address``, ``http.port``)."""

    server: str
    http_port: int

    @property
    def base(self) -> str:
        return f"http://{self.server}:{self.http_port}"

    def tree(self, name: str) -> str:
        """The tree's root, with the trailing slash ``inst.repo`` and ``url --url`` expect."""
        return f"{self.base}/trees/{name}/"

    def answer(self, path: str, mac: str | None, signature: str = "") -> str:
        """An answer file, ``/<path>/<mac>`` (``/ks/...``, ``/preseed/...``); without a MAC,
        ``/<path>/`` finds the host by the requester's neighbour entry, MAC header or address.

        ``signature`` (pxed.provisioning.tokens) admits the host from behind a router; a
        path segment, not a query, so no boot loader's quoting or globbing touches it."""
        signed = f"/{signature}" if mac and signature else ""
        return f"{self.base}/{path}/{mac or ''}{signed}"

    def callback(self, mac: str, outcome: str) -> str:
        return f"{self.base}/api/hosts/{mac}/{outcome}"

    def ipxe(self, mac: str) -> str:
        return f"{self.base}/boot/{mac}.ipxe"
