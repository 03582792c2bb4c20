"""The server DUID: made once, the same after every restart, refused when garbled."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocols.dhcpv6.duid import DuidUuid
from pxed.dhcp6.duid import DUID_FILE, ServerDuidError, server_duid


def test_the_server_duid_is_a_duid_uuid_made_once_and_read_back(tmp_path: Path):
    first = server_duid(tmp_path)
    assert isinstance(first, DuidUuid)
    assert (tmp_path / DUID_FILE).read_text().startswith("00:04:")
    assert server_duid(tmp_path) == first


def test_a_garbled_duid_file_is_an_error_naming_the_file_not_a_new_duid(tmp_path: Path):
    (tmp_path / DUID_FILE).write_text("not hex\n")
    with pytest.raises(ServerDuidError, match=f"{DUID_FILE}: not a DUID"):
        server_duid(tmp_path)
