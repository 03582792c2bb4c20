"""DHCPv6 on a PostgreSQL shared by pxed servers (docs/ha.md), with real processes:
``twistd pxed`` in private namespaces, Kea's perfdhcp -6 as the clients, tcpdump on
the clients' link recording every message.

Two servers on one link answer every DHCPv6 client (DHCPv6 is not split); each probes
its share of the pool's free addresses first, the share coming from the DHCPv4
heartbeat's live set (the daemon hands it to DHCPv6), so the database's unique
constraint refuses no bind.  Then one server with PostgreSQL stopped under renewing
clients: it confirms the bindings it knows stored for the time they have left, answers
nothing else, says so on /healthz, and recovers by itself.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from functools import partial
from ipaddress import IPv4Network, IPv6Address, IPv6Network
from pathlib import Path

import psycopg
import pytest

from lab.netns import Namespace, NetnsLab, require_binary
from lab.procs import wait_until
from protocols.dhcpv6.options import CLIENTID, IAADDR, IaAddress
from protocols.dhcpv6.wire import Dhcpv6Message, MessageType, decode_dhcpv6
from protocols.errors import MalformedPacket
from pxed.pcap.capture import read_frames
from tests.interop.dhcp_runner import PYTHON, REPO, pxed_argv, start_pxed, subnet, write_config
from tests.support.postgres import cluster

pytestmark = [pytest.mark.interop, pytest.mark.netns, pytest.mark.slow]

NETWORK = IPv4Network("10.216.0.0/24")  # DHCPv4 only runs for its heartbeat here
PREFIX = IPv6Network("fd00:216::/64")
POOL = (PREFIX.network_address + 0x100, PREFIX.network_address + 0x4FF)
SERVERS = {"pxe1": 1, "pxe2": 3}  # host numbers, on both networks
LEASE_TIME = 3600
HTTP_PORT = 8080
M = MessageType


@dataclass(frozen=True)
class Seen:
    """A DHCPv6 message on the clients' link."""

    at: float  # epoch, the capture's
    kind: MessageType
    xid: int
    client: str  # the DUID, hex with colons
    address: IPv6Address | None  # the first IAADDR with a valid lifetime
    valid: int


def messages(pcap: Path) -> list[Seen]:
    """Every DHCPv6 message in the capture (Ethernet, IPv6 without extension headers, UDP)."""
    seen = []
    for frame in read_frames(pcap):
        data = frame.data
        if len(data) < 62 or data[12:14] != b"\x86\xdd" or data[20] != 17:
            continue
        try:
            message = decode_dhcpv6(data[62:])
        except MalformedPacket:
            continue
        client = message.get(CLIENTID) if isinstance(message, Dhcpv6Message) else None
        if not isinstance(message, Dhcpv6Message) or client is None:
            continue
        lifetimes = [
            option.value
            for ia in message.ia_na
            for option in ia.options
            if option.code == IAADDR and isinstance(option.value, IaAddress)
        ]
        given = next((a for a in lifetimes if a.valid > 0), None)
        seen.append(
            Seen(
                (frame.timestamp_ns or 0) / 1e9,
                message.msg_type,
                message.transaction_id,
                client.data.hex(":"),
                None if given is None else given.address,
                0 if given is None else given.valid,
            )
        )
    return seen


def rows(url: str) -> list[tuple[str, IPv6Address, float, str]]:
    """leases6 as committed: (DUID, address, expires, server)."""
    with psycopg.connect(url) as conn:
        found = conn.execute("SELECT client, host(address), expires, server FROM leases6")
        return [(bytes(c).hex(":"), IPv6Address(a), e, s) for c, a, e, s in found]


def config6(
    path: Path, interface: str, state: Path, url: str, name: str, dhcp4: bool = True
) -> Path:
    """DHCPv6 on ``interface`` with ``url`` as the lease database; DHCPv4 too (the
    heartbeat), on a subnet of its own that no client here asks."""
    write_config(path, interface, state, [subnet(NETWORK, 100, 200)])
    config = json.loads(path.read_text())
    config["server"].update(database=url, name=name, peer_timeout=3)
    if not dhcp4:
        config["server"].update(address="192.0.2.1", interfaces=[])
        config["dhcp"] = {"mode": "off"}
    pool = {"prefix": str(PREFIX), "range": [str(a) for a in POOL], "lease_time": LEASE_TIME}
    config["dhcp6"] = {
        "mode": "full",
        "interfaces": [interface],
        "subnets": [pool],
        "solicit_burst": 1_000_000,  # perfdhcp's clients all come from one address
    }
    path.write_text(json.dumps(config, indent=2))
    return path


def pxed_leases(config: Path) -> list[list[str]]:
    """``pxed leases``'s DHCPv6 rows, split in columns."""
    shown = subprocess.run(
        [str(PYTHON), "-m", "pxed", "leases", "--config", str(config)],
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    return [line.split() for line in shown if line.startswith("00:")]


def link_ready(ns: Namespace, interface: str) -> None:
    wait_until(partial(ns.link_local_ready, interface), 10, f"{interface}'s link-local address")


def position(address: IPv6Address) -> int:
    return int(address) - int(POOL[0])


# 400 fresh clients at 50 a second (8 s), an answer counted lost after 10 s.
PERFDHCP = ["perfdhcp", "-6", "-r", "50", "-R", "400", "-n", "400", "-p", "30", "-d", "10"]
PERFDHCP += ["-W", "5000000"]


def test_two_servers_on_one_postgresql_bind_dhcpv6_clients_each_in_its_own_share(
    netns_lab: NetnsLab, postgres_url: str, tmp_path: Path
):
    """perfdhcp -6 on the link of two twistd pxed sharing one PostgreSQL: each SOLICIT
    reaches both and is ADVERTISEd by both, the client REQUESTs from the first.

    Every REPLY is a row of leases6, no address is in two bindings, the constraint
    refused no bind, both servers bound clients (``pxed leases``' SERVER column), and
    each bound only addresses of its own share (pxe1 the even pool positions, pxe2 the
    odd ones: the DHCPv4 heartbeat's live set reached DHCPv6's allocator)."""
    require_binary("perfdhcp")
    require_binary("tcpdump")
    switch = netns_lab.namespace("sw")
    bridge = netns_lab.bridge(switch, host=None)
    switch.ip("link", "set", bridge.name, "type", "bridge", "mcast_snooping", "0")
    pxeds, configs = {}, {}
    for name, host in SERVERS.items():
        ns = netns_lab.namespace(name[-1] + "s6")
        link = netns_lab.attach(bridge, ns)
        ns.ip("addr", "add", f"{NETWORK.network_address + host}/24", "dev", link.b_if)
        address6 = f"{PREFIX.network_address + host}/64"
        ns.ip("-6", "addr", "add", address6, "dev", link.b_if, "nodad")
        link_ready(ns, link.b_if)
        configs[name] = config6(
            tmp_path / f"{name}.yaml", link.b_if, tmp_path / name, postgres_url, name
        )
        pxeds[name] = start_pxed(ns, configs[name], tmp_path / f"{name}.log")
    clients = netns_lab.namespace("c6")
    link = netns_lab.attach(bridge, clients)
    link_ready(clients, link.b_if)
    for proc in pxeds.values():  # both live for each other: the shares from the first bind
        proc.wait_for_output("servers answering clients now: pxe1, pxe2", timeout=20.0)
        proc.wait_for_output("dhcp6: full mode", timeout=20.0)
    capture = clients.tcpdump(link.b_if, tmp_path / "clients.pcap", "udp port 546 or 547")
    load = clients.run([*PERFDHCP, "-l", link.b_if], timeout=90, check=False)
    capture.stop()
    replies = [m for m in messages(tmp_path / "clients.pcap") if m.kind == M.REPLY]
    bound = {(m.client, m.address) for m in replies if m.address is not None}
    stored = rows(postgres_url)
    by_server = Counter(server for _, _, _, server in stored)
    outside = {
        name: sum(1 for _, a, _, s in stored if s == name and position(a) % 2 != rank)
        for rank, name in enumerate(sorted(SERVERS))
    }
    refused = sum(p.output().count("was bound meanwhile") for p in pxeds.values())
    shown = Counter(row[-1] for row in pxed_leases(configs["pxe1"]))
    print(
        f"{len(replies)} REPLYs granting {len(bound)} bindings; {len(stored)} rows,"
        f" {len({a for _, a, _, _ in stored})} addresses, by server {dict(by_server)};"
        f" outside the server's share: {outside}; binds refused: {refused};"
        f" perfdhcp: {load.stdout[-600:]}"
    )
    assert len(bound) >= 300, load.stdout + load.stderr
    assert bound <= {(duid, address) for duid, address, _, _ in stored}
    assert len({address for _, address, _, _ in stored}) == len(stored)
    assert refused == 0, "binds refused by the unique constraint: the shares overlapped"
    assert by_server["pxe1"] and by_server["pxe2"], by_server
    assert shown == by_server, shown
    assert outside == {"pxe1": 0, "pxe2": 0}, outside
    assert all(p.running() for p in pxeds.values())
    for proc in pxeds.values():
        proc.stop()


def healthz(ns: Namespace) -> tuple[int, str]:
    done = ns.run(
        ["curl", "-s", "-m", "5", "-w", "\\n%{http_code}", f"http://127.0.0.1:{HTTP_PORT}/healthz"],
        check=False,
    )
    body, _, code = done.stdout.rpartition("\n")
    return int(code or 0), body


@dataclass(frozen=True)
class Answer:
    """A REPLY granting an address, with the client message it answers."""

    asked: Seen
    reply: Seen


def answers(seen: list[Seen]) -> list[Answer]:
    """Each REPLY that grants an address, paired with the latest client message before it
    of its transaction (perfdhcp sends each once)."""
    asked: dict[tuple[str, int], Seen] = {}
    paired = []
    for message in sorted(seen, key=lambda m: m.at):
        if message.kind in (M.SOLICIT, M.REQUEST, M.RENEW, M.REBIND):
            asked[message.client, message.xid] = message
        elif message.kind == M.REPLY and message.address is not None:
            question = asked.get((message.client, message.xid))
            if question is not None:
                paired.append(Answer(question, message))
    return paired


def latest_end(confirmed: Answer, answered: list[Answer]) -> float:
    """The latest a binding confirmed by ``confirmed`` can end: its row was written by a
    full-lifetime REPLY the client got before (the expiry is the server's clock at the
    bind, no later than that REPLY's capture, plus the lifetime)."""
    full = [
        a.reply.at
        for a in answered
        if (a.reply.client, a.reply.address) == (confirmed.reply.client, confirmed.reply.address)
        and a.reply.valid == LEASE_TIME
        and a.reply.at <= confirmed.asked.at
    ]
    return max(full, default=0.0) + LEASE_TIME


DOWN_FOR = 10.0  # seconds PostgreSQL stays stopped
# 50 clients; 20 exchanges (a SOLICIT of one of them, binding it or extending its
# binding) and 3 RENEWs a second, for 32 s at most.  perfdhcp renews the last REPLY to
# a client's REQUEST once (a REPLY to a RENEW is not renewed again): the clients bound
# before the stop are what it renews while no REQUEST is answered.
RENEWING = ["perfdhcp", "-6", "-r", "20", "-f", "3", "-R", "50", "-p", "32", "-d", "5"]
BOUND_BEFORE = 40  # clients bound when PostgreSQL stops: renewals for the 10 s
RENEWING += ["-W", "3000000"]


def test_with_postgresql_stopped_pxed_confirms_only_stored_dhcpv6_bindings_and_recovers(
    netns_lab: NetnsLab, tmp_path: Path
):
    """perfdhcp -6 binding and renewing 50 clients; PostgreSQL stopped by its PID for
    DOWN_FOR seconds, then started again on the same data.

    While it is down, RENEWs of stored bindings are answered for no longer than the
    binding has left, REQUESTs are not answered, and /healthz says the database is
    down; afterwards pxed binds again by itself.  Every REPLY the clients saw, before,
    during and after, is a row of leases6."""
    require_binary("perfdhcp")
    require_binary("tcpdump")
    require_binary("curl")
    with cluster() as db:
        url = db.start().url("postgres")
        server, clients = netns_lab.namespace("s6"), netns_lab.namespace("c6")
        link = netns_lab.veth(server, clients)
        server.ip("-6", "addr", "add", f"{PREFIX.network_address + 1}/64", "dev", link.a_if)
        link_ready(server, link.a_if)
        link_ready(clients, link.b_if)
        config = config6(tmp_path / "pxed.yaml", link.a_if, tmp_path / "state", url, "pxe1", False)
        settings = json.loads(config.read_text())
        settings["http"] = {"enabled": True, "listen": ["127.0.0.1"], "port": HTTP_PORT}
        config.write_text(json.dumps(settings))
        pxed = server.spawn(pxed_argv(config), tmp_path / "pxed.log")
        pxed.wait_for_output("dhcp6: full mode", timeout=20.0)
        capture = clients.tcpdump(link.b_if, tmp_path / "clients.pcap", "udp port 546 or 547")
        load = clients.spawn([*RENEWING, "-l", link.b_if], tmp_path / "perfdhcp.log")
        wait_until(lambda: len(rows(url)) >= BOUND_BEFORE, 30, "clients bound before the stop")
        db.stop()
        stopped = time.time()
        wait_until(lambda: "no REPLY leaves" in pxed.output(), 30, "pxed to log the database down")
        code, body = healthz(server)
        assert code == 503 and "server.database" in json.loads(body)["database"], body
        time.sleep(max(0.0, stopped + DOWN_FOR - time.time()))  # down a while, under load
        started = time.time()
        db.start()
        wait_until(lambda: "answers again" in pxed.output(), 30, "pxed to read the leases again")
        wait_until(lambda: healthz(server)[0] == 200, 30, "/healthz to be 200 again")
        load.wait(60)
        capture.stop()
        assert pxed.running(), pxed.output()[-3000:]
        stored = {(duid, address): expires for duid, address, expires, _ in rows(url)}
        seen = messages(tmp_path / "clients.pcap")
        answered = answers(seen)
        renews = [m for m in seen if m.kind == M.RENEW and stopped <= m.at < started]
        unstored = [a for a in answered if (a.reply.client, a.reply.address) not in stored]
        down = [a for a in answered if stopped <= a.asked.at < started]
        confirmed = [a for a in down if a.asked.kind in (M.RENEW, M.REBIND)]
        beyond = [a for a in confirmed if a.asked.at + a.reply.valid > latest_end(a, answered)]
        after = [a for a in answered if a.asked.at > started and a.asked.kind == M.REQUEST]
        print(
            f"{len(answered)} REPLYs granting an address, {len(down)} to messages sent while"
            f" the database was down ({started - stopped:.1f} s, {len(renews)} RENEWs), by kind"
            f" {dict(Counter(a.asked.kind.name for a in down))}; by second since the stop"
            f" {sorted(Counter(int(a.asked.at - stopped) for a in confirmed).items())};"
            f" {len(unstored)} not stored; {len(beyond)} beyond the stored binding;"
            f" {len(after)} REQUESTs answered after the restart"
        )
        assert not unstored, unstored
        assert confirmed and len(confirmed) == len(down), Counter(a.asked.kind for a in down)
        assert all(a.reply.valid < LEASE_TIME for a in confirmed), confirmed
        assert not beyond, beyond
        assert after, "no REQUEST answered after the restart"
        pxed.stop()
