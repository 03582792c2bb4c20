"""The HTTP URLs pxed hands to clients, built in one place so configs and Kickstarts agree."""

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

    def kickstart(self, mac: str | None) -> str:
        """``/ks/<mac>``; without a MAC, ``/ks/`` finds the host by Anaconda's MAC header."""
        return f"{self.base}/ks/{mac or ''}"

    def callback(self, mac: str, outcome: str) -> str:
        return f"{self.base}/api/hosts/{mac}/{outcome}"

    def ipxe(self, mac: str) -> str:
        return f"{self.base}/boot/{mac}.ipxe"
