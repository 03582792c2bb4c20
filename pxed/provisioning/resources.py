"""HTTP resources for installs: ``/ks/<mac>`` and ``/preseed/<mac>``, ``/boot/...``,
``/api/hosts/<mac>/done|failed``.

``mount(root, provisioning)`` adds them to the site's root resource.

``/ks/<mac>`` (or ``/ks/`` with the MAC found another way, or
``/ks/<mac>/<signature>`` as the host's boot config spells it) serves the host's
rendered Kickstart, ``/preseed/<mac>`` (``/preseed/<mac>/<signature>``) its
preseed: one resource per answer-file family, each serving only hosts whose
profile uses that family, all under the same rules below. An answer file
carries root password hashes, so unless
``install.kickstart_open`` it goes only to that host, as
``pxed.provisioning.identity`` verifies it: on a served link by the kernel's
neighbour entry for the requester (an ``X-RHN-Provisioning-MAC-<n>`` header
that disagrees with it is a forgery, refused and logged), behind a router by
the host's reserved or leased address or this install's signed URL, or by the
header where the operator trusts it. Anything else gets 403 and a message
that says how to make it work. Only a verified fetch moves the host's state
or counts for the loop breaker. A template that renders to something its
family's checker rejects is never served (500, logged); a looping host gets 409.

``/boot/<mac>.ipxe`` is the iPXE script, ``/boot/<mac>.grub`` GRUB's entry over
HTTP (pxed/provisioning/bootconfigs.py); ``/boot/pxelinux.cfg/...``,
``/boot/grub.cfg-01-<mac>`` and ``/boot/grub/grub.cfg`` are the same generated
files TFTP serves (for lpxelinux.0 and GRUB over HTTP).

``POST /api/hosts/<mac>/done`` and ``/failed`` move the host to installed or
failed when they carry the per-host HMAC the answer file holds (form field
``token`` in the body, or an ``X-Pxed-Token`` header; never in the URL, which
access logs keep) and come from a requester the same identity rule admits.
The token is the same whichever family's file carried it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from pxed.config import Config, parse_mac
from pxed.config.model import Host
from pxed.events import CallbackReceived, Event, EventBus, KickstartRequest
from pxed.provisioning.answers import FAMILIES, Rendered, TemplateProblem, family_of, render
from pxed.provisioning.bootconfigs import LocalBoot, plan_for
from pxed.provisioning.family import Family
from pxed.provisioning.host_states import HostStates, ask
from pxed.provisioning.identity import Neighbours, Verdict, verify
from pxed.provisioning.inventory import Inventory
from pxed.provisioning.lifecycle import HostState, LifecycleError, State
from pxed.provisioning.tftp_files import ProvisionFiles
from pxed.provisioning.tokens import signature_matches, token_matches
from pxed.provisioning.urls import Urls

log = Logger(namespace="pxed.provision")

MAC_HEADER_PREFIX = b"x-rhn-provisioning-mac-"
TEXT = b"text/plain; charset=utf-8"
UNDER_WAY = (State.BOOTING, State.INSTALLING)  # an install's credentials count only then
_MAC_IN_NAME = re.compile(r"(?:[0-9A-Fa-f]{2}[-:]){5}[0-9A-Fa-f]{2}")


@dataclass
class Provisioning:
    """What the install resources share: the inventory, host states and the callback secret."""

    inventory: Inventory
    lifecycle: HostStates
    secret: bytes
    files: ProvisionFiles
    clock: Callable[[], float]
    neighbours: Neighbours = field(default_factory=Neighbours)

    @property
    def events(self) -> EventBus:
        """The daemon's event bus (the lifecycle publishes its state changes there too)."""
        return self.lifecycle.events

    def tell(self, event: Event, level: Callable[..., None]) -> None:
        """Publish ``event`` and log its line at ``level``."""
        self.events.publish(event)
        level(event.FORMAT, **event.fields())

    def verify(
        self, mac: str, request: Request, now: float, claimed: bool, signed: bool = False
    ) -> Verdict:
        """Whether ``request`` comes from the machine ``mac`` (pxed.provisioning.identity);
        ``claimed``: the request itself says so (its MAC header, a valid callback token);
        ``signed``: it came by this install's signed Kickstart URL."""
        requester = request.getClientAddress().host
        return verify(
            mac,
            requester,
            self.neighbours.mac_of(requester),
            header_macs(request),
            lambda address: self.inventory.mac_for_ip(address, now),
            self.inventory.config.install.mac_header_networks,
            claimed,
            signed,
        )

    def seen(self, mac: str, source: str) -> None:
        """A host booting was seen (the DHCP adapter calls this): ready/failed -> booting.

        MACs pxed would not install (unknown under ``ignore`` or ``local``) are
        not recorded, so a busy LAN does not fill the state database.
        """
        if self.inventory.host(mac) is not None:
            self.lifecycle.seen(mac, source, self.clock())


def mount(root: Resource, provisioning: Provisioning) -> None:
    """Add each family's answer-file path (``/ks``, ``/preseed``), ``/boot`` and ``/api`` to a
    site's root resource."""
    for family in FAMILIES.values():
        root.putChild(family.path.encode(), AnswerFileResource(provisioning, family))
    root.putChild(b"boot", BootResource(provisioning))
    api = Resource()
    api.putChild(b"hosts", CallbackResource(provisioning))
    root.putChild(b"api", api)


def _reply(request: Request, code: int, message: str) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"content-type", TEXT)
    request.setHeader(b"cache-control", b"no-store")
    return message.encode() + b"\n"


def respond(request: Request, mac: str | None, answer: Deferred[bytes], head: bool = False) -> int:
    """Finish ``request`` with the body ``answer`` gives: NOT_DONE_YET for ``render``.

    The host states may answer later (``pxed.provisioning.pg_states``): a database
    that fails answers 503 with a plain message (its outage logged there, with the
    MAC); anything else is a bug, logged, 500.  ``head``: the headers only.
    """
    gone: list[bool] = []
    request.notifyFinish().addErrback(lambda _: gone.append(True))
    answer.addErrback(_unavailable, request, mac)

    def finish(body: bytes) -> None:
        if gone:
            return  # the client left while the database answered
        # Its length, as Twisted gives a body render returns: not chunked, which the
        # small HTTP clients of boot loaders and installers may not all read.
        request.setHeader(b"content-length", b"%d" % len(body))
        request.write(b"" if head else body)
        request.finish()

    answer.addCallback(finish).addErrback(
        lambda failure: log.failure("cannot answer {mac}", failure, mac=mac)
    )
    return NOT_DONE_YET


def _unavailable(failure: Failure, request: Request, mac: str | None) -> bytes:
    if failure.check(LifecycleError):
        message = f"cannot answer for {mac} now: {failure.value}"
        return _reply(request, http.SERVICE_UNAVAILABLE, message)
    log.failure("host states for {mac}: unexpected failure", failure, mac=mac)
    return _reply(request, http.INTERNAL_SERVER_ERROR, f"cannot answer for {mac}; see pxed's log")


def header_macs(request: Request) -> list[str]:
    """MACs in Anaconda's ``X-RHN-Provisioning-MAC-<n>: <iface> <mac>`` headers."""
    macs = []
    for name, values in request.requestHeaders.getAllRawHeaders():
        if not name.lower().startswith(MAC_HEADER_PREFIX):
            continue
        for value in values:
            word = value.decode("latin-1").split()[-1:] or [""]
            try:
                macs.append(parse_mac(word[0]))
            except ValueError:
                continue
    return macs


def answer_refusal(config: Config, host: Host, state: State, urls: Urls) -> tuple[int, str] | None:
    """Why ``host`` in ``state`` gets no answer file (HTTP status, message), or None to serve it.

    A host whose boot config is local boot gets none: counting the fetch would
    move an installed once host back to installing, and its next boot would
    reinstall it (an operator's curl under kickstart_open, a script on the
    installed system).
    """
    if host.netboot == "never":
        return http.FORBIDDEN, f"{host.mac} has netboot: never; no install"
    plan = plan_for(config, host, state, urls)
    if isinstance(plan, LocalBoot):
        return (
            http.CONFLICT,
            f"{plan.reason}: it boots its local disk; "
            f"run `pxed hosts --config FILE rearm {host.mac}` to install it again",
        )
    return None


class AnswerFileResource(Resource):
    """``/<path>/<mac>`` of one answer-file family."""

    isLeaf = True

    def __init__(self, provisioning: Provisioning, family: Family) -> None:
        super().__init__()
        self.p = provisioning
        self.family = family

    def render_GET(self, request: Request) -> int:
        return self._answer(request, fetch=True)

    def render_HEAD(self, request: Request) -> int:
        """The GET's status and headers, counted as no fetch: ``curl -I`` must not trip the
        loop breaker (without this method Twisted answers HEAD by calling render_GET)."""
        return self._answer(request, fetch=False)

    def _answer(self, request: Request, fetch: bool) -> int:
        now = self.p.clock()
        requester = request.getClientAddress().host
        senders = header_macs(request)
        mac = self._mac(request, senders, requester, now)
        if mac is None:
            return respond(
                request,
                None,
                succeed(
                    _reply(
                        request,
                        http.NOT_FOUND,
                        f"no host: give the MAC in the path (/{self.family.path}/<mac>), "
                        "or fetch from the host itself or its leased or reserved address",
                    )
                ),
                head=not fetch,
            )
        reading = ask(self.p.lifecycle.refresh, mac)
        answer = reading.addCallback(
            lambda _: self._admit(request, mac, senders, requester, now, fetch)
        )
        return respond(request, mac, answer, head=not fetch)

    def _admit(
        self,
        request: Request,
        mac: str,
        senders: list[str],
        requester: str,
        now: float,
        fetch: bool,
    ) -> bytes | Deferred[bytes]:
        """With ``mac``'s state just read: whether ``requester`` gets the answer file."""
        host = self.p.files.host(mac)
        if host is None:
            return _reply(request, http.NOT_FOUND, f"no host with MAC {mac} in the inventory")
        claimed, signed = host.mac in senders, self._signed(request, host.mac)
        verdict = self.p.verify(host.mac, request, now, claimed, signed)
        if not (verdict.admitted or self.p.inventory.config.install.kickstart_open):
            outcome = "forged header refused" if verdict.forged else "refused"
            refused = KickstartRequest(now, mac, self.family.name, requester, outcome, verdict.rule)
            self.p.tell(refused, log.warn)
            return _reply(
                request,
                http.FORBIDDEN,
                f"the {self.family.title} of {mac} is served only to that host ({verdict.rule}); "
                "set install.kickstart_open to serve it to anyone",
            )
        return self._serve(request, host, now, fetch and verdict.admitted, requester)

    def _mac(self, request: Request, senders: list[str], requester: str, now: float) -> str | None:
        segments = [part for part in (request.postpath or []) if part]
        if segments:
            try:
                return parse_mac(segments[0].decode("latin-1"))
            except ValueError:
                return None
        neighbour = self.p.neighbours.mac_of(requester)
        if neighbour is not None:
            return neighbour
        if senders:
            known = [mac for mac in senders if self.p.inventory.host(mac) is not None]
            return (known or senders)[0]
        return self.p.inventory.mac_for_ip(requester, now)

    def _signed(self, request: Request, mac: str) -> bool:
        """``/<path>/<mac>/<signature>`` with this install's signature, while ``mac`` boots or
        installs: from the boot config it was handed until its done or failed callback."""
        segments = [part for part in (request.postpath or []) if part]
        if len(segments) < 2:
            return False
        current = self.p.lifecycle.get(mac)
        if current.state not in UNDER_WAY:
            return False
        signature = segments[1].decode("latin-1")
        return signature_matches(self.p.secret, mac, signature, current.generation)

    def _serve(
        self, request: Request, host: Host, now: float, fetch: bool, requester: str
    ) -> bytes | Deferred[bytes]:
        """The answer file, its URLs in the address family ``requester`` came in on."""
        config, urls = self.p.inventory.config, self.p.inventory.urls_for(requester)
        family = family_of(config.profiles.get(host.profile) if host.profile else None)
        if family is not None and family is not self.family:
            where = urls.answer(family.path, host.mac)
            return _reply(
                request,
                http.NOT_FOUND,
                f"the answer file of {host.mac} is a {family.title}: {where}",
            )
        current = self.p.lifecycle.get(host.mac)
        refused = answer_refusal(config, host, current.state, urls)
        if refused is not None:
            return _reply(request, *refused)
        try:
            rendered = render(config, host, urls, self.p.secret, current.generation)
        except LookupError as error:
            return _reply(request, http.NOT_FOUND, str(error))
        except TemplateProblem as problem:
            log.error(
                "refused to serve the {family} of {mac}: {problem}",
                family=self.family.title,
                mac=host.mac,
                problem=str(problem),
            )
            return _reply(
                request,
                http.INTERNAL_SERVER_ERROR,
                f"the {self.family.title} of {host.mac} does not pass {self.family.checker}; "
                "see pxed's log",
            )
        request.setHeader(b"content-type", TEXT)
        request.setHeader(b"cache-control", b"no-store")
        if not fetch:
            return rendered.text.encode()
        install = config.install
        fetched = ask(
            self.p.lifecycle.kickstart_fetched,
            host.mac,
            now,
            install.loop_fetches,
            install.loop_window,
        )
        return fetched.addCallback(self._fetched, request, host, rendered, now, requester)

    def _fetched(
        self,
        after: HostState,
        request: Request,
        host: Host,
        rendered: Rendered,
        now: float,
        requester: str,
    ) -> bytes:
        """The fetch is counted: serve the file, unless it tripped the loop breaker."""
        if after.state is State.LOOPING:
            return _reply(
                request,
                http.CONFLICT,
                f"{host.mac} is looping (too many installs without a done callback); "
                f"run `pxed hosts --config FILE rearm {host.mac}` to install it again",
            )
        template = str(rendered.template)
        served = KickstartRequest(now, host.mac, self.family.name, requester, "served", template)
        self.p.tell(served, log.info)
        return rendered.text.encode()


class BootResource(Resource):
    """``/boot/<mac>.ipxe`` and the generated pxelinux and GRUB files, over HTTP."""

    isLeaf = True

    def __init__(self, provisioning: Provisioning) -> None:
        super().__init__()
        self.p = provisioning

    def render_GET(self, request: Request) -> int:
        path = "/".join(part.decode("latin-1") for part in (request.postpath or []) if part)
        mac = _named_mac(path)
        if mac is None:  # pxelinux's UUID and hex names, grub/grub.cfg: the snapshot will do
            return respond(request, None, succeed(self._text(request, path)))
        reading = ask(self.p.lifecycle.refresh, mac)
        return respond(request, mac, reading.addCallback(lambda _: self._text(request, path)))

    def _text(self, request: Request, path: str) -> bytes:
        requester = request.getClientAddress().host
        if "/" not in path and path.endswith(".ipxe"):
            text = self.p.files.ipxe_script(path.removesuffix(".ipxe"), requester)
        elif "/" not in path and path.endswith(".grub"):
            text = self.p.files.grub_http(path.removesuffix(".grub"), requester)
        else:
            text = self.p.files.config_text(path, requester, "http")
        if text is None:
            return _reply(request, http.NOT_FOUND, f"{path}: nothing generated for this name")
        request.setHeader(b"content-type", TEXT)
        request.setHeader(b"cache-control", b"no-store")
        return text.encode()

    render_HEAD = render_GET


def _named_mac(path: str) -> str | None:
    """The MAC a generated file's name spells (``<mac>.ipxe``, ``01-<mac>``), or None."""
    found = _MAC_IN_NAME.search(path.rpartition("/")[2])
    if found is None:
        return None
    try:
        return parse_mac(found.group(0))
    except ValueError:
        return None


class CallbackResource(Resource):
    """``POST /api/hosts/<mac>/done`` and ``/failed``: the installer reports its outcome."""

    isLeaf = True

    def __init__(self, provisioning: Provisioning) -> None:
        super().__init__()
        self.p = provisioning

    def render_POST(self, request: Request) -> int:
        parts = [part.decode("latin-1") for part in (request.postpath or []) if part]
        if len(parts) != 2 or parts[1] not in ("done", "failed"):
            message = "use POST /api/hosts/<mac>/done or /failed"
            return respond(request, None, succeed(_reply(request, http.NOT_FOUND, message)))
        try:
            mac = parse_mac(parts[0])
        except ValueError as error:
            return respond(request, None, succeed(_reply(request, http.NOT_FOUND, str(error))))
        reading = ask(self.p.lifecycle.refresh, mac)
        return respond(request, mac, reading.addCallback(self._report, request, mac, parts[1]))

    def _report(
        self, current: HostState, request: Request, mac: str, what: str
    ) -> bytes | Deferred[bytes]:
        """With ``mac``'s state just read (an ended install's token is void)."""
        if self.p.files.host(mac) is None:
            return _reply(request, http.NOT_FOUND, f"no host with MAC {mac} in the inventory")
        if b"token" in (request.uri or b"").partition(b"?")[2]:
            return _reply(
                request,
                http.BAD_REQUEST,
                "send the token in the body or an X-Pxed-Token header, never in the URL",
            )
        now = self.p.clock()
        requester = request.getClientAddress().host
        token = _token(request)
        if token is None or not token_matches(self.p.secret, mac, token, current.generation):
            bad = CallbackReceived(now, mac, requester, what, "wrong or missing token")
            self.p.tell(bad, log.warn)
            return _reply(request, http.FORBIDDEN, f"wrong or missing token for {mac}")
        # The token matched: only a Kickstart this install served to a verified requester
        # carried it (kickstart_open serves it to anyone, so there it proves nothing).
        signed = current.state in UNDER_WAY and not self.p.inventory.config.install.kickstart_open
        verdict = self.p.verify(mac, request, now, claimed=True, signed=signed)
        if not verdict.admitted:
            self.p.tell(CallbackReceived(now, mac, requester, what, verdict.rule), log.warn)
            return _reply(request, http.FORBIDDEN, f"{mac}'s callback comes only from that host")
        accepted = CallbackReceived(now, mac, requester, what, "accepted")
        self.p.tell(accepted, log.info if what == "done" else log.error)
        change = self.p.lifecycle.done if what == "done" else self.p.lifecycle.failed
        changing = ask(change, mac, now)
        return changing.addCallback(
            lambda state: _reply(request, http.OK, f"{mac}: {state.state.value}")
        )


def _token(request: Request) -> str | None:
    """From the X-Pxed-Token header, else the form body's ``token`` (not the query string)."""
    header = request.getHeader(b"x-pxed-token")
    if header:
        return header.decode("latin-1")
    if request.content is None:
        return None
    request.content.seek(0)
    body = request.content.read(4096).decode("latin-1")
    values = parse_qs(body).get("token")
    return values[0] if values else None
