"""A pxed scenario: the YAML config, the Kickstart template and `twistd pxed` in the lab.

The generated config is what an operator would write for this lab: pxed serves DHCP on the
lab bridge (full or proxy mode; or DHCPv6 alone, full mode on the lab's ULA /64), TFTP
from a root holding pxelinux.0, ldlinux.c32 and the guest's kernel and initrd, and HTTP;
one profile without an install tree (kernel and initrd in tftp.root) whose Kickstart
template renders pxed's own done/failed callbacks; the VMs as hosts. pxed itself then
generates pxelinux.cfg/01-<mac>, /ks/<mac> and so on.

The profile's kernel command line carries `e2e.expect={hostname}` and `e2e.expect={mac}`:
the guest refuses a Kickstart that does not name it (lab/guest.py).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from lab.bootlab import IPV6_PREFIX, SERVER_IP6, BootLab
from lab.netns import Background, ProcessError

PROFILE = "e2e"
HTTP_PORT = 80
# Rendered per host by pxed: names the host (the guest checks it), and the callbacks the
# guest runs (`%post --nochroot` is the section an installer runs outside the target).
KICKSTART_TEMPLATE = """\
# pxed e2e Kickstart for {{ host.hostname }} ({{ mac }})
text
network --bootproto=dhcp --device=link --activate --hostname={{ host.hostname }}

{{ pxed_done }}

{{ pxed_failed }}
"""
APPEND = (
    "console=ttyS0,115200 panic=1 inst.ks={ks_url} inst.ks.sendmac"
    " e2e.expect={hostname} e2e.expect={mac}"
)


@dataclass(frozen=True)
class HostSpec:
    """One machine in the inventory."""

    mac: str
    hostname: str
    netboot: Literal["once", "always", "never"] = "once"


@dataclass(frozen=True)
class Scenario:
    """Everything that differs between scenarios; the rest is the lab's."""

    hosts: tuple[HostSpec, ...]
    mode: Literal["full", "proxy"] = "full"
    # Boot file URLs by dhcp6.boot key: pxed then serves DHCPv6 alone (full mode on the
    # lab's ULA /64, DHCPv4 off) and TFTP and HTTP on its IPv6 address too.
    boot6: dict[str, str] = field(default_factory=dict)
    allow_unknown: bool = False
    # The profile's loader overrides (dhcp.boot keys). Scenario a sets ipxe: pxelinux.0,
    # because QEMU's ROM is iPXE and pxed, rightly, hands iPXE its script URL by default.
    loader: dict[str, str] = field(default_factory=dict)
    # The profile's kernel command line (ARM64's serial console is ttyAMA0, not ttyS0).
    append: str = APPEND
    # The profile's per-CPU kernels and initrds (`cpus:`), e.g. {"arm64": {"kernel": ...}}.
    cpus: dict[str, dict[str, str]] = field(default_factory=dict)
    # Serve tftp.root as the profile's install tree too: kernel and initrd then come from
    # /trees/e2e/ (GRUB: over HTTP if it can, else over TFTP; iPXE: HTTP).
    tree: bool = False


def write_config(lab: BootLab, scenario: Scenario, tftp_root: Path, workdir: Path) -> Path:
    """The pxed YAML for `scenario` in `lab`, with its Kickstart template beside it."""
    template = workdir / "e2e.ks.j2"
    template.write_text(KICKSTART_TEMPLATE)
    server = str(lab.server_ip)
    dhcp: dict[str, object] = {
        "mode": "off" if scenario.boot6 else scenario.mode,
        "allow_unknown": scenario.allow_unknown,
    }
    if dhcp["mode"] == "full":
        dhcp["subnets"] = [
            {
                "network": str(lab.subnet),
                "range": [str(lab.address(100)), str(lab.address(200))],
                "lease_time": 3600,
            }
        ]
    config: dict[str, object] = {
        "server": {
            "address": server,
            **({"address6": SERVER_IP6} if scenario.boot6 else {}),
            "interfaces": [lab.bridge.name],
            "state_dir": str(workdir / "state"),
        },
        "tftp": {"root": str(tftp_root), "listen": [server], **_listen6(scenario)},
        "dhcp": dhcp,
        **({"dhcp6": _dhcp6(lab, scenario.boot6)} if scenario.boot6 else {}),
        "http": {"listen": [server], **_listen6(scenario), "port": HTTP_PORT},
        "profiles": {
            PROFILE: {
                "kernel": "vmlinuz",
                "initrd": "initrd.gz",
                "append": scenario.append,
                "kickstart": str(template),
                **({"loader": scenario.loader} if scenario.loader else {}),
                **({"cpus": scenario.cpus} if scenario.cpus else {}),
                **({"tree": PROFILE} if scenario.tree else {}),
            }
        },
        **({"trees": {PROFILE: {"path": str(tftp_root)}}} if scenario.tree else {}),
        "hosts": [
            {"mac": h.mac, "hostname": h.hostname, "profile": PROFILE, "netboot": h.netboot}
            for h in scenario.hosts
        ],
        "logging": {"level": "info"},
    }
    path = workdir / "pxed.yaml"
    # safe_dump quotes MACs (they would otherwise read back as base-60 integers).
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _listen6(scenario: Scenario) -> dict[str, object]:
    return {"listen6": [SERVER_IP6]} if scenario.boot6 else {}


def _dhcp6(lab: BootLab, boot: dict[str, str]) -> dict[str, object]:
    return {
        "mode": "full",
        "interfaces": [lab.bridge.name],
        "subnets": [
            {
                "prefix": f"{IPV6_PREFIX}/64",
                "range": [f"{IPV6_PREFIX}100", f"{IPV6_PREFIX}1ff"],
                "lease_time": 3600,
            }
        ],
        "boot": boot,
    }


def twistd() -> str:
    """The venv's twistd, so the plugin and its dependencies are the ones under test."""
    return str(Path(sys.executable).with_name("twistd"))


def start_pxed(lab: BootLab, config: Path, port: int = 67) -> Background:
    """`twistd -n pxed --config FILE` in the lab namespace; returns once DHCP listens on
    udp/``port`` (547 for a scenario with ``boot6``: DHCPv4 is off)."""
    proc = lab.spawn(
        [twistd(), "-n", "--pidfile=", "pxed", "--config", str(config)],
        config.with_name("pxed.log"),
    )
    try:
        lab.ns.wait_listening(port, "udp", timeout=30.0)
    except ProcessError as exc:
        raise ProcessError(f"{exc}\npxed log {proc.log}:\n{proc.output()[-3000:]}") from None
    return proc
