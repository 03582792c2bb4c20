"""Debian's iPXE ROMs (ipxe-qemu: BIOS and UEFI) boot from pxed over IPv6 alone
(docs/firmware.md).

pxed answers DHCPv6 only (DHCPv4 off). iPXE starts DHCPv6 only when a router
advertisement says so (with the lab's RA-only dnsmasq, no managed flag, it takes a SLAAC
address, sends no SOLICIT and finds "Nothing to boot"), so the test swaps that for radvd
with the managed flag. iPXE's SOLICIT carries user class ``iPXE``: pxed gives it the
host's iPXE script URL over HTTP on IPv6 (option 59), the script loads kernel and initrd
over HTTP on IPv6, and the guest installs over IPv6 as in the OVMF PXEv6 test.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest
import yaml

from lab.bootfiles import fill_tftp_root
from lab.bootlab import IPV6_PREFIX, BootLab
from lab.guest import Guest
from lab.netns import Background, ProcessError, require_binary
from lab.qemu import Firmware, Machine, missing_firmware
from lab.scenario import APPEND, HTTP_PORT, KICKSTART_TEMPLATE, PROFILE, twistd
from pxed.provisioning.lifecycle import Lifecycle

pytestmark = [pytest.mark.e2e, pytest.mark.netns, pytest.mark.slow]

MACS = {"bios": "52:54:00:e2:e0:6b", "uefi": "52:54:00:e2:e0:6c"}
SERVER6 = f"{IPV6_PREFIX}1"
BOOT_TIMEOUT = 300.0


def _config(lab: BootLab, tftp_root: Path, workdir: Path, mac: str) -> Path:
    template = workdir / "e2e.ks.j2"
    template.write_text(KICKSTART_TEMPLATE)
    server = str(lab.server_ip)
    config = {
        "server": {
            "address": server,
            "address6": SERVER6,
            "interfaces": [lab.bridge.name],
            "state_dir": str(workdir / "state"),
        },
        "tftp": {"root": str(tftp_root), "listen": [server], "listen6": [SERVER6]},
        "dhcp": {"mode": "off"},
        "dhcp6": {
            "mode": "full",
            "interfaces": [lab.bridge.name],
            "subnets": [
                {
                    "prefix": f"{IPV6_PREFIX}/64",
                    "range": [f"{IPV6_PREFIX}100", f"{IPV6_PREFIX}1ff"],
                    "lease_time": 3600,
                }
            ],
            "boot": {"ipxe": "http://[{server6}]:{http_port}/boot/{mac}.ipxe"},
        },
        "http": {"listen": [server], "listen6": [SERVER6], "port": HTTP_PORT},
        "profiles": {
            PROFILE: {
                "kernel": "vmlinuz",
                "initrd": "initrd.gz",
                "append": APPEND,
                "kickstart": str(template),
            }
        },
        "hosts": [{"mac": mac, "hostname": "e2e-ipxe6", "profile": PROFILE}],
        "logging": {"level": "info"},
    }
    path = workdir / "pxed.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _managed_adverts(lab: BootLab, workdir: Path) -> Background:
    """radvd on the lab bridge: the ULA prefix for SLAAC, with the managed flag."""
    conf = workdir / "radvd.conf"
    conf.write_text(
        f"interface {lab.bridge.name} {{\n"
        "  AdvSendAdvert on;\n  AdvManagedFlag on;\n  AdvOtherConfigFlag on;\n"
        "  MinRtrAdvInterval 3;\n  MaxRtrAdvInterval 4;\n"
        f"  prefix {IPV6_PREFIX}/64 {{ AdvOnLink on; AdvAutonomous on; }};\n}};\n"
    )
    proc = lab.spawn(
        ["radvd", "--nodaemon", "--config", str(conf), "--pidfile", str(workdir / "radvd.pid"),
         "--logmethod", "stderr", "--debug", "1"],
        workdir / "radvd.log",
    )  # fmt: skip
    return proc


@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_ipxe_rom_boots_from_pxed_over_ipv6_alone(
    tmp_path: Path, lab: BootLab, guest: Guest, firmware: Firmware
) -> None:
    """DHCPv6 lease and script URL, script, kernel and initrd over HTTP/IPv6, then the
    Kickstart and done callback over IPv6: the host ends up installed."""
    reason = missing_firmware(firmware)
    if reason:
        pytest.skip(reason)
    require_binary("radvd")
    mac = MACS[firmware]
    lab.router_adverts.stop()
    adverts = _managed_adverts(lab, tmp_path)
    tftp_root = fill_tftp_root(tmp_path / "tftp", guest)
    config = _config(lab, tftp_root, tmp_path, mac)
    pxed = lab.spawn(
        [twistd(), "-n", "--pidfile=", "pxed", "--config", str(config)],
        config.with_name("pxed.log"),
    )
    try:
        lab.ns.wait_listening(547, "udp", timeout=30.0)
        machine = Machine("e2e-ipxe6", mac, firmware, tmp_path / "vm").create()
        boot = machine.boot(lab, "ipxe6")
        try:
            seconds = boot.installed(BOOT_TIMEOUT)
            boot.powered_off()
        finally:
            boot.stop()
    except ProcessError as exc:
        raise ProcessError(f"{exc}\npxed log:\n{pxed.output()[-3000:]}") from None
    finally:
        adverts.stop()
    print(f"iPXE {firmware} over IPv6: power-on to the done callback {seconds:.1f} s")
    log = pxed.output()
    script = f"http://[{SERVER6}]:{HTTP_PORT}/boot/{mac}.ipxe"
    assert re.search(rf"REPLY to {mac}: {IPV6_PREFIX}[0-9a-f]+ boot ipxe {re.escape(script)}", log)
    assert f"Filename: {script}" in boot.console
    assert re.search(rf"net0: {IPV6_PREFIX}[0-9a-f]+/64", boot.console), "no DHCPv6 address"
    assert f"inst.ks=http://[{SERVER6}]:{HTTP_PORT}/ks/{mac}/" in boot.console
    with contextlib.closing(Lifecycle.open(tmp_path / "state")) as states:
        assert states.get(mac).state == "installed"
