"""The ``pxed`` command: tools an operator runs beside the daemon.

Each sub-command lives in the module named for its idea and exposes
``add_arguments(parser)`` and ``run(args) -> int``.  Only the chosen
sub-command's module is imported, so ``pxed check`` works (and stays fast on a
small appliance) whatever state the other tools are in; ``--help`` imports all.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "init": ("pxed.cli.init", "write a starting config for an interface of this machine"),
    "check": ("pxed.cli.check", "validate a config file and every template it names"),
    "pcap": ("pxed.cli.pcap", "decode DHCP/BOOTP/TFTP packets from pcap/pcapng captures"),
    "hosts": ("pxed.cli.hosts", "list host install states, or rearm a host to install again"),
    "leases": ("pxed.cli.leases", "list the DHCP leases (server.state_dir or server.database)"),
    "explain": ("pxed.cli.explain", "show what pxed would answer and serve a client, and why"),
}


def build_parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """Build the parser; with ``chosen``, only that sub-command gets its arguments."""
    parser = argparse.ArgumentParser(
        prog="pxed",
        description="PXE boot and install server tools. Run the server itself with `twistd pxed`.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, summary) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.set_defaults(module=module_name)
        if chosen in (None, name):
            _module(module_name).add_arguments(sub)
    return parser


def _module(name: str) -> ModuleType:
    return importlib.import_module(name)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    args = build_parser(chosen).parse_args(argv)
    return int(_module(args.module).run(args))


if __name__ == "__main__":
    sys.exit(main())
