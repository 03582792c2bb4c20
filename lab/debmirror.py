"""A minimal Debian bookworm mirror for the real installer: what d-i and a minimal system need.

The netboot initrd (package debian-installer-12-netboot-amd64) carries only part of the
installer; anna fetches the rest as udebs from the mirror's main/debian-installer, and the
kernel module udebs it may load must be built for exactly the initrd's kernel ABI. So the
udebs here are every bookworm udeb the initrd does not already hold, minus those built for
another kernel ABI. The debs are what apt resolves, on an empty system, for every
required and important package (debootstrap's set), the kernel and GRUB, plus the few
packages the installer's later steps put into the target.

apt runs with a private configuration (sources.list, lists and archives under the cache):
the system's apt sources have no `main/debian-installer`, and its configuration is never
touched. The mirror's Release is not signed: the preseed says
`debian-installer/allow_unauthenticated true`, so the installer (and apt in the target)
accept it. A built mirror is kept under CACHE, keyed by everything that decides its
contents, so only the first run on a machine downloads anything.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lab.procs import run

SUITE = "bookworm"
CODENAME = "bookworm"
ARCH = "amd64"
UPSTREAM = "http://deb.debian.org/debian"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
NETBOOT_PACKAGE = "debian-installer-12-netboot-amd64"
NETBOOT = Path("/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64")
NETBOOT_KERNEL = NETBOOT / "linux"
NETBOOT_INITRD = NETBOOT / "initrd.gz"
CACHE = Path("/var/cache/pxed-lab/debmirror")
# Beyond every required and important deb: the kernel and BIOS GRUB, and what the
# installer's own steps install into the target (grub-installer, localechooser,
# console-setup, pkgsel's tasksel, netcfg's DHCP client).
EXTRA_DEBS = (
    "linux-image-amd64",
    "grub-pc",
    "os-prober",
    "locales",
    "console-setup",
    "keyboard-configuration",
    "tasksel",
    "isc-dhcp-client",
    "initramfs-tools",
    "busybox",
    "zstd",
    "discover",
    "laptop-detect",
    "installation-report",
    "popularity-contest",
    "eject",
    "pciutils",
    "usbutils",
    "sudo",
    "ca-certificates",
)
# Kernel ABIs in udeb names: nic-modules-6.1.0-50-amd64-di.
ABI_IN_NAME = re.compile(r"-(\d+\.\d+\.\d+-\d+-[a-z0-9]+)-di$")
# In the mirror's root: the udebs upstream would not give, one a line, those d-i wants first.
MISSING = "missing-udebs.txt"
# Index files in Release, relative to dists/<suite>/.
# Each folder's own Release is what choose-mirror reads to see the architecture is served.
INDEX_DIRS = ("main/binary-amd64", "main/debian-installer/binary-amd64")
INDEXES = tuple(
    f"{folder}/{name}" for folder in INDEX_DIRS for name in ("Packages", "Packages.gz", "Release")
)


class MirrorBuildError(RuntimeError):
    """The mirror could not be built (no apt-get, no network to the Debian mirror, ...)."""


@dataclass(frozen=True)
class Initrd:
    """What d-i's initrd already holds: its kernel ABI and the udebs installed in it."""

    abi: str
    packages: frozenset[str]


@dataclass(frozen=True)
class Mirror:
    """A built mirror: `root` holds dists/ and pool/, served as an HTTP tree.

    `missing` names the udebs the upstream mirror would not give (404): they are left out
    of the index, so anna never asks for them, and the test can say why an install stops.
    """

    root: Path
    debs: int
    udebs: int
    missing: tuple[str, ...]


def read_initrd(path: Path = NETBOOT_INITRD) -> Initrd:
    """The initrd's kernel ABI (its lib/modules/<abi>) and its dpkg status's packages."""
    abis: set[str] = set()
    status = b""
    with gzip.open(path, "rb") as stream:
        for name, data in _cpio_entries(stream, want={"var/lib/dpkg/status"}):
            found = re.match(r"lib/modules/([^/]+)$", name)
            if found:
                abis.add(found.group(1))
            if data is not None:
                status = data
    if len(abis) != 1:
        raise MirrorBuildError(f"{path}: expected one kernel in lib/modules, found {sorted(abis)}")
    packages = frozenset(re.findall(r"^Package: (\S+)$", status.decode(), re.M))
    if not packages:
        raise MirrorBuildError(f"{path}: no var/lib/dpkg/status listing its udebs")
    return Initrd(abis.pop(), packages)


def _cpio_entries(stream: gzip.GzipFile, want: set[str]) -> Iterator[tuple[str, bytes | None]]:
    """Names of a newc cpio stream, with the data of the `want`ed ones (others are skipped)."""
    while True:
        header = stream.read(110)
        if len(header) < 110 or header[:6] != b"070701":
            raise MirrorBuildError("the initrd is not a newc cpio archive")
        size, namesize = int(header[54:62], 16), int(header[94:102], 16)
        name = stream.read(namesize)[:-1].decode(errors="replace").removeprefix("./")
        stream.read(-(110 + namesize) % 4)
        if name == "TRAILER!!!":
            return
        if name in want:
            data: bytes | None = stream.read(size)
        else:
            stream.seek(size, 1)
            data = None
        stream.read(-size % 4)
        yield name, data


def wanted_udebs(available: Iterable[str], initrd: Initrd) -> list[str]:
    """Udebs anna may fetch: not in the initrd, and no kernel modules of another ABI."""
    chosen = []
    for name in available:
        abi = ABI_IN_NAME.search(name)
        if name in initrd.packages or (abi and abi.group(1) != initrd.abi):
            continue
        chosen.append(name)
    return sorted(chosen)


def release_file(dists: Path, fields: dict[str, str]) -> str:
    """dists/<suite>/Release: `fields`, then each index's size and checksums (unsigned)."""
    lines = [f"{key}: {value}" for key, value in fields.items()]
    for algorithm, title in (("md5", "MD5Sum"), ("sha256", "SHA256")):
        lines.append(f"{title}:")
        for index in INDEXES:
            data = (dists / index).read_bytes()
            digest = hashlib.new(algorithm, data).hexdigest()
            lines.append(f" {digest} {len(data):>16} {index}")
    return "\n".join(lines) + "\n"


def cache_key(initrd: Initrd) -> str:
    """What decides the mirror's contents: suite, package roots, index layout, the initrd."""
    material = "\n".join([SUITE, ARCH, *EXTRA_DEBS, *INDEXES, initrd.abi, *sorted(initrd.packages)])
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def build_mirror(cache: Path = CACHE) -> Mirror:
    """The mirror for the installed netboot initrd, built (a minute) or from the cache.

    A cached mirror with holes (udebs upstream answered 404 for) asks upstream for just
    those again, and is indexed again if any arrived.
    """
    if not NETBOOT_INITRD.exists():
        raise MirrorBuildError(f"{NETBOOT_INITRD} missing: install {NETBOOT_PACKAGE}")
    initrd = read_initrd()
    root = cache / f"{SUITE}-{cache_key(initrd)}"
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".build-") as work:
        apt = PrivateApt(Path(work) / "apt")
        if not (root / ".complete").exists():
            built = _build(apt, Path(work) / "mirror", initrd)
            shutil.rmtree(root, ignore_errors=True)
            built.rename(root)
            (root / ".complete").touch()
        elif (root / MISSING).read_text():
            _fill_holes(apt, root)
    missing = tuple((root / MISSING).read_text().split())
    return Mirror(root, _count(root, ".deb"), _count(root, ".udeb"), missing)


def _count(root: Path, suffix: str) -> int:
    return sum(1 for _ in (root / "pool").rglob(f"*{suffix}"))


def _build(apt: PrivateApt, root: Path, initrd: Initrd) -> Path:
    """Download, lay out pool/ and dists/ under `root`, index, write Release."""
    apt.update()
    records = apt.records()
    roots = [
        name
        for name, fields in records.items()
        if fields.get("Priority") in ("required", "important")
        and fields.get("Filename", "").endswith(".deb")
    ]
    udebs = wanted_udebs(
        (name for name, fields in records.items() if fields["Filename"].endswith(".udeb")), initrd
    )
    apt.download_closure([*roots, *EXTRA_DEBS], root / "pool" / "main")
    got = apt.download(udebs, root / "pool" / "udeb")
    # Those anna installs unasked (priority standard and up) first: they are what stops d-i.
    missing = sorted(
        (name for name in udebs if name not in got),
        key=lambda name: (records[name].get("Priority") in ("optional", "extra"), name),
    )
    (root / MISSING).write_text("".join(f"{name}\n" for name in missing))
    _index_all(root)
    return root


def _fill_holes(apt: PrivateApt, root: Path) -> None:
    """Ask upstream again for the udebs it did not give last time; index what arrived."""
    apt.update()
    missing = (root / MISSING).read_text().split()
    got = apt.download(missing, root / "pool" / "udeb")
    if got & set(missing):
        (root / MISSING).write_text("".join(f"{name}\n" for name in missing if name not in got))
        _index_all(root)


def _index_all(root: Path) -> None:
    """Both Packages indexes and the Release that lists them."""
    dists = root / "dists" / SUITE
    write_index(root, "pool/main", "deb", dists / "main" / f"binary-{ARCH}")
    write_index(root, "pool/udeb", "udeb", dists / "main" / "debian-installer" / f"binary-{ARCH}")
    fields = {
        "Origin": "Debian",
        "Label": "Debian",
        # Upstream says Suite: oldstable; the same name twice saves choose-mirror a detour.
        "Suite": SUITE,
        "Codename": CODENAME,
        "Date": datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S UTC"),
        "Architectures": ARCH,
        "Components": "main",
        "Description": "pxed lab: a minimal bookworm mirror for debian-installer (unsigned)",
    }
    (dists / "Release").write_text(release_file(dists, fields))


def write_index(root: Path, pool: str, kind: str, target: Path) -> None:
    """Packages, Packages.gz and Release for the files under `pool` (relative to the mirror)."""
    target.mkdir(parents=True, exist_ok=True)
    scanned = run(
        ["sh", "-c", 'cd "$1" && exec dpkg-scanpackages -m -t "$2" "$3" /dev/null',
         "sh", str(root), kind, pool],
        timeout=900.0,
    ).stdout  # fmt: skip
    (target / "Packages").write_text(scanned)
    (target / "Packages.gz").write_bytes(gzip.compress(scanned.encode(), mtime=0))
    (target / "Release").write_text(
        f"Archive: {SUITE}\nOrigin: Debian\nLabel: Debian\nComponent: main\nArchitecture: {ARCH}\n"
    )


class PrivateApt:
    """apt-get and apt-cache with their own sources, lists, archives and an empty dpkg status."""

    def __init__(self, home: Path) -> None:
        self.home = home
        for sub in ("lists/partial", "archives/partial"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        (home / "status").touch()
        (home / "sources.list").write_text(
            f"deb [signed-by={KEYRING}] {UPSTREAM} {SUITE} main main/debian-installer\n"
        )

    def options(self) -> list[str]:
        settings = {
            "Dir::Etc::SourceList": self.home / "sources.list",
            "Dir::Etc::SourceParts": "/dev/null",
            "Dir::State::Lists": self.home / "lists",
            "Dir::State::status": self.home / "status",
            "Dir::State::extended_states": self.home / "extended_states",
            "Dir::Cache": self.home,
            "Dir::Cache::archives": self.home / "archives",
            "APT::Architecture": ARCH,
            "APT::Architectures": ARCH,
            # The empty status is ours alone: do not take the system's dpkg lock.
            "Debug::NoLocking": "1",
        }
        return [arg for key, value in settings.items() for arg in ("-o", f"{key}={value}")]

    def apt(
        self,
        tool: str,
        *args: str,
        cwd: Path | None = None,
        timeout: float = 600.0,
        check: bool = True,
    ) -> str:
        argv = [tool, *self.options(), *args]
        if cwd is not None:  # apt-get download writes into the current folder; run() has no cwd
            argv = ["sh", "-c", 'cd "$1" && shift && exec "$@"', "sh", str(cwd), *argv]
        return run(argv, timeout=timeout, check=check).stdout

    def update(self) -> None:
        self.apt("apt-get", "-q", "update")

    def records(self) -> dict[str, dict[str, str]]:
        """Every package's candidate record (debs and udebs), by name."""
        records: dict[str, dict[str, str]] = {}
        for stanza in self.apt("apt-cache", "dumpavail").split("\n\n"):
            fields = dict(re.findall(r"^([\w-]+): (.*)$", stanza, re.M))
            if "Package" in fields and "Filename" in fields:
                records.setdefault(fields["Package"], fields)
        return records

    def download_closure(self, packages: list[str], into: Path) -> None:
        """The packages and every dependency apt would install on an empty system."""
        self.apt(
            "apt-get", "-q", "-y", "--download-only", "--no-install-recommends",
            "install", *packages, timeout=1800.0,
        )  # fmt: skip
        _move_renamed(self.home / "archives", ".deb", into)

    def download(self, packages: list[str], into: Path) -> set[str]:
        """Exactly these packages (udebs), no dependencies; the names that arrived.

        Not all-or-nothing: the mirror reachable from the lab lacks some udebs (404), and a
        mirror with the rest still boots the installer as far as those allow.
        """
        into.mkdir(parents=True, exist_ok=True)
        self.apt("apt-get", "-q", "download", *packages, cwd=into, timeout=1800.0, check=False)
        _move_renamed(into, ".udeb", into)
        return {path.name.split("_", 1)[0] for path in into.glob("*.udeb")}


def _move_renamed(source: Path, suffix: str, into: Path) -> None:
    """Files named as Debian's pool names them: apt's `1%3a` epoch prefix dropped."""
    into.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob(f"*{suffix}")):
        path.rename(into / re.sub(r"_\d+%3a", "_", path.name))
