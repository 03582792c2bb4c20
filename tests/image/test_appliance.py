"""The appliance image boots in QEMU and serves: with a data disk its config, without one
the safe default. Run with `make image image-test`; `make test` skips these.

The appliance sits on the lab bridge at .2 (its data disk's network file says so) and the
test talks to it from the bridge's side, as a machine on its LAN would: /healthz and the
status page over HTTP, the loaders over TFTP. Inside, it logs in on the serial console as
root and asks systemd how the unit is confined. Boot-to-serving and the score are printed
(`pytest -s`), not asserted against a clock.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from lab.appliance import Appliance, data_disk, http_get, lab_network
from lab.bootlab import BootLab, start_address_server

pytestmark = [pytest.mark.image, pytest.mark.netns, pytest.mark.e2e, pytest.mark.slow]

MAC = "52:54:00:a9:9e:02"
BOOT_TIMEOUT = 300.0  # TCG on a shared 2-core machine; the image's target is 90 s
LOADERS = (
    "pxelinux.0", "ldlinux.c32", "syslinux.efi", "ldlinux.e64", "undionly.kpxe",
    "snponly.efi", "shimx64.efi", "grubx64.efi",
)  # fmt: skip
SCORE = re.compile(r"Overall exposure level for pxed.service: (\d+\.\d+) (\S+)")


def appliance_config(lab: BootLab) -> str:
    server = str(lab.address(2))
    config = {
        "server": {"address": server, "interfaces": ["eth0"], "state_dir": "/var/lib/pxed/state"},
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
        "hosts": [],
    }
    return yaml.safe_dump(config, sort_keys=False)


def test_with_a_data_disk_it_serves_its_config_read_only_and_confined(
    lab: BootLab, image: Path, tmp_path: Path
) -> None:
    address = str(lab.address(2))
    data = data_disk(
        tmp_path / "data.img",
        {
            "pxed.yaml": appliance_config(lab),
            "network/10-lab.network": lab_network(f"{address}/{lab.subnet.prefixlen}"),
        },
    )
    running = Appliance(image, data, MAC, tmp_path).power_on(lab)
    elapsed = running.serving(lab, address, BOOT_TIMEOUT)
    print(f"\nappliance: /healthz answered {elapsed:.1f} s after power-on")

    health = json.loads(http_get(lab, f"http://{address}/healthz"))
    assert health["status"] == "ok" and health["services"].get("dhcp") is True
    assert 'id="notice"' not in http_get(lab, f"http://{address}/")
    for loader in LOADERS:
        fetched = tmp_path / loader
        lab.ns.run(
            ["curl", "-sf", "--max-time", "20", f"tftp://{address}/{loader}", "-o", str(fetched)]
        )
        assert fetched.stat().st_size > 0, loader

    console = running.login()
    assert console.run("findmnt -no OPTIONS /").split(",")[0] == "ro"
    assert console.run("findmnt -no SOURCE /var/lib/pxed") == "/dev/vdb"
    assert console.run("systemctl is-active pxed") == "active"
    assert "state" in console.run("ls /var/lib/pxed").split()
    security = console.run("systemd-analyze security --no-pager pxed.service | tail -n 1")
    score = SCORE.search(security)
    assert score is not None, security
    print(f"appliance: systemd-analyze security pxed.service: {score.group(1)} {score.group(2)}")
    assert float(score.group(1)) <= 2.5
    console.close()


def test_without_a_data_disk_dhcp_is_off_and_the_page_says_how_to_configure(
    lab: BootLab, image: Path, tmp_path: Path
) -> None:
    start_address_server(lab)  # the LAN's DHCP server: the appliance's default asks it
    running = Appliance(image, None, MAC, tmp_path).power_on(lab)
    console = running.login(timeout=BOOT_TIMEOUT)
    found = re.search(r"inet (\S+)/", console.run("ip -4 -o addr show dev eth0"))
    assert found is not None
    address = found.group(1)
    elapsed = running.serving(lab, address, BOOT_TIMEOUT)
    print(f"\nappliance without data disk: /healthz answered {elapsed:.1f} s after power-on")

    health = json.loads(http_get(lab, f"http://{address}/healthz"))
    assert health["status"] == "ok" and "dhcp" not in health["services"]
    assert "No configuration found" in http_get(lab, f"http://{address}/")
    assert console.run("ss -Hlun 'sport = :67'") == ""
    pxelinux = tmp_path / "pxelinux.0"
    lab.ns.run(
        ["curl", "-sf", "--max-time", "20", f"tftp://{address}/pxelinux.0", "-o", str(pxelinux)]
    )
    assert pxelinux.stat().st_size > 0
    console.close()
