"""The import-linter contracts in pyproject.toml pass, and each fails on the import it forbids."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

# One forbidden import per contract: (module to add, what it imports, contract it breaks).
VIOLATIONS = [
    ("protocols/tftp/leak.py", "import twisted.internet", "protocols is sans-I/O"),
    ("pxed/config/leak.py", "import pxed.provisioning.kickstart", "config reads the file"),
    ("pxed/dhcp/leak.py", "import pxed.tftp.service", "adapters never import each other"),
    ("pxed/ops/leak.py", "import pxed.daemon.services", "nothing imports the daemon"),
    ("pxed/pcap/leak.py", "import pxed.config", "reading captures needs only the grammars"),
    ("pxed/database/leak.py", "import pxed.dhcp.leases", "the database package serves"),
]


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def copy_of_the_tree(tmp_path: Path) -> Path:
    for name in ("protocols", "pxed"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_tree_keeps_every_contract(tmp_path: Path):
    result = lint_imports(copy_of_the_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("module", "line", "contract"), VIOLATIONS, ids=[v[2] for v in VIOLATIONS])
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, module: str, line: str, contract: str
):
    tree = copy_of_the_tree(tmp_path)
    (tree / module).write_text(f'"""A forbidden import, added by the test."""\n\n{line}\n')
    result = lint_imports(tree)
    assert result.returncode != 0
    broken = [text for text in result.stdout.splitlines() if text.endswith("BROKEN")]
    assert len(broken) == 1 and contract in broken[0], result.stdout
