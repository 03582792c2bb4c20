"""The pxed configuration: one YAML file, validated in full into frozen objects.

``load_config(path)`` is the one place every service reads its settings from.
It reports every problem at once, each as ``FILE:LINE:COLUMN: key.path: message``
(list indexes in key paths count from 0), by raising ConfigError; warnings
(a tree folder not mounted yet, say) ride along in ``Config.warnings``.

Kickstart templates are rendered for every host that uses them and checked
with pykickstart (``pxed.kickstart.check_config``); a template problem is an
error like any other, pointing at the template's file and line.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pxed.config.build import build
from pxed.config.model import (
    Config,
    DhcpBoot,
    DhcpConfig,
    Host,
    HttpConfig,
    InstallConfig,
    Loaders,
    LoggingConfig,
    Profile,
    ServerConfig,
    Subnet,
    TftpConfig,
    Tree,
    parse_mac,
)
from pxed.config.problems import ConfigError, ConfigProblem, Problems
from pxed.config.yamltree import Context

__all__ = [
    "Config",
    "ConfigError",
    "ConfigProblem",
    "DhcpBoot",
    "DhcpConfig",
    "Host",
    "HttpConfig",
    "InstallConfig",
    "Loaders",
    "LoggingConfig",
    "Profile",
    "ServerConfig",
    "Subnet",
    "TftpConfig",
    "Tree",
    "load_config",
    "parse_config",
    "parse_mac",
]


def load_config(path: str | Path) -> Config:
    """Read and validate the config file at ``path``; ConfigError lists everything wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else f"not UTF-8 ({error.reason})"
        raise ConfigError([ConfigProblem(str(path), 0, 0, "", f"cannot read: {reason}")]) from None
    return parse_config(text, path)


def parse_config(text: str, path: str | Path) -> Config:
    """Validate ``text`` as if read from ``path`` (relative paths resolve against its folder)."""
    path = Path(path)
    problems = Problems(path)
    ctx = Context(problems, path.absolute().parent)
    config = build(ctx, ctx.compose(text), path)
    if config is None:
        raise ConfigError(problems.errors, problems.warnings)
    # Imported here: pxed.kickstart needs the model, and Jinja2/pykickstart load only when used.
    from pxed.kickstart import check_config

    template_errors, template_warnings = check_config(config)
    if template_errors:
        raise ConfigError(template_errors, problems.warnings + template_warnings)
    if template_warnings:
        config = dataclasses.replace(config, warnings=(*config.warnings, *template_warnings))
    return config
