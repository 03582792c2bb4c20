"""The `pxed` tools run beside the daemon without being part of it."""

from __future__ import annotations

import subprocess
import sys

IMPORT_EVERY_TOOL = """
import importlib, sys
from pxed.cli.main import SUBCOMMANDS
for module, _ in SUBCOMMANDS.values():
    importlib.import_module(module)
print(sorted(name for name in sys.modules
             if name == "twisted.internet.reactor" or name.startswith("pxed.daemon")))
"""


def test_no_subcommand_installs_the_reactor_or_imports_the_daemon():
    """A tool that installed the reactor would fight twistd's; the daemon is nobody's import."""
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERY_TOOL],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert result.stdout.strip() == "[]"
