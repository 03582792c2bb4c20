"""The boot network: one private namespace, a bridge with the server's address, a tap for QEMU.

Everything that serves the VM (pxed, or dnsmasq and http.server for the reference) runs in
the same namespace as QEMU, so the tap, the bridge and the servers' sockets all live there;
nothing is added to the root namespace.

The bridge also carries an IPv6 router advertisement from an RA-only dnsmasq: iPXE brings
IPv4 and IPv6 up together and, with no router on the link, waits about 14 s per boot
(docs/firmware.md). That belongs to the test network, not to the server under test, so every
scenario gets it. It also gives the guest of the IPv6 scenarios its SLAAC address; OVMF's
PXEv6 runs DHCPv6 (pxed's) without the RA's managed flag.

A managed lab (`boot_lab(..., managed=True)`) sends its adverts from radvd instead, with the
managed flag (M) set, as an IPv6-only network whose addresses come from DHCPv6 announces:
iPXE runs stateful DHCPv6 only when an RA carries it (docs/firmware.md). dnsmasq cannot set
M without serving DHCPv6 itself on udp/547, which is pxed's.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from lab.netns import Background, Bridge, Namespace, NetnsLab

IPV6_PREFIX = "fd00:213:7::"
SERVER_IP6 = f"{IPV6_PREFIX}1"  # the server's address on the bridge, beside server_ip


@dataclass(frozen=True)
class BootLab:
    """Where a scenario runs: `ns` holds the bridge (server at `server_ip`) and the VM's tap."""

    netns: NetnsLab
    ns: Namespace
    bridge: Bridge
    tap: str
    server_ip: IPv4Address
    router_adverts: Background

    @property
    def subnet(self) -> IPv4Network:
        return self.netns.subnet

    def address(self, host: int) -> IPv4Address:
        """Host number `host` of the lab's /24 (the server is .1)."""
        return self.netns.address(host)

    def spawn(self, cmd: list[str], log: Path) -> Background:
        """Start a server (or QEMU) inside the lab namespace; stopped by PID at teardown."""
        return self.ns.spawn(cmd, log)

    def another_tap(self, n: int) -> str:
        """Tap number `n` on the bridge, for one more VM at the same time (deleted with the
        namespace)."""
        return self.netns.tap(self.ns, f"{self.tap}-{n}", self.bridge)


def boot_lab(netns: NetnsLab, *, managed: bool = False) -> BootLab:
    """A namespace with bridge `br0` (.1 and an IPv6 ULA), a tap on it and an RA sender
    (with the managed flag when `managed`)."""
    ns = netns.namespace("e2e")
    bridge = netns.bridge(ns, "br0", host=1)
    # nodad: the address is usable at once instead of after duplicate detection (~1 s).
    ns.ip("-6", "addr", "add", f"{SERVER_IP6}/64", "dev", bridge.name, "nodad")
    tap = netns.tap(ns, f"tap{netns.token}", bridge)
    send = _managed_router_adverts if managed else _router_adverts
    adverts = send(ns, bridge, netns.workdir)
    return BootLab(netns, ns, bridge, tap, netns.address(1), adverts)


def _router_adverts(ns: Namespace, bridge: Bridge, workdir: Path) -> Background:
    """dnsmasq sending only IPv6 RAs on the bridge: no DNS (port 0), no DHCP of any kind."""
    stem = workdir / f"ra-{ns.name}"
    proc = ns.spawn(
        ["dnsmasq", "--keep-in-foreground", "--log-facility=-", "--conf-file=/dev/null",
         "--user=root", "--port=0",
         f"--interface={bridge.name}", "--bind-interfaces", "--enable-ra",
         f"--dhcp-range={IPV6_PREFIX},ra-only", f"--pid-file={stem}.pid",
         f"--dhcp-leasefile={stem}.leases"],
        stem.with_suffix(".log"),
    )  # fmt: skip
    proc.wait_for_output("router advertisement on", timeout=10.0)
    return proc


def _managed_router_adverts(ns: Namespace, bridge: Bridge, workdir: Path) -> Background:
    """radvd on the bridge: M and O set, the ULA /64 on-link and autonomous (SLAAC for
    the installer guest), an advert every 3-4 s so a booting client need not wait."""
    stem = workdir / f"radvd-{ns.name}"
    conf = stem.with_suffix(".conf")
    conf.write_text(
        f"interface {bridge.name} {{\n"
        "  AdvSendAdvert on;\n  AdvManagedFlag on;\n  AdvOtherConfigFlag on;\n"
        "  MinRtrAdvInterval 3;\n  MaxRtrAdvInterval 4;\n"
        f"  prefix {IPV6_PREFIX}/64 {{ AdvOnLink on; AdvAutonomous on; }};\n"
        "};\n"
    )
    conf.chmod(0o644)
    proc = ns.spawn(
        ["radvd", "--nodaemon", f"--config={conf}", f"--pidfile={stem}.pid",
         "--logmethod=stderr", "--debug=1"],
        stem.with_suffix(".log"),
    )  # fmt: skip
    proc.wait_for_output("polling for", timeout=10.0)
    return proc


def start_address_server(lab: BootLab, host: int = 2, dns: IPv4Address | None = None) -> Background:
    """dnsmasq handing out addresses only (no boot options), as the LAN's DHCP server.

    It runs in a namespace of its own, joined to the bridge by a veth at `.host`: two DHCP
    servers in one namespace would fight over udp/67 (docs/firmware.md, proxyDHCP). It
    names itself as router; `dns` adds a DNS server, which Debian's installer needs.
    """
    ns = lab.netns.namespace("dhcp")
    link = lab.netns.attach(lab.bridge, ns, host)
    stem = lab.netns.workdir / f"address-server-{ns.name}"
    first, last = lab.address(100), lab.address(200)
    proc = ns.spawn(
        ["dnsmasq", "--keep-in-foreground", "--log-facility=-", "--conf-file=/dev/null",
         "--user=root", "--port=0", f"--interface={link.b_if}", "--bind-interfaces",
         "--log-dhcp", f"--dhcp-range={first},{last},255.255.255.0,1h",
         f"--pid-file={stem}.pid", f"--dhcp-leasefile={stem}.leases",
         *([f"--dhcp-option=option:dns-server,{dns}"] if dns else [])],
        stem.with_suffix(".log"),
    )  # fmt: skip
    proc.wait_for_output("DHCP, IP range", timeout=10.0)
    return proc
