"""Re-record the QEMU boot captures (qemu-*.pcap) from the e2e scenarios, then trim them.

Run by hand as root from the repository root (the test suite never runs it):

    .venv/bin/python -m tests.captures.record_boots              # all of them
    .venv/bin/python -m tests.captures.record_boots qemu-ovmf-pxe-syslinux-efi

It runs the e2e tests with `PXED_E2E_CAPTURE` (tests/e2e/conftest.py records the lab
bridge's UDP, whole) and keeps a trimmed copy of each (trim.py: all DHCP and DHCPv6, the
edges of each TFTP transfer over IPv4 or IPv6). `qemu-ipxe-bios-pxelinux-dnsmasq` is the
dnsmasq reference boot (`PXED_E2E_REFERENCE=1`). README.md says what each file holds. The
lab picks its own 10.213.x.0/24 per run, so re-recording also changes the addresses.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.captures.trim import trim

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
INSTALL = "tests/e2e/test_pxed_install.py::test_vm_installs_from_pxed_then_boots_its_local_disk"
# capture name -> the e2e test that boots it
BOOTS = {
    "qemu-ipxe-bios-pxelinux": f"{INSTALL}[a-bios-pxelinux]",
    "qemu-ovmf-ipxe-efi-syslinux": f"{INSTALL}[b-uefi-syslinux]",
    "qemu-ovmf-pxe-syslinux-efi": f"{INSTALL}[b-uefi-ovmf-pxe]",
    "qemu-ipxe-bios-http": f"{INSTALL}[c-ipxe-http]",
    "qemu-ipxe-bios-proxydhcp": "tests/e2e/test_pxed_proxy.py::"
    "test_bios_vm_installs_with_pxed_as_proxydhcp_beside_dnsmasq",
    "qemu-ipxe-bios-unknown-mac": "tests/e2e/test_pxed_unknown.py::"
    "test_unknown_vm_gets_no_dhcp_answer_and_pxed_logs_the_refusal",
    "qemu-ipxe-bios-pxelinux-dnsmasq": "tests/e2e/test_reference.py::"
    "test_bios_vm_boots_from_dnsmasq_fetches_its_kickstart_then_boots_its_disk",
    "qemu-ovmf-secureboot-shim-grub": "tests/e2e/test_pxed_secure_boot.py::"
    "test_secure_boot_vm_runs_signed_shim_grub_and_kernel_from_pxed_and_installs",
    "qemu-aavmf-arm64-shim-grub": "tests/e2e/test_pxed_arm64.py::"
    "test_arm64_vm_runs_signed_shim_grub_and_arm64_kernel_from_pxed_and_installs",
    "qemu-ovmf-pxev6-grub": "tests/e2e/test_pxed_ipv6_boot.py::"
    "test_ovmf_pxev6_installs_from_pxed_over_ipv6_alone",
    "qemu-ipxe-bios-http-ipv6": "tests/e2e/test_pxed_ipxe_ipv6.py::"
    "test_ipxe_rom_boots_from_pxed_over_ipv6_alone[bios]",
    "qemu-ovmf-ipxe-efi-http-ipv6": "tests/e2e/test_pxed_ipxe_ipv6.py::"
    "test_ipxe_rom_boots_from_pxed_over_ipv6_alone[uefi]",
}
PACKAGES = (
    "qemu-system-x86 ipxe-qemu ovmf pxelinux syslinux-common syslinux-efi dnsmasq-base "
    "busybox-static tcpdump shim-signed grub-efi-amd64-signed qemu-system-arm qemu-efi-aarch64 "
    "radvd"
)
BOOT_TIMEOUT = 3000  # seconds for the whole pytest run: twelve scenarios, most boot twice


def whole_capture_name(node_id: str) -> str:
    """The file name tests/e2e/conftest.py gives a test's capture."""
    return re.sub(r"[^\w.-]+", "-", node_id.split("::")[-1]).strip("-") + ".pcap"


def record(names: list[str], scratch: Path) -> int:
    """Boot the scenarios with the capture on; pytest's exit status."""
    env = {**os.environ, "PXED_E2E_CAPTURE": str(scratch), "PXED_E2E_REFERENCE": "1"}
    command = [sys.executable, "-bb", "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += [BOOTS[name] for name in names]
    return subprocess.run(command, cwd=ROOT, env=env, timeout=BOOT_TIMEOUT, check=False).returncode


def main(argv: list[str]) -> int:
    names = argv or list(BOOTS)
    unknown = [n for n in names if n not in BOOTS]
    if unknown:
        print(f"unknown capture(s): {', '.join(unknown)}; known: {', '.join(BOOTS)}")
        return 2
    with tempfile.TemporaryDirectory(prefix="pxed-boots-") as folder:
        scratch = Path(folder)
        status = record(names, scratch)
        for name in names:
            whole = scratch / whole_capture_name(BOOTS[name])
            if not whole.exists():
                print(f"{name}.pcap: not recorded (its test was skipped or failed early)")
                continue
            target = HERE / f"{name}.pcap"
            kept = trim(whole, target)
            print(f"{name}.pcap: {kept} frames, {target.stat().st_size} bytes")
    versions = ["dpkg-query", "-W", *PACKAGES.split()]
    print(subprocess.run(versions, capture_output=True, text=True, check=False).stdout, end="")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
