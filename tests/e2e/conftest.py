"""Fixtures for the end-to-end boots: the guest artefacts, a boot lab, and skips that say why.

Run them alone with `pytest -m e2e`. They need root (namespaces, a tap), QEMU, Debian's
iPXE ROMs, pxelinux and apt (to fetch the kernel package once into .cache/e2e/); the
Secure Boot scenarios also OVMF's secboot build and Debian's signed shim and GRUB; the ARM64
one qemu-system-aarch64 and AAVMF, and fetches its arm64 packages itself (lab/arm64.py); the
HTTPv6 one radvd and iPXE's snponly.efi (Debian package ipxe).
The dnsmasq reference boot is opt-in: `PXED_E2E_REFERENCE=1`.

`PXED_E2E_CAPTURE=DIR` records each scenario's UDP traffic on the lab bridge (DHCP, TFTP
with its per-transfer ports, proxyDHCP on 4011) into DIR/<test name>.pcap, whole: cutting
transfers to their first blocks is left to whoever files them under tests/captures/.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.bootlab import BootLab, boot_lab
from lab.guest import Guest, GuestBuildError, build_guest
from lab.netns import NetnsLab, require_binary, require_netns
from lab.procs import ProcessError
from lab.qemu import QEMU


@pytest.fixture(scope="session")
def guest() -> Guest:
    """Debian's kernel and our busybox initrd, built once per package version (cached)."""
    require_binary("busybox")
    require_binary("apt-get")
    try:
        return build_guest()
    except (GuestBuildError, ProcessError) as exc:
        pytest.skip(f"cannot build the e2e guest: {exc}")


@pytest.fixture
def lab(netns_lab: NetnsLab, request: pytest.FixtureRequest) -> Iterator[BootLab]:
    """A namespace with a bridge, a tap for QEMU and IPv6 router adverts; removed after."""
    require_binary("dnsmasq")
    yield from _lab(netns_lab, request, managed=False)


@pytest.fixture
def managed_lab(netns_lab: NetnsLab, request: pytest.FixtureRequest) -> Iterator[BootLab]:
    """The same with radvd's adverts carrying the managed flag (an IPv6-only network whose
    addresses come from DHCPv6)."""
    require_binary("radvd")
    yield from _lab(netns_lab, request, managed=True)


def _lab(netns_lab: NetnsLab, request: pytest.FixtureRequest, managed: bool) -> Iterator[BootLab]:
    require_netns()
    require_binary(QEMU)
    booted = boot_lab(netns_lab, managed=managed)
    capture_dir = os.environ.get("PXED_E2E_CAPTURE")
    if capture_dir:
        Path(capture_dir).mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^\w.-]+", "-", request.node.name).strip("-")
        pcap = Path(capture_dir).resolve() / f"{name}.pcap"
        capture = booted.ns.tcpdump(booted.bridge.name, pcap, "udp")
        yield booted
        capture.stop()
    else:
        yield booted
