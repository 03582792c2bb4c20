"""SIGHUP reload: the handler defers to the reactor, a good file swaps in, a bad one is refused."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from twisted.internet.task import Clock

from pxed.provision_service import ReloadOnHangup, build_provisioning
from tests.pxed.provision_lab import WEB, lab_config


class FakeReactor(Clock):
    """A Clock that also queues callFromThread calls, run by ``drain``."""

    def __init__(self) -> None:
        super().__init__()
        self.queued: list[object] = []

    def callFromThread(self, f, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.queued.append(lambda: f(*args, **kwargs))

    def drain(self) -> None:
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
