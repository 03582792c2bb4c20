"""Two real ``twistd -n pxed`` on 127.0.0.1 sharing one PostgreSQL: a Kickstart fetched
through one, the done callback posted to the other, and both then hand the host a
local-boot config over TFTP and HTTP.

The host states are queried in each daemon's database thread; TFTP answers from the
states as last read (pxed/provisioning/pg_states.py), so the first server's TFTP
answer is local boot once its poll or a read of its own has brought the other
server's change in: at most a second here, far less than a machine takes to reboot.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.procs import Background, wait_until
from tests.interop.test_provision_lifecycle import TWISTD, WEB, Pxed, free_port, write_config

pytestmark = pytest.mark.interop

WEB_PXELINUX = "pxelinux.cfg/01-52-54-00-12-34-56"


def start(root: Path, name: str, url: str) -> Pxed:
    root.mkdir()
    http_port, tftp_port = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
    config = write_config(root, http_port, tftp_port)
    text = config.read_text()
    config.write_text(text.replace("server: {", f"server: {{name: {name}, database: '{url}', ", 1))
    proc = Background(
        [str(TWISTD), "-n", "--pidfile=", "pxed", "--config", str(config)], root / "pxed.log"
    )
    try:
        proc.wait_for_output(f"Site starting on {http_port}", timeout=30)
    except BaseException:
        proc.stop()
        raise
    return Pxed(root, config, http_port, tftp_port, proc)


@pytest.fixture
def pair(tmp_path: Path, postgres_url: str) -> Iterator[tuple[Pxed, Pxed]]:
    one = start(tmp_path / "pxe1", "pxe1", postgres_url)
    try:
        two = start(tmp_path / "pxe2", "pxe2", postgres_url)
        try:
            yield one, two
        finally:
            two.proc.stop()
    finally:
        one.proc.stop()


def test_a_kickstart_through_one_daemon_and_done_through_the_other_boot_local_on_both(
    pair: tuple[Pxed, Pxed],
):
    one, two = pair
    assert "  KERNEL ::/vmlinuz\n" in one.tftp_get(WEB_PXELINUX)
    code, kickstart = one.curl("--interface", "127.0.0.2", f"{one.base}/ks/{WEB}")
    assert code == 200
    callback = next(
        line for line in kickstart.splitlines() if line.startswith("curl ") and "/done" in line
    )
    to_two = callback.replace(one.base, two.base).replace("curl ", "curl --interface 127.0.0.2 ")
    done = subprocess.run(["sh", "-c", to_two], timeout=30, capture_output=True, text=True)
    assert done.returncode == 0 and f"{WEB}: installed" in done.stdout
    for either in pair:
        code, script = either.curl(f"{either.base}/boot/{WEB}.ipxe")  # reads the row afresh
        assert code == 200 and "sanboot --no-describe --drive 0x80" in script
        wait_until(
            lambda either=either: "LOCALBOOT 0" in either.tftp_get(WEB_PXELINUX),
            10,
            f"{either.root.name}'s TFTP to answer local boot",
        )
    assert one.state(WEB) == "installed"
    assert "Traceback" not in one.proc.output() + two.proc.output()
