"""SIGHUP reload: the handler defers to the reactor, a good file swaps in, a bad one is refused.

DHCP and /trees/ follow the same reload: they change together with the rest,
or not at all; keys that need new sockets keep their value and are named.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import task
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.python.failure import Failure

from protocols.dhcp.leases import Lease, MemoryLeaseStore
from protocols.dhcp.options import MessageType
from protocols.dhcp.wire import DhcpPacket, decode_dhcp
from pxed.config import Config, load_config
from pxed.daemon.services import http_service, reload_trees
from pxed.dhcp.service import DhcpService, Interface
from pxed.dhcp.settings import engine_settings
from pxed.provisioning.inventory import Inventory, pin_restart_keys
from pxed.provisioning.service import ReloadOnHangup, build_provisioning
from pxed.web.trees import Trees, build_site, site_trees
from tests.protocols.dhcp_engine_support import request
from tests.pxed.web.test_trees import fetch
from tests.support.fake_udp import FakeUDPReactor
from tests.support.isoimage import make_iso
from tests.support.provision_lab import WEB, lab_config, write_lab


class FakeReactor(Clock):
    """A Clock that also queues callFromThread calls and thread-pool work, run by ``drain``."""

    def __init__(self) -> None:
        super().__init__()
        self.queued: list[object] = []

    def callFromThread(self, f, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.queued.append(lambda: f(*args, **kwargs))

    def getThreadPool(self) -> FakeReactor:
        return self

    def callInThreadWithCallback(self, on_result, f, *args, **kwargs):  # type: ignore[no-untyped-def]
        def work() -> None:
            try:
                result = f(*args, **kwargs)
            except BaseException:
                on_result(False, Failure())
            else:
                on_result(True, result)

        self.queued.append(work)

    def drain(self) -> None:
        while self.queued:
            queued, self.queued = self.queued, []
            for call in queued:
                call()  # type: ignore[operator]


def test_a_real_sighup_reloads_through_the_reactor_and_the_old_handler_comes_back(
    tmp_path: Path,
):
    config = lab_config(tmp_path)
    reactor = FakeReactor()
    provisioning = build_provisioning(config, reactor, lambda c: str(c.server.address))
    service = ReloadOnHangup(provisioning.inventory, reactor)
    before = signal.getsignal(signal.SIGHUP)
    service.startService()
    try:
        config.path.write_text(config.path.read_text().replace("hostname: web01", "hostname: web9"))
        os.kill(os.getpid(), signal.SIGHUP)
        assert provisioning.inventory.config is config  # nothing happens inside the handler
        reactor.drain()
        assert provisioning.inventory.host(WEB).hostname == "web9"  # type: ignore[union-attr]
    finally:
        service.stopService()
    assert signal.getsignal(signal.SIGHUP) == before


def test_a_reload_with_errors_keeps_serving_the_old_config(tmp_path: Path):
    config = lab_config(tmp_path)
    reactor = FakeReactor()
    provisioning = build_provisioning(config, reactor, lambda c: str(c.server.address))
    config.path.write_text("server: [oops\n")
    ReloadOnHangup(provisioning.inventory, reactor).reload()
    assert provisioning.inventory.config is config
    text = provisioning.files.config_text("pxelinux.cfg/01-52-54-00-12-34-56", "10.213.7.99")
    assert text is not None and "install profile web" in text


def test_a_sighup_during_a_reload_asks_for_one_more_load_after_it(tmp_path: Path):
    """Two loads never race to swap, and the last edit is the one in force."""
    config = lab_config(tmp_path)
    reactor = FakeReactor()
    provisioning = build_provisioning(config, reactor, lambda c: str(c.server.address))
    inventory = provisioning.inventory
    loads: list[str] = []
    inventory.follow(lambda new: lambda: loads.append(new.hosts[0].hostname or ""))
    service = ReloadOnHangup(inventory, reactor)
    text = config.path.read_text()
    config.path.write_text(text.replace("hostname: web01", "hostname: web2"))
    service.reload()
    reactor.queued.pop()()  # the worker reads web2; its result waits for the reactor
    config.path.write_text(text.replace("hostname: web01", "hostname: web3"))
    service.reload()
    service.reload()
    reactor.drain()
    assert loads == ["web2", "web3"]
    assert inventory.host(WEB).hostname == "web3"  # type: ignore[union-attr]


@pytest_twisted.inlineCallbacks
def test_a_sighup_reload_loads_in_a_worker_thread_while_the_reactor_serves(tmp_path: Path):
    from twisted.internet import reactor

    config = lab_config(tmp_path)
    provisioning = build_provisioning(config, reactor, lambda c: str(c.server.address))
    inventory = provisioning.inventory
    release, loaded_in = threading.Event(), []

    def slow_prepare(new: Config):  # type: ignore[no-untyped-def]
        loaded_in.append(threading.current_thread().name)
        release.wait(10.0)  # a bound, never a timing assertion
        return lambda: None

    inventory.follow(slow_prepare)
    config.path.write_text(config.path.read_text().replace("hostname: web01", "hostname: web9"))
    reloading = ReloadOnHangup(inventory, reactor).reload()
    for _ in range(500):
        if loaded_in:
            break
        yield task.deferLater(reactor, 0.01, lambda: None)  # the reactor runs meanwhile
    assert loaded_in and loaded_in[0] != threading.current_thread().name
    assert inventory.config is config  # nothing in force before the load ends
    release.set()
    yield reloading
    assert inventory.host(WEB).hostname == "web9"  # type: ignore[union-attr]


def test_build_provisioning_creates_the_secret_and_state_database(tmp_path: Path):
    config = lab_config(tmp_path)
    build_provisioning(config, FakeReactor(), lambda c: "10.0.0.1")
    assert (config.server.state_dir / "callback.secret").is_file()
    assert (config.server.state_dir / "hosts.sqlite3").is_file()


def test_a_transfer_opened_before_a_reload_keeps_its_bytes(tmp_path: Path):
    """Generated files are rendered when opened, so a reload cannot change one mid-transfer."""
    config = lab_config(tmp_path)
    provisioning = build_provisioning(config, FakeReactor(), lambda c: str(c.server.address))
    source = provisioning.files.open("pxelinux.cfg/01-52-54-00-12-34-56", ("10.213.7.21", 2070))
    assert source is not None
    before = source.read(0, source.size())
    config.path.write_text(config.path.read_text().replace('append: "ip=dhcp', 'append: "ip=off'))
    assert provisioning.inventory.reload()
    assert source.read(0, source.size()) == before
    again = provisioning.files.open("pxelinux.cfg/01-52-54-00-12-34-56", ("10.213.7.21", 2070))
    assert again is not None and b"ip=off" in again.read(0, again.size())


# --- DHCP and /trees/ follow the same reload -----------------------------------------------

LAB = Interface("lab0", IPv4Address("10.213.7.1"))
CLIENT = ("0.0.0.0", 68)
PXE_BIOS = ((60, "PXEClient:Arch:00000:UNDI:002001"), (93, (0,)))


class Appliance:
    """The inventory with a DHCP service (fake sockets) and the HTTP site following it."""

    def __init__(self, config: Config) -> None:
        self.inventory = Inventory(config, lambda c: str(c.server.address))
        self.reactor = FakeUDPReactor()
        self.dhcp = DhcpService(
            engine_settings(config, LAB.address),
            MemoryStore,
            [LAB],
            self.reactor,
            lambda name, port: FakeSocket(100 + port),
        )
        self.dhcp.startService()
        self.inventory.follow(self.dhcp.prepare_reload)
        self.site = http_service(config, Clock()).site
        self.inventory.follow(reload_trees(site_trees(self.site)))

    def offer(self, mac: str = WEB) -> DhcpPacket | None:
        """What DHCP answers a BIOS PXE client's DISCOVER from ``mac`` with, if anything."""
        sent = len(self.reactor.sent)
        (port,) = self.reactor.open_ports
        port.protocol.datagramReceived(request(MessageType.DISCOVER, mac, options=PXE_BIOS), CLIENT)
        self.reactor.advance(0)  # the end of the reactor turn: commit, then send
        replies = [decode_dhcp(data) for _, data, _ in self.reactor.sent[sent:]]
        assert len(replies) <= 1
        return replies[0] if replies else None

    def boot_file(self, mac: str = WEB) -> str:
        reply = self.offer(mac)
        assert reply is not None
        return reply.boot_file

    def status(self, path: str) -> int:
        return fetch(self.site, path).status

    def edit(self, old: str, new: str) -> None:
        path = self.inventory.config.path
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new))


class MemoryStore(MemoryLeaseStore):
    """The lease store with what the adapter drives; counts opens to show it is never reopened."""

    opened = 0

    def __init__(self) -> None:
        super().__init__()
        MemoryStore.opened += 1

    def commit(self) -> None:
        pass

    def expire(self, now: float) -> list[Lease]:
        return []

    def close(self) -> None:
        pass


@dataclass
class FakeSocket:
    fd: int

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        pass


def with_boot(root: Path, bios: str) -> Config:
    """The lab with ``dhcp.boot.bios`` set and a second tree, ``old``."""
    (root / "old").mkdir(parents=True, exist_ok=True)
    (root / "old/kernel").write_bytes(b"old tree")
    (root / "tftp").mkdir(parents=True, exist_ok=True)
    (root / "tftp" / bios).write_bytes(b"loader")
    path = with_dhcp(write_lab(root, extra_trees=f"  old: {{path: {root}/old}}\n"), "full")
    path.write_text(path.read_text().replace("dhcp:\n", f"dhcp:\n  boot: {{bios: {bios}}}\n"))
    return load_config(path)


def with_dhcp(path: Path, mode: str) -> Path:
    """The lab config at ``path`` serving DHCP on lab0 in ``mode``."""
    text = path.read_text().replace("state_dir:", "interfaces: [lab0], state_dir:", 1)
    path.write_text(text.replace("dhcp:\n", f"dhcp:\n  mode: {mode}\n"))
    return path


def test_a_reload_changes_the_boot_file_dhcp_answers_without_reopening_the_leases(
    tmp_path: Path,
):
    lab = Appliance(with_boot(tmp_path, "first.kpxe"))
    opened = MemoryStore.opened
    assert lab.boot_file() == "first.kpxe"
    (tmp_path / "tftp/second.kpxe").write_bytes(b"loader")
    lab.edit("bios: first.kpxe", "bios: second.kpxe")
    assert lab.inventory.reload()
    assert lab.boot_file() == "second.kpxe"
    assert MemoryStore.opened == opened
    assert lab.dhcp.store.lease_for(WEB, lab.reactor.seconds()) is not None  # offer kept


STRANGER = "52:54:00:aa:bb:cc"


def test_a_reload_changes_the_pool_and_the_deny_list(tmp_path: Path):
    lab = Appliance(with_boot(tmp_path, "first.kpxe"))
    assert lab.offer(STRANGER) is None
    lab.edit("unknown_hosts: ignore", "unknown_hosts: local\n  allow_unknown: true")
    lab.edit(
        "- network: 10.213.7.0/24", "- {network: 10.213.7.0/24, range: [10.213.7.50, 10.213.7.50]}"
    )
    assert lab.inventory.reload()
    assert lab.offer(STRANGER).yiaddr == IPv4Address("10.213.7.50")
    lab.edit("allow_unknown: true", f'allow_unknown: true\n  deny: ["{STRANGER}"]')
    assert lab.inventory.reload()
    assert lab.offer(STRANGER) is None


def test_a_reload_adds_a_tree_and_removes_one_under_trees(tmp_path: Path):
    lab = Appliance(with_boot(tmp_path, "first.kpxe"))
    assert lab.status("/trees/old/kernel") == 200
    (tmp_path / "new").mkdir()
    (tmp_path / "new/kernel").write_bytes(b"new tree")
    lab.edit(f"  old: {{path: {tmp_path}/old}}", f"  new: {{path: {tmp_path}/new}}")
    assert lab.inventory.reload()
    assert fetch(lab.site, "/trees/new/kernel").body == b"new tree"
    assert lab.status("/trees/old/kernel") == 404
    assert lab.status("/trees/rocky9/images/pxeboot/vmlinuz") == 200


def test_a_moved_tree_is_served_from_its_new_place(tmp_path: Path):
    lab = Appliance(with_boot(tmp_path, "first.kpxe"))
    (tmp_path / "moved").mkdir()
    (tmp_path / "moved/kernel").write_bytes(b"moved tree")
    lab.edit(f"{tmp_path}/old", f"{tmp_path}/moved")
    assert lab.inventory.reload()
    assert fetch(lab.site, "/trees/old/kernel").body == b"moved tree"


def test_a_bad_reload_keeps_the_old_dhcp_answers_and_trees(tmp_path: Path):
    """One part refusing (an image that is not ISO 9660) refuses the whole reload."""
    lab = Appliance(with_boot(tmp_path, "first.kpxe"))
    (tmp_path / "tftp/second.kpxe").write_bytes(b"loader")
    (tmp_path / "junk.iso").write_bytes(b"not an image" * 1000)
    lab.edit("bios: first.kpxe", "bios: second.kpxe")
    lab.edit(f"  old: {{path: {tmp_path}/old}}", f"  junk: {{iso: {tmp_path}/junk.iso}}")
    with capturedLogs() as events:
        assert not lab.inventory.reload()
    assert any("trees.junk" in formatEvent(e) and "refused" in formatEvent(e) for e in events)
    assert lab.boot_file() == "first.kpxe"
    assert lab.status("/trees/old/kernel") == 200
    assert lab.status("/trees/junk/") == 404
    assert lab.inventory.config.dhcp.boot.bios == "first.kpxe"


def test_a_reload_with_config_errors_keeps_the_old_dhcp_answers_and_trees(tmp_path: Path):
    lab = Appliance(with_boot(tmp_path, "first.kpxe"))
    lab.edit("bios: first.kpxe", "bios: second.kpxe, bogus_key: 1")
    lab.edit(f"  old: {{path: {tmp_path}/old}}", "")
    assert not lab.inventory.reload()
    assert lab.boot_file() == "first.kpxe"
    assert lab.status("/trees/old/kernel") == 200


def test_a_listen_address_change_warns_it_needs_a_restart_and_applies_the_rest(
    tmp_path: Path,
):
    lab = Appliance(with_boot(tmp_path, "first.kpxe"))
    lab.edit("listen: [127.0.0.1], port: 8080", "listen: [127.0.0.2], port: 8080")
    lab.edit("hostname: web01", "hostname: web02")
    with capturedLogs() as events:
        assert lab.inventory.reload()
    warnings = [formatEvent(e) for e in events if e["log_level"] == LogLevel.warn]
    assert [w for w in warnings if "restart" in w] == [
        "reload: http.listen changed to [127.0.0.2] in the file, but needs a restart of pxed;"
        " [127.0.0.1] stays in force until then"
    ]
    assert lab.inventory.config.http.listen == (IPv4Address("127.0.0.1"),)
    assert lab.inventory.host(WEB).hostname == "web02"  # type: ignore[union-attr]


def test_urls_take_a_new_server_address_but_keep_the_port_http_listens_on(tmp_path: Path):
    """A new http.port would send clients to a port nothing listens on until the restart."""
    inventory = Inventory(lab_config(tmp_path), lambda c: str(c.server.address))
    write_lab(tmp_path, http_port=9090)
    path = inventory.config.path
    path.write_text(path.read_text().replace("address: 127.0.0.1", "address: 127.0.0.9"))
    assert inventory.reload()
    assert inventory.urls.base == "http://127.0.0.9:8080"


@pytest.mark.parametrize(
    ("started", "wanted", "running"),
    [("full", "off", "off"), ("proxy", "full", "full"), ("full", "proxy", "full"),
     ("off", "full", "off")],
)  # fmt: skip
def test_a_dhcp_mode_change_applies_only_without_new_sockets(
    tmp_path: Path, started: str, wanted: str, running: str
):
    """full -> proxy needs udp/4011 and off -> full the server port: those wait for a restart."""
    path = with_dhcp(write_lab(tmp_path), started)
    inventory = Inventory(load_config(path), lambda c: str(c.server.address))
    path.write_text(path.read_text().replace(f"mode: {started}", f"mode: {wanted}"))
    with capturedLogs() as events:
        assert inventory.reload()
    assert inventory.config.dhcp.mode == running
    warned = any("dhcp.mode" in formatEvent(e) for e in events)
    assert warned == (running != wanted)


def test_every_tftp_key_needs_a_restart_and_is_named(tmp_path: Path):
    started = lab_config(tmp_path / "a")
    changed = replace(started, tftp=replace(started.tftp, port=69, max_blksize=1024))
    config, pinned = pin_restart_keys(started, changed)
    assert config.tftp == started.tftp
    assert [key for key, _, _ in pinned] == ["tftp.port", "tftp.max_blksize"]


def test_an_unchanged_iso_tree_is_not_indexed_again_and_a_replaced_one_is(tmp_path: Path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "kernel").write_bytes(b"first")
    image = make_iso(source, tmp_path / "dvd.iso")
    trees = Trees({"dvd": image})
    first = trees.children[b"dvd"]
    trees.swap(trees.load({"dvd": image}))
    assert trees.children[b"dvd"] is first
    (source / "kernel").write_bytes(b"second")
    make_iso(source, tmp_path / "new.iso").replace(image)
    trees.swap(trees.load({"dvd": image}))
    assert trees.children[b"dvd"] is not first
    site = build_site(Clock(), {}, None)
    site_trees(site).swap(trees.children)
    assert fetch(site, "/trees/dvd/kernel").body == b"second"


def test_a_tree_folder_not_mounted_yet_answers_404_until_it_appears(tmp_path: Path):
    site = build_site(Clock(), {"later": tmp_path / "later"}, None)
    assert fetch(site, "/trees/later/kernel").status == 404
    (tmp_path / "later").mkdir()
    (tmp_path / "later/kernel").write_bytes(b"k")
    assert fetch(site, "/trees/later/kernel").status == 200
