"""Network boot time: QEMU power-on to the guest's OK marker, pxed vs dnsmasq + http.server.

    .venv/bin/python benchmarks/boot.py [--runs 3] [--scenario a --scenario c]

Runs as root (namespaces, a tap), with the e2e harness (tests/e2e/): each boot gets a fresh
lab namespace, fresh servers and a fresh VM with the same MAC, so every pxed boot is a
first install. Both sides serve the same files, kernel command line and Kickstart shape:

- a: the iPXE ROM is sent to pxelinux.0 over TFTP, which loads the kernel and initrd over
  TFTP (pxed: profile loader.ipxe = pxelinux.0; dnsmasq: --dhcp-boot=pxelinux.0);
- c: the iPXE ROM gets an iPXE script over HTTP and the kernel and initrd over HTTP (pxed's
  default /boot/<mac>.ipxe; dnsmasq tags user class iPXE and points it at a static script
  on http.server).

Runs alternate pxed and dnsmasq so drift in machine load hits both alike. Under TCG most
of a boot is emulated CPU time (firmware, kernel start), which is the same on both sides;
the ratio is of medians. Results also go to benchmarks/results/boot-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lab.bootfiles import fill_tftp_root
from lab.bootlab import BootLab, boot_lab
from lab.guest import Guest, build_guest
from lab.netns import NetnsLab
from lab.qemu import Machine, accelerator
from lab.reference import (
    HTTP_PORT,
    ipxe_script,
    pxelinux_config_name,
    pxelinux_install_config,
    reference_kickstart,
    start_reference,
)
from lab.scenario import HostSpec, Scenario, start_pxed, write_config

ROOT = Path(__file__).resolve().parents[1]

MAC = "52:54:00:e2:be:01"
HOSTNAME = "bench"
LOADERS = {"a": {"ipxe": "pxelinux.0"}, "c": {}}

Booter = Callable[[BootLab, Path, Guest, str], float]


def boot_pxed(lab: BootLab, workdir: Path, guest: Guest, scenario: str) -> float:
    tftp_root = fill_tftp_root(workdir / "tftp", guest)
    spec = Scenario(hosts=(HostSpec(MAC, HOSTNAME),), loader=LOADERS[scenario])
    start_pxed(lab, write_config(lab, spec, tftp_root, workdir))
    return _boot(lab, workdir)


def boot_dnsmasq(lab: BootLab, workdir: Path, guest: Guest, scenario: str) -> float:
    root = fill_tftp_root(workdir / "tftp", guest)
    base = f"http://{lab.server_ip}:{HTTP_PORT}"
    done = f"api/hosts/{MAC}/done"
    (root / done).parent.mkdir(parents=True)
    (root / done).write_text("ok\n")
    (root / "ks.cfg").write_text(reference_kickstart(HOSTNAME, f"{base}/{done}"))
    append = (
        f"console=ttyS0,115200 panic=1 inst.ks={base}/ks.cfg inst.ks.sendmac"
        f" e2e.expect={HOSTNAME} e2e.expect={MAC}"
    )
    (root / pxelinux_config_name(MAC)).write_text(pxelinux_install_config(append))
    script_url = None
    if scenario == "c":
        (root / "boot.ipxe").write_text(ipxe_script(base, append))
        script_url = f"{base}/boot.ipxe"
    start_reference(lab, root, root, script_url)
    return _boot(lab, workdir)


def _boot(lab: BootLab, workdir: Path) -> float:
    boot = Machine(HOSTNAME, MAC, "bios", workdir / "vm").create().boot(lab)
    elapsed = boot.installed()
    boot.powered_off()
    return elapsed


SERVERS: dict[str, Booter] = {"pxed": boot_pxed, "dnsmasq": boot_dnsmasq}


def measure(guest: Guest, scenario: str, server: str, run: int, scratch: Path) -> float:
    workdir = scratch / f"{scenario}-{server}-{run}"
    workdir.mkdir()
    with NetnsLab(workdir) as netns:
        return SERVERS[server](boot_lab(netns), workdir, guest, scenario)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenario", action="append", choices=sorted(LOADERS))
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("boot.py needs root: it creates network namespaces and a tap for QEMU")
    scenarios = args.scenario or sorted(LOADERS)
    guest = build_guest()
    times: dict[str, dict[str, list[float]]] = {s: {n: [] for n in SERVERS} for s in scenarios}
    with tempfile.TemporaryDirectory(prefix="pxed-boot-") as scratch:
        for scenario in scenarios:
            for run in range(args.runs):
                for server in SERVERS:
                    seconds = measure(guest, scenario, server, run, Path(scratch))
                    times[scenario][server].append(seconds)
                    print(f"{scenario} {server} run {run + 1}: {seconds:.1f} s", flush=True)
    report(times, args.runs)


def report(times: dict[str, dict[str, list[float]]], runs: int) -> None:
    print(f"\nQEMU {accelerator().upper()}, {runs} runs each, power-on to PXED-E2E-OK:\n")
    print("| scenario | pxed median (min-max) | dnsmasq median (min-max) | pxed / dnsmasq |")
    print("|---|---|---|---|")
    for scenario, by_server in times.items():
        pxed, dnsmasq = by_server["pxed"], by_server["dnsmasq"]
        ratio = statistics.median(pxed) / statistics.median(dnsmasq)
        print(f"| {scenario} | {_cell(pxed)} | {_cell(dnsmasq)} | {ratio:.2f}x |")
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    out = results / f"boot-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps({"accelerator": accelerator(), "seconds": times}, indent=2))
    print(f"\n(raw: {out.relative_to(ROOT)})")


def _cell(samples: list[float]) -> str:
    return f"{statistics.median(samples):.1f} s ({min(samples):.1f}-{max(samples):.1f})"


if __name__ == "__main__":
    main()
