"""``pxed explain`` checked against the DHCP answer a real ``twistd pxed`` sends on a real link.

pxed serves DHCP, TFTP and HTTP in a server namespace on one end of a veth;
from the client namespace a scripted client sends the DISCOVER explain
builds (a BIOS ROM, UEFI, iPXE, or a relay agent with giaddr set), and the
reply read off the wire must list, field for field and option for option,
what explain prints; curl then fetches the client's pxelinux config over TFTP
and it must be what explain shows.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.netns import Namespace, NetnsLab, netns_lab, require_binary, require_netns
from protocols.dhcp.wire import decode_dhcp
from pxed.cli.explain import explain
from pxed.config import load_config
from pxed.pcap.dhcp_view import detail
from tests.interop.dhcp_runner import start_pxed
from tests.interop.test_ops_explain import explained, unsigned

pytestmark = [pytest.mark.interop, pytest.mark.netns]

__all__ = ["netns_lab"]  # the fixture, imported for pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests/pxed/configs/explain"
WEB, KIOSK, RELAYED = "52:54:00:12:34:56", "52:54:00:12:34:57", "52:54:00:12:34:58"

# Runs in the client namespace: send explain's DISCOVER, print the reply's bytes in hex.
PROBE = """
import select, socket, sys
from pxed.cli.explain import discover
from protocols.dhcp.wire import encode_dhcp
iface, mac, arch, user_class, giaddr, server = sys.argv[1:]
relayed = giaddr != "-"
packet = discover(mac, int(arch), None if user_class == "-" else user_class,
                  giaddr if relayed else None)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
sock.bind(("0.0.0.0", 67 if relayed else 68))
sock.sendto(encode_dhcp(packet, min_size=300), (server if relayed else "255.255.255.255", 67))
for _ in range(20):
    if not select.select([sock], [], [], 0.5)[0]:
        continue
    data = sock.recv(65536)
    if data[0] == 2 and data[4:8] == packet.xid.to_bytes(4, "big"):
        print(data.hex())
        break
"""


@dataclass
class Lab:
    server: Namespace
    client: Namespace
    client_if: str
    server_ip: str
    client_ip: str
    config: Path


def write_config(root: Path, lab: NetnsLab, server_if: str) -> Path:
    """The goldens' fixture moved onto the namespace link (addresses, interface, ports)."""
    shutil.copytree(FIXTURE, root)
    server, net = lab.address(1), lab.subnet
    path = root / "pxed.yaml"
    text = path.read_text()
    for old, new in (
        ("address: 127.0.0.1", f"address: {server}"),
        ("interfaces: [lo]", f"interfaces: [{server_if}]"),
        ("listen: [127.0.0.1]", f"listen: [{server}]"),
        ("server_port: 6767", "server_port: 67"),
        ("client_port: 6868", "client_port: 68"),
        ("network: 127.0.0.0/8", f"network: {net}"),
        ("range: [127.0.0.100, 127.0.0.200]", f"range: [{lab.address(100)}, {lab.address(200)}]"),
        ("ip: 127.0.0.21", f"ip: {lab.address(21)}"),
        ("ip: 10.213.9.21", f"ip: {lab.address(22)}"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text)
    return path


@pytest.fixture
def lab(netns_lab: NetnsLab, tmp_path: Path) -> Iterator[Lab]:
    require_netns()
    require_binary("curl")
    server, client = netns_lab.namespace("srv"), netns_lab.namespace("cli")
    link = netns_lab.veth(server, client, 1, 2)
    config = write_config(tmp_path / "explain", netns_lab, link.a_if)
    pxed = start_pxed(server, config, tmp_path / "pxed.log")
    server.wait_listening(6969)
    try:
        yield Lab(
            server,
            client,
            link.b_if,
            str(netns_lab.address(1)),
            str(netns_lab.address(2)),
            config,
        )
    finally:
        pxed.stop()


def probe(lab: Lab, mac: str, arch: int, user_class: str | None, relay: bool) -> bytes:
    argv = [
        "env", f"PYTHONPATH={REPO}", sys.executable, "-c", PROBE, lab.client_if, mac, str(arch),
        user_class or "-", lab.client_ip if relay else "-", lab.server_ip,
    ]  # fmt: skip
    done = lab.client.run(argv, timeout=30)
    assert done.stdout.strip(), f"no DHCP reply for {mac}: {done.stderr}"
    return bytes.fromhex(done.stdout.strip())


CASES = {
    "bios": (WEB, 0, None, False),
    "uefi": (KIOSK, 7, None, False),
    "ipxe": (WEB, 0, "iPXE", False),
    "relayed": (RELAYED, 0, None, True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_daemons_dhcp_reply_on_the_wire_is_what_explain_prints(lab: Lab, case: str) -> None:
    mac, arch, user_class, relay = CASES[case]
    giaddr = lab.client_ip if relay else None
    shown = explain(load_config(lab.config), mac, arch, user_class, giaddr)
    reply = decode_dhcp(probe(lab, mac, arch, user_class, relay))
    for line in detail(reply):
        assert f"\n  {line}\n" in shown, line


def test_the_pxelinux_config_curl_fetches_over_tftp_is_what_explain_prints(lab: Lab) -> None:
    name = "pxelinux.cfg/01-52-54-00-12-34-56"
    shown = explained(lab.config, WEB)[name]
    url = f"tftp://{lab.server_ip}:6969/{name}"
    fetched = lab.client.run(["curl", "--silent", "--show-error", "--max-time", "20", url])
    assert unsigned(fetched.stdout) == shown
