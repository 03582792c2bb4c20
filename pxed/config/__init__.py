"""The pxed configuration: one YAML file, validated in full into frozen objects.

``load_config(path)`` is the one place every service reads its settings from.
It reports every problem at once, each as ``FILE:LINE:COLUMN: key.path: message``
(list indexes in key paths count from 0), by raising ConfigError; warnings
(a tree folder not mounted yet, say) ride along in ``Config.warnings``.

Answer-file templates (Kickstart, preseed) are rendered for every host that uses
them and checked by their family's checker (``pxed.provisioning.answers.check_config``);
a template problem is an error like any other, pointing at the template's file and line.
"""

from __future__ import annotations

from pathlib import Path

from pxed.config.build import build
from pxed.config.model import (
    AnswerFile,
    Config,
    Dhcp6Boot,
    Dhcp6Config,
    Dhcp6Subnet,
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
    "AnswerFile",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "Dhcp6Boot",
    "Dhcp6Config",
    "Dhcp6Subnet",
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
    return config
