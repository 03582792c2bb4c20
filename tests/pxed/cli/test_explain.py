"""``pxed explain``: golden output for a BIOS, a UEFI, an iPXE and a relayed client, and the same
DHCP answer from the DHCP adapter itself.

The fixture is tests/pxed/configs/explain/. Regenerate the goldens with
``PXED_UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import os
import shutil
import time
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from protocols.dhcp.leases import Lease, MemoryLeaseStore
from protocols.dhcp.wire import decode_dhcp, encode_dhcp
from pxed.cli.explain import discover, explain
from pxed.cli.main import main
from pxed.config import Config, load_config
from pxed.dhcp.leases import SqliteLeaseStore
from pxed.dhcp.service import DhcpService, Interface
from pxed.dhcp.settings import engine_settings
from pxed.pcap.dhcp_view import detail
from pxed.provisioning.lifecycle import Lifecycle
from tests.support.fake_udp import FakeUDPReactor
from tests.support.provision_lab import DEB, DEB_HOST, DEB_IP, lab_config

HERE = Path(__file__).parents[1]
FIXTURE = HERE / "configs/explain"
GOLDEN = HERE / "golden/explain"
UPDATE = os.environ.get("PXED_UPDATE_GOLDEN") == "1"
SERVER = IPv4Address("127.0.0.1")

# case -> (mac, arch, user class, giaddr)
CASES = {
    "bios": ("52:54:00:12:34:56", 0, None, None),
    "uefi": ("52:54:00:12:34:57", 7, None, None),
    "ipxe": ("52:54:00:12:34:56", 0, "iPXE", None),
    "relayed": ("52:54:00:12:34:58", 0, None, "10.213.9.1"),
}


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """A private copy: the output must not depend on where the fixture lives."""
    shutil.copytree(FIXTURE, tmp_path / "explain")
    return load_config(tmp_path / "explain/pxed.yaml")


@pytest.mark.parametrize("case", sorted(CASES))
def test_explain_output_matches_its_golden_file(config: Config, case: str) -> None:
    text = explain(config, *CASES[case])
    golden = GOLDEN / f"{case}.txt"
    if UPDATE:
        golden.write_text(text)
    assert golden.exists(), f"no golden file {golden}: run with PXED_UPDATE_GOLDEN=1 and review"
    assert text == golden.read_text()


class FakeSocket:
    def __init__(self, interface: str, port: int) -> None:
        self.port = port

    def fileno(self) -> int:
        return 100

    def close(self) -> None:
        pass


class Leases(MemoryLeaseStore):
    """The adapter's durable store, minus the disk."""

    def commit(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_dhcp_adapter_sends_what_explain_shows(config: Config, case: str) -> None:
    """The daemon's DHCP adapter, given the same DISCOVER, sends exactly the reply explain lists."""
    mac, arch, user_class, giaddr = CASES[case]
    reactor = FakeUDPReactor()
    settings = engine_settings(config, SERVER)
    service = DhcpService(settings, Leases, [Interface("lo", SERVER)], reactor, FakeSocket)
    service.privilegedStartService()
    service.startService()
    try:
        sender = (giaddr, 67) if giaddr else ("0.0.0.0", 68)
        datagram = encode_dhcp(discover(mac, arch, user_class, giaddr), min_size=300)
        reactor.deliver(datagram, reactor.open_ports[0].address, sender)
        reactor.advance(0)
        (_, sent, _), *_ = reactor.sent
    finally:
        service.stopService()
    shown = explain(config, *CASES[case])
    for line in detail(decode_dhcp(sent)):
        assert f"\n  {line}\n" in shown


def test_the_uefi_client_gets_its_profiles_loader_and_the_ipxe_client_its_script(
    config: Config,
) -> None:
    assert 'option 67 bootfile (11 bytes): "grubx64.efi"' in explain(config, *CASES["uefi"])
    ipxe = explain(config, *CASES["ipxe"])
    assert 'file: "http://127.0.0.1:8080/boot/52:54:00:12:34:56.ipxe"' in ipxe


def test_an_unknown_mac_is_explained_as_refused(config: Config) -> None:
    text = explain(config, "52:54:00:99:99:99", 0, None, None)
    assert "host: none; 52:54:00:99:99:99 is not in the inventory" in text
    assert "DHCP (full mode): no answer:" in text
    assert "not generated (pxed ignores this MAC)" in text


def test_the_cli_runs_explain_and_names_a_bad_mac(
    config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(config.path)
    assert main(["explain", "--config", path, "--mac", "52-54-00-12-34-56"]) == 0
    assert capsys.readouterr().out.startswith("client 52:54:00:12:34:56, arch 0\n")
    assert main(["explain", "--config", path, "--mac", "nonsense"]) == 1
    assert "nonsense" in capsys.readouterr().err


def test_explain_writes_nothing_to_the_state_dir(config: Config) -> None:
    explain(config, *CASES["bios"])
    assert not config.server.state_dir.exists()


def test_a_client_holding_a_lease_is_offered_its_leased_address(config: Config) -> None:
    """As the daemon would: the engine answers from the lease table in server.state_dir."""
    store = SqliteLeaseStore.open(config.server.state_dir)
    kiosk = CASES["uefi"][0]
    store.bind(Lease(kiosk, IPv4Address("127.0.0.150"), time.time() + 600), time.time())
    store.commit()
    store.close()
    assert "  yiaddr: 127.0.0.150\n" in explain(config, *CASES["uefi"])


def test_an_installed_once_host_is_explained_with_its_kickstart_refused(config: Config) -> None:
    """The daemon answers 409 for it (a fetch would make it reinstall); explain says the same."""
    mac = CASES["bios"][0]
    states = Lifecycle.open(config.server.state_dir)
    states.done(mac, 1.0)
    states.close()
    report = explain(config, *CASES["bios"])
    assert "lifecycle state: installed" in report
    assert "refused (" in report and "rearm" in report
    assert "passes pykickstart" not in report


def test_explain_names_the_rule_that_admits_or_refuses_a_requester(config: Config) -> None:
    """Issue 14: `pxed explain --requester ADDR [--neighbour MAC]` says who gets the Kickstart."""
    web = "52:54:00:12:34:56"

    def line(address: str, neighbour: str | None) -> str:
        text = explain(config, web, 0, None, None, (address, neighbour))
        return text.splitlines()[-1]

    assert line("10.0.0.9", web) == ("  to 10.0.0.9: served: its neighbour entry is the host's MAC")
    assert line("10.0.0.9", "52:54:00:66:66:66").startswith(
        "  to 10.0.0.9: refused: its neighbour entry is 52:54:00:66:66:66"
    )
    assert line("127.0.0.21", None) == (
        "  to 127.0.0.21: served: off-link, from the host's reserved or leased address"
    )
    assert line("10.1.2.3", None).startswith("  to 10.1.2.3: refused: off-link")


def test_explain_names_a_preseed_hosts_family_url_checker_and_boot_arguments(tmp_path: Path):
    if shutil.which("debconf-set-selections") is None:
        pytest.skip("debconf-set-selections (debconf) not installed")
    text = explain(lab_config(tmp_path, extra=DEB_HOST), DEB, 0, None, None, (DEB_IP, None))
    url = f"http://127.0.0.1:8080/preseed/{DEB}"
    assert f"\npreseed: {url}\n  template deb.preseed.j2 renders (4 lines) and passes " in text
    assert "passes debconf-set-selections\n" in text
    assert (
        f"auto=true priority=critical url={url}/<signature> interface=auto hostname=deb01" in text
    )
    assert "inst.ks" not in text
    assert f"  to {DEB_IP}: served: off-link, from the host's reserved or leased address" in text


def test_with_server_database_explain_reads_the_shared_host_states(
    tmp_path: Path, postgres_url: str
) -> None:
    from pxed.provisioning.pg_lifecycle import PostgresLifecycle
    from tests.support.provision_lab import WEB, write_lab

    path = write_lab(tmp_path)
    path.write_text(
        path.read_text().replace("server: {", f"server: {{database: '{postgres_url}', ", 1)
    )
    shared = PostgresLifecycle.open_database(postgres_url, "pxe2")
    shared.done(WEB, 100.0)
    shared.close()
    report = explain(load_config(path), WEB, 0, None, None)
    assert "lifecycle state: installed" in report
