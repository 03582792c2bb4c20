"""HTTP install resources: who gets a Kickstart, the iPXE script, the done/failed callbacks."""

from __future__ import annotations

import re
from functools import partial
from io import BytesIO
from pathlib import Path

import pytest
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.testing import StringTransport
from twisted.web.resource import Resource, getChildForRequest
from twisted.web.server import Site
from twisted.web.test.requesthelper import DummyRequest

from pxed.config import Config, load_config
from pxed.provisioning.identity import Neighbours
from pxed.provisioning.inventory import Inventory
from pxed.provisioning.lifecycle import Lifecycle, State
from pxed.provisioning.resources import Provisioning, mount
from pxed.provisioning.tftp_files import ProvisionFiles
from pxed.provisioning.tokens import host_token, kickstart_signature
from tests.support.provision_lab import (
    DB,
    DEB,
    DEB_HOST,
    DEB_IP,
    KIOSK,
    WEB,
    lab_config,
    write_lab,
)
from tests.support.rendering import rendered

SECRET = b"k" * 32
WEB_IP = "10.213.7.21"
ON_LINK = "10.213.7.50"  # a requester with a neighbour (ARP) entry, see arp()
ATTACKER = "10.213.7.66"
ATTACKER_MAC = "52:54:00:66:66:66"
PRESEED_URL = f"http://127.0.0.1:8080/preseed/{DEB}"


@pytest.fixture
def lab(tmp_path: Path) -> Provisioning:
    return provisioning(tmp_path)


def provisioning(root: Path, config: Config | None = None) -> Provisioning:
    config = config or lab_config(root)
    inventory = Inventory(config)
    lifecycle = Lifecycle.open(config.server.state_dir)
    sign = partial(kickstart_signature, SECRET)
    files = ProvisionFiles(inventory, lifecycle, lambda: 100.0, sign)
    table = root / "arp"
    table.write_text(ARP_HEAD)
    neighbours = Neighbours(table, ndp_dump=lambda: b"")  # IPv6 neighbours: ndp()
    return Provisioning(inventory, lifecycle, SECRET, files, lambda: 100.0, neighbours)


ARP_HEAD = "IP address       HW type     Flags       HW address            Mask     Device\n"


def arp(p: Provisioning, **entries: str) -> None:
    """Give the kernel's neighbour table these address=MAC entries (keys with _ for dots)."""
    lines = [f"{ip.replace('_', '.')} 0x1 0x2 {mac} * br0" for ip, mac in entries.items()]
    p.neighbours.table.write_text(ARP_HEAD + "\n".join(lines) + "\n")


def request(
    p: Provisioning,
    path: str,
    *,
    client: str = "10.213.7.99",
    method: bytes = b"GET",
    headers: dict[bytes, bytes] | None = None,
    args: dict[bytes, list[bytes]] | None = None,
) -> tuple[int, str]:
    root = Resource()
    mount(root, p)
    path, _, query = path.partition("?")
    req = DummyRequest(
        [part.encode() for part in path.strip("/").split("/")]
        + ([b""] if path.endswith("/") else [])
    )
    req.uri = f"{path}?{query}".encode() if query else path.encode()
    req.method = method
    family = IPv6Address if ":" in client else IPv4Address
    req.client = family("TCP", client, 40000)
    req.args = args or {}
    form = b"&".join(b"%s=%s" % (key, values[0]) for key, values in (args or {}).items())
    req.content = BytesIO(form)
    for name, value in (headers or {}).items():
        req.requestHeaders.setRawHeaders(name, [value])
    resource = getChildForRequest(root, req)
    body = rendered(resource, req)
    return (req.responseCode or 200, body.decode())


def test_a_kickstart_is_served_to_the_machine_its_neighbour_entry_names(lab: Provisioning):
    arp(lab, **{ON_LINK.replace(".", "_"): WEB})
    headers = {b"X-RHN-Provisioning-MAC-0": b"eth0 52:54:00:12:34:56"}
    code, body = request(lab, "/ks/52:54:00:12:34:56", client=ON_LINK, headers=headers)
    assert code == 200
    assert "network --hostname=web01\n" in body
    assert lab.lifecycle.get(WEB).state is State.INSTALLING
    assert request(lab, "/ks/52:54:00:12:34:56", client=ON_LINK)[0] == 200  # no header needed


FORGERIES = [
    {b"X-RHN-Provisioning-MAC-0": b"eth0 52:54:00:12:34:56"},
    {b"x-rhn-provisioning-mac-7": b"ens3 52:54:00:12:34:56"},
    {b"X-RHN-PROVISIONING-MAC-0": b"eth0 52-54-00-12-34-56"},
    {
        b"X-RHN-Provisioning-MAC-0": b"eth0 52:54:00:12:34:56",
        b"X-RHN-Provisioning-MAC-1": ATTACKER_MAC.encode(),
    },
]


@pytest.mark.parametrize("headers", FORGERIES, ids=["plain", "suffix-case", "dashes", "decoy"])
def test_a_header_naming_another_mac_than_the_neighbour_entry_is_refused(
    lab: Provisioning, headers: dict[bytes, bytes]
):
    """Issue 14: any of these from a second machine on the link got host A's Kickstart."""
    arp(lab, **{ATTACKER.replace(".", "_"): ATTACKER_MAC})
    code, body = request(lab, f"/ks/{WEB}", client=ATTACKER, headers=headers)
    assert code == 403 and "root password" not in body
    assert lab.lifecycle.get(WEB).state is State.READY


def test_forged_fetches_cannot_trip_the_loop_breaker(lab: Provisioning):
    arp(lab, **{ATTACKER.replace(".", "_"): ATTACKER_MAC})
    headers = {b"X-RHN-Provisioning-MAC-0": b"eth0 " + WEB.encode()}
    for _ in range(5):
        assert request(lab, f"/ks/{WEB}", client=ATTACKER, headers=headers)[0] == 403
    assert lab.lifecycle.get(WEB).state is State.READY


def test_off_link_a_header_alone_counts_only_where_the_operator_trusts_it(tmp_path: Path):
    headers = {b"X-RHN-Provisioning-MAC-0": b"eth0 " + KIOSK.encode()}
    closed = provisioning(tmp_path / "closed")
    assert request(closed, f"/ks/{KIOSK}", client="10.99.0.5", headers=headers)[0] == 403
    path = write_lab(tmp_path / "open")
    text = path.read_text().replace("install: {", "install: {mac_header_networks: [10.99.0.0/16], ")
    path.write_text(text)
    trusting = provisioning(tmp_path / "open", load_config(path))
    assert request(trusting, f"/ks/{KIOSK}", client="10.99.0.5", headers=headers)[0] == 200
    assert request(trusting, f"/ks/{KIOSK}", client="10.98.0.5", headers=headers)[0] == 403


def test_a_kickstart_is_served_to_its_host_by_reserved_ip(lab: Provisioning):
    assert request(lab, "/ks/52:54:00:12:34:56", client=WEB_IP)[0] == 200


def test_a_kickstart_is_refused_to_anyone_else_with_a_clear_message(lab: Provisioning):
    code, body = request(lab, "/ks/52:54:00:12:34:56")
    assert code == 403
    assert "served only to that host" in body and "kickstart_open" in body
    other = request(
        lab,
        "/ks/52:54:00:12:34:56",
        headers={b"X-RHN-Provisioning-MAC-0": b"eth0 52:54:00:12:34:57"},
    )
    assert other[0] == 403
    assert lab.lifecycle.get(WEB).state is State.READY  # a refusal is not a fetch


def test_kickstart_open_serves_anyone(tmp_path: Path):
    path = write_lab(tmp_path)
    path.write_text(path.read_text().replace("install: {", "install: {kickstart_open: true, "))
    p = provisioning(tmp_path, load_config(path))
    assert request(p, "/ks/52:54:00:12:34:56")[0] == 200


def test_without_a_mac_in_the_path_the_neighbour_entry_then_the_address_find_the_host(
    lab: Provisioning,
):
    arp(lab, **{ON_LINK.replace(".", "_"): KIOSK})
    code, body = request(lab, "/ks/", client=ON_LINK)
    assert code == 200 and "hostname=kiosk01" in body
    code, body = request(lab, "/ks/", client=WEB_IP)
    assert code == 200 and "hostname=web01" in body
    assert request(lab, "/ks/")[0] == 404


def test_an_unknown_mac_is_404_and_a_never_host_is_refused(lab: Provisioning):
    assert request(lab, "/ks/52:54:00:aa:bb:cc")[0] == 404
    headers = {b"X-RHN-Provisioning-MAC-0": b"eth0 " + DB.encode()}
    assert request(lab, f"/ks/{DB}", headers=headers)[0] == 403


def test_a_mac_only_a_url_names_is_404_and_adds_no_host_row(tmp_path: Path):
    """With a default profile for unknown hosts, GET /boot/<random>.ipxe added a row each time."""
    path = write_lab(tmp_path, unknown="kiosk")
    text = path.read_text().replace("install: {", "install: {kickstart_open: true, ")
    path.write_text(text)
    p = provisioning(tmp_path, load_config(path))
    for n in range(20):
        assert request(p, f"/boot/52:54:00:ee:00:{n:02x}.ipxe")[0] == 404
        assert request(p, f"/ks/52:54:00:ee:01:{n:02x}")[0] == 404
    assert p.lifecycle.all() == []
    p.lifecycle.seen("52:54:00:ee:00:01", "dhcp", 1.0)  # a DHCP exchange showed it
    assert request(p, "/boot/52:54:00:ee:00:01.ipxe")[0] == 200


def test_the_loop_breaker_refuses_the_fetch_past_the_limit_and_boots_local(lab: Provisioning):
    assert [request(lab, f"/ks/{WEB}", client=WEB_IP)[0] for _ in range(3)] == [200, 200, 409]
    assert lab.lifecycle.get(WEB).state is State.LOOPING
    assert "LOCALBOOT 0" in request(lab, "/boot/pxelinux.cfg/01-52-54-00-12-34-56")[1]


def test_a_template_broken_on_disk_after_load_is_refused_not_served(lab: Provisioning):
    answer_file = lab.inventory.config.profiles["web"].answer_file
    assert answer_file is not None
    answer_file.template.write_text("text\nnot_a_command\n")
    code, body = request(lab, f"/ks/{WEB}", client=WEB_IP)
    assert code == 500 and "pykickstart" in body
    assert lab.lifecycle.get(WEB).state is State.READY


def test_done_with_the_right_token_installs_and_switches_to_local_boot(lab: Provisioning):
    token = host_token(SECRET, WEB).encode()
    code, body = request(
        lab, f"/api/hosts/{WEB}/done", method=b"POST", args={b"token": [token]}, client=WEB_IP
    )
    assert (code, body) == (200, f"{WEB}: installed\n")
    assert "LOCALBOOT 0" in request(lab, "/boot/pxelinux.cfg/01-52-54-00-12-34-56")[1]
    assert "sanboot" in request(lab, f"/boot/{WEB}.ipxe")[1]


def test_a_wrong_or_missing_token_is_refused(lab: Provisioning):
    wrong = host_token(SECRET, KIOSK).encode()
    done = f"/api/hosts/{WEB}/done"
    assert request(lab, done, method=b"POST", args={b"token": [wrong]}, client=WEB_IP)[0] == 403
    assert request(lab, done, method=b"POST", client=WEB_IP)[0] == 403
    assert lab.lifecycle.get(WEB).state is State.READY


def test_failed_callback_by_header_token(lab: Provisioning):
    token = host_token(SECRET, KIOSK).encode()
    arp(lab, **{ON_LINK.replace(".", "_"): KIOSK})
    code, _ = request(
        lab,
        f"/api/hosts/{KIOSK}/failed",
        method=b"POST",
        headers={b"X-Pxed-Token": token},
        client=ON_LINK,
    )
    assert code == 200 and lab.lifecycle.get(KIOSK).state is State.FAILED


def test_a_callback_with_the_right_token_from_another_machine_is_refused(lab: Provisioning):
    """The token leaked with a forged Kickstart fetch once; it must not move the host."""
    arp(lab, **{ATTACKER.replace(".", "_"): ATTACKER_MAC})
    token = host_token(SECRET, WEB).encode()
    done = f"/api/hosts/{WEB}/done"
    assert request(lab, done, method=b"POST", args={b"token": [token]}, client=ATTACKER)[0] == 403
    assert lab.lifecycle.get(WEB).state is State.READY


def test_a_token_in_the_url_is_refused_so_no_access_log_keeps_it(lab: Provisioning):
    token = host_token(SECRET, WEB)
    code, body = request(lab, f"/api/hosts/{WEB}/done?token={token}", method=b"POST", client=WEB_IP)
    assert code == 400 and "never in the URL" in body


def test_ipxe_script_and_generated_files_over_http(lab: Provisioning):
    code, script = request(lab, f"/boot/{WEB}.ipxe")
    assert code == 200 and script.startswith("#!ipxe\n")
    assert "menuentry" in request(lab, "/boot/grub.cfg-01-52-54-00-12-34-56")[1]
    assert request(lab, "/boot/52:54:00:aa:bb:cc.ipxe")[0] == 404
    code, entry = request(lab, f"/boot/{WEB}.grub")
    assert code == 200 and entry.startswith('menuentry "install ') and "(http," in entry
    assert request(lab, "/boot/52:54:00:aa:bb:cc.grub")[0] == 404


def test_seen_records_hosts_pxed_installs_and_ignores_strangers(lab: Provisioning):
    lab.seen(WEB, "dhcp")
    lab.seen("52:54:00:aa:bb:cc", "dhcp")
    assert [(s.mac, s.state, s.source) for s in lab.lifecycle.all()] == [
        (WEB, State.BOOTING, "dhcp")
    ]


def test_an_installed_once_host_is_not_reinstalled_by_a_later_kickstart_fetch(lab: Provisioning):
    """Fetching the Kickstart of an installed once host must not make its next boot install."""
    token = host_token(SECRET, WEB).encode()
    request(lab, f"/api/hosts/{WEB}/done", method=b"POST", args={b"token": [token]}, client=WEB_IP)
    code, body = request(lab, f"/ks/{WEB}", client=WEB_IP)
    assert code == 409 and "rearm" in body
    assert lab.lifecycle.get(WEB).state is State.INSTALLED
    assert "LOCALBOOT 0" in request(lab, "/boot/pxelinux.cfg/01-52-54-00-12-34-56")[1]


def test_a_token_with_non_ascii_characters_is_refused_not_a_server_error(lab: Provisioning):
    """hmac.compare_digest raises on non-ASCII str; the callback must answer 403, not crash."""
    for token in ("caf\xe9".encode("latin-1"), "токен".encode()):
        headers = {b"X-Pxed-Token": token}
        assert request(lab, f"/api/hosts/{WEB}/done", method=b"POST", headers=headers)[0] == 403
    assert lab.lifecycle.get(WEB).state is State.READY


def test_a_head_request_answers_like_get_but_is_not_counted_as_a_fetch(lab: Provisioning):
    """Twisted answers HEAD through render_GET unless told; curl -I must not trip the breaker."""
    root = Resource()
    mount(root, lab)
    site = Site(root)
    wire = f"HEAD /ks/{WEB} HTTP/1.1\r\nHost: pxed\r\nConnection: close\r\n\r\n".encode()
    for _ in range(4):
        peer = IPv4Address("TCP", WEB_IP, 40000)
        channel = site.buildProtocol(peer)
        transport = StringTransport(peerAddress=peer)
        channel.makeConnection(transport)
        channel.dataReceived(wire)
        head, _, body = transport.value().partition(b"\r\n\r\n")
        channel.connectionLost(None)
        assert head.startswith(b"HTTP/1.1 200 ") and body == b""
        assert b"content-length: 0\r\n" not in head.lower()
    assert lab.lifecycle.get(WEB).state is State.READY


def test_an_ended_installs_token_is_worthless_and_the_next_install_gets_a_new_one(
    lab: Provisioning,
):
    """Issue 14: the token of an old Kickstart must not mark a reinstall done."""

    def token_served() -> str:
        code, body = request(lab, f"/ks/{WEB}", client=WEB_IP)
        assert code == 200
        found = re.search(r"--data token=(\w+)", body)
        assert found is not None
        return found.group(1)

    def done(token: str) -> int:
        args = {b"token": [token.encode()]}
        return request(lab, f"/api/hosts/{WEB}/done", method=b"POST", args=args, client=WEB_IP)[0]

    first = token_served()
    assert done(first) == 200
    lab.lifecycle.rearm(WEB, 200.0)  # an operator reinstalls it
    assert done(first) == 403
    second = token_served()
    assert second != first and done(second) == 200


OFF_LINK = "10.99.0.5"  # behind a router: no neighbour entry, not the host's address


def signed_kickstart_path(p: Provisioning, mac: str) -> str:
    """The ``/ks/...`` path in the host's iPXE script, as its installer would fetch it."""
    code, script = request(p, f"/boot/{mac}.ipxe")
    found = re.search(r"inst\.ks=http://[^/]+(/ks/\S+)", script)
    assert code == 200 and found is not None, script
    return found.group(1)


def test_behind_a_router_the_signed_url_of_its_boot_config_admits_the_host_while_it_installs(
    lab: Provisioning,
):
    """Issue 14: no neighbour entry, no known address (proxy mode behind a relay)."""
    assert request(lab, f"/ks/{KIOSK}", client=OFF_LINK)[0] == 403
    signed = signed_kickstart_path(lab, KIOSK)  # the boot config moved it to booting
    assert signed.startswith(f"/ks/{KIOSK}/") and len(signed.rsplit("/", 1)[1]) == 32
    code, body = request(lab, signed, client=OFF_LINK)
    assert code == 200 and "network --hostname=kiosk01" in body
    assert lab.lifecycle.get(KIOSK).state is State.INSTALLING
    token = host_token(SECRET, KIOSK, lab.lifecycle.get(KIOSK).generation)
    done = f"/api/hosts/{KIOSK}/done"
    args = {b"token": [token.encode()]}
    assert request(lab, done, method=b"POST", args=args, client=OFF_LINK)[0] == 200
    assert request(lab, signed, client=OFF_LINK)[0] == 403  # ended with the install


def test_a_signed_url_is_refused_before_the_host_boots_with_a_wrong_signature_and_on_link(
    lab: Provisioning,
):
    signed = f"/ks/{KIOSK}/{kickstart_signature(SECRET, KIOSK, 0)}"
    assert request(lab, signed, client=OFF_LINK)[0] == 403  # ready: not under way yet
    assert signed == signed_kickstart_path(lab, KIOSK)
    assert request(lab, signed[:-1] + "0", client=OFF_LINK)[0] == 403
    arp(lab, **{ATTACKER.replace(".", "_"): ATTACKER_MAC})
    assert request(lab, signed_kickstart_path(lab, KIOSK), client=ATTACKER)[0] == 403
    assert lab.lifecycle.get(KIOSK).state is State.BOOTING  # nothing counted


def test_an_off_link_callback_with_the_token_counts_only_while_the_host_installs(
    lab: Provisioning,
):
    token = host_token(SECRET, KIOSK, lab.lifecycle.get(KIOSK).generation)
    args = {b"token": [token.encode()]}
    done = f"/api/hosts/{KIOSK}/done"
    assert request(lab, done, method=b"POST", args=args, client=OFF_LINK)[0] == 403  # ready
    lab.lifecycle.seen(KIOSK, "dhcp", 110.0)
    assert request(lab, done, method=b"POST", args=args, client=OFF_LINK)[0] == 200


# -- /preseed/<mac>: the same rules for debian-installer's answer file ----------------------


@pytest.fixture
def deb_lab(tmp_path: Path) -> Provisioning:
    return provisioning(tmp_path, lab_config(tmp_path, extra=DEB_HOST))


def test_a_preseed_is_served_to_the_machine_its_neighbour_entry_names_only(deb_lab: Provisioning):
    arp(deb_lab, **{ON_LINK.replace(".", "_"): DEB, ATTACKER.replace(".", "_"): ATTACKER_MAC})
    for headers in FORGERIES:
        forged = {
            name: value.replace(WEB.encode(), DEB.encode()) for name, value in headers.items()
        }
        code, body = request(deb_lab, f"/preseed/{DEB}", client=ATTACKER, headers=forged)
        assert code == 403 and "root-password" not in body
    assert request(deb_lab, f"/preseed/{DEB}", client=ATTACKER)[0] == 403
    assert deb_lab.lifecycle.get(DEB).state is State.READY
    code, body = request(deb_lab, f"/preseed/{DEB}", client=ON_LINK)  # d-i sends no header
    assert code == 200 and "d-i netcfg/get_hostname string deb01\n" in body
    assert deb_lab.lifecycle.get(DEB).state is State.INSTALLING


def test_preseed_fetches_count_for_the_same_loop_breaker(deb_lab: Provisioning):
    fetches = [request(deb_lab, f"/preseed/{DEB}", client=DEB_IP)[0] for _ in range(3)]
    assert fetches == [200, 200, 409]
    assert deb_lab.lifecycle.get(DEB).state is State.LOOPING
    assert "LOCALBOOT 0" in request(deb_lab, "/boot/pxelinux.cfg/01-52-54-00-12-34-5a")[1]


def test_each_family_serves_only_hosts_whose_profile_uses_it(deb_lab: Provisioning):
    code, body = request(deb_lab, f"/ks/{DEB}", client=DEB_IP)
    assert (code, body) == (404, f"the answer file of {DEB} is a preseed: {PRESEED_URL}\n")
    code, body = request(deb_lab, f"/preseed/{WEB}", client=WEB_IP)
    assert code == 404 and f"is a Kickstart: http://127.0.0.1:8080/ks/{WEB}" in body
    assert deb_lab.lifecycle.get(DEB).state is State.READY


def test_the_done_token_a_preseed_carries_works_once_and_the_next_install_gets_a_new_one(
    deb_lab: Provisioning,
):
    def token_served() -> str:
        code, body = request(deb_lab, f"/preseed/{DEB}", client=DEB_IP)
        assert code == 200
        found = re.search(r"X-Pxed-Token: (\w+)", body)
        assert found is not None
        return found.group(1)

    def done(token: str, client: str = DEB_IP) -> int:
        headers = {b"X-Pxed-Token": token.encode()}
        return request(
            deb_lab, f"/api/hosts/{DEB}/done", method=b"POST", headers=headers, client=client
        )[0]

    arp(deb_lab, **{ATTACKER.replace(".", "_"): ATTACKER_MAC})
    first = token_served()
    assert done(first, client=ATTACKER) == 403  # the right token from another machine
    assert done(first) == 200
    assert deb_lab.lifecycle.get(DEB).state is State.INSTALLED
    deb_lab.lifecycle.rearm(DEB, 200.0)
    assert done(first) == 403
    second = token_served()
    assert second != first and done(second) == 200


def test_behind_a_router_a_preseed_hosts_signed_url_admits_it_while_it_installs(
    deb_lab: Provisioning,
):
    assert request(deb_lab, f"/preseed/{DEB}", client=OFF_LINK)[0] == 403
    code, script = request(deb_lab, f"/boot/{DEB}.ipxe")  # the boot config: now booting
    found = re.search(r" url=http://[^/]+(/preseed/\S+)", script)
    assert code == 200 and found is not None, script
    signed = found.group(1)
    assert signed == f"/preseed/{DEB}/{kickstart_signature(SECRET, DEB, 0)}"
    code, body = request(deb_lab, signed, client=OFF_LINK)
    assert code == 200 and "get_hostname string deb01" in body
    assert request(deb_lab, f"/ks/{DEB}/{signed.rsplit('/', 1)[1]}", client=OFF_LINK)[0] == 404


def test_a_template_edited_on_disk_after_load_is_served_as_edited(lab: Provisioning):
    """Compiled templates are kept by their text, so a fetch still reads what is on disk."""
    assert "network --hostname=web01" in request(lab, f"/ks/{WEB}", client=WEB_IP)[1]
    answer_file = lab.inventory.config.profiles["web"].answer_file
    assert answer_file is not None
    answer_file.template.write_text("text\nnetwork --hostname=edited-{{ host.hostname }}\n")
    code, body = request(lab, f"/ks/{WEB}", client=WEB_IP)
    assert (code, body) == (200, "text\nnetwork --hostname=edited-web01\n")


def test_the_neighbour_entry_is_found_among_many_and_incomplete_ones_are_skipped(tmp_path: Path):
    table = tmp_path / "arp"
    lines = [f"10.213.4.{i} 0x1 0x2 52:54:00:00:00:{i:02x} * br0" for i in range(1, 200)]
    lines.insert(0, "10.213.4.7 0x1 0x0 00:00:00:00:00:00 * br1")  # incomplete, same address
    table.write_text(ARP_HEAD + "\n".join(lines) + "\n")
    neighbours = Neighbours(table, ndp_dump=lambda: b"")
    assert neighbours.mac_of("10.213.4.7") == "52:54:00:00:00:07"
    assert neighbours.mac_of("10.213.4.199") == "52:54:00:00:00:c7"  # the last line
    assert neighbours.mac_of("10.213.4.1") == "52:54:00:00:00:01"  # not 10.213.4.10..19
    assert neighbours.mac_of("10.213.4.200") is None
    assert neighbours.mac_of("10.213.4") is None
