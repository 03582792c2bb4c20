"""Two pxed servers behind one relay, one PostgreSQL: the clients split between them, no
address for two clients, and takeover; then one pxed whose PostgreSQL stops a while.

Two twistd pxed processes, each in a namespace of its own, hang off one bridge with
the relay's namespace and serve the same pool from the same database (a throwaway
PostgreSQL on a Unix socket, ``lab/postgres.py``).  perfdhcp is the relay
(``-l``: giaddr set, replies unicast back to it) and sends every request to an
address both servers hold, whose neighbour entry at the relay is the broadcast MAC,
so each server gets every request, as each DHCP helper of a real relay does.  Each
server answers the clients its RFC 3074 bucket gives it (``protocols.dhcp.split``);
a few seconds in, one pxed is killed with SIGKILL and the other, once the victim's
heartbeat is older than ``server.peer_timeout``, answers everyone.

What the clients were told is read from a capture on the relay's link: every ACK
(chaddr, yiaddr, server identifier, time).  The checks: before the kill both
servers ACKed; after the window the survivor ACKed clients of the victim's bucket;
no address is, at the end, the last ACKed address of two MACs, and the database
holds no address for two MACs (SQL); and the database refused no bind (the servers'
logs): while both are live each probes its own share of the pool
(``protocols.share.Share``), and the survivor takes the victim's share
only after its polls have read the victim's leases.  The exchanges lost around the kill and after
the window are printed, not asserted (timing).

The last test stops the database under one pxed: it ACKs nothing unstored, goes on
confirming the leases it knows stored for the time they have left, and recovers.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections import Counter
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, summarize_address_range
from pathlib import Path

import psycopg
import pytest

from lab.netns import Namespace, NetnsLab, require_binary
from lab.procs import run, wait_until
from protocols.dhcp.options import MessageType
from protocols.dhcp.split import owner
from protocols.dhcp.wire import decode_dhcp
from protocols.errors import MalformedPacket
from pxed.pcap.capture import read_frames
from tests.interop.dhcp_runner import (
    in_namespace,
    runner_argv,
    start_pxed,
    subnet,
    write_config,
)
from tests.support.postgres import cluster

pytestmark = [pytest.mark.interop, pytest.mark.netns, pytest.mark.slow]

NETWORK = IPv4Network("10.214.0.0/20")  # room for the run: clients never run out of pool
SERVERS = {"pxe1": 1, "pxe2": 3}  # host numbers
CLIENT_HOST = 2  # the relay: perfdhcp
SHARED = NETWORK.network_address + 4050  # both servers', outside the pool
PEER_TIMEOUT = 3
EXCHANGES = 3000
RATE = 150  # exchanges a second: about 20 s
KILL_AFTER = 7.0  # seconds into the run
HTTP_PORT = 8080


@dataclass(frozen=True)
class Ack:
    at: float
    mac: str
    ip: IPv4Address
    server: IPv4Address | None


@dataclass
class Exchanges:
    acks: list[Ack]
    started: dict[int, float]  # xid: when its DISCOVER was sent
    acked: set[int]  # the xids that got an ACK

    def lost(self, start: float, end: float) -> int:
        """Exchanges begun between ``start`` and ``end`` that never got their ACK."""
        return sum(
            1 for xid, at in self.started.items() if start <= at < end and xid not in self.acked
        )


def exchanges_in(pcap: Path) -> Exchanges:
    """Every DISCOVER and ACK in the capture (Ethernet, IPv4, UDP)."""
    seen = Exchanges([], {}, set())
    for frame in read_frames(pcap):
        data = frame.data
        if len(data) < 42 or data[12:14] != b"\x08\x00" or data[23] != 17:
            continue
        udp = 14 + (data[14] & 0x0F) * 4
        try:
            packet = decode_dhcp(data[udp + 8 :])
        except MalformedPacket:
            continue
        at = (frame.timestamp_ns or 0) / 1e9
        if packet.message_type == MessageType.DISCOVER:
            seen.started.setdefault(packet.xid, at)
        elif packet.message_type == MessageType.ACK:
            seen.acks.append(Ack(at, packet.mac, packet.yiaddr, packet.server_id))
            seen.acked.add(packet.xid)
    return seen


def on_network(host: int) -> str:
    return f"{NETWORK.network_address + host}/{NETWORK.prefixlen}"


def shared_config(path: Path, interface: str, state: Path, url: str, name: str) -> Path:
    write_config(path, interface, state, [subnet(NETWORK, 10, 4000)])
    config = json.loads(path.read_text())
    config["server"].update(database=url, name=name, peer_timeout=PEER_TIMEOUT)
    path.write_text(json.dumps(config, indent=2))
    return path


def perfdhcp_drops(output: str) -> Counter[str]:
    drops: Counter[str] = Counter()
    for name, block in re.findall(r"Statistics for: ([A-Z-]+)\*+\n(.*?)\n\n", output, re.S):
        for key in ("sent packets", "received packets", "drops"):
            found = re.search(rf"{key}: (\d+)", block)
            drops[f"{name} {key}"] = int(found.group(1)) if found else 0
    return drops


def share(relay: Namespace, interface: str, servers: list[Namespace]) -> None:
    """Every packet the relay sends to SHARED reaches each server (perfdhcp's socket
    cannot send to a broadcast address: it lacks SO_BROADCAST)."""
    for ns in servers:
        ns.ip("addr", "add", f"{SHARED}/32", "dev", "lo")
    relay.ip(
        "neigh", "replace", str(SHARED), "lladdr", "ff:ff:ff:ff:ff:ff",
        "dev", interface, "nud", "permanent",
    )  # fmt: skip


def test_two_servers_behind_a_relay_split_the_clients_and_the_survivor_of_a_kill_takes_all(
    netns_lab: NetnsLab, postgres_url: str, tmp_path: Path
):
    require_binary("perfdhcp")
    require_binary("tcpdump")
    switch = netns_lab.namespace("sw")
    bridge = netns_lab.bridge(switch, host=None)
    spaces: dict[str, Namespace] = {}
    pxeds = {}
    for name, host in SERVERS.items():
        ns = spaces[name] = netns_lab.namespace(name[-1] + "s")
        link = netns_lab.attach(bridge, ns)
        ns.ip("addr", "add", on_network(host), "dev", link.b_if)
        config = shared_config(
            tmp_path / f"{name}.yaml", link.b_if, tmp_path / name, postgres_url, name
        )
        pxeds[name] = start_pxed(ns, config, tmp_path / f"{name}.log")
    relay = netns_lab.namespace("rel")
    link = netns_lab.attach(bridge, relay)
    relay.ip("addr", "add", on_network(CLIENT_HOST), "dev", link.b_if)
    share(relay, link.b_if, list(spaces.values()))
    for proc in pxeds.values():  # both live for each other: the split from the first exchange
        proc.wait_for_output("servers answering clients now: pxe1, pxe2", timeout=20.0)
    capture = relay.tcpdump(link.b_if, tmp_path / "relay.pcap", "udp port 67 or udp port 68")
    relay_ip = NETWORK.network_address + CLIENT_HOST
    load = relay.spawn(
        ["perfdhcp", "-4", "-r", str(RATE), "-R", str(EXCHANGES), "-n", str(EXCHANGES),
         "-p", str(EXCHANGES // RATE + 15), "-d", "2", "-W", "3000000",
         "-l", str(relay_ip), str(SHARED)],
        tmp_path / "perfdhcp.log",
    )  # fmt: skip
    time.sleep(KILL_AFTER)
    victim, survivor = "pxe1", "pxe2"
    os.kill(pxeds[victim].pid, signal.SIGKILL)
    killed_at = time.time()
    pxeds[victim].wait(10)
    load.wait(EXCHANGES // RATE + 60)
    capture.stop()
    stats = perfdhcp_drops(load.output())
    seen = exchanges_in(tmp_path / "relay.pcap")
    acks = seen.acks

    last: dict[str, IPv4Address] = {}
    for ack in sorted(acks, key=lambda a: a.at):
        last[ack.mac] = ack.ip
    told_twice = {ip: n for ip, n in Counter(last.values()).items() if n > 1}
    with psycopg.connect(postgres_url) as conn:
        stored = conn.execute("SELECT count(*), count(DISTINCT ip) FROM leases").fetchone()
        doubles = conn.execute(
            "SELECT count(*) FROM (SELECT ip FROM leases GROUP BY ip"
            " HAVING count(DISTINCT mac) > 1) AS shared"
        ).fetchone()
        by_server = dict(conn.execute("SELECT server, count(*) FROM leases GROUP BY server"))
    address = {name: NETWORK.network_address + host for name, host in SERVERS.items()}
    before = Counter(a.server for a in acks if a.at < killed_at - 1)
    window = killed_at + PEER_TIMEOUT + 2  # the victim's last beat, the timeout, a beat to read
    taken_over = [
        a
        for a in acks
        if a.at > window and owner(bytes.fromhex(a.mac.replace(":", "")), SERVERS) == victim
    ]
    collisions = sum(p.output().count("was bound meanwhile") for p in pxeds.values())
    print(
        f"{len(acks)} ACKs to {len(last)} MACs seen at the relay, {stored} leases"
        f" (rows, distinct addresses) by server {by_server}; perfdhcp: {dict(stats)};"
        f" ACKs before the kill by server identifier: {dict(before)};"
        f" {len(taken_over)} ACKs by {survivor} to {victim}'s clients after the window;"
        f" binds the database refused: {collisions}; exchanges lost (DISCOVER, no ACK):"
        f" {seen.lost(0, killed_at - 1)} before the kill,"
        f" {seen.lost(killed_at - 1, killed_at + 5)} from 1 s before to 5 s after it,"
        f" {seen.lost(killed_at + 5, float('inf'))} later"
    )
    lost_at = sorted(
        int(at - killed_at) for xid, at in seen.started.items() if xid not in seen.acked
    )
    print("lost by second from the kill:", Counter(lost_at))
    assert not told_twice, f"addresses ACKed last to two MACs: {told_twice}"
    assert doubles == (0,) and stored is not None and stored[0] == stored[1]
    assert collisions == 0, "binds refused by the unique constraint: the shares overlapped"
    assert len(acks) > EXCHANGES // 2, load.output()[-2000:]
    assert before[address[victim]] and before[address[survivor]], before
    assert taken_over and {a.server for a in taken_over} == {address[survivor]}
    assert pxeds[survivor].running(), pxeds[survivor].output()[-2000:]


def healthz(ns: Namespace, address: IPv4Address) -> tuple[int, str]:
    done = ns.run(
        ["curl", "-s", "-m", "5", "-w", "\\n%{http_code}", f"http://{address}:{HTTP_PORT}/healthz"],
        check=False,
    )
    body, _, code = done.stdout.rpartition("\n")
    return int(code or 0), body


def acked(path: Path) -> dict[str, str]:
    """mac -> address of every ACK of a fresh client the load generator saw (whole lines)."""
    if not path.exists():
        return {}
    lines = (line.split() for line in path.read_text().splitlines())
    return {parts[0]: parts[1] for parts in lines if len(parts) == 3}


@dataclass(frozen=True, eq=False)
class Renewal:
    """An ACK to a bound client asking for its lease again (``dhcp_runner load --renewers``)."""

    mac: str
    ip: str
    form: str  # rebinding (ciaddr) or init-reboot (option 50)
    lease_time: int
    sent: float  # epoch: when the REQUEST left
    got: float  # epoch: when its ACK came


def renewals(path: Path) -> list[Renewal]:
    if not path.exists():
        return []
    lines = (line.split() for line in path.read_text().splitlines())
    return [
        Renewal(mac, ip, form, int(time_), float(sent), float(got))
        for mac, ip, _, form, time_, sent, got in (parts for parts in lines if len(parts) == 7)
    ]


LEASE_TIME = 3600  # dhcp_runner.subnet's
POOL = (NETWORK.network_address + 10, NETWORK.network_address + 4000)
DOWN_FOR = 10.0  # seconds PostgreSQL stays stopped


def test_with_postgresql_stopped_pxed_confirms_only_stored_leases_says_so_and_recovers(
    netns_lab: NetnsLab, tmp_path: Path
):
    """Light load (two exchanges in flight, fresh MACs) and eight bound clients asking for
    their leases again every half second (REBINDING and INIT-REBOOT in turn); PostgreSQL
    stopped by its PID for DOWN_FOR seconds, then started again on the same data.

    While it is down the renewals of stored leases are ACKed for no longer than the
    stored lease has left, and nothing else; every ACK the clients saw, before, during
    and after, is a row of the table once pxed has recovered."""
    require_binary("curl")
    with cluster() as db:
        url = db.start().url("postgres")
        server, client = netns_lab.namespace("srv"), netns_lab.namespace("cli")
        link = netns_lab.veth(server, client)
        server.ip("addr", "add", on_network(1), "dev", link.a_if)
        for block in summarize_address_range(*POOL):  # a REBINDING's ACK goes to ciaddr
            client.ip("route", "add", "local", str(block), "dev", "lo")
        address = NETWORK.network_address + 1
        config = shared_config(tmp_path / "pxed.yaml", link.a_if, tmp_path / "state", url, "pxe1")
        settings = json.loads(config.read_text())
        settings["http"] = {"enabled": True, "listen": [str(address)], "port": HTTP_PORT}
        config.write_text(json.dumps(settings))
        pxed = start_pxed(server, config, tmp_path / "pxed.log")
        acks = tmp_path / "acks"
        load = client.spawn(
            runner_argv("load", "--interface", link.b_if, "--acks", str(acks),
                        "--duration", "120", "--window", "2",
                        "--renewers", "8", "--renew-every", "0.5"),
            tmp_path / "load.log",
        )  # fmt: skip
        wait_until(
            lambda: len(acked(acks)) >= 20 and len(renewals(acks)) >= 16,
            30,
            "20 ACKs and 16 renewals before the database stops",
        )
        stopped = time.time()
        db.stop()
        wait_until(lambda: "no ACK leaves" in pxed.output(), 30, "pxed to log the database down")
        code, body = healthz(server, address)
        assert code == 503 and "server.database" in json.loads(body)["database"], body
        time.sleep(max(0.0, stopped + DOWN_FOR - time.time()))  # down a while, under load
        during = len(acked(acks))
        started = time.time()
        db.start()
        wait_until(lambda: len(acked(acks)) >= during + 20, 60, "ACKs after the database is back")
        wait_until(lambda: healthz(server, address)[0] == 200, 30, "/healthz to be 200 again")
        load.stop()
        assert pxed.running(), pxed.output()[-3000:]
        seen, renewed = acked(acks), renewals(acks)
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT mac, host(ip), expires FROM leases").fetchall()
        stored = {mac: (ip, expires) for mac, ip, expires in rows}
        unstored = {mac: ip for mac, ip in seen.items() if stored.get(mac, (None,))[0] != ip}
        unstored |= {r.mac: r.ip for r in renewed if stored.get(r.mac, (None,))[0] != r.ip}
        confirmed = [r for r in renewed if r.lease_time != LEASE_TIME]
        # The lease a confirmation promises ends no later than the stored one, which the
        # table still holds (the client went on renewing once pxed recovered).
        ends = {r: min(bound(r, renewed), stored.get(r.mac, (None, 0.0))[1]) for r in confirmed}
        beyond = [r for r in confirmed if r.sent + r.lease_time > ends[r]]
        print(
            f"{len(seen)} ACKs to fresh clients, {during} before the restart;"
            f" {len(renewed)} renewals ACKed, {len(confirmed)} from stored leases"
            f" ({dict(Counter(r.form for r in confirmed))}), by second since the stop"
            f" ({started - stopped:.1f} s down):"
            f" {sorted(Counter(int(r.sent - stopped) for r in confirmed).items())};"
            f" {len(unstored)} ACKs not stored; {len(beyond)} beyond the stored lease"
        )
        assert not unstored, unstored
        assert {r.form for r in confirmed} == {"rebinding", "init-reboot"}, confirmed
        assert all(stopped <= r.sent and r.lease_time < LEASE_TIME for r in confirmed)
        assert not beyond, beyond
        assert "answers again" in pxed.output()
        pxed.stop()


def bound(confirmed: Renewal, renewed: list[Renewal]) -> float:
    """The latest a stored lease confirmed by ``confirmed`` can end: its row was written by
    a full-length ACK this client got before (its expiry is the server's clock at the
    bind, no later than that ACK's arrival, plus the lease time)."""
    full = [r.got for r in renewed if r.mac == confirmed.mac and r.lease_time == LEASE_TIME]
    return max((got for got in full if got <= confirmed.sent), default=0.0) + LEASE_TIME


def test_a_live_server_cut_off_from_its_clients_has_them_answered_by_its_peer_once_they_wait(
    netns_lab: NetnsLab, postgres_url: str, tmp_path: Path
):
    """pxe1's link to the clients goes down while its heartbeat (PostgreSQL on a Unix
    socket) goes on, so pxe2 still counts it live.  A client of pxe1's bucket retrying
    its DISCOVER is answered by pxe2: at the copy whose secs reaches
    ``server.peer_ack_delay`` (10), or at the third copy for firmware whose secs stay 0
    (``protocols.dhcp.overdue``); pxe2 logs the MAC once."""
    switch = netns_lab.namespace("cw")
    bridge = netns_lab.bridge(switch, host=None)
    links, pxeds = {}, {}
    for name, host in SERVERS.items():
        ns = netns_lab.namespace("c" + name[-1])
        links[name] = link = netns_lab.attach(bridge, ns)
        ns.ip("addr", "add", on_network(host), "dev", link.b_if)
        config = shared_config(
            tmp_path / f"{name}.yaml", link.b_if, tmp_path / name, postgres_url, name
        )
        pxeds[name] = (ns, start_pxed(ns, config, tmp_path / f"{name}.log"))
    client = netns_lab.namespace("cc")
    client_if = netns_lab.attach(bridge, client).b_if
    for _, proc in pxeds.values():
        proc.wait_for_output("servers answering clients now: pxe1, pxe2", timeout=20.0)
    macs = [f"52:54:00:cc:00:{n:02x}" for n in range(64)]
    pxe1s = [mac for mac in macs if owner(bytes.fromhex(mac.replace(":", "")), SERVERS) == "pxe1"]

    def retry(mac: str, *secs: int) -> dict[str, object]:
        argv = ["retry", "--interface", client_if, "--mac", mac, "--wait", "2"]
        done = run(in_namespace(client, *argv, "--secs", *map(str, secs)), timeout=60)
        return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]

    pxe1, pxe2 = (str(NETWORK.network_address + host) for host in SERVERS.values())
    assert retry(pxe1s[0], 0, 0, 0) == {"copy": 1, "servers": [pxe1]}  # served: its owner
    ns1, _ = pxeds["pxe1"]
    ns1.ip("link", "set", links["pxe1"].b_if, "down")
    assert retry(pxe1s[1], 0, 4, 12) == {"copy": 3, "servers": [pxe2]}  # EDK2's secs
    assert retry(pxe1s[2], 0, 12) == {"copy": 2, "servers": [pxe2]}  # secs alone
    assert retry(pxe1s[3], 0, 0, 0, 0) == {"copy": 3, "servers": [pxe2]}  # copies alone
    log = pxeds["pxe2"][1].output()
    for mac in pxe1s[1:4]:
        assert log.count(f"dhcp {mac}: answered for a live peer") == 1, log
    assert "this one answers every client" not in log  # pxe1 stayed live throughout
