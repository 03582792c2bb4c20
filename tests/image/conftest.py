"""Fixtures for the appliance image tests: `make image-test` runs them, `make test` skips them.

They boot the image `make image` built (named by PXED_IMAGE) in QEMU, minutes under TCG,
so they run only when asked for; and like the e2e tests they need root, namespaces and QEMU.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.bootlab import BootLab, boot_lab
from lab.netns import NetnsLab, require_binary, require_netns
from lab.qemu import QEMU


@pytest.fixture(scope="session")
def image() -> Path:
    """The built image; skipped, saying how to run it, when PXED_IMAGE names none."""
    named = os.environ.get("PXED_IMAGE")
    if not named:
        pytest.skip("the appliance image test runs with `make image image-test` (PXED_IMAGE)")
    path = Path(named).resolve()
    if not path.exists():
        pytest.skip(f"no image at {path}: run `make image` first")
    return path


@pytest.fixture
def lab(netns_lab: NetnsLab) -> Iterator[BootLab]:
    """A namespace with bridge br0 (.1) and a tap for the appliance; removed after."""
    require_netns()
    require_binary(QEMU)
    require_binary("dnsmasq")
    require_binary("mkfs.ext4")
    require_binary("curl")
    yield boot_lab(netns_lab)
