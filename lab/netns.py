"""Private network namespaces for tests that need a real network (TFTP, DHCP, HTTP, QEMU).

Everything a test builds lives inside namespaces named `pxed-<pid>-<random>-<role>`:
veths are created directly in their namespaces, addresses (10.213.<n>.0/24, n unique per
run) exist only there, and the root namespace's interfaces, addresses and routes are never
touched. A `NetnsLab` remembers what it made and, on exit (also after a failure), stops the
processes it started by their PIDs and deletes its namespaces, which removes their links.

Usage::

    import pytest
    from lab.netns import NetnsLab, require_binary, require_netns

    @pytest.mark.netns
    def test_curl_fetches_from_tftpd(tmp_path):
        require_netns()
        require_binary("in.tftpd")
        (tmp_path / "root").mkdir()
        (tmp_path / "root" / "hello").write_bytes(b"hi")
        with NetnsLab(tmp_path) as lab:
            net = lab.pair()  # namespaces net.server / net.client joined by a veth
            cap = net.server.tcpdump(net.server_if, tmp_path / "t.pcap", "udp")
            tftpd = net.server.spawn(
                ["in.tftpd", "--foreground", "--address", f"{net.server_ip}:69",
                 "--user", "root", "--secure", str(tmp_path / "root")],
                tmp_path / "tftpd.log")
            net.server.wait_listening(69)
            net.server.impair(net.server_if, drop_percent=10, dup_percent=5)
            got = net.client.run(["curl", "-s", f"tftp://{net.server_ip}/hello"])
            assert got.stdout == "hi"
            tftpd.stop()
            packets = cap.stop()

With pytest, the `netns_lab` and `netns_pair` fixtures do the same set-up and teardown
(import them into the test module, or list this module in `pytest_plugins`).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address
from pathlib import Path
from types import TracebackType

import pytest

from lab.procs import Background, ProcessError, run, wait_until

__all__ = [
    "Background",
    "Bridge",
    "Capture",
    "Namespace",
    "NetnsLab",
    "Pair",
    "Pair6",
    "ProcessError",
    "Veth",
    "netns_lab",
    "netns_pair",
    "require_binary",
    "require_netns",
    "require_root",
]

# Which Debian package provides a binary, so a skip message says what to install.
DEBIAN_PACKAGE = {
    "ip": "iproute2",
    "ss": "iproute2",
    "nft": "nftables",
    "tcpdump": "tcpdump",
    "tshark": "tshark",
    "curl": "curl",
    "tftp": "tftp-hpa",
    "in.tftpd": "tftpd-hpa",
    "busybox": "busybox-static",
    "dhclient": "isc-dhcp-client",
    "dnsmasq": "dnsmasq-base",
    "radvd": "radvd",
    "perfdhcp": "kea-admin",
    "qemu-system-x86_64": "qemu-system-x86",
}

# Marks the copy an nftables `dup` made so it is not dropped or duplicated again.
_DUP_MARK = 0x213

# Third octet of 10.213.x.0/24: starts somewhere pid-dependent, then one per lab.
_subnets = itertools.count(os.getpid() % 200)


def require_root() -> None:
    """Skip the test unless it runs as root (namespaces, veths and nftables need it)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create private network namespaces; run the suite as root")


def require_binary(name: str) -> str:
    """Skip the test unless `name` is on PATH; return its full path."""
    path = shutil.which(name)
    if path is None:
        package = DEBIAN_PACKAGE.get(name)
        hint = f" (Debian package {package}; `make debs` installs it)" if package else ""
        pytest.skip(f"needs {name}{hint}")
    return path


def require_netns() -> None:
    """Skip unless we are root with iproute2 and nftables and may really create namespaces."""
    require_root()
    for tool in ("ip", "nft", "ss"):
        require_binary(tool)
    refusal = _netns_refusal()
    if refusal:
        pytest.skip(f"cannot create a network namespace here (no CAP_SYS_ADMIN?): {refusal}")


@functools.cache
def _netns_refusal() -> str:
    """Why `ip netns add` fails on this machine, or "" if it works (probed once per run)."""
    probe = f"pxed-{os.getpid()}-probe"
    done = run(["ip", "netns", "add", probe], timeout=10.0, check=False)
    if done.returncode != 0:
        return done.stderr.strip()
    run(["ip", "netns", "del", probe], timeout=10.0)
    return ""


@dataclass(frozen=True)
class Veth:
    """One veth pair: `a_if` lives in namespace `a`, `b_if` in `b`."""

    a: Namespace
    a_if: str
    b: Namespace
    b_if: str


@dataclass(frozen=True)
class Bridge:
    """A Linux bridge inside a namespace; clients hang off it by veth (or tap, for QEMU)."""

    ns: Namespace
    name: str


@dataclass(frozen=True)
class Pair:
    """The common set-up: a server and a client namespace joined by one veth."""

    server: Namespace
    client: Namespace
    server_if: str
    client_if: str
    server_ip: IPv4Address
    client_ip: IPv4Address


@dataclass(frozen=True)
class Pair6:
    """A server and a client namespace joined by one veth that carries IPv6 only.

    Each end has a global address in the lab's own /64 (``server_ip``, ``client_ip``) and
    the link-local ``fe80::1`` / ``fe80::2``; ``server_ll`` and ``client_ll`` carry the zone
    as each side names it (``fe80::1%<server_if>``, ``fe80::2%<client_if>``).
    """

    server: Namespace
    client: Namespace
    server_if: str
    client_if: str
    server_ip: IPv6Address
    client_ip: IPv6Address

    @property
    def server_ll(self) -> str:
        return f"fe80::1%{self.server_if}"

    @property
    def client_ll(self) -> str:
        return f"fe80::2%{self.client_if}"

    def server_ll_from_client(self) -> str:
        """The server's link-local address as the client reaches it: its own zone."""
        return f"fe80::1%{self.client_if}"


@dataclass
class Namespace:
    """A network namespace of ours; every command here runs inside it."""

    name: str
    workdir: Path
    started: list[Background] = field(default_factory=list, repr=False)

    def argv(self, cmd: Sequence[str]) -> list[str]:
        """`ip netns exec` execs the command itself, so a Popen of this has the real PID."""
        return ["ip", "netns", "exec", self.name, *cmd]

    def run(
        self, cmd: Sequence[str], timeout: float = 30.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run `cmd` here to completion; killed after `timeout`, ProcessError if it fails."""
        return run(self.argv(cmd), timeout=timeout, check=check)

    def ip(self, *args: str) -> None:
        """`ip -n NS ...`: configure links and addresses of this namespace only."""
        run(["ip", "-n", self.name, *args], timeout=10.0)

    def spawn(self, cmd: Sequence[str], log: Path | None = None) -> Background:
        """Start `cmd` in the background here; output goes to `log` (default: in workdir)."""
        if log is None:
            log = self.workdir / f"{self.name}-{Path(cmd[0]).name}-{len(self.started)}.log"
        proc = Background(self.argv(cmd), log)
        self.started.append(proc)
        return proc

    def link_local_ready(self, iface: str) -> bool:
        """A link-local address on `iface`, past duplicate address detection: before that
        it is "tentative" and a DHCPv6 client or server cannot bind to it."""
        shown = self.run(["ip", "-6", "addr", "show", "dev", iface]).stdout
        return "fe80::" in shown and "tentative" not in shown

    def wait_listening(self, port: int, proto: str = "udp", timeout: float = 10.0) -> None:
        """Wait until some socket in this namespace listens on `port` (server ready)."""
        flag = {"udp": "-u", "tcp": "-t"}[proto]

        def listening() -> bool:
            out = run(self.argv(["ss", "-Hln", flag]), timeout=5.0).stdout
            return any(line.split()[3].endswith(f":{port}") for line in out.splitlines())

        wait_until(listening, timeout, f"a {proto} listener on port {port} in {self.name}")

    def tcpdump(
        self,
        iface: str,
        pcap: Path,
        bpf: str = "",
        count: int | None = None,
        snaplen: int | None = None,
    ) -> Capture:
        """Capture on `iface` into `pcap`; returns once tcpdump is really listening."""
        # --immediate-mode: without it TPACKET_V3 hands packets over in blocks, up to a
        # second late, and a tcpdump stopped in that second loses them. -Z root: Debian's
        # tcpdump would otherwise drop to user tcpdump and fail to write into a test's tmp.
        cmd = ["tcpdump", "-i", iface, "-n", "--immediate-mode", "-U", "-Z", "root"]
        cmd += ["-w", str(pcap)]
        if count is not None:
            cmd += ["-c", str(count)]
        if snaplen is not None:
            cmd += ["-s", str(snaplen)]
        if bpf:
            cmd.append(bpf)
        proc = self.spawn(cmd, pcap.with_name(pcap.name + ".tcpdump.log"))
        proc.wait_for_output("listening on", timeout=10.0)
        return Capture(proc, pcap)

    def impair(self, iface: str, drop_percent: int = 0, dup_percent: int = 0) -> None:
        """Drop UDP datagrams at random both ways on `iface`, and duplicate some it sends.

        This kernel has no sch_netem, so nftables does it (netdev ingress/egress hooks: a
        drop there is silent, whereas a drop in the output hook makes sendto() fail with
        EPERM, which no real network does). A duplicated datagram is marked so the copy is
        not dropped or duplicated again.
        """
        for percent in (drop_percent, dup_percent):
            if not 0 <= percent <= 100:
                raise ValueError(f"impair: {percent} is not a percentage (0-100)")
        hook = f'type filter hook {{}} device "{iface}" priority 0; policy accept;'
        drop = f"meta l4proto udp {_chance(drop_percent)}drop" if drop_percent else ""
        dup = (
            f'meta l4proto udp {_chance(dup_percent)}meta mark set {_DUP_MARK:#x} dup to "{iface}"'
            if dup_percent
            else ""
        )
        ruleset = "\n".join(
            [
                f"table netdev pxed_impair_{iface.replace('-', '_')} {{",
                f"  chain ingress {{ {hook.format('ingress')}",
                f"    {drop}",
                "  }",
                f"  chain egress {{ {hook.format('egress')}",
                f"    meta mark {_DUP_MARK:#x} accept",
                f"    {drop}",
                f"    {dup}",
                "  }",
                "}",
            ]
        )
        rules = self.workdir / f"{self.name}-{iface}-impair.nft"
        rules.write_text(ruleset + "\n")
        run(self.argv(["nft", "-f", str(rules)]), timeout=10.0)

    def stop_all(self) -> None:
        """Stop what we started here (newest first), then anything its children left behind."""
        for proc in reversed(self.started):
            proc.stop()
        # Only our own processes can be in our namespace: forked helpers of the above.
        leftovers = run(["ip", "netns", "pids", self.name], timeout=10.0, check=False).stdout
        for pid in leftovers.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


def _chance(percent: int) -> str:
    """The nftables condition true for `percent` % of packets (numgen's range ends at 99)."""
    return "" if percent == 100 else f"numgen random mod 100 < {percent} "


class Capture:
    """A running tcpdump; `stop()` lets it catch up, ends it and says how many it captured."""

    def __init__(self, proc: Background, pcap: Path) -> None:
        self.proc = proc
        self.pcap = pcap

    def stop(self, settle: float = 0.5, timeout: float = 5.0) -> int:
        """Wait until the pcap stops growing for `settle` s (at most `timeout`), then stop."""
        deadline = time.monotonic() + timeout
        size, since = -1, time.monotonic()
        while self.proc.running() and time.monotonic() < deadline:
            now_size = self.pcap.stat().st_size if self.pcap.exists() else 0
            if now_size != size:
                size, since = now_size, time.monotonic()
            elif time.monotonic() - since >= settle:
                break
            time.sleep(0.05)
        self.proc.stop()
        found = re.search(r"(\d+) packets? captured", self.proc.output())
        if found is None:
            raise ProcessError(f"tcpdump did not report a packet count:\n{self.proc.output()}")
        return int(found.group(1))


class NetnsLab:
    """Namespaces, links and processes of one test; `close()` (or `with`) removes them all."""

    def __init__(self, workdir: Path, subnet: IPv4Network | None = None) -> None:
        """`subnet` pins the addresses (captures want stable ones); default: a fresh /24."""
        self.workdir = workdir
        self.token = secrets.token_hex(2)
        self.prefix = f"pxed-{os.getpid()}-{self.token}"
        self.subnet = subnet or IPv4Network(f"10.213.{next(_subnets) % 250 + 1}.0/24")
        self.namespaces: list[Namespace] = []
        self._links = itertools.count()

    def __enter__(self) -> NetnsLab:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.close()
        except ProcessError as cleanup:
            if exc is None:
                raise
            exc.add_note(str(cleanup))  # keep the test's own failure in front

    def address(self, host: int) -> IPv4Address:
        """Host number `host` in this lab's /24."""
        return self.subnet.network_address + host

    def namespace(self, role: str) -> Namespace:
        """A fresh namespace with `lo` up; `role` (a short word) ends its name."""
        ns = Namespace(f"{self.prefix}-{role}", self.workdir)
        run(["ip", "netns", "add", ns.name], timeout=10.0)
        self.namespaces.append(ns)
        ns.ip("link", "set", "lo", "up")
        return ns

    def veth(
        self, a: Namespace, b: Namespace, a_host: int | None = None, b_host: int | None = None
    ) -> Veth:
        """A veth pair from `a` to `b`, both ends up, with `.a_host`/`.b_host` addresses if given.

        Both ends are created directly inside their namespaces, so they never appear in the
        root namespace. Names are `px<token><n>a/b`: unique, and within the 15-char limit.
        """
        n = next(self._links)
        link = Veth(a, f"px{self.token}{n}a", b, f"px{self.token}{n}b")
        run(
            ["ip", "link", "add", link.a_if, "netns", a.name, "type", "veth",
             "peer", "name", link.b_if, "netns", b.name],
            timeout=10.0,
        )  # fmt: skip
        for ns, iface, host in ((a, link.a_if, a_host), (b, link.b_if, b_host)):
            if host is not None:
                ns.ip("addr", "add", f"{self.address(host)}/{self.subnet.prefixlen}", "dev", iface)
            ns.ip("link", "set", iface, "up")
        return link

    def pair(self) -> Pair:
        """Namespaces `srv` (.1) and `cli` (.2) joined by a veth: the usual client/server test."""
        server, client = self.namespace("srv"), self.namespace("cli")
        link = self.veth(server, client, 1, 2)
        return Pair(server, client, link.a_if, link.b_if, self.address(1), self.address(2))

    def pair6(self) -> Pair6:
        """Namespaces `srv` and `cli` joined by a veth with IPv6 addresses only (`Pair6`).

        Added with `nodad`: usable at once, where duplicate address detection would hold
        each one "tentative" (unbindable) for a second or more. (The kernel's own
        link-local address, tentative at first, is there too; nothing uses it.)
        """
        server, client = self.namespace("srv"), self.namespace("cli")
        link = self.veth(server, client)
        net = f"2001:db8:213:{self.subnet.network_address.packed[2]:x}"
        for ns, iface, host in ((server, link.a_if, 1), (client, link.b_if, 2)):
            ns.ip("addr", "add", f"{net}::{host}/64", "dev", iface, "nodad")
            ns.ip("addr", "add", f"fe80::{host}/64", "dev", iface, "nodad")
        return Pair6(
            server, client, link.a_if, link.b_if, IPv6Address(f"{net}::1"), IPv6Address(f"{net}::2")
        )

    def bridge(self, ns: Namespace, name: str = "br0", host: int | None = 1) -> Bridge:
        """A bridge in `ns`, up, carrying the address `.host` if given (the server side)."""
        ns.ip("link", "add", name, "type", "bridge")
        if host is not None:
            ns.ip("addr", "add", f"{self.address(host)}/{self.subnet.prefixlen}", "dev", name)
        ns.ip("link", "set", name, "up")
        return Bridge(ns, name)

    def attach(self, bridge: Bridge, client: Namespace, host: int | None = None) -> Veth:
        """A veth from `bridge` (enslaved end) to a client namespace (addressed `.host`)."""
        link = self.veth(bridge.ns, client, None, host)
        bridge.ns.ip("link", "set", link.a_if, "master", bridge.name)
        return link

    def behind_router(self, bridge: Bridge, role: str) -> tuple[Namespace, IPv4Address]:
        """A client namespace two hops from the bridge's server, and the client's address.

        A router namespace hangs off `bridge` at `.254` and forwards to the client on a
        /24 of its own (10.99.<lab>.0), and the server routes that /24 through it: the
        client reaches the server by IP only, so the server has no neighbour entry for it.
        """
        router, client = self.namespace("rtr"), self.namespace(role)
        self.attach(bridge, router, 254)
        remote = IPv4Network(f"10.99.{self.subnet.network_address.packed[2]}.0/24")
        link = self.veth(router, client)
        gateway, address = remote.network_address + 1, remote.network_address + 2
        router.ip("addr", "add", f"{gateway}/24", "dev", link.a_if)
        client.ip("addr", "add", f"{address}/24", "dev", link.b_if)
        client.ip("route", "add", "default", "via", str(gateway))
        bridge.ns.ip("route", "add", str(remote), "via", str(self.address(254)))
        router.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
        return client, address

    def tap(self, ns: Namespace, name: str, bridge: Bridge | None = None) -> str:
        """A tap device in `ns` (for QEMU's `-netdev tap,ifname=...`), up, on `bridge` if given."""
        ns.ip("tuntap", "add", "dev", name, "mode", "tap")
        if bridge is not None:
            ns.ip("link", "set", name, "master", bridge.name)
        ns.ip("link", "set", name, "up")
        return name

    def close(self) -> None:
        """Stop every process and delete every namespace; report failures only at the end."""
        problems: list[str] = []
        for ns in reversed(self.namespaces):
            try:
                ns.stop_all()
            except (ProcessError, OSError) as exc:
                problems.append(f"{ns.name}: {exc}")
            done = run(["ip", "netns", "del", ns.name], timeout=10.0, check=False)
            if done.returncode != 0:
                problems.append(f"ip netns del {ns.name}: {done.stderr.strip()}")
        self.namespaces.clear()
        if problems:
            raise ProcessError("cleaning up network namespaces:\n" + "\n".join(problems))


@pytest.fixture
def netns_lab(tmp_path: Path) -> Iterator[NetnsLab]:
    """A NetnsLab in tmp_path, skipped without root or iproute2/nftables, torn down after."""
    require_netns()
    with NetnsLab(tmp_path) as lab:
        yield lab


@pytest.fixture
def netns_pair(netns_lab: NetnsLab) -> Pair:
    """Server and client namespaces joined by a veth (server .1, client .2)."""
    return netns_lab.pair()
