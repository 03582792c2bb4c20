"""DHCPv6 exchanges and IPv6 transfers in the operator's views: the timeline, the boot row
and the address lookup, as pxed's real DHCPv6 adapter publishes them (fake UDP reactor).

The client is the lab's web01 (its DUID-LL carries its MAC); a PXEv6 client with a
DUID-UUID is known by its link-local EUI-64 the same way (tests/pxed/dhcp6/test_exchange.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from io import BytesIO
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

import pytest
from twisted.internet.address import IPv4Address
from twisted.web.resource import Resource, getChildForRequest
from twisted.web.test.requesthelper import DummyRequest

from protocols.dhcpv6.leases import MemoryLeaseStore
from protocols.dhcpv6.wire import Dhcpv6Message, encode_dhcpv6
from pxed.dhcp6.service import Dhcp6Service, Interface
from pxed.events import Dhcp6Exchange, TftpTransferEnded, TftpTransferStarted
from pxed.ops.addresses6 import Addresses6
from pxed.ops.operations import Operations
from pxed.ops.phases import BootFiles, Step, step_of
from pxed.ops.status import mount_status
from pxed.provisioning.inventory import Inventory
from pxed.provisioning.lifecycle import Lifecycle
from pxed.provisioning.resources import Provisioning, mount
from pxed.provisioning.tftp_files import ProvisionFiles
from tests.protocols.dhcpv6_engine_support import (
    LINK_LOCAL,
    SERVER,
    SERVER_DUID,
    M,
    ia,
    message,
    settings,
)
from tests.support.fake_udp import FakeUDPReactor
from tests.support.provision_lab import WEB, lab_config
from tests.support.rendering import rendered

SECRET = b"t" * 32
CONFIG = f"/grub.cfg-01-{WEB}"


class Leases(MemoryLeaseStore):
    """The adapter's durable store, minus the disk."""

    def commit(self) -> None:
        pass

    def close(self) -> None:
        pass


class FakeSocket:
    def __init__(self, interface: str, port: int) -> None:
        self.port = port

    def fileno(self) -> int:
        return 100 + self.port

    def close(self) -> None:
        pass


class Lab:
    def __init__(self, root: Path) -> None:
        config = lab_config(root)
        self.reactor = FakeUDPReactor()
        inventory = Inventory(config)
        lifecycle = Lifecycle.open(config.server.state_dir)
        files = ProvisionFiles(inventory, lifecycle, self.reactor.seconds)
        self.p = Provisioning(inventory, lifecycle, SECRET, files, self.reactor.seconds)
        self.ops = Operations(self.p, self.reactor.seconds)
        self.dhcp6 = Dhcp6Service(
            settings(),
            Leases,
            [Interface("lab0", SERVER, 7)],
            self.reactor,
            FakeSocket,
            events=self.p.events,
        )
        self.ops.services["dhcp6"] = self.dhcp6
        self.site = Resource()
        mount(self.site, self.p)
        mount_status(self.site, self.ops)

    def deliver(self, packet: Dhcpv6Message) -> None:
        port = self.reactor.open_ports[0]
        port.protocol.datagramReceived(encode_dhcpv6(packet), (str(LINK_LOCAL), 546))
        self.reactor.advance(0)

    def lease(self) -> str:
        """SOLICIT and REQUEST, as OVMF's PXEv6 sends them; the address given."""
        self.deliver(message(M.SOLICIT, ia()))
        self.reactor.advance(1)
        self.deliver(message(M.REQUEST, ia(), server_id=SERVER_DUID))
        return str(self.ops.timeline.events(WEB)[-1].fields["address"])

    def tftp(self, address: str, name: str, start: float, end: float) -> None:
        client = f"[{address}]:1300"
        events = self.p.events
        events.publish(TftpTransferStarted(start, None, client, name, 100, "octet"))
        ended = TftpTransferEnded(
            end, None, client, name, "complete", 100, 1, 1228, 4, 0, 100, None
        )
        events.publish(ended)

    def get(self, path: str) -> object:
        return json.loads(self.body(path))

    def body(self, path: str) -> bytes:
        req = DummyRequest([part.encode() for part in path.strip("/").split("/")])
        req.client = IPv4Address("TCP", "10.213.7.99", 40000)
        req.content = BytesIO(b"")
        body = rendered(getChildForRequest(self.site, req), req)
        return body


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    lab = Lab(tmp_path)
    lab.dhcp6.privilegedStartService()
    lab.dhcp6.startService()
    try:
        yield lab
    finally:
        lab.dhcp6.stopService()


def test_dhcpv6_exchanges_are_on_the_hosts_timeline_with_its_mac(lab: Lab) -> None:
    address = lab.lease()
    timeline = lab.get(f"/api/hosts/{WEB}/timeline")
    assert isinstance(timeline, dict)
    texts = [entry["text"] for entry in timeline["events"]]
    assert texts[0].startswith(f"dhcp6 SOLICIT from {WEB} ([{LINK_LOCAL}%lab0]:546) on lab0:")
    assert texts[1].startswith(f"dhcp6 REQUEST from {WEB} ") and f"reply {address}:" in texts[1]
    assert IPv6Address(address) in IPv6Network("fd00:213:7::/64")


def test_tftp_over_ipv6_is_matched_to_the_mac_its_dhcpv6_reply_gave_the_address(
    lab: Lab,
) -> None:
    address = lab.lease()
    lab.reactor.advance(1)
    lab.tftp(address, "grubx64.efi", 2.0, 3.0)
    lab.deliver(message(M.RELEASE, ia(1, IPv6Address(address)), server_id=SERVER_DUID))
    lab.tftp(address, CONFIG, 4.0, 4.5)  # GRUB goes on with the released address
    assert lab.ops.mac_for_ip(f"[{address}]") == WEB
    kinds = [entry.kind for entry in lab.ops.timeline.events(WEB)]
    assert kinds == ["dhcp", "dhcp", "tftp", "tftp", "dhcp", "tftp", "tftp"]


def test_an_ipv6_boot_is_one_row_of_phases_on_the_boots_api(lab: Lab) -> None:
    address = lab.lease()
    lab.reactor.advance(1)
    lab.tftp(address, "grubx64.efi", 2.0, 3.0)
    lab.tftp(address, CONFIG, 4.0, 4.5)
    answer = lab.get("/api/boots")
    assert isinstance(answer, dict)
    [row] = answer["boots"]
    assert row["mac"] == WEB
    phases = {p["name"]: (p["start"], p["end"], p["failed"]) for p in row["phases"]}
    assert phases == {
        "dhcp": (0.0, 1.0, False),
        "loader": (2.0, 3.0, False),
        "config": (4.0, 4.5, False),
    }


def test_metrics_count_the_dhcpv6_exchanges_by_type_and_outcome(lab: Lab) -> None:
    lab.lease()
    text = lab.body("/metrics").decode()
    assert 'pxed_dhcp6_messages_total{outcome="advertise",server="vm",type="SOLICIT"} 1.0' in text
    assert 'pxed_dhcp6_messages_total{outcome="reply",server="vm",type="REQUEST"} 1.0' in text
    assert 'pxed_dhcp6_replies_sent_total{server="vm"} 2.0' in text


def _exchange(kind: str, outcome: str, address: str = "-", port: int = 547) -> Dhcp6Exchange:
    return Dhcp6Exchange(
        1.0, WEB, WEB, kind, 7, "lab0", port, "[fe80::1]:546", False, outcome, address, ""
    )


ADVERTISED = "SOLICIT advertise"
NO_FILES = BootFiles(None, frozenset(), frozenset(), frozenset())


@pytest.mark.parametrize(
    ("event", "step"),
    [
        (
            _exchange("SOLICIT", "advertise", "fd00::5"),
            Step("dhcp", "start", True, "SOLICIT advertise"),
        ),
        (_exchange("REQUEST", "reply", "fd00::5"), Step("dhcp", "end", True, "REQUEST reply")),
        (_exchange("REQUEST", "reply"), Step("dhcp", "end", False, "REQUEST reply")),
        (_exchange("SOLICIT", "reply", "fd00::5"), Step("dhcp", "once", True, "SOLICIT reply")),
        (_exchange("REQUEST", "reply", port=4011), Step("dhcp", "once", True, "REQUEST reply")),
        (_exchange("RELEASE", "reply"), None),
        (_exchange("RENEW", "reply", "fd00::5"), None),
        (_exchange("SOLICIT", "ignored"), None),
    ],
    ids=[
        "advertise",
        "reply",
        "no-address",
        "rapid-commit",
        "boot-service",
        "release",
        "renew",
        "ignored",
    ],
)
def test_which_dhcpv6_exchange_starts_or_ends_the_dhcp_phase(
    event: Dhcp6Exchange, step: Step | None
) -> None:
    assert step_of(event, NO_FILES) == step


def test_the_address_book_forgets_the_oldest_and_ignores_what_gave_no_address() -> None:
    book = Addresses6(limit=2)
    for n in range(3):
        book(_exchange("REQUEST", "reply", f"fd00::{n + 1}"))
    book(_exchange("SOLICIT", "advertise", "fd00::9"))  # only offered
    book(_exchange("REQUEST", "reply"))
    assert [book.mac_for(f"fd00::{n}") for n in (1, 2, 3, 9)] == [None, WEB, WEB, None]
    assert book.mac_for("[fd00::3%lab0]") == WEB
    assert book.mac_for("10.0.0.1") is None
