"""``make demo``: start ``twistd pxed`` on loopback and watch a real client use it.

Until the end-to-end work boots a VM, this is the shortest honest proof that
the daemon runs from its YAML file and serves: curl fetches a file over TFTP
with options, the bytes are checked, the server's own log line for the
transfer is shown, and the daemon is stopped by the PID we started.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ETC = Path(__file__).resolve().parent.parent / "etc"
CONFIG = ETC / "demo.yaml"
TFTP_ROOT = ETC / "demo-tftp"
TFTP_PORT = 6969
PAYLOAD = "demo-payload.bin"
PAYLOAD_SIZE = 4 * 1024 * 1024


class DemoFailed(Exception):
    pass


def _twistd() -> str:
    return str(Path(sys.executable).with_name("twistd"))


def _make_payload() -> str:
    TFTP_ROOT.mkdir(exist_ok=True)
    data = hashlib.shake_256(b"pxed demo").digest(PAYLOAD_SIZE)
    (TFTP_ROOT / PAYLOAD).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def _wait_for_udp_listener(port: int, process: subprocess.Popen[bytes], limit: float) -> None:
    """Poll until something holds the UDP port, or the daemon exits, or time runs out."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DemoFailed(f"twistd exited early with status {process.returncode}")
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return
        finally:
            probe.close()
        time.sleep(0.1)
    raise DemoFailed(f"nothing listened on udp/{port} within {limit:.0f} s")


def _fetch(out: Path) -> float:
    started = time.monotonic()
    subprocess.run(
        [
            "curl",
            "-sS",
            "--max-time",
            "60",
            "--tftp-blksize",
            "1468",
            "-o",
            str(out),
            f"tftp://127.0.0.1:{TFTP_PORT}/{PAYLOAD}",
        ],
        check=True,
    )
    return time.monotonic() - started


def run_demo() -> None:
    expected = _make_payload()
    with tempfile.TemporaryDirectory(prefix="pxed-demo-") as work:
        log_path = Path(work) / "twistd.log"
        with log_path.open("wb") as log:
            daemon = subprocess.Popen(
                [_twistd(), "-n", "--pidfile=", "pxed", "--config", str(CONFIG)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            print(f"started twistd pxed (pid {daemon.pid}) with {CONFIG.relative_to(ETC.parent)}")
            _wait_for_udp_listener(TFTP_PORT, daemon, limit=20)
            out = Path(work) / "fetched.bin"
            seconds = _fetch(out)
            got = hashlib.sha256(out.read_bytes()).hexdigest()
            if got != expected:
                raise DemoFailed(f"sha256 mismatch: sent {expected}, received {got}")
            print(
                f"curl fetched {PAYLOAD} ({PAYLOAD_SIZE} bytes) over TFTP in {seconds:.2f} s, "
                f"sha256 ok"
            )
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        transfer_lines = [
            line for line in log_path.read_text().splitlines() if "tftp" in line.lower()
        ]
        print("pxed's log of the transfer:")
        for line in transfer_lines[-5:]:
            print("  " + line)
        # twistd re-raises SIGTERM after its orderly shutdown, so the status is -15 either way;
        # its own "Server Shut Down." line is what says the services stopped cleanly.
        if "Server Shut Down." not in log_path.read_text():
            raise DemoFailed(f"twistd did not shut down cleanly (status {daemon.returncode})")
        print("twistd stopped cleanly on SIGTERM")


def main() -> int:
    started = time.monotonic()
    try:
        run_demo()
    except (DemoFailed, subprocess.CalledProcessError, OSError) as error:
        print(f"DEMO FAILED after {time.monotonic() - started:.1f} s: {error}")
        return 1
    print(f"DEMO OK in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
