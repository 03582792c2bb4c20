"""The test guest: Debian's kernel and a busybox initrd that plays a Kickstart installer.

A real installer (Anaconda) takes minutes and a repository; what the end-to-end tests need
to prove is only the network path: the firmware got the right kernel and command line, the
Kickstart URL on it serves this host's Kickstart, and the done callback in its %post
reaches pxed. The initrd's /init does exactly that, then powers the VM off.

The guest's contract (what a scenario's kernel command line and Kickstart must provide):

- `inst.ks=URL`: fetched with busybox wget (with `inst.ks.sendmac`, it sends Anaconda's
  `X-RHN-Provisioning-MAC-0: eth0 <mac>` header, so a server that answers only the host
  itself can tell who asks). Over IPv4 after DHCPv4 (udhcpc); over IPv6 when the URL's
  host is in brackets, from a SLAAC address the lab's router advert gives (no DHCPv6).
- `e2e.expect=WORD` (any number): each WORD must occur in the Kickstart, or the guest
  reports failure. The scenario picks the words (a hostname, the MAC...).
- The bodies of every `%post` section run, together, with `sh -e`: busybox sh, so the done
  callback there must work with busybox tools (pxed's `curl ... || wget --post-data ...`
  falls back to busybox wget; curl is not in the initrd).
- The console (ttyS0) shows `PXED-E2E-KS-BEGIN`, the Kickstart, `PXED-E2E-KS-END`, then
  `PXED-E2E-OK <mac>` or `PXED-E2E-FAIL <mac>: <why>`, and the VM powers off.

Without `inst.ks=` nothing of this runs: `PXED-E2E-FAIL <mac>: no inst.ks=` ends the boot.

Artefacts are cached under .cache/e2e/ (gitignored), the kernel keyed by the exact
Debian package version the `linux-image-amd64` metapackage points at, the initrd by a hash
of everything that goes into it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lab.procs import ProcessError, run

CACHE = Path(__file__).resolve().parents[1] / ".cache" / "e2e"
BUSYBOX = Path("/bin/busybox")
METAPACKAGE = "linux-image-amd64"
# The NIC drivers the scenarios use (e1000 for iPXE's ROMs, virtio_net for OVMF's own PXE;
# virtio_pci is the PCI transport virtio_net needs but does not declare as a dependency).
DRIVERS = ("e1000", "virtio_pci", "virtio_net")

MARK_OK = "PXED-E2E-OK"
MARK_FAIL = "PXED-E2E-FAIL"
KS_BEGIN = "PXED-E2E-KS-BEGIN"
KS_END = "PXED-E2E-KS-END"


class GuestBuildError(RuntimeError):
    """The guest kernel or initrd could not be built (no apt, no busybox, odd package)."""


@dataclass(frozen=True)
class Guest:
    """What a network boot serves: the kernel and the initrd, and the kernel's version."""

    kernel: Path
    initrd: Path
    release: str


INIT = r"""#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mac=unknown
finish() { echo "$1 $mac$2"; sync; poweroff -f; }
fail() { finish PXED-E2E-FAIL ": $*"; }
for module in $(cat /modules/order); do insmod "/modules/$module.ko" 2>/dev/null; done
n=0
while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
[ -e /sys/class/net/eth0 ] || fail "no eth0 (NIC driver not loaded?)"
mac=$(cat /sys/class/net/eth0/address)
ks=
sendmac=
expect=
for word in $(cat /proc/cmdline); do
    case "$word" in
        inst.ks=*) ks="${word#inst.ks=}" ;;
        inst.ks.sendmac) sendmac=1 ;;
        e2e.expect=*) expect="$expect ${word#e2e.expect=}" ;;
    esac
done
[ -n "$ks" ] || fail "no inst.ks= on the kernel command line"
ip link set lo up
case "$ks" in
    *://\[*)
        echo 0 > /proc/sys/net/ipv6/conf/eth0/accept_dad
        ip link set eth0 up
        n=0
        until ip -6 addr show dev eth0 scope global | grep -q inet6 || [ $n -ge 100 ]; do
            sleep 0.1; n=$((n + 1))
        done
        ip -6 addr show dev eth0 scope global | grep inet6 || fail "no IPv6 address (SLAAC)" ;;
    *)
        ip link set eth0 up
        udhcpc -i eth0 -n -q -f -t 10 -T 2 -s /udhcpc.script || fail "no DHCP lease" ;;
esac
echo "PXED-E2E: fetching $ks"
if [ -n "$sendmac" ]; then
    timeout 30 wget -q -O /tmp/ks --header "X-RHN-Provisioning-MAC-0: eth0 $mac" "$ks"
else
    timeout 30 wget -q -O /tmp/ks "$ks"
fi || fail "cannot fetch $ks"
echo PXED-E2E-KS-BEGIN
cat /tmp/ks
echo
echo PXED-E2E-KS-END
for word in $expect; do
    grep -qF -- "$word" /tmp/ks || fail "the Kickstart does not contain $word"
done
sed -n '/^%post/,/^%end/p' /tmp/ks | grep -v '^%' > /tmp/post.sh
sh -e /tmp/post.sh || fail "%post failed"
finish PXED-E2E-OK ""
"""

UDHCPC_SCRIPT = r"""#!/bin/sh
case "$1" in
    deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
    bound|renew)
        ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up
        for gw in $router; do ip route replace default via "$gw" dev "$interface"; break; done
        echo "PXED-E2E: $interface $ip" ;;
esac
exit 0
"""


def build_guest(cache: Path = CACHE) -> Guest:
    """The kernel and initrd, from the cache when their inputs have not changed."""
    if not BUSYBOX.exists():
        raise GuestBuildError(f"{BUSYBOX} missing: install busybox-static")
    return assemble_guest(METAPACKAGE, BUSYBOX.read_bytes(), DRIVERS, cache)


def assemble_guest(
    metapackage: str,
    busybox: bytes,
    drivers: tuple[str, ...],
    cache: Path,
    apt: tuple[str, ...] = (),
) -> Guest:
    """The kernel behind `metapackage` and an initrd of `busybox`, /init and `drivers`.

    `apt` are extra apt options: lab/arm64.py points apt at arm64 package lists of its own.
    """
    package = kernel_package(metapackage, apt)
    tree = extract_package(package, candidate(package, apt), cache, apt)
    release = _release(tree)
    modules = driver_modules(tree / "lib" / "modules" / release, drivers)
    initrd = _initrd(modules, cache, busybox)
    return Guest(kernel=tree / "boot" / f"vmlinuz-{release}", initrd=initrd, release=release)


def kernel_package(metapackage: str, apt: tuple[str, ...] = ()) -> str:
    """The real image package behind the metapackage."""
    depends = run(["apt-cache", *apt, "depends", metapackage], timeout=60.0).stdout
    found = re.search(r"Depends: (linux-image-\S+)", depends)
    if found is None:
        raise GuestBuildError(f"apt-cache depends {metapackage} names no linux-image package")
    return found.group(1)


def candidate(package: str, apt: tuple[str, ...] = ()) -> str:
    """The version apt would fetch (the cache key of the unpacked package)."""
    policy = run(["apt-cache", *apt, "policy", package], timeout=60.0).stdout
    found = re.search(r"Candidate: (\S+)", policy)
    if found is None or found.group(1) == "(none)":
        raise GuestBuildError(f"no installable version of {package} (apt-get update?)")
    return found.group(1)


def extract_package(package: str, version: str, cache: Path, apt: tuple[str, ...] = ()) -> Path:
    """`apt-get download` + `dpkg -x` into the cache, once per package version."""
    tree = cache / f"{package}_{version.replace(':', '%3a')}"
    if (tree / ".complete").exists():
        return tree
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as work:
        try:
            # apt-get download writes into the current folder; run() has no cwd.
            run(
                ["sh", "-c", 'cd "$1" && shift && exec apt-get "$@"', "sh", work, *apt,
                 "download", f"{package}={version}"],
                timeout=600.0,
            )  # fmt: skip
        except ProcessError as exc:
            raise GuestBuildError(f"cannot download {package}: {exc}") from exc
        (deb,) = Path(work).glob("*.deb")
        unpacked = Path(work) / "tree"
        run(["dpkg", "-x", str(deb), str(unpacked)], timeout=600.0)
        shutil.rmtree(tree, ignore_errors=True)
        unpacked.rename(tree)
    (tree / ".complete").touch()
    return tree


def _release(tree: Path) -> str:
    kernels = sorted((tree / "boot").glob("vmlinuz-*"))
    if len(kernels) != 1:
        raise GuestBuildError(f"expected one vmlinuz in {tree / 'boot'}, found {kernels}")
    return kernels[0].name.removeprefix("vmlinuz-")


def driver_modules(moddir: Path, drivers: tuple[str, ...] = DRIVERS) -> list[Path]:
    """DRIVERS and their dependencies, dependencies first (the order insmod needs).

    The package ships no modules.dep (depmod runs at install time), so dependencies come
    from each module's own `.modinfo` `depends=`; those built into the kernel are skipped.
    """
    by_name = {_module_name(p): p for p in moddir.joinpath("kernel").rglob("*.ko")}
    builtin = {
        _module_name(Path(line)) for line in moddir.joinpath("modules.builtin").read_text().split()
    }
    ordered: list[Path] = []

    def visit(name: str) -> None:
        if name in builtin or by_name.get(name) in ordered:
            return
        if name not in by_name:
            raise GuestBuildError(f"module {name} is neither in {moddir} nor built in")
        for dep in _depends(by_name[name]):
            visit(dep)
        ordered.append(by_name[name])

    for driver in drivers:
        visit(driver)
    return ordered


def _module_name(path: Path) -> str:
    return path.name.removesuffix(".ko").replace("-", "_")


def _depends(module: Path) -> list[str]:
    found = re.search(rb"\0depends=([^\0]*)\0", module.read_bytes())
    if found is None:
        return []
    return [name.replace("-", "_") for name in found.group(1).decode().split(",") if name]


def _initrd(modules: list[Path], cache: Path, busybox: bytes) -> Path:
    """A gzip'd newc cpio of busybox, /init and the modules, cached by content hash."""
    files: dict[str, tuple[int, bytes]] = {
        "bin/busybox": (0o755, busybox),
        "init": (0o755, INIT.encode()),
        "udhcpc.script": (0o755, UDHCPC_SCRIPT.encode()),
        "modules/order": (0o644, "".join(f"{_module_name(m)}\n" for m in modules).encode()),
    }
    for module in modules:
        files[f"modules/{_module_name(module)}.ko"] = (0o644, module.read_bytes())
    digest = hashlib.sha256()
    for name, (mode, data) in sorted(files.items()):
        digest.update(f"{name}\0{mode}\0{len(data)}\0".encode())
        digest.update(data)
    path = cache / f"initrd-{digest.hexdigest()[:16]}.gz"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_bytes(gzip.compress(cpio_newc(files), compresslevel=6, mtime=0))
        partial.rename(path)
    return path


def cpio_newc(files: dict[str, tuple[int, bytes]]) -> bytes:
    """newc cpio, written here so the tests need no cpio package and no root for /dev nodes.

    /dev/console must exist in the initramfs: the kernel opens it for init's stdio before
    /init can mount devtmpfs, and without it nothing of ours reaches the serial console.
    """
    out = io.BytesIO()
    dirs = sorted({str(Path(name).parent) for name in files} - {"."} | {"dev"})
    inode = 1
    for name in dirs:
        _cpio_entry(out, inode, name, stat.S_IFDIR | 0o755, b"")
        inode += 1
    _cpio_entry(out, inode, "dev/console", stat.S_IFCHR | 0o600, b"", rdev=(5, 1))
    inode += 1
    for name, (mode, data) in sorted(files.items()):
        _cpio_entry(out, inode, name, stat.S_IFREG | mode, data)
        inode += 1
    _cpio_entry(out, 0, "TRAILER!!!", 0, b"")
    return out.getvalue()


def _cpio_entry(
    out: io.BytesIO, inode: int, name: str, mode: int, data: bytes, rdev: tuple[int, int] = (0, 0)
) -> None:
    encoded = name.encode() + b"\0"
    fields = [inode, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0]
    out.write(b"070701" + b"".join(b"%08X" % value for value in fields))
    out.write(encoded)
    out.write(b"\0" * (-out.tell() % 4))
    out.write(data)
    out.write(b"\0" * (-out.tell() % 4))
