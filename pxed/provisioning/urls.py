"""The HTTP URLs pxed hands to clients, built in one place so configs and answer files agree."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv6Address, ip_address


@dataclass(frozen=True)
class Urls:
    """URLs on pxed's HTTP server as clients reach it (``server.address``, ``http.port``).

    ``server`` is the URL's host as written: an IPv6 address in brackets (``url_host``),
    which is also what ``{server}`` in a profile's append becomes, so one template
    (``http://{server}:{http_port}/``) serves both families.
    """

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


def url_host(address: str) -> str:
    """``address`` as a URL's host (RFC 3986): an IPv6 one in brackets and without a zone.

    RFC 6874 lets a URI carry a zone (``[fe80::1%25br0]``), but only the host that
    named the zone can use it: pxed's ``br0`` means nothing to the client the URL is
    for, so a zone never goes on the wire.
    """
    if ":" not in address:
        return address
    return f"[{IPv6Address(int(IPv6Address(address)))}]"


def came_over_ipv6(requester: str) -> bool:
    """Did a request from ``requester`` (as a socket reports it) arrive over IPv6?

    An IPv4-mapped address (``::ffff:10.0.0.5``, from a dual-stack socket) is IPv4."""
    try:
        address = ip_address(requester)
    except ValueError:
        return False
    return isinstance(address, IPv6Address) and address.ipv4_mapped is None


def for_requester(v4: Urls, v6: Urls | None, requester: str) -> Urls:
    """The URLs to hand a client at ``requester``: in the family its request came in on,
    unless pxed's HTTP listens on no IPv6 address (``v6`` None)."""
    return v6 if v6 is not None and came_over_ipv6(requester) else v4
