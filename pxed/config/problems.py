"""Config problems: every one collected, each pointing at a line, a column and a key path.

The buildbot habit: an operator fixing a config wants the whole list at once,
not one error per restart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from yaml.error import Mark
from yaml.nodes import Node


@dataclass(frozen=True, order=True)
class ConfigProblem:
    """One finding in a config file; ``line`` and ``column`` are 1-based (0: no position)."""

    file: str
    line: int
    column: int
    key: str
    message: str
    severity: str = field(default="error", compare=False)

    def __str__(self) -> str:
        where = self.file if self.line == 0 else f"{self.file}:{self.line}:{self.column}"
        parts = [where]
        if self.key:
            parts.append(self.key)
        if self.severity != "error":
            parts.append(self.severity)
        parts.append(self.message)
        return ": ".join(parts)


class ConfigError(Exception):
    """A config file that must not be served; ``errors`` holds every problem, in file order."""

    def __init__(
        self, errors: list[ConfigProblem], warnings: list[ConfigProblem] | None = None
    ) -> None:
        self.errors = sorted(errors)
        self.warnings = sorted(warnings or [])
        super().__init__("\n".join(str(error) for error in self.errors))


class Problems:
    """Collects errors and warnings against YAML nodes while a config is validated."""

    def __init__(self, path: Path) -> None:
        self.file = str(path)
        self.errors: list[ConfigProblem] = []
        self.warnings: list[ConfigProblem] = []

    def error(self, where: Node | Mark | None, key: str, message: str) -> None:
        """Record an error at ``where``: a node (its first character) or a YAML mark."""
        self.errors.append(self._problem(where, key, message, "error"))

    def warn(self, where: Node | Mark | None, key: str, message: str) -> None:
        """Record something that works today but probably is not what the operator meant."""
        self.warnings.append(self._problem(where, key, message, "warning"))

    def _problem(
        self, where: Node | Mark | None, key: str, message: str, severity: str
    ) -> ConfigProblem:
        mark = where.start_mark if isinstance(where, Node) else where
        if mark is None:
            return ConfigProblem(self.file, 0, 0, key, message, severity)
        return ConfigProblem(self.file, mark.line + 1, mark.column + 1, key, message, severity)
