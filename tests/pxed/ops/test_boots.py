"""A host's boot as phases, derived from typed events with made-up times (no I/O, no clock).

The events are built as the adapters publish them (TFTP and HTTP without a MAC, matched
by the client's reserved address); the config is the provisioning lab's (tests/support).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from pxed.config import Config, load_config
from pxed.events import (
    CallbackReceived,
    DhcpExchange,
    Event,
    HttpRequestStarted,
    HttpResponse,
    KickstartRequest,
    TftpRefused,
    TftpTransferEnded,
    TftpTransferStarted,
)
from pxed.ops.boots import MAX_BOOTS, WINDOW, Boot, Boots, BootsSubscriber
from pxed.ops.phases import PHASES, Step
from tests.support.provision_lab import KIOSK, WEB, write_lab

WEB_IP = "10.213.7.21"
KERNEL = "/trees/rocky9/images/pxeboot/vmlinuz"
INITRD = "/trees/rocky9/images/pxeboot/initrd.img"
CONFIG_FILE = "pxelinux.cfg/01-52-54-00-12-34-56"


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    root: Path = tmp_path_factory.mktemp("lab")
    return load_config(write_lab(root))


def dhcp(t: float, kind: str, outcome: str, mac: str = WEB) -> DhcpExchange:
    return DhcpExchange(t, mac, kind, 7, "lab0", 67, "0.0.0.0:68", outcome, WEB_IP, "")


def tftp_start(t: float, file: str) -> TftpTransferStarted:
    return TftpTransferStarted(t, None, f"{WEB_IP}:2070", file, 100, "octet")


def tftp_end(t: float, file: str, outcome: str = "complete") -> TftpTransferEnded:
    return TftpTransferEnded(
        t, None, f"{WEB_IP}:2070", file, outcome, 100, 0.1, 1468, 1, 0, 100, None
    )


def tftp_refused(t: float, file: str, outcome: str = "not-found") -> TftpRefused:
    return TftpRefused(t, None, f"{WEB_IP}:2070", file, outcome, "file not found", 1)


def http_start(t: float, path: str) -> HttpRequestStarted:
    return HttpRequestStarted(t, None, "GET", path, WEB_IP)


def http_end(t: float, path: str, status: int = 200) -> HttpResponse:
    return HttpResponse(t, None, "GET", path, status, WEB_IP, 100)


def kickstart(t: float, outcome: str = "served") -> KickstartRequest:
    return KickstartRequest(t, WEB, "kickstart", WEB_IP, outcome, "web.ks.j2")


def callback(t: float, outcome: str = "done") -> CallbackReceived:
    return CallbackReceived(t, WEB, WEB_IP, outcome, "accepted")


def whole_boot(t: float = 0.0) -> list[Event]:
    return [
        dhcp(t + 0, "DISCOVER", "offer"),
        dhcp(t + 1, "REQUEST", "ack"),
        tftp_start(t + 2, "pxelinux.0"),
        tftp_end(t + 2.1, "pxelinux.0", "size-probe"),
        tftp_start(t + 2.2, "pxelinux.0"),
        tftp_end(t + 3, "pxelinux.0"),
        tftp_start(t + 3.5, "ldlinux.c32"),
        tftp_end(t + 4, "ldlinux.c32"),
        tftp_refused(t + 4.1, "pxelinux.cfg/564d4f2a-0000"),
        tftp_start(t + 4.2, CONFIG_FILE),
        tftp_end(t + 5, CONFIG_FILE),
        http_start(t + 6, KERNEL),
        http_end(t + 8, KERNEL),
        http_start(t + 8, INITRD),
        http_end(t + 12, INITRD),
        dhcp(t + 20, "DISCOVER", "offer"),  # the installer's own
        dhcp(t + 21, "REQUEST", "ack"),
        kickstart(t + 22),
        callback(t + 300),
    ]


def boots_of(config: Config, events: Iterable[Event], boots: Boots | None = None) -> Boots:
    boots = boots or Boots()
    subscriber = BootsSubscriber(boots, lambda: config, {WEB_IP: WEB}.get)
    for event in events:
        subscriber(event)
    return boots


def only_boot(boots: Boots, now: float = 400.0) -> Boot:
    (boot,) = boots.recent(now)
    return boot


def spans(boot: Boot) -> dict[str, tuple[float, float | None]]:
    return {name: (phase.start, phase.end) for name, phase in boot.phases.items()}


def test_a_whole_boot_is_seven_phases_from_first_start_to_last_end(config: Config) -> None:
    boot = only_boot(boots_of(config, whole_boot()))
    assert [phase["name"] for phase in boot.as_json()["phases"]] == list(PHASES)
    assert spans(boot) == {
        "dhcp": (0, 1),
        "loader": (2, 4),  # pxelinux.0 with its tsize probe, then ldlinux.c32
        "config": (4.2, 5),
        "kernel": (6, 8),
        "initrd": (8, 12),
        "kickstart": (22, 22),
        "callback": (300, 300),
    }
    assert all(p.attempts == 1 and not p.failed for p in boot.phases.values())


def test_a_kernel_being_fetched_has_no_end_yet(config: Config) -> None:
    boot = only_boot(boots_of(config, whole_boot()[:12]))
    assert boot.phases["kernel"].end is None
    assert "initrd" not in boot.phases


def test_a_tree_less_profile_fetches_its_kernel_over_tftp_or_tftp_root_over_http(
    config: Config,
) -> None:
    kiosk_ip = "10.213.7.22"
    events = [
        TftpTransferStarted(1.0, None, f"{kiosk_ip}:2070", "/vmlinuz", 100, "octet"),
        HttpRequestStarted(2.0, None, "GET", "/tftp/initrd.gz", kiosk_ip),
    ]
    boots = Boots()
    subscriber = BootsSubscriber(boots, lambda: config, {kiosk_ip: KIOSK}.get)
    for event in events:
        subscriber(event)
    assert set(only_boot(boots).phases) == {"kernel", "initrd"}


def test_discovers_before_the_ack_are_counted_as_firmware_retries(config: Config) -> None:
    events = [
        dhcp(0, "DISCOVER", "offer"),
        dhcp(4, "DISCOVER", "offer"),
        dhcp(12, "DISCOVER", "offer"),
    ]
    boot = only_boot(boots_of(config, [*events, dhcp(13, "REQUEST", "ack")]))
    assert (boot.phases["dhcp"].attempts, boot.phases["dhcp"].failed) == (3, False)
    assert spans(boot)["dhcp"] == (0, 13)


def test_a_refused_or_nakked_dhcp_is_marked_failed(config: Config) -> None:
    refused = only_boot(boots_of(config, [dhcp(0, "DISCOVER", "refused")]))
    assert refused.phases["dhcp"].failed
    nak = only_boot(boots_of(config, [dhcp(0, "DISCOVER", "offer"), dhcp(1, "REQUEST", "nak")]))
    assert nak.phases["dhcp"].failed and nak.phases["dhcp"].detail == "REQUEST nak"


def test_a_missing_loader_is_a_failure_and_the_next_fetch_a_retry(config: Config) -> None:
    first = [*whole_boot()[:2], tftp_refused(2, "pxelinux.0")]
    failed = only_boot(boots_of(config, first)).phases["loader"]
    assert failed.failed and failed.detail == "pxelinux.0 not-found"
    retried = only_boot(boots_of(config, [*first, tftp_start(6, "pxelinux.0")])).phases["loader"]
    assert (retried.attempts, retried.failed, retried.end) == (2, False, None)


def test_a_transfer_that_times_out_fails_its_phase(config: Config) -> None:
    events = [*whole_boot()[:10], tftp_end(9, CONFIG_FILE, "timeout")]
    boot = only_boot(boots_of(config, events))
    assert boot.phases["config"].failed and boot.phases["config"].end == 9


def test_pxelinux_probing_config_names_that_do_not_exist_is_no_failure(config: Config) -> None:
    boot = only_boot(boots_of(config, whole_boot()[:9]))
    assert "config" not in boot.phases


def test_an_http_error_on_the_initrd_fails_it(config: Config) -> None:
    events = [*whole_boot()[:14], http_end(9, INITRD, 404)]
    assert only_boot(boots_of(config, events)).phases["initrd"].failed


def test_a_refused_kickstart_and_a_failed_install_are_failures(config: Config) -> None:
    boot = only_boot(boots_of(config, [kickstart(1, "refused"), callback(2, "failed")]))
    assert boot.phases["kickstart"].failed and boot.phases["callback"].failed


def test_a_discover_after_the_callback_is_the_next_boot(config: Config) -> None:
    boot = only_boot(boots_of(config, [*whole_boot(), dhcp(500, "DISCOVER", "offer")]), 600)
    assert (boot.start, list(boot.phases)) == (500, ["dhcp"])


def test_a_discover_while_the_kernel_loads_is_a_reset_and_a_new_boot(config: Config) -> None:
    boot = only_boot(boots_of(config, [*whole_boot()[:12], dhcp(30, "DISCOVER", "offer")]))
    assert (boot.start, list(boot.phases)) == (30, ["dhcp"])


def test_a_loader_fetched_after_the_installer_started_is_a_new_boot(config: Config) -> None:
    events = [*whole_boot()[:18], tftp_start(40, "pxelinux.0")]
    boot = only_boot(boots_of(config, events))
    assert (boot.start, list(boot.phases)) == (40, ["loader"])


def test_chainloaded_ipxe_asking_dhcp_again_stays_in_the_same_boot(config: Config) -> None:
    events = [*whole_boot()[:6], dhcp(3.5, "DISCOVER", "offer"), dhcp(3.6, "REQUEST", "ack")]
    boot = only_boot(boots_of(config, events))
    assert spans(boot)["dhcp"] == (0, 1) and boot.phases["dhcp"].attempts == 1


def test_a_lease_renewal_of_an_installed_host_is_no_boot(config: Config) -> None:
    assert boots_of(config, [dhcp(0, "REQUEST", "ack")]).recent(1) == []


def test_tree_fetches_that_are_no_boot_file_cost_no_address_lookup(config: Config) -> None:
    def lookup(ip: str) -> str | None:
        raise AssertionError(f"looked up {ip}")

    boots = Boots()
    subscriber = BootsSubscriber(boots, lambda: config, lookup)
    subscriber(http_end(1, "/trees/rocky9/BaseOS/Packages/bash-5.1.rpm"))
    assert boots.recent(2) == []


def test_boots_are_bounded_in_hosts_and_idle_ones_drop_out_of_the_window() -> None:
    boots = Boots()
    macs = [f"52:54:01:00:{i // 256:02x}:{i % 256:02x}" for i in range(MAX_BOOTS + 100)]
    for i, mac in enumerate(macs):
        boots.add(mac, float(i), Step("dhcp", "start", True, "DISCOVER offer"))
    recent = boots.recent(float(len(macs)))
    assert len(recent) == MAX_BOOTS and recent[0].mac == macs[100]
    assert boots.recent(150.0 + WINDOW)[0].mac == macs[150]


def test_macs_pxed_does_not_install_are_not_followed(config: Config) -> None:
    """The lab's unknown_hosts is ignore: a flood of refused MACs must not evict real boots."""
    stranger = "02:00:00:00:00:01"
    assert boots_of(config, [dhcp(0, "DISCOVER", "refused", stranger)]).recent(1) == []
