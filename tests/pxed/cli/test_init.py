"""`pxed init`: a starting config for an interface, which `pxed check` passes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def pxed(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pxed", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_init_writes_a_config_that_checks_and_never_overwrites(tmp_path: Path):
    path = tmp_path / "etc/pxed/pxed.yaml"
    made = pxed("init", "--interface", "lo", "--output", str(path))
    assert made.returncode == 0, made.stderr
    assert "interfaces: [lo]" in path.read_text() and "mode: proxy" in path.read_text()
    checked = pxed("check", str(path))
    assert checked.returncode == 0, checked.stderr
    again = pxed("init", "--interface", "lo", "--output", str(path))
    assert again.returncode == 1 and "not overwritten" in again.stderr


def test_full_mode_gets_a_pool_in_the_interfaces_own_network(tmp_path: Path):
    path = tmp_path / "pxed.yaml"
    assert pxed("init", "-i", "lo", "--mode", "full", "-o", str(path)).returncode == 0
    text = path.read_text()
    assert "network: 127.0.0.0/24" in text and "range: [127.0.0.128, 127.0.0.254]" in text
    assert pxed("check", str(path)).returncode == 0


def test_an_interface_without_an_address_is_one_line(tmp_path: Path):
    result = pxed("init", "-i", "pxed-noif0", "-o", str(tmp_path / "x.yaml"))
    assert result.returncode == 1
    assert result.stderr.strip().startswith("pxed init: interface pxed-noif0 has no IPv4")
