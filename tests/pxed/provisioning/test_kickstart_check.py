"""`pxed check` renders every template for every host and points at the broken template line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.provision_lab import DEB_HOST, write_lab

ROOT = Path(__file__).resolve().parents[3]


def pxed_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pxed", "check", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_pxed_check_names_template_line_host_and_pykickstart_error(tmp_path: Path):
    path = write_lab(tmp_path)
    template = tmp_path / "web.ks.j2"
    lines = template.read_text().splitlines()
    lines.insert(2, "selinux --sideways")  # line 3 of the template
    template.write_text("\n".join(lines) + "\n")
    result = pxed_check(path)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "web.ks.j2" in line]
    # web01 and db01 use the profile (db01 never installs, but its Kickstart must still be sound).
    assert errors[0].startswith(f"{template}:3:1: hosts[0]: host web01 (52:54:00:12:34:56): ")
    assert "rendered line 3: pykickstart:" in errors[0] and "--sideways" in errors[0]
    assert f"{path}: 2 errors" in result.stderr


def test_pxed_check_passes_a_good_lab(tmp_path: Path):
    result = pxed_check(write_lab(tmp_path))
    assert result.returncode == 0, result.stderr


def test_pxed_check_names_each_profiles_answer_file_family_and_url(tmp_path: Path):
    result = pxed_check(write_lab(tmp_path, extra=DEB_HOST))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [
        "  profile web: Kickstart at http://127.0.0.1:8080/ks/<mac> from web.ks.j2 (2 hosts)",
        "  profile kiosk: Kickstart at http://127.0.0.1:8080/ks/<mac> from kiosk.ks.j2 (1 host)",
        "  profile deb: preseed at http://127.0.0.1:8080/preseed/<mac> from deb.preseed.j2"
        " (1 host)",
    ]
