"""The appliance image (`make image`) as a QEMU machine in a lab namespace, and its data disk.

The image boots from its own disk (SYSLINUX, Debian's kernel) with a snapshot overlay, so
the built image is never written; the data disk (ext4 labelled pxed-data) is a plain file
the test writes before the boot and may read after. The serial console is a Unix socket
(QEMU's chardev) that also logs everything to a file: a test logs in as root on it, the way
a maintainer would, and runs commands inside the appliance. The QEMU monitor is a second
socket, for `system_reset` (a hard reset: no shutdown, nothing flushed by the guest).
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from lab.bootlab import BootLab
from lab.netns import Background
from lab.procs import ProcessError, run, wait_until
from lab.qemu import QEMU, accelerator

DATA_LABEL = "pxed-data"
PROMPT = "root@pxed:~# "
# Terminal control sequences (bash's bracketed paste, colours): noise in a command's output.
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def data_disk(path: Path, files: dict[str, str | bytes], size_mib: int = 64) -> Path:
    """An ext4 image labelled pxed-data holding `files` (relative path -> content)."""
    tree = path.with_suffix(".tree")
    for name, content in files.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        (tree / name).write_bytes(data)
    run(["mkfs.ext4", "-q", "-F", "-L", DATA_LABEL, "-d", str(tree), str(path), f"{size_mib}M"])
    return path


def lab_network(address: str) -> str:
    """A network/*.network file for the data disk: `address` (CIDR) on eth0, no DHCP."""
    return f"[Match]\nName=eth0\n\n[Network]\nAddress={address}\n"


def http_get(lab: BootLab, url: str) -> str:
    """GET `url` from the lab namespace (the bridge's side); ProcessError unless 2xx."""
    return lab.ns.run(["curl", "-sf", "--max-time", "5", url], timeout=10.0).stdout


@dataclass(frozen=True)
class Appliance:
    """The image, its data disk (or none), and the MAC its NIC has on the lab bridge."""

    image: Path
    data: Path | None
    mac: str
    workdir: Path
    memory_mib: int = 1024

    def argv(self, tap: str) -> list[str]:
        console, monitor = self.console_socket, self.monitor_socket
        argv = [
            QEMU, "-name", "pxed-appliance", "-accel", accelerator(), "-m", str(self.memory_mib),
            "-smp", "1", "-display", "none", "-nic", "none",
            "-chardev", f"socket,id=console,path={console},server=on,wait=off,logfile={self.log}",
            "-serial", "chardev:console",
            "-monitor", f"unix:{monitor},server=on,wait=off",
            "-drive", f"file={self.image},format=raw,if=virtio,snapshot=on",
            "-netdev", f"tap,id=net0,ifname={tap},script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=net0,mac={self.mac}",
        ]  # fmt: skip
        if self.data is not None:
            argv += ["-drive", f"file={self.data},format=raw,if=virtio"]
        return argv

    @property
    def console_socket(self) -> Path:
        return self.workdir / "appliance-console.sock"

    @property
    def monitor_socket(self) -> Path:
        return self.workdir / "appliance-monitor.sock"

    @property
    def log(self) -> Path:
        return self.workdir / "appliance-console.log"

    def power_on(self, lab: BootLab) -> Running:
        """Start QEMU in the lab namespace on the lab's tap; stopped by PID at teardown."""
        started = time.monotonic()
        proc = lab.spawn(self.argv(lab.tap), self.workdir / "appliance-qemu.log")
        return Running(self, proc, started)


@dataclass
class Running:
    """A powered-on appliance: its QEMU process and when it was started."""

    appliance: Appliance
    proc: Background
    started: float

    def console(self) -> str:
        log = self.appliance.log
        return log.read_text(errors="replace") if log.exists() else ""

    def login(self, timeout: float = 60.0) -> SerialConsole:
        """Log in as root on the serial console (no password: console-only maintenance)."""
        path = self.appliance.console_socket
        wait_until(path.exists, 30.0, f"QEMU's console socket {path}")
        serial = SerialConsole(path)
        serial.send("\n")
        serial.expect(re.compile(r"login: $"), timeout)
        serial.send("root\n")
        serial.expect(re.compile(re.escape(PROMPT)), timeout)
        return serial

    def serving(self, lab: BootLab, address: str, timeout: float = 300.0) -> float:
        """Wait for pxed's /healthz on `address` to answer 200; the seconds since `started`."""

        def healthy() -> bool:
            if not self.proc.running():
                raise ProcessError(f"QEMU exited:\n{self.console()[-3000:]}")
            try:
                http_get(lab, f"http://{address}/healthz")
            except ProcessError:
                time.sleep(1.0)
                return False
            return True

        try:
            wait_until(healthy, timeout, f"pxed's /healthz on {address}")
        except ProcessError as error:
            raise ProcessError(f"{error}\nconsole:\n{self.console()[-3000:]}") from None
        return time.monotonic() - self.started

    def reset(self) -> None:
        """`system_reset` on the QEMU monitor: the machine restarts at once, nothing shut down.

        `started` becomes the moment of the reset, so `serving` measures the way back.
        """
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as monitor:
            monitor.connect(str(self.appliance.monitor_socket))
            monitor.sendall(b"system_reset\n")
            time.sleep(0.5)  # let QEMU read the line before the socket closes
        self.started = time.monotonic()

    def stop(self) -> None:
        self.proc.stop(grace=2.0)


class SerialConsole:
    """A shell on the appliance's serial port: send a command, read up to the next prompt."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.sock.settimeout(0.5)
        self.seen = ""

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode())

    def expect(self, pattern: re.Pattern[str], timeout: float) -> str:
        """Read until `pattern` matches; return everything read up to and including it."""
        deadline = time.monotonic() + timeout
        while (found := pattern.search(self.seen)) is None:
            if time.monotonic() > deadline:
                raise ProcessError(f"no {pattern.pattern!r} on the console:\n{self.seen[-2000:]}")
            try:
                chunk = self.sock.recv(4096)
            except TimeoutError:
                continue
            # Stripped from the whole text: a sequence may be split between two reads.
            self.seen = ESCAPES.sub(
                "", self.seen + chunk.decode(errors="replace").replace("\r", "")
            )
        upto, self.seen = self.seen[: found.end()], self.seen[found.end() :]
        return upto

    def run(self, command: str, timeout: float = 60.0) -> str:
        """Run `command` in the root shell; its output (the echoed command line left out)."""
        self.send(command + "\n")
        out = self.expect(re.compile(re.escape(PROMPT)), timeout)
        lines = out.split("\n")[1:-1]  # the echo of the command, then the next prompt
        return "\n".join(lines)

    def close(self) -> None:
        self.sock.close()
