"""``pxed explain --config FILE --mac MAC``: what pxed would serve this machine, and why.

Everything is computed by the code the daemon runs, never by a second copy:
a DISCOVER like the client's firmware sends is built with the DHCP encoder,
decoded again, and handed to the DHCP engine with the settings the adapter
builds (pxed.dhcp.settings.engine_settings); the boot configs come from the
same ProvisionFiles the TFTP and HTTP servers read (the answer-file URL's
signature shown as ``<signature>``: explain never reads the secret); the answer
file (Kickstart or preseed) is rendered and checked by
pxed.provisioning.answers.render, as ``/ks/<mac>`` and ``/preseed/<mac>`` do.

Nothing the daemon owns is written: the engine answers from an in-memory copy
of the lease table (so a client holding a lease is offered its address, as
the daemon would), and the host states come from a snapshot of
``hosts.sqlite3``, so the "booting" a config fetch would record goes nowhere.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from ipaddress import IPv4Address
from pathlib import Path

from protocols.dhcp.leases import Lease, MemoryLeaseStore
from protocols.dhcp.options import MessageType, UserClass
from protocols.dhcp.server import DhcpServer, NoReply, Received
from protocols.dhcp.wire import DhcpPacket, decode_dhcp, encode_dhcp, make_options
from pxed.config import Config, ConfigError, load_config, parse_mac
from pxed.config.defaults import CONFIG_PATH
from pxed.dhcp.leases import DATABASE_NAME as LEASES_NAME
from pxed.dhcp.leases import read_leases
from pxed.dhcp.settings import engine_settings
from pxed.pcap.dhcp_view import detail
from pxed.provisioning.answers import TemplateProblem, family_of, render
from pxed.provisioning.identity import verify
from pxed.provisioning.inventory import Inventory, host_for
from pxed.provisioning.lifecycle import (
    DATABASE_NAME,
    HostState,
    Lifecycle,
    LifecycleError,
    State,
)
from pxed.provisioning.resources import answer_refusal
from pxed.provisioning.tftp_files import ProvisionFiles

# The parameter request list of an Intel PXE 2.1 ROM (docs/firmware.md), so the answer
# carries the options a real firmware would get.
PXE_PRL: tuple[int, ...]
PXE_PRL = (1, 2, 3, 4, 5, 6, 11, 12, 13, 15, 16, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51)
PXE_PRL += (54, 58, 59, 60, 66, 67, 97, 128, 129, 130, 131, 132, 133, 134, 135)
EXPLAIN_SECRET = b"pxed explain: tokens are not shown"
SIGNED = "<signature>"  # the served configs sign each install's answer-file URL; not shown here


class ExplainError(Exception):
    """explain cannot answer (no server address, bad MAC...): the message says what to fix."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", "-c", default=CONFIG_PATH, help="the pxed YAML configuration file"
    )
    parser.add_argument("--mac", required=True, help="the client's MAC address")
    parser.add_argument(
        "--arch",
        type=int,
        default=0,
        help="option 93 client architecture: 0 BIOS, 7 or 9 x64 UEFI, 16 UEFI HTTP (default 0)",
    )
    parser.add_argument("--user-class", help="option 77, e.g. iPXE for iPXE's second DHCP")
    parser.add_argument("--giaddr", help="the relay agent's address, for a client behind a relay")
    parser.add_argument(
        "--requester", help="an address asking for the answer file: would it be served, and why"
    )
    parser.add_argument(
        "--neighbour",
        help="the requester's MAC in the server's ARP table (leave out: behind a router)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"{args.config} has errors:\n{error}", file=sys.stderr)
        return 1
    try:
        asker = (args.requester, args.neighbour) if args.requester else None
        print(explain(config, args.mac, args.arch, args.user_class, args.giaddr, asker), end="")
    except (ExplainError, LifecycleError) as error:
        print(f"pxed explain: {error}", file=sys.stderr)
        return 1
    return 0


def explain(
    config: Config,
    mac_text: str,
    arch: int,
    user_class: str | None,
    giaddr: str | None,
    requester: tuple[str, str | None] | None = None,
) -> str:
    """The whole report as text; ``requester`` (address, neighbour MAC) adds who may fetch."""
    try:
        mac = parse_mac(mac_text)
    except ValueError as error:
        raise ExplainError(str(error)) from None
    server = server_address(config)
    lines = [f"client {mac}, arch {arch}" + (f", user class {user_class}" if user_class else "")]
    if giaddr:
        lines[0] += f", relayed by {giaddr}"
    lines += ["", *host_section(config, mac)]
    lines += ["", *dhcp_section(config, mac, arch, user_class, giaddr, server)]
    with host_states(config) as lifecycle:
        state = lifecycle.get(mac)
        lines += ["", f"lifecycle state: {state.state.value}" + _by(state.source)]
        inventory = Inventory(config, lambda _: str(server))
        files = ProvisionFiles(inventory, lifecycle, time.time, lambda mac, generation: SIGNED)
        lines += ["", *boot_config_sections(files, mac)]
        lines += ["", *answer_section(config, inventory, mac, state.state)]
        if requester is not None:
            lines.append(requester_line(config, inventory, mac, *requester))
    return "\n".join(lines) + "\n"


def requester_line(
    config: Config, inventory: Inventory, mac: str, address: str, neighbour: str | None
) -> str:
    """Which identity rule (pxed.provisioning.identity) admits or refuses ``address``."""
    seen = parse_mac(neighbour) if neighbour else None
    verdict = verify(
        mac,
        address,
        seen,
        [],
        lambda ip: inventory.mac_for_ip(ip, time.time()),
        config.install.mac_header_networks,
        claimed=False,
    )
    outcome = "served" if verdict.admitted else "refused"
    if not verdict.admitted and config.install.kickstart_open:
        outcome = "served (install.kickstart_open), but the fetch changes no state"
    return f"  to {address}: {outcome}: {verdict.rule}"


def _by(source: str) -> str:
    return f" (set by {source})" if source else " (never seen)"


def server_address(config: Config) -> IPv4Address:
    if config.server.address is not None:
        return IPv4Address(str(config.server.address))
    from pxed.netif import NoListenAddress, advertised_address

    try:
        return IPv4Address(advertised_address(config))
    except NoListenAddress as error:
        raise ExplainError(f"{error}; set server.address to explain without it") from None


def host_section(config: Config, mac: str) -> list[str]:
    host = host_for(config, mac)
    if host is None:
        policy = config.dhcp.unknown_hosts
        return [f"host: none; {mac} is not in the inventory (dhcp.unknown_hosts: {policy})"]
    listed = config.host(mac) is not None
    lines = [
        f"host: {host.hostname or '-'}" + ("" if listed else " (stand-in for an unknown MAC)"),
        f"  profile: {host.profile or '-'}",
        f"  netboot: {host.netboot}",
        f"  reserved address: {host.ip or '-'}",
    ]
    profile = config.profiles.get(host.profile) if host.profile else None
    if profile is not None:
        lines += [
            f"  tree: {profile.tree or '-'}",
            f"  kernel: {profile.kernel}",
            f"  initrd: {profile.initrd}",
        ]
        for cpu, images in profile.cpus.items():
            lines += [f"  {cpu} kernel: {images.kernel}", f"  {cpu} initrd: {images.initrd}"]
    return lines


def discover(mac: str, arch: int, user_class: str | None, giaddr: str | None) -> DhcpPacket:
    """The DISCOVER a PXE ROM (or iPXE, with ``user_class``) sends, through encoder and decoder."""
    options: list[tuple[int, object]] = [
        (53, MessageType.DISCOVER),
        (55, PXE_PRL),
        (60, f"PXEClient:Arch:{arch:05d}:UNDI:002001"),
        (93, (arch,)),
        (94, bytes([1, 2, 1])),
        (97, bytes(17)),
    ]
    if user_class:
        options.append((77, UserClass((user_class.encode(),), bare=True)))
    packet = DhcpPacket(
        xid=0x1D5E9AB1,
        flags=0x8000,
        hops=1 if giaddr else 0,
        giaddr=IPv4Address(giaddr) if giaddr else IPv4Address(0),
        chaddr=bytes.fromhex(mac.replace(":", "")),
        options=make_options(options),
    )
    return decode_dhcp(encode_dhcp(packet, min_size=300))


def dhcp_section(
    config: Config,
    mac: str,
    arch: int,
    user_class: str | None,
    giaddr: str | None,
    server: IPv4Address,
) -> list[str]:
    """The engine's answer to the DISCOVER, every field and option."""
    settings = engine_settings(config, server)
    if not config.dhcp.enabled:
        return ["DHCP: off (dhcp.mode: off); another DHCP server must send the boot file"]
    now = time.time()
    engine = DhcpServer(settings, current_leases(config, now))
    request = discover(mac, arch, user_class, giaddr)
    source = (IPv4Address(giaddr), 67) if giaddr else (IPv4Address(0), 68)
    action = engine.handle(request, Received(server, source, settings.ports.server), now)
    if isinstance(action, NoReply):
        return [f"DHCP ({config.dhcp.mode} mode): no answer: {action.reason}"]
    reply = decode_dhcp(action.data)
    destination = f"{action.destination[0]}:{action.destination[1]}"
    head = f"DHCP ({config.dhcp.mode} mode): {action.reason}; sent to {destination}"
    return [head, *(f"  {line}" for line in detail(reply))]


def current_leases(config: Config, now: float) -> MemoryLeaseStore:
    """The daemon's unexpired leases, in memory (empty if DHCP never ran here)."""
    store = MemoryLeaseStore()
    path = config.server.state_dir / LEASES_NAME
    if not path.exists():
        return store
    try:
        rows = read_leases(path)
    except sqlite3.Error as error:
        raise ExplainError(f"{path}: cannot read the leases: {error}") from None
    for mac, ip, expires, hostname in rows:
        lease = Lease(mac, IPv4Address(ip), expires, hostname=hostname)
        if lease.active(now):
            store.bind(lease, now)
    return store


def boot_config_sections(files: ProvisionFiles, mac: str) -> list[str]:
    dashed = mac.replace(":", "-")
    sections = (
        (f"pxelinux.cfg/01-{dashed} (TFTP)", files.config_text(f"pxelinux.cfg/01-{dashed}", "")),
        (f"grub.cfg-01-{dashed} (TFTP)", files.config_text(f"grub.cfg-01-{dashed}", "")),
        (f"/boot/{mac}.ipxe (HTTP)", files.ipxe_script(mac, "")),
    )
    lines: list[str] = []
    for name, text in sections:
        if text is None:
            lines += [f"{name}: not generated (pxed ignores this MAC)", ""]
            continue
        lines += [f"{name}:", *(f"  | {line}".rstrip() for line in text.splitlines()), ""]
    return lines[:-1]


def answer_section(config: Config, inventory: Inventory, mac: str, state: State) -> list[str]:
    """The answer file's family and URL, and whether it renders and passes its checker."""
    host = host_for(config, mac)
    if host is None:
        return ["answer file: none (no host)"]
    family = family_of(config.profiles.get(host.profile) if host.profile else None)
    if family is None:
        return ["answer file: none (the profile has no kickstart or preseed template)"]
    head = f"{family.title}: {inventory.urls.answer(family.path, mac)}"
    if host.netboot == "never":
        return [f"{head} refused (netboot: never)"]
    refused = answer_refusal(config, host, state, inventory.urls)
    if refused is not None:
        return [f"{head} refused ({refused[1]})"]
    try:
        rendered = render(config, host, inventory.urls, EXPLAIN_SECRET)
    except TemplateProblem as problem:
        return [head, f"  does NOT pass {family.checker}: {problem}"]
    lines = len(rendered.text.splitlines())
    return [
        head,
        f"  template {Path(str(rendered.template)).name} renders ({lines} lines) "
        f"and passes {family.checker}",
    ]


@contextmanager
def host_states(config: Config) -> Iterator[Lifecycle]:
    """A throw-away copy of the daemon's host states (empty if it never ran), from
    ``server.database`` when it is set."""
    real = config.server.state_dir / DATABASE_NAME
    with tempfile.TemporaryDirectory(prefix="pxed-explain-") as scratch:
        if config.server.database is None and real.exists():
            _snapshot(real, Path(scratch) / DATABASE_NAME)
        lifecycle = Lifecycle.open(Path(scratch))
        if config.server.database is not None:
            _copy_shared(config.server.database, lifecycle)
        try:
            yield lifecycle
        finally:
            lifecycle.close()


def _copy_shared(url: str, into: Lifecycle) -> None:
    """The host states every pxed on ``url`` shares, copied into the scratch database."""
    from pxed.provisioning.pg_lifecycle import PostgresLifecycle

    shared = PostgresLifecycle(url, "explain")
    try:
        states = shared.all()
    except LifecycleError as error:
        raise ExplainError(str(error)) from None
    finally:
        shared.close()
    blank = HostState("", State.READY, 0.0, "", ())
    for state in states:
        into._write(blank, state)


def _snapshot(source: Path, target: Path) -> None:
    """SQLite's online backup: consistent even while the daemon writes (WAL included)."""
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()
    except sqlite3.Error as error:
        raise ExplainError(f"{source}: cannot read the host states: {error}") from None
