"""``pxed init --interface IFACE``: a starting config for this machine, checked first.

The reference config (etc/pxed.yaml, installed under share/pxed/) documents every
key; this writes the few a first boot needs: the interface to serve and its
address, where boot files and state live, and DHCP in the mode asked for (proxy
by default: it works beside the network's own DHCP server and hands out no
address). Hosts and profiles come next, by hand. Refuses to overwrite a file.
"""

from __future__ import annotations

import argparse
import sys
from ipaddress import IPv4Interface
from pathlib import Path

from pxed.config import ConfigError, parse_config
from pxed.config.defaults import CONFIG_PATH, DEFAULTS
from pxed.netif import NoListenAddress, interface_address

TEMPLATE = """\
# pxed config for {interface}, written by `pxed init`. Every key, its default and
# when to change it: the reference config (etc/pxed.yaml, or share/pxed/pxed.yaml).
server:
  address: {address}
  interfaces: [{interface}]
  state_dir: {state_dir}
tftp:
  root: {tftp_root}
dhcp:
  mode: {mode}
{subnet}http:
  port: 80
hosts: []
"""
SUBNET = """\
  subnets:
    - network: {network}
      range: [{first}, {last}]
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--interface", "-i", required=True, help="the interface to serve")
    parser.add_argument(
        "--mode", choices=("proxy", "full", "off"), default="proxy", help="DHCP mode (proxy)"
    )
    parser.add_argument("--prefix", type=int, default=24, help="full mode: the subnet's length")
    parser.add_argument("--output", "-o", default=CONFIG_PATH, help="where to write it")


def run(args: argparse.Namespace) -> int:
    try:
        address = interface_address(args.interface)
    except NoListenAddress as error:
        print(f"pxed init: {error}", file=sys.stderr)
        return 1
    text = render(args.interface, str(address), args.mode, args.prefix)
    output = Path(args.output)
    try:
        parse_config(text, output)
    except ConfigError as error:  # a bug here, not the user's: say so plainly
        print(f"pxed init: the config it made does not check:\n{error}", file=sys.stderr)
        return 1
    if output.exists():
        print(f"pxed init: {output} exists; not overwritten", file=sys.stderr)
        return 1
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    print(f"{output}: written for {args.interface} ({address}), dhcp.mode {args.mode}")
    return 0


def render(interface: str, address: str, mode: str, prefix: int = 24) -> str:
    """The starting config's text."""
    subnet = ""
    if mode == "full":
        network = IPv4Interface(f"{address}/{prefix}").network
        hosts = list(network.hosts())
        first, last = hosts[len(hosts) // 2], hosts[-1]
        subnet = SUBNET.format(network=network, first=first, last=last)
    return TEMPLATE.format(
        interface=interface,
        address=address,
        state_dir=DEFAULTS["server.state_dir"],
        tftp_root=DEFAULTS["tftp.root"],
        mode=mode,
        subnet=subnet,
    )
