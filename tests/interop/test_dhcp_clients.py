"""pxed's DHCP server against real clients, each in private namespaces joined by veth.

pxed runs as ``twistd -n pxed`` in a server namespace (ports 67/68 are
private to it); the clients run in their own namespace with an interface that
has no address until DHCP gives one.  Lease checks read the SQLite file the
way ``pxed leases`` does (read-only), so they see only what was committed.
"""

from __future__ import annotations

import json
import re
import subprocess
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from lab.netns import Background, NetnsLab, require_binary
from lab.procs import run, wait_until
from pxed.dhcp.leases import DATABASE_NAME, read_leases
from tests.interop.dhcp_runner import in_namespace, start_pxed, subnet, write_config

pytestmark = [pytest.mark.interop, pytest.mark.netns]

KNOWN_MAC = "52:54:00:aa:bb:01"
# 400 exchanges by 100 clients at 200/s, 2 s before a packet counts as dropped, and 2 s
# after the last one to collect late answers: bounded, and enough to see a lost reply.
PERFDHCP = ["perfdhcp", "-4", "-r", "200", "-R", "100", "-n", "400", "-p", "10", "-d", "2"]
PERFDHCP += ["-W", "2000000"]


class DhcpLab:
    """pxed's namespace and a client namespace on one veth; the client side has no address."""

    def __init__(self, lab: NetnsLab, tmp: Path, client_host: int | None = None) -> None:
        self.lab = lab
        self.tmp = tmp
        self.server = lab.namespace("srv")
        self.client = lab.namespace("cli")
        link = lab.veth(self.server, self.client, 1, client_host)
        self.server_if, self.client_if = link.a_if, link.b_if
        self.server_ip = lab.address(1)
        self.state = tmp / "state"

    def start(self, subnets=None, hosts=None, **dhcp) -> Background:
        config = write_config(
            self.tmp / "pxed.yaml",
            self.server_if,
            self.state,
            subnets or [subnet(self.lab.subnet, 100, 200)],
            hosts,
            **dhcp,
        )
        self.pxed = start_pxed(self.server, config, self.tmp / "pxed.log")
        return self.pxed

    def leases(self) -> dict[str, IPv4Address]:
        path = self.state / DATABASE_NAME
        return {mac: IPv4Address(ip) for mac, ip, _, _ in read_leases(path)}


@pytest.fixture
def dhcp_lab(netns_lab: NetnsLab, tmp_path: Path) -> DhcpLab:
    return DhcpLab(netns_lab, tmp_path)


def client_mac(lab: DhcpLab) -> str:
    out = lab.client.run(["cat", f"/sys/class/net/{lab.client_if}/address"]).stdout
    return out.strip()


def recording_script(tmp: Path) -> tuple[Path, Path]:
    """A dhclient-script that logs each event and configures only its own namespace's link."""
    events = tmp / "dhclient-events"
    script = tmp / "dhclient-script"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$reason $new_ip_address $new_dhcp_server_identifier" >> {events}\n'
        'case "$reason" in\n'
        '  BOUND|RENEW|REBIND|REBOOT) ip addr replace "$new_ip_address/$new_subnet_mask"'
        ' dev "$interface" ;;\n'
        '  RELEASE|EXPIRE|STOP) ip addr flush dev "$interface" ;;\n'
        "esac\n"
    )
    script.chmod(0o755)
    return script, events


def events_of(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def udhcpc(lab: DhcpLab, tries: int) -> subprocess.CompletedProcess[str]:
    """One udhcpc run that quits after a lease (-q) or after ``tries`` 1 s DISCOVERs (-n)."""
    argv = ["busybox", "udhcpc", "-i", lab.client_if, "-n", "-q", "-f", "-s", "/bin/true"]
    return lab.client.run([*argv, "-t", str(tries), "-T", "1"], timeout=20, check=False)


@pytest.mark.slow
def test_dhclient_gets_a_lease_renews_it_by_unicast_and_releases_it(dhcp_lab, tmp_path):
    """dhclient: DORA, RENEWING at T1 (unicast to pxed, answered to ciaddr), then -r RELEASE."""
    require_binary("dhclient")
    dhcp_lab.start([subnet(dhcp_lab.lab.subnet, 100, 200, lease_time=60)])
    script, events = recording_script(tmp_path)
    base = ["dhclient", "-4", "-v", "-lf", str(tmp_path / "lf"), "-pf", str(tmp_path / "pf")]
    base += ["-sf", str(script)]
    dhclient = dhcp_lab.client.spawn([*base, "-d", "-1", dhcp_lab.client_if])
    wait_until(lambda: any(e[0] == "BOUND" for e in events_of(events)), 20, "dhclient BOUND")
    bound = next(e for e in events_of(events) if e[0] == "BOUND")
    ip = IPv4Address(bound[1])
    assert ip in dhcp_lab.lab.subnet and bound[2] == str(dhcp_lab.server_ip)
    assert dhcp_lab.leases() == {client_mac(dhcp_lab): ip}
    # lease_time 60: T1 at about 30 s (dhclient jitters it a little earlier).
    wait_until(lambda: any(e[0] == "RENEW" for e in events_of(events)), 45, "dhclient RENEW")
    assert [e[1] for e in events_of(events) if e[0] == "RENEW"] == [str(ip)]
    assert "DHCPREQUEST for" in dhclient.output() and "port 67" in dhclient.output()
    dhcp_lab.client.run([*base, "-r", dhcp_lab.client_if], timeout=20)
    wait_until(lambda: dhcp_lab.leases() == {}, 5, "pxed to forget the released lease")
    assert "released" in dhcp_lab.pxed.output()


def test_udhcpc_gets_a_lease(dhcp_lab):
    """busybox udhcpc (576-byte max size, option 61): one lease, committed."""
    require_binary("busybox")
    dhcp_lab.start()
    done = udhcpc(dhcp_lab, tries=3)
    assert done.returncode == 0, done.stderr
    found = re.search(r"lease of (\S+) obtained from (\S+)", done.stderr + done.stdout)
    assert found, done.stderr
    ip = IPv4Address(found.group(1))
    assert ip in dhcp_lab.lab.subnet and found.group(2).rstrip(",") == str(dhcp_lab.server_ip)
    assert dhcp_lab.leases() == {client_mac(dhcp_lab): ip}


def perfdhcp(lab: DhcpLab, *local: str) -> dict[str, tuple[int, int, int]]:
    """A bounded perfdhcp burst (400 exchanges, 100 clients, 200/s); sent/received/drops."""
    done = lab.client.run(
        [*PERFDHCP, "-l", *local],
        timeout=60,
        check=False,
    )
    stats = {}
    for name, block in re.findall(r"Statistics for: ([A-Z-]+)\*+\n(.*?)\n\n", done.stdout, re.S):
        numbers = [
            int(re.search(rf"{key}: (\d+)", block).group(1))  # type: ignore[union-attr]
            for key in ("sent packets", "received packets", "drops")
        ]
        stats[name] = tuple(numbers)
    assert set(stats) == {"DISCOVER-OFFER", "REQUEST-ACK"}, done.stdout + done.stderr
    return stats


def test_perfdhcp_burst_on_the_link_has_no_drops(netns_lab, tmp_path):
    require_binary("perfdhcp")
    lab = DhcpLab(netns_lab, tmp_path, client_host=2)
    lab.start()
    stats = perfdhcp(lab, lab.client_if)
    assert stats == {"DISCOVER-OFFER": (400, 400, 0), "REQUEST-ACK": (400, 400, 0)}
    assert len(lab.leases()) == 100
    assert all(ip in lab.lab.subnet for ip in lab.leases().values())


def test_perfdhcp_as_a_relay_lands_in_the_giaddr_subnet_with_no_drops(netns_lab, tmp_path):
    """perfdhcp -l RELAY sets giaddr: pxed picks the subnet by giaddr and answers giaddr:67."""
    require_binary("perfdhcp")
    lab = DhcpLab(netns_lab, tmp_path, client_host=2)
    third = (lab.lab.subnet.network_address.packed[2] + 128) % 250 + 1
    remote = IPv4Network(f"10.213.{third}.0/24")
    relay = remote.network_address + 1
    lab.client.ip("addr", "add", f"{relay}/24", "dev", lab.client_if)
    lab.server.ip("route", "add", str(remote), "dev", lab.server_if)
    lab.start([subnet(lab.lab.subnet, 100, 200), subnet(remote, 100, 200)])
    stats = perfdhcp(lab, str(relay), str(lab.server_ip))
    assert stats == {"DISCOVER-OFFER": (400, 400, 0), "REQUEST-ACK": (400, 400, 0)}
    leases = lab.leases()
    assert len(leases) == 100 and all(ip in remote for ip in leases.values())


def test_unknown_mac_gets_nothing_and_pxed_logs_the_refusal(dhcp_lab):
    """allow_unknown false: udhcpc's DISCOVERs meet silence; pxed says why, with the MAC."""
    require_binary("busybox")
    pxed = dhcp_lab.start(hosts=[{"mac": KNOWN_MAC, "hostname": "known"}], allow_unknown=False)
    done = udhcpc(dhcp_lab, tries=2)
    assert done.returncode != 0 and "obtained" not in done.stderr + done.stdout
    mac = client_mac(dhcp_lab)
    wait_until(lambda: f"DISCOVER from {mac}" in pxed.output(), 5, "pxed to log the DISCOVER")
    refusals = [line for line in pxed.output().splitlines() if mac in line and "refused" in line]
    assert refusals and "not under hosts" in refusals[0]
    assert "#info]" in refusals[0]
    assert dhcp_lab.leases() == {}


def test_proxy_mode_beside_dnsmasq_gives_the_boot_file_while_dnsmasq_gives_the_address(
    netns_lab, tmp_path
):
    """A scripted PXE ROM on a bridge: address from dnsmasq, PXE offer and 4011 ACK from pxed."""
    require_binary("dnsmasq")
    switch = netns_lab.namespace("sw")
    bridge = netns_lab.bridge(switch, host=None)
    pxed_ns, dnsmasq_ns, client_ns = (netns_lab.namespace(r) for r in ("pxe", "dns", "cli"))
    pxed_if = netns_lab.attach(bridge, pxed_ns, 1).b_if
    dnsmasq_if = netns_lab.attach(bridge, dnsmasq_ns, 2).b_if
    client_if = netns_lab.attach(bridge, client_ns).b_if
    net = netns_lab.subnet
    dnsmasq = dnsmasq_ns.spawn(
        [
            "dnsmasq",
            "-d",
            "--conf-file=/dev/null",
            "--port=0",
            "--user=root",
            f"--interface={dnsmasq_if}",
            "--bind-interfaces",
            "--log-dhcp",
            "--no-ping",  # else dnsmasq holds its OFFER back while it pings the address
            f"--dhcp-range={net.network_address + 100},{net.network_address + 150},2m",
            f"--dhcp-leasefile={tmp_path / 'dnsmasq.leases'}",
            f"--pid-file={tmp_path / 'dnsmasq.pid'}",
        ],
        tmp_path / "dnsmasq.log",
    )
    dnsmasq_ns.wait_listening(67)
    config = write_config(tmp_path / "pxed.yaml", pxed_if, tmp_path / "state", None, mode="proxy")
    pxed = start_pxed(pxed_ns, config, tmp_path / "pxed.log")
    done = run(
        in_namespace(client_ns, "pxe-client", "--interface", client_if, "--wait", "3"),
        timeout=30,
    )
    result = json.loads(done.stdout.splitlines()[-1])
    dnsmasq_ip, pxed_ip = str(netns_lab.address(2)), str(netns_lab.address(1))
    assert "address" in result, result
    assert IPv4Address(result["address"]) in net and result["address_server"] == dnsmasq_ip
    (proxy_offer,) = [o for o in result["offers"] if o["from"] == pxed_ip]
    assert proxy_offer["yiaddr"] == "0.0.0.0" and proxy_offer["siaddr"] == pxed_ip
    assert proxy_offer["vendor_class"] == "PXEClient"
    assert proxy_offer["uuid"] == "00" + bytes(range(16)).hex()  # option 97 echoed
    (ack,) = result["boot"]
    assert ack["type"] == 5 and ack["from"] == pxed_ip and ack["file"] == "pxelinux.0"
    assert ack["siaddr"] == pxed_ip
    assert "pxelinux.0" in pxed.output() and dnsmasq.running()


def test_two_interfaces_each_serve_their_own_subnet_and_answer_on_their_own_link(
    netns_lab, tmp_path
):
    """SO_BINDTODEVICE: a broadcast on each link is answered from that link's address/subnet."""
    require_binary("busybox")
    server = netns_lab.namespace("srv")
    third = (netns_lab.subnet.network_address.packed[2] + 64) % 250 + 1
    nets = [netns_lab.subnet, IPv4Network(f"10.213.{third}.0/24")]
    clients, interfaces = [], []
    for n, net in enumerate(nets):
        client = netns_lab.namespace(f"c{n}")
        link = netns_lab.veth(server, client)
        server.ip("addr", "add", f"{net.network_address + 1}/24", "dev", link.a_if)
        clients.append((client, link.b_if))
        interfaces.append(link.a_if)
    subnets = [subnet(net, 100, 200) for net in nets]
    config = write_config(tmp_path / "pxed.yaml", interfaces, tmp_path / "state", subnets)
    start_pxed(server, config, tmp_path / "pxed.log")
    for (client, iface), net in zip(clients, nets, strict=True):
        argv = ["busybox", "udhcpc", "-i", iface, "-n", "-q", "-f", "-s", "/bin/true", "-t", "3"]
        done = client.run([*argv, "-T", "1"], timeout=20)
        found = re.search(r"lease of (\S+) obtained from (\S+)", done.stderr + done.stdout)
        assert found, done.stderr
        assert IPv4Address(found.group(1)) in net
        assert found.group(2).rstrip(",") == str(net.network_address + 1)


@pytest.mark.parametrize(
    ("relays", "remote_served"),
    [
        ("elsewhere", True),  # dhcp.relays lists another address
        ("any", False),  # the default: any source, but giaddr must lie in a subnet of ours
    ],
)
def test_a_relayed_request_pxed_does_not_trust_gets_no_offer_and_takes_no_lease(
    netns_lab, tmp_path, relays, remote_served
):
    """Issue 18: giaddr from anyone picked any subnet's pool and aimed replies anywhere.

    The same relay as the test above, which is answered in full: only dhcp.relays, or
    the subnet list, differs.
    """
    require_binary("perfdhcp")
    lab = DhcpLab(netns_lab, tmp_path, client_host=2)
    third = (lab.lab.subnet.network_address.packed[2] + 128) % 250 + 1
    remote = IPv4Network(f"10.213.{third}.0/24")
    relay = remote.network_address + 1
    lab.client.ip("addr", "add", f"{relay}/24", "dev", lab.client_if)
    lab.server.ip("route", "add", str(remote), "dev", lab.server_if)
    subnets = [subnet(lab.lab.subnet, 100, 200)]
    subnets += [subnet(remote, 100, 200)] if remote_served else []
    trusted = [str(lab.lab.address(250))] if relays == "elsewhere" else []
    lab.start(subnets, relays=trusted)
    burst = ["perfdhcp", "-4", "-r", "50", "-R", "10", "-n", "50", "-p", "3", "-d", "2"]
    done = lab.client.run([*burst, "-l", str(relay), str(lab.server_ip)], timeout=30, check=False)
    offers = re.search(r"DISCOVER-OFFER\*+\n.*?sent packets: (\d+).*?received packets: (\d+)",
                       done.stdout, re.S)  # fmt: skip
    assert offers is not None, done.stdout + done.stderr
    assert int(offers[1]) > 0 and int(offers[2]) == 0
    assert lab.leases() == {}
