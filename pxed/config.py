"""Placeholder until the config loader lands (issue 2, item 3)."""

from __future__ import annotations

from pathlib import Path


class ConfigError(Exception):
    pass


def load_config(path: str | Path) -> object:
    return Path(path).read_text()
