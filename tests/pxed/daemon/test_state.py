"""The state directory as the service user will use it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pxed.daemon.state import StateDirError, check_writable, owner_to_drop_to


def test_a_state_dir_the_user_cannot_write_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Started unprivileged (systemd User=), it was a traceback at the first request."""
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(StateDirError, match=r"not writable by uid \d+; chown it"):
        check_writable(tmp_path / "state", None)


def test_the_user_to_drop_to_comes_from_twistds_uid_and_gid(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert owner_to_drop_to({"uid": 65534, "gid": 65533}) == (65534, 65533)
    assert owner_to_drop_to({"uid": 65534, "gid": None}) == (65534, 65534)
    assert owner_to_drop_to({"uid": None, "gid": None}) is None
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert owner_to_drop_to({"uid": 65534, "gid": 65534}) is None  # not root: no drop
