"""``pxed check FILE``: validate a config without starting anything."""

from __future__ import annotations

import argparse
import sys

from pxed.config import ConfigError, load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="the pxed YAML configuration file")


def run(args: argparse.Namespace) -> int:
    try:
        load_config(args.file)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"{args.file}: ok")
    return 0
