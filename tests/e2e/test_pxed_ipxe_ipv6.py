"""Debian's iPXE ROM (ipxe-qemu, BIOS) boots from pxed over IPv6 alone (docs/firmware.md).

pxed answers DHCPv6 only (DHCPv4 off). iPXE starts DHCPv6 only when a router
advertisement says so, so the lab's RA-only dnsmasq (no managed flag) is swapped for
radvd with the managed flag. iPXE's SOLICIT carries user class ``iPXE``: pxed gives it
the host's iPXE script URL over HTTP on IPv6 (option 59), the script loads kernel and
initrd over HTTP on IPv6, and the guest installs over IPv6 as in the OVMF PXEv6 test.
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
from lab.qemu import Machine, missing_firmware
from lab.scenario import APPEND, HTTP_PORT, KICKSTART_TEMPLATE, PROFILE, twistd
from pxed.provisioning.lifecycle import Lifecycle

pytestmark = [pytest.mark.e2e, pytest.mark.netns, pytest.mark.slow]

MAC = "52:54:00:e2:e0:6b"
SERVER6 = f"{IPV6_PREFIX}1"
BOOT_TIMEOUT = 300.0


def _config(lab: BootLab, tftp_root: Path, workdir: Path) -> Path:
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
        "hosts": [{"mac": MAC, "hostname": "e2e-ipxe6", "profile": PROFILE}],
        "logging": {"level": "debug"},
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


def test_ipxe_rom_boots_from_pxed_over_ipv6_alone(
    tmp_path: Path, lab: BootLab, guest: Guest
) -> None:
    reason = missing_firmware("bios")
    if reason:
        pytest.skip(reason)
    require_binary("radvd")
    lab.router_adverts.stop()
    adverts = _managed_adverts(lab, tmp_path)
    tftp_root = fill_tftp_root(tmp_path / "tftp", guest)
    config = _config(lab, tftp_root, tmp_path)
    pxed = lab.spawn(
        [twistd(), "-n", "--pidfile=", "pxed", "--config", str(config)],
        config.with_name("pxed.log"),
    )
    try:
        lab.ns.wait_listening(547, "udp", timeout=30.0)
        machine = Machine("e2e-ipxe6", MAC, "bios", tmp_path / "vm").create()
        boot = machine.boot(lab, "ipxe6")
        try:
            boot.installed(BOOT_TIMEOUT)
            boot.powered_off()
        finally:
            boot.stop()
            Path("/tmp/ipxe6-console.log").write_text(boot.console)
            Path("/tmp/ipxe6-pxed.log").write_text(pxed.output())
    except ProcessError as exc:
        raise ProcessError(f"{exc}\npxed log:\n{pxed.output()[-3000:]}") from None
    finally:
        adverts.stop()
    log = pxed.output()
    assert re.search(rf"REPLY to {MAC}: {IPV6_PREFIX}[0-9a-f]+ boot ipxe", log), log[-3000:]
    with contextlib.closing(Lifecycle.open(tmp_path / "state")) as states:
        assert states.get(MAC).state == "installed"
