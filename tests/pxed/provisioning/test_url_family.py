"""URLs in the address family the client came in on: IPv6 clients get http://[addr]/..."""

from __future__ import annotations

from pathlib import Path

import pytest

from pxed.config import load_config
from pxed.netif import advertised_address6
from pxed.provisioning.inventory import Inventory
from pxed.provisioning.lifecycle import Lifecycle
from pxed.provisioning.tftp_files import ProvisionFiles
from pxed.provisioning.urls import Urls, came_over_ipv6, for_requester, url_host
from tests.pxed.provisioning.test_ndp import DONE, entry
from tests.pxed.provisioning.test_resources import provisioning, request
from tests.support.provision_lab import KIOSK, WEB, write_lab

V4 = Urls("10.213.7.1", 8080)
V6 = Urls("[2001:db8:7::1]", 8080)
LISTEN6 = '["fe80::1%lo", "2001:db8:7::1"]'
V6_BASE = "http://[2001:db8:7::1]:8080"


@pytest.mark.parametrize(
    ("address", "host"),
    [
        ("10.213.7.1", "10.213.7.1"),
        ("2001:db8:7::1", "[2001:db8:7::1]"),
        ("2001:0db8:0007:0000::0001", "[2001:db8:7::1]"),
        ("fe80::1%veth0", "[fe80::1]"),  # the zone is pxed's name for its link: never sent
    ],
)
def test_url_host_brackets_ipv6_and_never_carries_a_zone(address: str, host: str):
    assert url_host(address) == host


@pytest.mark.parametrize(
    ("requester", "v6"),
    [
        ("10.213.7.50", False),
        ("2001:db8:7::50", True),
        ("fe80::5054:ff:fe12:3456%veth0", True),  # as a socket reports a link-local peer
        ("::ffff:10.213.7.50", False),  # IPv4 through a dual-stack socket
        ("", False),  # no requester (pxed explain): IPv4 as before
    ],
)
def test_the_family_is_the_requesters(requester: str, v6: bool):
    assert came_over_ipv6(requester) is v6
    assert for_requester(V4, V6, requester) is (V6 if v6 else V4)


def test_without_ipv6_urls_an_ipv6_client_gets_the_ipv4_ones():
    """No http.listen6: pxed's HTTP is only on IPv4, so that is where URLs must point."""
    assert for_requester(V4, None, "2001:db8:7::50") is V4


def test_the_advertised_ipv6_address_prefers_server_address6_then_a_routable_listen(
    tmp_path: Path,
):
    def address6(listen6: str, extra: str = "") -> str | None:
        path = write_lab(tmp_path, http_listen6=listen6)
        if extra:
            text = path.read_text().replace("server: {", "server: {" + extra + ", ")
            path.write_text(text)
        found = advertised_address6(load_config(path))
        return None if found is None else str(found)

    assert address6("[]") is None
    assert address6(LISTEN6) == "2001:db8:7::1"
    assert address6('["fe80::1%lo"]') == "fe80::1"
    assert address6(LISTEN6, 'address6: "2001:db8:9::9"') == "2001:db8:9::9"


@pytest.fixture
def files(tmp_path: Path) -> ProvisionFiles:
    config = load_config(write_lab(tmp_path, http_listen6=LISTEN6))
    return ProvisionFiles(Inventory(config), Lifecycle.open(config.server.state_dir), lambda: 1.0)


def generated(files: ProvisionFiles, path: str, client: str) -> str:
    source = files.open(path, (client, 2070))
    assert source is not None
    return source.read(0, source.size()).decode()


@pytest.mark.parametrize(
    "name", ["pxelinux.cfg/01-52-54-00-12-34-56", "grub.cfg-01-52-54-00-12-34-56"]
)
def test_a_boot_config_fetched_over_ipv6_gets_bracketed_urls_and_over_ipv4_the_old_ones(
    files: ProvisionFiles, name: str
):
    over6 = generated(files, name, "fe80::5054:ff:fe12:3456%lo")
    assert f"{V6_BASE}/ks/{WEB}" in over6 and "127.0.0.1" not in over6
    assert "%lo" not in over6 and "fe80" not in over6
    over4 = generated(files, name, "10.213.7.21")
    assert f"http://127.0.0.1:8080/ks/{WEB}" in over4 and "2001:db8" not in over4


def test_grub_reaches_a_tree_over_ipv6_by_a_bracketed_http_device(files: ProvisionFiles):
    grub = generated(files, "grub.cfg-01-52-54-00-12-34-56", "2001:db8:7::21")
    assert "source (http,[2001:db8:7::1]:8080)/boot/$net_default_mac.grub" in grub
    entry = files.grub_http("52:54:00:12:34:56", "2001:db8:7::21") or ""
    assert "linux (http,[2001:db8:7::1]:8080)/trees/rocky9/images/pxeboot/vmlinuz" in entry


def test_an_ipxe_script_follows_the_family_of_its_fetch(files: ProvisionFiles):
    assert f"kernel {V6_BASE}/tftp/vmlinuz" in (files.ipxe_script(KIOSK, "2001:db8:7::50") or "")
    assert "kernel http://127.0.0.1:8080/tftp/vmlinuz" in (files.ipxe_script(KIOSK, "") or "")


def test_a_kickstart_fetched_over_ipv6_points_its_tree_and_callbacks_at_ipv6(tmp_path: Path):
    path = write_lab(tmp_path, http_listen6=LISTEN6)
    path.write_text(path.read_text().replace("install: {", "install: {kickstart_open: true, "))
    lab = provisioning(tmp_path, load_config(path))
    code, body = request(lab, f"/ks/{WEB}", client="2001:db8:7::21")
    assert code == 200, body
    assert f"url --url={V6_BASE}/trees/rocky9/" in body
    assert f"{V6_BASE}/api/hosts/{WEB}/done" in body
    code, body = request(lab, f"/ks/{WEB}", client="10.213.7.21")
    assert "url --url=http://127.0.0.1:8080/trees/rocky9/" in body


def test_an_on_link_ipv6_requester_is_known_by_its_ndp_entry_like_an_arp_one(tmp_path: Path):
    """The IPv6 neighbour table decides as ARP does: the host's own MAC gets its Kickstart
    (URLs over IPv6), another machine's gets 403, and a header naming another MAC is a
    forgery."""
    lab = provisioning(tmp_path, load_config(write_lab(tmp_path, http_listen6=LISTEN6)))
    table = entry("fe80::5054:ff:fe12:3456", WEB) + entry("2001:db8:7::66", KIOSK) + DONE
    lab.neighbours.ndp_dump = lambda: table
    code, body = request(lab, f"/ks/{WEB}", client="fe80::5054:ff:fe12:3456")
    assert code == 200, body
    assert f"url --url={V6_BASE}/trees/rocky9/" in body
    assert request(lab, f"/ks/{WEB}", client="2001:db8:7::66")[0] == 403
    forged = {b"X-RHN-Provisioning-MAC-0": f"eth0 {KIOSK}".encode()}
    assert request(lab, f"/ks/{WEB}", client="fe80::5054:ff:fe12:3456", headers=forged)[0] == 403


def test_an_ipv6_only_pxed_needs_only_server_address6(tmp_path: Path):
    """No server.address, no interfaces, IPv6 listen addresses only: it loads, listens on
    IPv6 alone, and every URL (there are no IPv4 clients) names the IPv6 address."""
    path = write_lab(tmp_path, http_listen6='["::1"]')
    text = path.read_text().replace("address: 127.0.0.1", 'address6: "2001:db8:7::1"')
    path.write_text(text.replace("listen: [127.0.0.1], ", 'listen6: ["::1"], ', 1)
                    .replace("listen: [127.0.0.1], ", ""))  # fmt: skip
    config = load_config(path)
    assert (config.tftp.listen, config.http.listen, config.server.address) == ((), (), None)
    inventory = Inventory(config)
    assert inventory.urls_for("2001:db8:7::21").base == V6_BASE
    assert inventory.urls.base == V6_BASE
