"""The layering rules of docs/architecture.md that import-linter cannot see, checked here."""

import ast
from pathlib import Path

import protocols

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"twisted", "socket", "os", "time", "random", "logging", "select", "asyncio"}


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_protocols_package_is_sans_io():
    """protocols/ must stay free of I/O, clocks and randomness so it replays deterministically."""
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imported_roots(path) & FORBIDDEN)
        for path in (ROOT / "protocols").rglob("*.py")
        if _imported_roots(path) & FORBIDDEN
    }
    assert offenders == {}


def test_protocols_is_ours_not_a_shadowing_distribution():
    """A PyPI package named `protocols` could shadow ours; make sure ours is imported."""
    assert Path(protocols.__file__).resolve().parent == ROOT / "protocols"


def test_twisted_plugins_has_no_init():
    """An __init__.py under twisted/ would shadow Twisted itself."""
    assert list((ROOT / "twisted").rglob("__init__.py")) == []
