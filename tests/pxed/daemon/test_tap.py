"""`twistd pxed` start: a problem in the host, not the file, is one line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from pxed.daemon.tap import Options, makeService


def options_for(tmp_path: Path, interfaces: str) -> Options:
    (tmp_path / "tftp").mkdir()
    path = tmp_path / "pxed.yaml"
    path.write_text(
        f"server:\n  address: 127.0.0.1\n  interfaces: [{interfaces}]\n"
        f"  state_dir: {tmp_path / 'state'}\n"
        f"tftp:\n  root: {tmp_path / 'tftp'}\n  listen: [127.0.0.1]\n  port: 6969\n"
        "http:\n  enabled: false\ndhcp:\n  mode: proxy\n"
    )
    options = Options()
    options.parseOptions(["--config", str(path)])
    return options


def test_a_lease_database_that_cannot_be_reached_stops_start_in_one_line(tmp_path: Path):
    options = options_for(tmp_path, "lo")
    path = Path(options["config"])
    url = f"postgresql://pxed:secret@/pxed?host={tmp_path}"
    path.write_text(path.read_text().replace("server:\n", f"server:\n  database: '{url}'\n"))
    options = Options()
    options.parseOptions(["--config", str(path)])
    with pytest.raises(SystemExit) as stopped:
        makeService(options)
    message = str(stopped.value)
    assert message.startswith(
        f"pxed cannot start: server.database postgresql://pxed:***@/pxed?host={tmp_path}:"
    )
    assert "\n" not in message and "secret" not in message


def test_a_second_interface_without_an_address_stops_start_in_one_line(tmp_path: Path):
    options = options_for(tmp_path, "lo, pxed-noaddr0")
    with pytest.raises(SystemExit, match=r"^pxed cannot start: interface pxed-noaddr0 has no IPv4"):
        makeService(options)
