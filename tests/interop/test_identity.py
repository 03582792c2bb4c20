"""Answer files and their callbacks reach only their own machine, on a real link, with curl.

pxed runs in a server namespace on a bridge; the installing host (its MAC is
web01's) and an attacker (another MAC) hang off the bridge in namespaces of
their own. The attacker tries the header forgeries of issue 14 and the
callback with a leaked token; the host fetches its Kickstart without any
header (as Debian's installer or a proxy-mode install does) and calls back.
Behind a real router, the host gets in only by the signed URL of its boot config.
The same for a preseed, whose late_command calls back through busybox nc.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lab.netns import Bridge, Namespace, NetnsLab, netns_lab, require_binary, require_netns
from lab.procs import Background
from tests.interop.test_provision_lifecycle import TWISTD, WEB, write_config

pytestmark = [pytest.mark.interop, pytest.mark.netns]

__all__ = ["netns_lab"]  # the fixture, imported for pytest

ATTACKER_MAC = "52:54:00:66:66:66"
PRESEED = (
    "d-i netcfg/get_hostname string {{ host.hostname }}\n"
    "d-i passwd/root-password-crypted password {{ vars.hash }}\n"
    "d-i preseed/late_command string {{ pxed_done }}\n"
)
PORT = 8080
FORGED = [
    ["-H", f"X-RHN-Provisioning-MAC-0: eth0 {WEB}"],
    ["-H", f"x-rhn-provisioning-mac-9: ens3 {WEB.upper()}"],
    ["-H", f"X-RHN-Provisioning-MAC-0: eth0 {WEB.replace(':', '-')}"],
    [
        "-H",
        f"X-RHN-Provisioning-MAC-0: eth0 {WEB}",
        "-H",
        f"X-RHN-Provisioning-MAC-1: {ATTACKER_MAC}",
    ],
]


def machine(lab: NetnsLab, bridge: object, role: str, host: int, mac: str) -> Namespace:
    ns = lab.namespace(role)
    link = lab.attach(bridge, ns, host)  # type: ignore[arg-type]
    ns.ip("link", "set", link.b_if, "address", mac)
    return ns


def curl(ns: Namespace, *args: str) -> tuple[int, str]:
    done = ns.run(
        ["curl", "--silent", "--max-time", "10", "--write-out", "\n%{http_code}", *args],
        check=False,
    )
    body, _, code = done.stdout.rpartition("\n")
    return int(code or 0), body


def serve(lab: NetnsLab, tmp_path: Path, preseed: bool = False) -> tuple[Bridge, Background]:
    """twistd pxed in a server namespace on a bridge at .1, trusting no MAC header;
    ``preseed``: web01's profile has a preseed instead of a Kickstart."""
    server = lab.namespace("srv")
    bridge = lab.bridge(server)
    config = write_config(tmp_path, PORT, 6969)
    text = (
        config.read_text()
        .replace("127.0.0.1", str(lab.address(1)))
        .replace("mac_header_networks: [127.0.0.1/32]", "mac_header_networks: []")
    )
    if preseed:
        (tmp_path / "web.preseed.j2").write_text(PRESEED)
        text = text.replace("kickstart: web.ks.j2", "preseed: web.preseed.j2")
    config.write_text(text)
    pxed = server.spawn([str(TWISTD), "-n", "--pidfile=", "pxed", "--config", str(config)])
    pxed.wait_for_output(f"Site starting on {PORT}", timeout=30)
    return bridge, pxed


def test_only_the_machine_the_neighbour_table_names_gets_its_kickstart_and_calls_back(
    netns_lab: NetnsLab, tmp_path: Path
):
    require_netns()
    require_binary("curl")
    bridge, pxed = serve(netns_lab, tmp_path)
    host = machine(netns_lab, bridge, "web", 20, WEB)
    attacker = machine(netns_lab, bridge, "evil", 66, ATTACKER_MAC)
    address = netns_lab.address(1)
    ks = f"http://{address}:{PORT}/ks/{WEB}"

    for forgery in FORGED:
        code, body = curl(attacker, *forgery, ks)
        assert code == 403 and "rootpw" not in body, forgery
    assert ": forged header refused (" in pxed.output()

    code, kickstart = curl(host, ks)  # no header at all: the neighbour entry is enough
    assert code == 200 and "rootpw --iscrypted" in kickstart
    token = re.search(r"--data token=(\S+)", kickstart)
    assert token is not None
    done = f"http://{address}:{PORT}/api/hosts/{WEB}/done"
    assert curl(attacker, "-X", "POST", "--data", f"token={token[1]}", done)[0] == 403
    code, body = curl(host, "-X", "POST", "--data", f"token={token[1]}", done)
    assert (code, body) == (200, f"{WEB}: installed\n")


def test_behind_a_router_the_host_gets_in_by_its_boot_configs_signed_url_only(
    netns_lab: NetnsLab, tmp_path: Path
):
    """Issue 14: no neighbour entry and no known address (a relay, another DHCP server)."""
    require_netns()
    require_binary("curl")
    bridge, pxed = serve(netns_lab, tmp_path)
    host, host_address = netns_lab.behind_router(bridge, "far")
    base = f"http://{netns_lab.address(1)}:{PORT}"
    assert curl(host, "-H", f"X-RHN-Provisioning-MAC-0: eth0 {WEB}", f"{base}/ks/{WEB}")[0] == 403

    code, script = curl(host, f"{base}/boot/{WEB}.ipxe")  # as its loader fetches it
    signed = re.search(r"inst\.ks=(\S+)", script)
    assert code == 200 and signed is not None and signed[1].startswith(f"{base}/ks/{WEB}/")
    code, kickstart = curl(host, signed[1])
    assert code == 200 and "rootpw --iscrypted" in kickstart
    token = re.search(r"--data token=(\S+)", kickstart)
    assert token is not None
    done = f"{base}/api/hosts/{WEB}/done"
    assert curl(host, "-X", "POST", "--data", f"token={token[1]}", done) == (
        200,
        f"{WEB}: installed\n",
    )
    assert curl(host, signed[1])[0] == 403  # the install ended: its URL is void
    log = pxed.output()
    assert f"kickstart of {WEB} for {host_address}: served" in log
    assert signed[1].rsplit("/", 1)[1] not in log  # never in a log line


def test_a_preseed_reaches_only_its_machine_and_its_late_command_reports_done(
    netns_lab: NetnsLab, tmp_path: Path
):
    """debian-installer sends no MAC header: the neighbour entry alone admits it. The
    late_command pxed renders is run as the installer runs it: sh -c with busybox's
    nc (the same small nc as d-i's busybox) and no wget."""
    require_netns()
    require_binary("curl")
    installer_path = _installer_tools(tmp_path)
    bridge, pxed = serve(netns_lab, tmp_path, preseed=True)
    host = machine(netns_lab, bridge, "web", 20, WEB)
    attacker = machine(netns_lab, bridge, "evil", 66, ATTACKER_MAC)
    base = f"http://{netns_lab.address(1)}:{PORT}"
    url = f"{base}/preseed/{WEB}"

    for forgery in FORGED:
        code, body = curl(attacker, *forgery, url)
        assert code == 403 and "root-password" not in body, forgery
    assert curl(attacker, f"{base}/ks/{WEB}")[0] == 403

    code, answers = curl(host, url)
    assert code == 200 and "d-i passwd/root-password-crypted password $6$abc\n" in answers
    late = re.search(r"^d-i preseed/late_command string (.*)$", answers, re.MULTILINE)
    assert late is not None and "X-Pxed-Token: " in late[1]
    as_installer = ["env", f"PATH={installer_path}", "sh", "-c", late[1]]
    refused = attacker.run(as_installer, check=False, timeout=40.0)
    assert refused.returncode != 0 and "pxed done callback: HTTP/1.0 403" in refused.stdout
    accepted = host.run(as_installer, check=False, timeout=40.0)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert re.search(rf"done callback for {WEB} from \S+: accepted", pxed.output())
    assert curl(host, url)[0] == 409  # installed: it boots its disk now


def _installer_tools(tmp_path: Path) -> str:
    """A PATH like debian-installer's for its late_command: busybox applets, no wget."""
    busybox = require_binary("busybox")
    tools = tmp_path / "installer-bin"
    tools.mkdir()
    for applet in ("sh", "nc", "head", "awk", "sleep", "printf"):
        (tools / applet).symlink_to(busybox)
    return str(tools)
