"""`twistd -n pxed` on an IPv6-only link: HTTP and TFTP on tftp.listen6 / http.listen6, and
every generated config and answer file fetched over IPv6 points at http://[addr]/.

The server namespace's veth carries IPv6 only (``lab.netns.NetnsLab.pair6``) and pxed
is configured for IPv6 only (``server.address6``, no IPv4 address or listen list); it
listens on the global address and on ``fe80::1%<if>``. The client namespace fetches
with curl -g and tftp-hpa, by the global address and by the link-local one with its
own zone. URLs handed out over IPv6 name ``server.address6`` in brackets, and never a
zone (RFC 6874), even for a request that came to the link-local address.

The client's veth has web01's MAC, so pxed's IPv6 neighbour table (NDP, read over
rtnetlink) names it: its Kickstart is served by that, as ARP does over IPv4. The
tests run in order: the last one reports the install done.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.netns import NetnsLab, Pair6, require_binary, require_netns
from tests.support.provision_lab import WEB, write_lab

pytestmark = [pytest.mark.interop, pytest.mark.netns]

WEB_DASHED = "01-" + WEB.replace(":", "-")


@dataclass
class Appliance:
    net: Pair6
    work: Path

    @property
    def base(self) -> str:
        return f"http://[{self.net.server_ip}]:80"

    def curl(self, url: str, *args: str) -> str:
        done = self.net.client.run(["curl", "-g", "-sS", "--max-time", "20", *args, url])
        return done.stdout


@pytest.fixture(scope="module")
def appliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Appliance]:
    require_netns()
    require_binary("curl")
    work = tmp_path_factory.mktemp("appliance6")
    with NetnsLab(work) as lab:
        net = lab.pair6()
        net.client.ip("link", "set", "dev", net.client_if, "address", WEB)  # the host itself
        listen6 = f'["{net.server_ip}", "{net.server_ll}"]'
        config = write_lab(work, http_port=80, tftp_port=69, http_listen6=listen6)
        text = config.read_text()
        text = text.replace("port: 69}", f"port: 69, listen6: {listen6}}}")
        # IPv6 only: no IPv4 address to advertise or listen on
        text = text.replace("address: 127.0.0.1", f'address6: "{net.server_ip}"')
        text = text.replace("listen: [127.0.0.1], ", "")
        config.write_text(text)
        twistd = str(Path(sys.executable).with_name("twistd"))
        daemon = net.server.spawn(
            [twistd, "-n", "--pidfile=", "pxed", "--config", str(config)], work / "twistd.log"
        )
        net.server.wait_listening(80, "tcp", timeout=30)
        net.server.wait_listening(69, "udp", timeout=30)
        yield Appliance(net, work)
        daemon.stop()
        assert "Traceback" not in daemon.output(), daemon.output()


@pytest.mark.parametrize("link_local", [False, True])
def test_curl_fetches_tftp_root_and_trees_over_ipv6(appliance: Appliance, link_local: bool):
    host = (
        f"[fe80::1%25{appliance.net.client_if}]" if link_local else f"[{appliance.net.server_ip}]"
    )
    assert appliance.curl(f"http://{host}/tftp/vmlinuz") == "tftp kernel"
    assert appliance.curl(f"http://{host}/trees/rocky9/images/pxeboot/vmlinuz") == "tree kernel"


def test_http_traversal_is_refused_over_ipv6(appliance: Appliance):
    for path in ("/tftp/../pxed.yaml", "/tftp/%2e%2e/pxed.yaml", "/trees/rocky9/../../pxed.yaml"):
        code = appliance.curl(
            appliance.base + path, "--path-as-is", "-o", "/dev/null", "-w", "%{http_code}"
        )
        assert code in ("400", "403", "404"), (path, code)


def test_an_ipxe_script_fetched_over_ipv6_points_at_the_bracketed_ipv6_address(
    appliance: Appliance,
):
    script = appliance.curl(f"{appliance.base}/boot/{WEB}.ipxe")
    assert f"kernel {appliance.base}/trees/rocky9/images/pxeboot/vmlinuz" in script
    assert f"inst.ks={appliance.base}/ks/{WEB}/" in script
    assert "127.0.0.1" not in script and "%" not in script


@pytest.mark.parametrize("link_local", [False, True])
def test_a_pxelinux_config_fetched_by_tftp_over_ipv6_has_no_zone_in_its_urls(
    appliance: Appliance, tmp_path: Path, link_local: bool
):
    """Over the link-local address too, the URLs name the routable address: a zone is
    the server's name for its link and would mean nothing to the client."""
    require_binary("tftp")
    net = appliance.net
    host = net.server_ll_from_client() if link_local else str(net.server_ip)
    out = tmp_path / "pxelinux.cfg"
    net.client.run(["tftp", "-6", host, "69", "-c", "get", f"pxelinux.cfg/{WEB_DASHED}", str(out)])
    config = out.read_text()
    assert f"{appliance.base}/ks/{WEB}" in config
    assert "127.0.0.1" not in config and "%" not in config


def test_an_on_link_ipv6_host_gets_its_kickstart_by_its_ndp_entry(appliance: Appliance):
    """/ks/ without a MAC: pxed finds the requester's MAC in its IPv6 neighbour table."""
    kickstart = appliance.curl(f"{appliance.base}/ks/")
    assert f"url --url={appliance.base}/trees/rocky9/" in kickstart, kickstart


def test_the_signed_kickstart_and_its_done_callback_work_over_ipv6(appliance: Appliance):
    """The whole install conversation over IPv6: the boot config's signed Kickstart URL,
    the tree and callback URLs inside it, and the done callback with the token."""
    script = appliance.curl(f"{appliance.base}/boot/{WEB}.ipxe")
    signed = re.search(r"inst\.ks=(\S+)", script)
    assert signed is not None, script
    kickstart = appliance.curl(signed.group(1))
    assert f"url --url={appliance.base}/trees/rocky9/" in kickstart
    done_url = f"{appliance.base}/api/hosts/{WEB}/done"
    assert done_url in kickstart
    token = re.search(r"--data token=(\S+)", kickstart)
    assert token is not None, kickstart
    answer = appliance.curl(done_url, "-X", "POST", "--data", f"token={token.group(1)}")
    assert answer.strip() == f"{WEB}: installed"
