"""Tells systemd (``Type=notify``) that pxed is ready, once every socket is bound.

systemd starts the next unit, or answers ``systemctl start``, when the service
sends ``READY=1`` to ``$NOTIFY_SOCKET``; a ``Type=simple`` unit would count pxed
ready before its ports are bound. The protocol is one datagram on a Unix socket
(an abstract one when the path starts with ``@``), so no library is needed.
"""

from __future__ import annotations

import os
import socket

from twisted.application.service import Service
from twisted.logger import Logger

log = Logger(namespace="pxed.config")


def notify(state: str, socket_path: str | None = None) -> bool:
    """Send ``state`` (``READY=1``, ``RELOADING=1`` ...) to systemd; False when not under it."""
    path = socket_path if socket_path is not None else os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.sendto(state.encode(), address)
        except OSError as error:
            log.warn("cannot tell systemd {state}: {error}", state=state, error=str(error))
            return False
    return True


class ReadyNotifier(Service):
    """The last service to start: by then every other one has bound its sockets."""

    name = "systemd-notify"

    def startService(self) -> None:
        super().startService()
        notify("READY=1")
