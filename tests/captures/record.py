"""Re-record this folder's captures from real clients in private network namespaces.

Run by hand as root from the repository root (the test suite never runs it):

    .venv/bin/python -m tests.captures.record            # all of them
    .venv/bin/python -m tests.captures.record udhcpc-dnsmasq tftp-hpa-octet

Each capture gets a fresh server/client namespace pair on 10.213.7.0/24 (server .1) with
fixed MACs, so re-recording changes only what the clients randomise (xids, ports, times).
Clients run with their own lease, pid and script files in a temporary folder and configure
addresses only inside their namespace. README.md says what each file holds.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from lab.netns import Namespace, NetnsLab, Pair, require_binary, require_netns
from lab.procs import run, wait_until

HERE = Path(__file__).resolve().parent
SUBNET = IPv4Network("10.213.7.0/24")
SERVER_MAC = "02:50:58:45:44:01"
CLIENT_MAC = "02:50:58:45:44:02"
RELAY_MAC = "02:50:58:45:44:03"
RELAYED = IPv4Network("10.213.8.0/24")  # the client's side of the DHCP relay
DHCP_FILTER = "ip and udp and (port 67 or port 68)"
TFTP_FILTER = "ip and udp"  # transfers move to ephemeral ports (new TIDs)

# Put the leased address (and udhcpc the router) on the client's interface inside its own
# namespace, so a later unicast RELEASE has a route; they write no resolv.conf or other file.
DHCLIENT_SCRIPT = """#!/bin/sh
case "$reason" in
BOUND|RENEW|REBIND|REBOOT) ip addr replace "$new_ip_address/$new_subnet_mask" dev "$interface" ;;
RELEASE|EXPIRE|STOP) ip addr flush dev "$interface" ;;
esac
exit 0
"""
UDHCPC_SCRIPT = """#!/bin/sh
echo "script: $1"
case "$1" in
bound|renew) ip addr replace "$ip/$mask" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface" ;;
deconfig) ip addr flush dev "$interface" ;;
esac
exit 0
"""

# A PXE client's identity as iPXE's BIOS ROM sends it (see docs/firmware.md).
PXE_BIOS_VENDOR = "PXEClient:Arch:00000:UNDI:002001"
PXE_UUID = "00" + "0123456789abcdef0123456789abcdef"


@dataclass
class Session:
    """One recording: the namespaces, a scratch folder and the capture being written."""

    lab: NetnsLab
    net: Pair
    tmp: Path

    def write(self, name: str, text: str, mode: int = 0o644) -> Path:
        path = self.tmp / name
        path.write_text(text)
        path.chmod(mode)
        return path

    def tftp_root(self) -> Path:
        """Small files with known content: sizes chosen to show short, full and empty blocks."""
        root = self.tmp / "tftproot"
        root.mkdir(exist_ok=True)
        (root / "pxelinux.0").write_bytes(bytes(i % 251 for i in range(4000)))
        (root / "exact1024.bin").write_bytes(bytes(i % 253 for i in range(1024)))
        (root / "hello.txt").write_text(
            "".join(f"line {i} of a netascii test\n" for i in range(30))
        )
        (root / "window.bin").write_bytes(bytes(i % 241 for i in range(5000)))
        return root

    def dnsmasq(self, *options: str, port: int = 67, relay: Namespace | None = None) -> None:
        """dnsmasq with `options` and nothing from the system: no DNS, no /etc config.

        It serves on the server's veth only, unless it is started in `relay`'s namespace.
        """
        require_binary("dnsmasq")
        ns = relay or self.net.server
        where = [] if relay else [f"--interface={self.net.server_if}", "--bind-interfaces"]
        ns.spawn(
            ["dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0", "--user=root",
             "--group=root", f"--pid-file={self.tmp / f'dnsmasq-{ns.name}.pid'}", "--log-dhcp",
             *where, *options],
            self.tmp / f"dnsmasq-{ns.name}.log",
        )  # fmt: skip
        ns.wait_listening(port)

    def dhcp_pool(self, subnet: IPv4Network = SUBNET, lease: str = "1h") -> list[str]:
        """dnsmasq options for a plain address pool, leases kept in the scratch folder."""
        first, last = subnet.network_address + 50, subnet.network_address + 99
        return [
            f"--dhcp-range={first},{last},255.255.255.0,{lease}",
            f"--dhcp-leasefile={self.tmp / 'dnsmasq.leases'}",
            "--no-ping",
        ]

    def tftpd(self) -> None:
        require_binary("in.tftpd")
        root = self.tftp_root()
        self.net.server.spawn(
            ["in.tftpd", "--foreground", "--address", f"{self.net.server_ip}:69",
             "--user", "root", "--secure", "--verbose", str(root)],
            self.tmp / "tftpd.log",
        )  # fmt: skip
        self.net.server.wait_listening(69)

    def client(self, cmd: list[str], timeout: float = 30.0) -> str:
        return self.net.client.run(cmd, timeout=timeout).stdout


def dhclient_dnsmasq(s: Session) -> None:
    """DORA, then a second start from the lease file (INIT-REBOOT), then a RELEASE."""
    require_binary("dhclient")
    s.dnsmasq(*s.dhcp_pool())
    script = s.write("dhclient-script", DHCLIENT_SCRIPT, 0o755)
    leases = s.tmp / "dhclient.leases"
    conf = s.write("dhclient.conf", "request subnet-mask, routers, domain-name-servers;\n")
    for run_no in (1, 2):
        pidfile = s.tmp / f"dhclient{run_no}.pid"
        proc = s.net.client.spawn(
            ["dhclient", "-d", "-v", "-1", "-cf", str(conf), "-lf", str(leases),
             "-pf", str(pidfile), "-sf", str(script), s.net.client_if],
            s.tmp / f"dhclient{run_no}.log",
        )  # fmt: skip
        proc.wait_for_output("bound to", timeout=30)
        proc.stop()
        pidfile.unlink(missing_ok=True)  # so `dhclient -r` below has no stale PID to signal
    s.client(["dhclient", "-v", "-r", "-cf", str(conf), "-lf", str(leases),
              "-pf", str(s.tmp / "release.pid"), "-sf", str(script), s.net.client_if])  # fmt: skip


def udhcpc_dnsmasq(s: Session) -> None:
    """busybox udhcpc: DORA, then -R releases the lease as it exits."""
    require_binary("busybox")
    s.dnsmasq(*s.dhcp_pool())
    script = s.write("udhcpc-script", UDHCPC_SCRIPT, 0o755)
    proc = s.net.client.spawn(["busybox", "udhcpc", "-f", "-n", "-R", "-t", "3", "-T", "2",
                               "-i", s.net.client_if, "-s", str(script)])  # fmt: skip
    proc.wait_for_output("script: bound", timeout=30)
    proc.stop()  # SIGTERM: with -R, udhcpc releases the lease as it exits


def dhclient_renew_dnsmasq(s: Session) -> None:
    """DORA with dnsmasq's shortest lease (2 min), the RENEWING REQUEST at T1, then RELEASE."""
    require_binary("dhclient")
    s.dnsmasq(*s.dhcp_pool(lease="2m"))
    script = s.write("dhclient-script", DHCLIENT_SCRIPT, 0o755)
    leases, pidfile = s.tmp / "dhclient.leases", s.tmp / "dhclient.pid"
    conf = s.write("dhclient.conf", "request subnet-mask, routers;\n")
    proc = s.net.client.spawn(
        ["dhclient", "-d", "-v", "-1", "-cf", str(conf), "-lf", str(leases),
         "-pf", str(pidfile), "-sf", str(script), s.net.client_if],
        s.tmp / "dhclient.log",
    )  # fmt: skip
    wait_until(lambda: proc.output().count("DHCPACK") >= 2, 100, "dhclient's renewal at T1")
    proc.stop()
    pidfile.unlink(missing_ok=True)
    s.client(["dhclient", "-v", "-r", "-cf", str(conf), "-lf", str(leases),
              "-pf", str(s.tmp / "release.pid"), "-sf", str(script), s.net.client_if])  # fmt: skip


def relay_udhcpc_dnsmasq(s: Session) -> None:
    """udhcpc behind dnsmasq's DHCP relay: the server sees giaddr 10.213.8.1 and answers it.

    Captured between relay and server; here the `cli` namespace is the relay (.2), and a
    third namespace on 10.213.8.0/24 holds the client.
    """
    require_binary("busybox")
    relay, pc = s.net.client, s.lab.namespace("pc")
    relay.ip("link", "set", s.net.client_if, "address", RELAY_MAC)
    relay.ip("addr", "add", f"{s.net.client_ip}/24", "dev", s.net.client_if)
    link = s.lab.veth(relay, pc)
    pc.ip("link", "set", link.b_if, "address", CLIENT_MAC)
    relay.ip("addr", "add", f"{RELAYED.network_address + 1}/24", "dev", link.a_if)
    # Forwarding in the relay's own namespace carries the client's unicast RELEASE.
    relay.run(["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"])
    s.net.server.ip("route", "add", str(RELAYED), "via", str(s.net.client_ip))
    s.dnsmasq(*s.dhcp_pool(RELAYED))
    s.dnsmasq(f"--dhcp-relay={RELAYED.network_address + 1},{s.net.server_ip}", relay=relay)
    script = s.write("udhcpc-script", UDHCPC_SCRIPT, 0o755)
    proc = pc.spawn(["busybox", "udhcpc", "-f", "-n", "-R", "-t", "3", "-T", "2",
                     "-i", link.b_if, "-s", str(script)])  # fmt: skip
    proc.wait_for_output("script: bound", timeout=30)
    proc.stop()


def pxe_bios_dnsmasq(s: Session) -> None:
    """A client with iPXE BIOS's PXE options gets pxelinux.0 in `file`, sname and siaddr."""
    require_binary("busybox")
    s.dnsmasq(
        *s.dhcp_pool(),
        f"--dhcp-boot=pxelinux.0,pxed-lab,{s.net.server_ip}",
        "--dhcp-match=set:efi64,option:client-arch,7",
        f"--dhcp-boot=tag:efi64,syslinux.efi,pxed-lab,{s.net.server_ip}",
        "--dhcp-option-force=tag:!efi64,208,f1:00:74:7e",
    )
    script = s.write("udhcpc-script", UDHCPC_SCRIPT, 0o755)
    s.client(["busybox", "udhcpc", "-f", "-q", "-n", "-t", "3", "-T", "2",
              "-i", s.net.client_if, "-s", str(script), "-V", PXE_BIOS_VENDOR,
              "-x", "0x5d:0000", "-x", "0x5e:010201", "-x", f"0x61:{PXE_UUID}",
              "-O", "208"])  # fmt: skip


def pxe_efi_dhclient_dnsmasq(s: Session) -> None:
    """A UEFI PXE client (arch 7) against --pxe-service: option 60 PXEClient and 43 06 01 08."""
    require_binary("dhclient")
    s.dnsmasq(
        *s.dhcp_pool(),
        "--pxe-prompt=Booting from pxed-lab,3",
        "--pxe-service=BC_EFI,Install over the network,syslinux",
        "--pxe-service=BC_EFI,Boot from local disk",
        "--enable-tftp",
        f"--tftp-root={s.tftp_root()}",
    )
    script = s.write("dhclient-script", DHCLIENT_SCRIPT, 0o755)
    conf = s.write(
        "dhclient.conf",
        "option pxe-arch code 93 = unsigned integer 16;\n"
        "option pxe-nii code 94 = string;\n"
        'send vendor-class-identifier "PXEClient:Arch:00007:UNDI:003000";\n'
        "send pxe-arch 7;\n"
        "option pxe-uuid code 97 = string;\n"
        "send pxe-nii 01:03:00;\n"
        f"send pxe-uuid {':'.join(PXE_UUID[i : i + 2] for i in range(0, 34, 2))};\n"
        "request subnet-mask, routers, vendor-encapsulated-options, "
        "vendor-class-identifier, tftp-server-name, bootfile-name;\n",
    )
    proc = s.net.client.spawn(
        ["dhclient", "-d", "-v", "-1", "-cf", str(conf), "-lf", str(s.tmp / "d.leases"),
         "-pf", str(s.tmp / "d.pid"), "-sf", str(script), s.net.client_if],
        s.tmp / "dhclient.log",
    )  # fmt: skip
    proc.wait_for_output("bound to", timeout=30)
    proc.stop()


def pxe_proxy_dnsmasq(s: Session) -> None:
    """dnsmasq as proxyDHCP with a BIOS boot menu; the client, offered no address, gives up."""
    require_binary("busybox")
    s.dnsmasq(
        f"--dhcp-range={SUBNET.network_address},proxy",
        "--pxe-prompt=Press F8 for the pxed-lab menu,5",
        "--pxe-service=x86PC,Install over the network,pxelinux",
        "--pxe-service=x86PC,Boot from local disk",
    )
    script = s.write("udhcpc-script", UDHCPC_SCRIPT, 0o755)
    s.net.client.run(["busybox", "udhcpc", "-f", "-q", "-n", "-t", "2", "-T", "1",
                      "-i", s.net.client_if, "-s", str(script), "-V", PXE_BIOS_VENDOR,
                      "-x", "0x5d:0000", "-x", "0x5e:010201", "-x", f"0x61:{PXE_UUID}"],
                     check=False)  # fmt: skip


def tftp_hpa_octet(s: Session) -> None:
    """tftp-hpa's client, plain RFC 1350 (no options): a 4000-byte file in 512-byte blocks."""
    require_binary("tftp")
    s.tftpd()
    s.client(["tftp", "-m", "octet", str(s.net.server_ip), "-c", "get", "pxelinux.0",
              str(s.tmp / "got")])  # fmt: skip


def tftp_hpa_netascii(s: Session) -> None:
    """tftp-hpa in netascii mode: the server turns each LF into CR LF on the wire."""
    require_binary("tftp")
    s.tftpd()
    s.client(["tftp", "-m", "netascii", str(s.net.server_ip), "-c", "get", "hello.txt",
              str(s.tmp / "got")])  # fmt: skip


def tftp_hpa_missing(s: Session) -> None:
    """A file the server does not have: RRQ answered by ERROR 1."""
    require_binary("tftp")
    s.tftpd()
    s.net.client.run(["tftp", "-m", "octet", str(s.net.server_ip), "-c", "get",
                      "pxelinux.cfg/01-02-50-58-45-44-02", str(s.tmp / "got")],
                     check=False)  # fmt: skip


def curl_blksize_1468(s: Session) -> None:
    """curl with --tftp-blksize 1468: RRQ with blksize and tsize, OACK, 3 blocks."""
    require_binary("curl")
    s.tftpd()
    s.client(["curl", "-sS", "--tftp-blksize", "1468", "-o", str(s.tmp / "got"),
              f"tftp://{s.net.server_ip}/pxelinux.0"])  # fmt: skip


def curl_no_options(s: Session) -> None:
    """curl --tftp-no-options on a 1024-byte file: two full blocks and a zero-length third."""
    require_binary("curl")
    s.tftpd()
    s.client(["curl", "-sS", "--tftp-no-options", "-o", str(s.tmp / "got"),
              f"tftp://{s.net.server_ip}/exact1024.bin"])  # fmt: skip


def busybox_tftp_blksize(s: Session) -> None:
    """busybox tftp -b 1024 against tftpd-hpa."""
    require_binary("busybox")
    s.tftpd()
    s.client(["busybox", "tftp", "-g", "-b", "1024", "-r", "pxelinux.0",
              "-l", str(s.tmp / "got"), str(s.net.server_ip)])  # fmt: skip


def atftp_windowsize_dnsmasq(s: Session) -> None:
    """atftp asks dnsmasq 2.90 for windowsize 4; dnsmasq leaves it out of the OACK (lockstep)."""
    require_binary("atftp")
    s.dnsmasq("--enable-tftp", f"--tftp-root={s.tftp_root()}", port=69)
    s.client(["atftp", "--option", "windowsize 4", "--option", "tsize 0", "-g",
              "-r", "window.bin", "-l", str(s.tmp / "got"), str(s.net.server_ip)])  # fmt: skip


def curl_blksize_1468_dnsmasq(s: Session) -> None:
    """curl --tftp-blksize 1468 against dnsmasq's TFTP server: its OACK and block sizes."""
    require_binary("curl")
    s.dnsmasq("--enable-tftp", f"--tftp-root={s.tftp_root()}", port=69)
    s.client(["curl", "-sS", "--tftp-blksize", "1468", "-o", str(s.tmp / "got"),
              f"tftp://{s.net.server_ip}/pxelinux.0"])  # fmt: skip


def atftp_windowsize_atftpd(s: Session) -> None:
    """atftp and atftpd agree on windowsize 4 (RFC 7440): 10 blocks, ACKs every 4th."""
    require_binary("atftp")
    s.net.server.spawn(
        [atftpd_binary(s.tmp), "--daemon", "--no-fork", "--logfile", "-", "--user", "root",
         "--group", "root", "--bind-address", str(s.net.server_ip), "--port", "69",
         str(s.tftp_root())],
        s.tmp / "atftpd.log",
    )  # fmt: skip
    s.net.server.wait_listening(69)
    s.client(["atftp", "--option", "windowsize 4", "--option", "tsize 0", "-g",
              "-r", "window.bin", "-l", str(s.tmp / "got"), str(s.net.server_ip)])  # fmt: skip


def atftpd_binary(tmp: Path) -> str:
    """atftpd on PATH, else unpacked from Debian's package (installing it would start a
    server in the root namespace)."""
    found = shutil.which("atftpd")
    if found:
        return found
    run(["sh", "-c", f"cd {tmp} && apt-get download atftpd && dpkg -x atftpd_*.deb atftpd"])
    return str(tmp / "atftpd" / "usr" / "sbin" / "atftpd")


RECORDINGS: dict[str, tuple[str, Callable[[Session], None]]] = {
    "dhclient-dnsmasq": (DHCP_FILTER, dhclient_dnsmasq),
    "dhclient-renew-dnsmasq": (DHCP_FILTER, dhclient_renew_dnsmasq),
    "udhcpc-dnsmasq": (DHCP_FILTER, udhcpc_dnsmasq),
    "relay-udhcpc-dnsmasq": (DHCP_FILTER, relay_udhcpc_dnsmasq),
    "pxe-bios-udhcpc-dnsmasq": (DHCP_FILTER, pxe_bios_dnsmasq),
    "pxe-efi-dhclient-dnsmasq": (DHCP_FILTER, pxe_efi_dhclient_dnsmasq),
    "pxe-proxy-udhcpc-dnsmasq": (DHCP_FILTER, pxe_proxy_dnsmasq),
    "tftp-hpa-octet": (TFTP_FILTER, tftp_hpa_octet),
    "tftp-hpa-netascii": (TFTP_FILTER, tftp_hpa_netascii),
    "tftp-hpa-missing-file": (TFTP_FILTER, tftp_hpa_missing),
    "curl-tftp-blksize1468": (TFTP_FILTER, curl_blksize_1468),
    "curl-tftp-no-options": (TFTP_FILTER, curl_no_options),
    "curl-tftp-blksize1468-dnsmasq": (TFTP_FILTER, curl_blksize_1468_dnsmasq),
    "busybox-tftp-blksize1024": (TFTP_FILTER, busybox_tftp_blksize),
    "atftp-windowsize4-refused-dnsmasq": (TFTP_FILTER, atftp_windowsize_dnsmasq),
    "atftp-windowsize4-atftpd": (TFTP_FILTER, atftp_windowsize_atftpd),
}


def record(name: str) -> int:
    """Record one capture into HERE/<name>.pcap; returns its packet count."""
    require_netns()
    bpf, scenario = RECORDINGS[name]
    with tempfile.TemporaryDirectory(prefix="pxed-record-") as scratch:
        tmp = Path(scratch)
        with NetnsLab(tmp, SUBNET) as lab:
            net = lab.pair()
            net.server.ip("link", "set", net.server_if, "address", SERVER_MAC)
            net.client.ip("link", "set", net.client_if, "address", CLIENT_MAC)
            if bpf == DHCP_FILTER:  # a DHCP client starts with no address
                net.client.ip("addr", "flush", "dev", net.client_if)
            pcap = tmp / f"{name}.pcap"
            capture = net.server.tcpdump(net.server_if, pcap, bpf)
            scenario(Session(lab, net, tmp))
            count = capture.stop()
        shutil.copyfile(pcap, HERE / f"{name}.pcap")
    return count


def main(argv: list[str]) -> int:
    names = argv or list(RECORDINGS)
    unknown = [n for n in names if n not in RECORDINGS]
    if unknown:
        print(f"unknown capture(s): {', '.join(unknown)}; known: {', '.join(RECORDINGS)}")
        return 2
    for name in names:
        try:
            print(f"{name}.pcap: {record(name)} packets")
        except pytest.skip.Exception as skipped:  # require_binary/require_netns said why
            print(f"{name}.pcap: not recorded: {skipped.msg}")
    packages = "dnsmasq-base tftp-hpa tftpd-hpa curl isc-dhcp-client busybox-static atftp tcpdump"
    print(run(["dpkg-query", "-W", *packages.split()], check=False).stdout, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
