"""Fixtures for the end-to-end boots: the guest artefacts, a boot lab, and skips that say why.

Run them alone with `pytest -m e2e`. They need root (namespaces, a tap), QEMU, Debian's
iPXE ROMs, pxelinux and apt (to fetch the kernel package once into tests/.cache/e2e/).
The dnsmasq reference boot is opt-in: `PXED_E2E_REFERENCE=1`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.guest import Guest, GuestBuildError, build_guest
from tests.e2e.lab import BootLab, boot_lab
from tests.e2e.qemu import QEMU
from tests.support.netns import NetnsLab, require_binary, require_netns
from tests.support.procs import ProcessError


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
def lab(netns_lab: NetnsLab) -> Iterator[BootLab]:
    """A namespace with a bridge, a tap for QEMU and IPv6 router adverts; removed after."""
    require_netns()
    require_binary(QEMU)
    require_binary("dnsmasq")
    yield boot_lab(netns_lab)
