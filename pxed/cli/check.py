"""``pxed check FILE``: validate a config without starting anything.

Prints every error and warning as ``FILE:LINE:COLUMN: key.path: message`` in
file order and exits 1 if there was any error. Every answer-file template is
rendered for every host that uses it and checked by its family's checker
(pykickstart, debconf-set-selections); a problem names the template file and
line, the host, and the error. A good file's profiles are listed with the
family of their answer file and the URL it is served at.

With ``server.database`` set it also connects there and says, in one line, the
schema version and whether the daemon will migrate it at start; a database it
cannot reach, or one a newer pxed migrated, fails the check (pxed would not start).
"""

from __future__ import annotations

import argparse
import sys

from pxed.config import ConfigError, load_config
from pxed.database.connection import DatabaseUnreachable, redacted
from pxed.database.migrations import SchemaTooNew, read_status
from pxed.provisioning.answers import checked, served


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="the pxed YAML configuration file")


def run(args: argparse.Namespace) -> int:
    try:
        config = checked(load_config(args.file))
    except ConfigError as error:
        for problem in sorted([*error.errors, *error.warnings]):
            print(problem, file=sys.stderr)
        count = len(error.errors)
        print(f"{args.file}: {count} error{'s' if count != 1 else ''}", file=sys.stderr)
        return 1
    for warning in config.warnings:
        print(warning, file=sys.stderr)
    count = len(config.warnings)
    print(f"{args.file}: ok" + (f" ({count} warning{'s' if count != 1 else ''})" if count else ""))
    for line in served(config):
        print(f"  {line}")
    if config.server.database is None:
        return 0
    good, line = database_status(config.server.database)
    print(line, file=sys.stdout if good else sys.stderr)
    return 0 if good else 1


def database_status(url: str) -> tuple[bool, str]:
    """Whether pxed could start on ``url``'s schema, and one line that says why."""
    try:
        schema = read_status(url)
    except (DatabaseUnreachable, SchemaTooNew) as error:
        return False, str(error)
    where = f"server.database {redacted(url)}"
    if schema.pending == 0:
        return True, f"{where}: schema version {schema.version}, up to date"
    plural = "s" if schema.pending != 1 else ""
    return True, (
        f"{where}: schema version {schema.version}, {schema.pending} migration{plural}"
        " pending (pxed applies them at start)"
    )
