"""Build small ISO 9660 images at test time with xorriso (Debian package ``xorriso``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def xorriso() -> str:
    """The xorriso binary, or skip the test with the package to install."""
    binary = shutil.which("xorriso")
    if binary is None:
        pytest.skip("xorriso not installed (apt-get install -y xorriso)")
    return binary


def make_iso(source: Path, image: Path, *, rock_ridge: bool = True, joliet: bool = True) -> Path:
    """Write ``source``'s contents as ``image``; flags choose the name extensions."""
    # xorriso writes Rock Ridge unless told not to.
    flags = (["-R"] if rock_ridge else ["--norock"]) + (["-J", "-joliet-long"] if joliet else [])
    subprocess.run(
        [xorriso(), "-as", "mkisofs", *flags, "-quiet", "-o", str(image), str(source)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return image
