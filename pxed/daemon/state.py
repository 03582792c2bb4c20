"""The state directory as the service user will use it, whoever starts pxed.

``twistd --uid/--gid`` (and a unit that starts pxed as root to bind port 67)
drops privileges after the services have started: the lease and host-state
databases, their WAL files and the callback secret were created by root, and
the service user then got "attempt to write a readonly database" at the first
Kickstart. So, started as root with a user to drop to, pxed hands the state
directory and everything in it to that user once every service has opened its
files (:class:`StateOwner`, the last service started). Started unprivileged (a
systemd ``User=``), a state directory it cannot write is one line at start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from twisted.application.service import Service

Owner = tuple[int, int]  # uid, gid


class StateDirError(Exception):
    """The state directory cannot be used by the user pxed runs as."""


def owner_to_drop_to(twistd: Mapping[str, Any] | None) -> Owner | None:
    """The uid and gid twistd will drop to (``--uid/--gid``: twistd's own options), if any."""
    if os.geteuid() != 0 or twistd is None:
        return None
    uid, gid = twistd.get("uid"), twistd.get("gid")
    if uid is None:
        return None
    return int(uid), int(gid if gid is not None else uid)


def check_writable(state_dir: Path, owner: Owner | None) -> None:
    """Raise StateDirError unless the user pxed will run as can write ``state_dir``."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StateDirError(
            f"server.state_dir {state_dir}: cannot create it ({error.strerror})"
        ) from None
    if owner is None and not os.access(state_dir, os.W_OK | os.X_OK):
        raise StateDirError(
            f"server.state_dir {state_dir}: not writable by uid {os.geteuid()}; "
            "chown it to the service user (systemd: StateDirectory=pxed)"
        )


class StateOwner(Service):
    """Hands the state directory and its files to ``owner`` before twistd drops to it."""

    name = "state-owner"

    def __init__(self, state_dir: Path, owner: Owner) -> None:
        self.state_dir = state_dir
        self.owner = owner

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        uid, gid = self.owner
        os.chown(self.state_dir, uid, gid)
        for entry in self.state_dir.iterdir():
            os.chown(entry, uid, gid, follow_symlinks=False)
