"""The reference set-up of docs/firmware.md: dnsmasq (DHCP + TFTP) and `python3 -m http.server`.

It serves the same files a pxed scenario serves, written statically: a per-MAC
pxelinux.cfg, a Kickstart file and a file standing for the done callback. It proves the
guest, the lab and the QEMU runner work independently of pxed, and it is the "dnsmasq"
side of benchmarks/boot.py.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from lab.bootfiles import INITRD_NAME, KERNEL_NAME, PXELINUX
from lab.bootlab import BootLab
from lab.netns import Background

HTTP_PORT = 8000
# pxelinux's config for a machine that must boot its disk: fall back to the BIOS's next
# boot device (the blank disk), as a "netboot once" host does after its install.
LOCALBOOT_CONFIG = "DEFAULT local\nPROMPT 0\nLABEL local\n  LOCALBOOT 0\n"


def pxelinux_install_config(append: str) -> str:
    """Boot the guest at once; IPAPPEND 2 adds BOOTIF=01-<mac> like an installer expects."""
    return (
        "DEFAULT install\nPROMPT 0\nLABEL install\n"
        f"  KERNEL {KERNEL_NAME}\n  INITRD {INITRD_NAME}\n  APPEND {append}\n  IPAPPEND 2\n"
    )


def pxelinux_config_name(mac: str) -> str:
    """pxelinux.cfg/01-aa-bb-...: the per-MAC name pxelinux probes."""
    return "pxelinux.cfg/01-" + mac.lower().replace(":", "-")


def reference_kickstart(hostname: str, done_url: str) -> str:
    """A minimal Kickstart for the guest: names the host; %post calls done the busybox way."""
    return (
        f"# reference Kickstart for {hostname}\n"
        f"network --bootproto=dhcp --hostname={hostname}\n"
        "%post\n"
        f"timeout 30 wget -q -O - {done_url}\n"
        "%end\n"
    )


@dataclass
class ReferenceServers:
    """dnsmasq and http.server running in the lab namespace (stopped with the lab)."""

    dnsmasq: Background
    http: Background
    tftp_root: Path
    http_root: Path

    def requests(self) -> list[str]:
        """The request lines http.server logged, e.g. 'GET /ks/host.cfg HTTP/1.1'."""
        return [
            line.split('"')[1] for line in self.http.output().splitlines() if line.count('"') >= 2
        ]


def ipxe_script(base_url: str, append: str) -> str:
    """The iPXE script docs/firmware.md boots with (`initrd=` on the kernel line: the EFI stub)."""
    return (
        "#!ipxe\n"
        f"kernel {base_url}/{KERNEL_NAME} initrd={INITRD_NAME} {append}"
        " BOOTIF=01-${net0/mac:hexhyp}\n"
        f"initrd {base_url}/{INITRD_NAME}\n"
        "boot\n"
    )


def start_reference(
    lab: BootLab, tftp_root: Path, http_root: Path, ipxe_script_url: str | None = None
) -> ReferenceServers:
    """dnsmasq answering DHCP and TFTP, http.server on HTTP_PORT.

    The boot file is pxelinux.0; with `ipxe_script_url`, clients whose user class is iPXE
    (QEMU's ROMs) get that script instead, as pxed does by default.
    """
    stem = lab.netns.workdir / "reference-dnsmasq"
    first, last = lab.address(100), lab.address(200)
    boot = [f"--dhcp-boot={PXELINUX.name}"]
    if ipxe_script_url is not None:
        boot = [
            "--dhcp-userclass=set:ipxe,iPXE",
            f"--dhcp-boot=tag:ipxe,{ipxe_script_url}",
            f"--dhcp-boot=tag:!ipxe,{PXELINUX.name}",
        ]
    dnsmasq = lab.spawn(
        ["dnsmasq", "--keep-in-foreground", "--log-facility=-", "--conf-file=/dev/null",
         "--user=root", "--port=0",
         f"--interface={lab.bridge.name}", "--bind-interfaces", "--log-dhcp",
         f"--dhcp-range={first},{last},255.255.255.0,1h", *boot,
         "--enable-tftp", f"--tftp-root={tftp_root}", f"--pid-file={stem}.pid",
         f"--dhcp-leasefile={stem}.leases"],
        stem.with_suffix(".log"),
    )  # fmt: skip
    dnsmasq.wait_for_output("TFTP root is", timeout=10.0)
    http = lab.spawn(
        [sys.executable, "-u", "-m", "http.server", str(HTTP_PORT), "--bind",
         str(lab.server_ip), "--directory", str(http_root)],
        lab.netns.workdir / "reference-http.log",
    )  # fmt: skip
    lab.ns.wait_listening(HTTP_PORT, "tcp")
    return ReferenceServers(dnsmasq, http, tftp_root, http_root)
