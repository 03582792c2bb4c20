"""``twistd --uid/--gid``: pxed started as root serves everything as an unprivileged user.

Before, hosts.sqlite3 (and its WAL files) were created by root before the drop,
and the first Kickstart answered 500 "attempt to write a readonly database".
The run happens in a world-readable folder, as a real service's would (/etc/pxed,
/var/lib/pxed), so the dropped user can read the config and its template.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.procs import Background
from tests.interop.test_provision_lifecycle import TWISTD, WEB, Pxed, free_port, write_config

pytestmark = pytest.mark.interop

NOBODY = 65534


@pytest.fixture
def world_readable() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="pxed-uid-", dir="/tmp"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root)


def test_dropped_to_nobody_pxed_serves_the_kickstart_the_callback_and_the_api(
    world_readable: Path,
):
    if os.geteuid() != 0:
        pytest.skip("dropping privileges needs root")
    http_port, tftp_port = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
    config = write_config(world_readable, http_port, tftp_port)
    argv = [str(TWISTD), "-n", "--pidfile=", f"--uid={NOBODY}", f"--gid={NOBODY}"]
    proc = Background([*argv, "pxed", "--config", str(config)], world_readable / "pxed.log")
    try:
        proc.wait_for_output(f"Site starting on {http_port}", timeout=30)
        pxed = Pxed(world_readable, config, http_port, tftp_port, proc)
        code, kickstart = pxed.curl("--interface", "127.0.0.2", f"{pxed.base}/ks/{WEB}")
        assert code == 200, kickstart
        callback = next(line for line in kickstart.splitlines() if line.startswith("curl "))
        from_host = callback.replace("curl ", "curl --interface 127.0.0.2 ", 1)
        subprocess.run(["sh", "-c", from_host], check=True, timeout=30, capture_output=True)
        assert pxed.curl(f"{pxed.base}/api/hosts")[0] == 200
        assert '"installed"' in pxed.curl(f"{pxed.base}/api/hosts")[1]
        assert pxed.tftp_get("vmlinuz") == "kernel"
        state = world_readable / "state"
        assert {path.stat().st_uid for path in [state, *state.iterdir()]} == {NOBODY}
    finally:
        proc.stop()
