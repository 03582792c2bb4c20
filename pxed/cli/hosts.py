"""``pxed hosts --config FILE [rearm MAC]``: host install states, and making a host install again.

Reads and writes the same host states the daemon uses (``hosts.sqlite3``, or
``server.database``), safely while it runs (each change is one transaction; see
pxed.provisioning.lifecycle).  On PostgreSQL, shared by several pxed servers, the
BY column names the server that made the last change too. A rearmed
host is ``ready`` with its loop count cleared: its next network boot installs.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime

from pxed.config import Config, ConfigError, load_config, parse_mac
from pxed.config.defaults import CONFIG_PATH
from pxed.provisioning.lifecycle import HostState, Lifecycle, LifecycleError, State
from pxed.provisioning.service import open_lifecycle

COLUMNS = ("MAC", "HOSTNAME", "PROFILE", "NETBOOT", "STATE", "SINCE", "BY", "KS FETCHES")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", "-c", default=CONFIG_PATH, help="the pxed YAML configuration file"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    rearm = actions.add_parser("rearm", help="make a host install again at its next boot")
    rearm.add_argument("mac", help="the host's MAC address (any common spelling)")


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        lifecycle = open_lifecycle(config.server)
    except ConfigError as error:
        print(f"{args.config} has errors:\n{error}", file=sys.stderr)
        return 1
    except LifecycleError as error:
        print(error, file=sys.stderr)
        return 1
    try:
        if args.action == "rearm":
            return rearm(config, lifecycle, args.mac)
        print_states(config, lifecycle)
        return 0
    finally:
        lifecycle.close()


def rearm(config: Config, lifecycle: Lifecycle, text: str) -> int:
    try:
        mac = parse_mac(text)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 1
    known = {state.mac for state in lifecycle.all()}
    if config.host(mac) is None and mac not in known:
        print(f"{mac} is neither in {config.path} nor in pxed's host states", file=sys.stderr)
        return 1
    before = lifecycle.get(mac).state
    lifecycle.rearm(mac, time.time())
    print(f"{mac}: {before.value} -> ready; it installs at its next network boot")
    return 0


def print_states(config: Config, lifecycle: Lifecycle) -> None:
    """One row per inventory host, then any other MAC pxed has states for (unknown hosts)."""
    states = {state.mac: state for state in lifecycle.all()}
    rows = []
    for host in config.hosts:
        state = states.pop(host.mac, HostState(host.mac, State.READY, 0.0, "", ()))
        rows.append(_row(state, host.hostname, host.profile, host.netboot))
    for state in states.values():
        rows.append(_row(state, None, config.dhcp.unknown_profile, "once"))
    widths = [max(len(row[i]) for row in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
    for row in [COLUMNS, *rows]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _row(
    state: HostState, hostname: str | None, profile: str | None, netboot: str
) -> tuple[str, ...]:
    since = (
        datetime.fromtimestamp(state.since, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        if state.since
        else "-"
    )
    return (
        state.mac,
        hostname or "-",
        profile or "-",
        netboot,
        state.state.value,
        since,
        f"{state.source}@{state.server}" if state.server else state.source or "-",
        str(len(state.fetches)),
    )
