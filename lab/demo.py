"""Scenario a (or b with --uefi) as a demonstration: a VM installs from pxed, then boots local.

    .venv/bin/python -m lab.demo [--uefi]      (as root)

Prints the host's timeline as it happens (DHCP, TFTP, state changes, Kickstart, callback,
the guest's own lines), seconds since the first power-on, then one line with the result
and the total time. Exit status 0 on success. Everything runs in a private namespace that
is removed at the end, as in the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from lab.bootfiles import fill_tftp_root, missing_loaders
from lab.bootlab import boot_lab
from lab.guest import build_guest
from lab.netns import NetnsLab
from lab.procs import ProcessError
from lab.qemu import Firmware, Machine, accelerator, missing_firmware
from lab.scenario import HostSpec, Scenario, start_pxed, write_config

MAC = "52:54:00:de:30:01"
HOSTNAME = "demo01"
# pxed log lines worth showing, and the guest's own lines from the console.
PXED_EVENTS = re.compile(
    r"dhcp (?:REQUEST|DISCOVER) from .*: ack .*|tftp complete: .*|host .*: \S+ -> \S+ .*"
    r'|"(?:GET|POST) /(?:ks|api|boot|tftp)/\S* HTTP/1.1" \d+'
)
CONSOLE_EVENTS = re.compile(
    r"^(?:PXED-E2E\S*.*|PXELINUX \d.*|Booting from local disk.*|Booting from Hard Disk.*"
    r"|Could not boot image.*|Filename: .*)$",
    re.M,
)


class Timeline:
    """Prints matching new lines of some logs, stamped with seconds since it started."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self._logs: list[tuple[str, Path, re.Pattern[str]]] = []
        self._seen: dict[Path, int] = {}
        self._stop = threading.Event()

    def follow(self, who: str, log: Path, pattern: re.Pattern[str]) -> None:
        self._logs.append((who, log, pattern))

    def say(self, text: str) -> None:
        print(f"{time.monotonic() - self.started:7.1f} s  {text}", flush=True)

    @contextlib.contextmanager
    def running(self) -> Iterator[Timeline]:
        thread = threading.Thread(target=self._loop, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(5.0)
            self._poll()

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            self._poll()

    def _poll(self) -> None:
        for who, log, pattern in list(self._logs):
            if not log.exists():
                continue
            text = log.read_text(errors="replace")
            start = self._seen.get(log, 0)
            end = text.rfind("\n") + 1
            for line in text[start:end].splitlines():
                found = pattern.search(line.replace("\r", ""))
                if found:
                    self.say(f"{who:7} {found.group(0).strip()}")
            self._seen[log] = max(start, end)


def demo(firmware: Firmware, workdir: Path) -> float:
    """Install, then local boot; returns the seconds from first power-on to the end."""
    for reason in (missing_firmware(firmware), missing_loaders(firmware)):
        if reason:
            raise SystemExit(f"cannot run the demo here: {reason}")
    timeline = Timeline()
    timeline.say(f"building the guest (Debian kernel + busybox initrd), QEMU {accelerator()}")
    guest = build_guest()
    with NetnsLab(workdir) as netns:
        lab = boot_lab(netns)
        tftp_root = fill_tftp_root(workdir / "tftp", guest)
        loader = {"ipxe": "syslinux.efi" if firmware == "uefi" else "pxelinux.0"}
        scenario = Scenario(hosts=(HostSpec(MAC, HOSTNAME),), loader=loader)
        config = write_config(lab, scenario, tftp_root, workdir)
        pxed = start_pxed(lab, config)
        timeline.say(f"twistd pxed serving {lab.bridge.name} ({lab.server_ip}) in {lab.ns.name}")
        timeline.follow("pxed", pxed.log, PXED_EVENTS)
        machine = Machine(HOSTNAME, MAC, firmware, workdir / "vm").create()
        with timeline.running():
            started = time.monotonic()
            timeline.say(f"power on {HOSTNAME} ({MAC}, {firmware.upper()}): install")
            first = machine.boot(lab, "install")
            timeline.follow("console", first.console_path, CONSOLE_EVENTS)
            first.installed()
            first.powered_off()
            timeline.say(f"power on {HOSTNAME} again: expect its local disk")
            second = machine.boot(lab, "local")
            timeline.follow("console", second.console_path, CONSOLE_EVENTS)
            second.local_boot()
            second.stop()
            return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uefi", action="store_true", help="OVMF + iPXE EFI + syslinux.efi")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("the demo needs root: it creates a network namespace and a tap for QEMU")
    firmware: Firmware = "uefi" if args.uefi else "bios"
    with tempfile.TemporaryDirectory(prefix="pxed-demo-") as scratch:
        try:
            seconds = demo(firmware, Path(scratch))
        except (AssertionError, ProcessError) as failure:
            print(f"FAIL: {failure}", flush=True)
            return 1
    print(
        f"PASS: {HOSTNAME} ({MAC}, {firmware.upper()}) installed from pxed and then booted"
        f" its local disk, {seconds:.1f} s from first power-on",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
