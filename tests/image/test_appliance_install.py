"""Issue 12 item 5: a client VM installs from the appliance, which then survives a hard reset.

The appliance (the image, a data disk with a config, a tree holding the e2e guest's kernel
and initrd, and a Kickstart template) serves the lab bridge in full DHCP mode. The client,
QEMU's iPXE ROM sent on to pxelinux.0, goes through DHCP, TFTP, the Kickstart and the done
callback (lab/guest.py). Then the appliance gets QEMU's `system_reset`, no shutdown: once
it serves again, its lease and host state are still on the data disk, and the client's
next boot gets the local-boot config.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from lab.appliance import Appliance, data_disk, http_get, lab_network
from lab.bootlab import BootLab
from lab.guest import Guest, GuestBuildError, build_guest
from lab.netns import require_binary
from lab.procs import ProcessError
from lab.qemu import Machine, missing_firmware
from lab.scenario import APPEND, KICKSTART_TEMPLATE

pytestmark = [pytest.mark.image, pytest.mark.netns, pytest.mark.e2e, pytest.mark.slow]

MAC = "52:54:00:a9:9e:02"
CLIENT_MAC = "52:54:00:a9:9e:0c"
CLIENT = "client01"


@pytest.fixture(scope="session")
def guest() -> Guest:
    require_binary("busybox")
    try:
        return build_guest()
    except (GuestBuildError, ProcessError) as exc:
        pytest.skip(f"cannot build the e2e guest: {exc}")


def install_config(lab: BootLab) -> str:
    config = {
        "server": {
            "address": str(lab.address(2)),
            "interfaces": ["eth0"],
            "state_dir": "state",
        },
        "tftp": {"root": "/srv/tftp"},
        "dhcp": {
            "mode": "full",
            "subnets": [
                {
                    "network": str(lab.subnet),
                    "range": [str(lab.address(100)), str(lab.address(200))],
                }
            ],
        },
        "http": {"port": 80},
        "trees": {"guest": {"path": "trees/guest"}},
        "profiles": {
            "e2e": {
                "tree": "guest",
                "kernel": "vmlinuz",
                "initrd": "initrd.gz",
                "append": APPEND,
                "kickstart": "e2e.ks.j2",
                "loader": {"ipxe": "pxelinux.0"},  # QEMU's ROM is iPXE: send it to pxelinux
            }
        },
        "hosts": [{"mac": CLIENT_MAC, "hostname": CLIENT, "profile": "e2e", "netboot": "once"}],
    }
    return yaml.safe_dump(config, sort_keys=False)


def host_state(lab: BootLab, address: str) -> tuple[str, list[str]]:
    """The client's install state and the MACs holding leases, as the appliance reports them."""
    hosts = {row["mac"]: row for row in json.loads(http_get(lab, f"http://{address}/api/hosts"))}
    leases = [row["mac"] for row in json.loads(http_get(lab, f"http://{address}/api/leases"))]
    return hosts[CLIENT_MAC]["state"], leases


def test_a_client_installs_from_the_appliance_and_a_hard_reset_keeps_its_state(
    lab: BootLab, image: Path, guest: Guest, tmp_path: Path
) -> None:
    if reason := missing_firmware("bios"):
        pytest.skip(reason)
    address = str(lab.address(2))
    data = data_disk(
        tmp_path / "data.img",
        {
            "pxed.yaml": install_config(lab),
            "e2e.ks.j2": KICKSTART_TEMPLATE,
            "trees/guest/vmlinuz": guest.kernel.read_bytes(),
            "trees/guest/initrd.gz": guest.initrd.read_bytes(),
            "network/10-lab.network": lab_network(f"{address}/{lab.subnet.prefixlen}"),
        },
    )
    appliance = Appliance(image, data, MAC, tmp_path).power_on(lab)
    appliance.serving(lab, address)

    client_tap = lab.netns.tap(lab.ns, f"tc{lab.netns.token}", lab.bridge)
    client_lab = dataclasses.replace(lab, tap=client_tap)
    client = Machine(CLIENT, CLIENT_MAC, "bios", tmp_path / "client").create()
    elapsed = client.boot(client_lab, "install").installed()
    print(f"\n{CLIENT} installed from the appliance {elapsed:.1f} s after power-on")
    assert host_state(lab, address) == ("installed", [CLIENT_MAC])

    appliance.reset()
    back = appliance.serving(lab, address)
    print(f"appliance: serving again {back:.1f} s after system_reset")
    assert host_state(lab, address) == ("installed", [CLIENT_MAC])

    second = client.boot(client_lab, "local")
    second.local_boot()  # raises if the installer kernel booted instead
    second.stop()
