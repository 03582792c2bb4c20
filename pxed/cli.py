"""The ``pxed`` command: tools an operator runs beside the daemon.

Each sub-command lives in the module named for its idea and exposes
``add_arguments(parser)`` and ``run(args) -> int``; this file only wires them
up, importing a module when its sub-command is chosen so ``pxed --help`` stays
fast on a small appliance.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "check": ("pxed.check", "validate a config file and every template it names"),
    "pcap": ("pxed.pcap", "decode DHCP/BOOTP/TFTP packets from pcap/pcapng captures"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pxed",
        description="PXE boot and install server tools. Run the server itself with `twistd pxed`.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, summary) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.set_defaults(module=module_name)
        _module(module_name).add_arguments(sub)
    return parser


def _module(name: str):  # type: ignore[no-untyped-def]
    return importlib.import_module(name)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(_module(args.module).run(args))


if __name__ == "__main__":
    sys.exit(main())
