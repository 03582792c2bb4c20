"""The server's own DUID (option 2), made once and kept in ``server.state_dir``.

Clients keep the server identifier with their lease and send it back in RENEW,
RELEASE and DECLINE, which a server ignores when it names another DUID (RFC 8415
section 16).  A DUID that changed at restart would strand every client until it
rebinds, so it is made once and read back ever after.  DUID-UUID (RFC 6355) from
a random UUID, not DUID-LLT: it depends on no network card, so replacing one (or
serving another interface) does not change it.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from protocols.dhcpv6.duid import Duid, DuidCodec, DuidUuid
from protocols.errors import MalformedPacket

DUID_FILE = "dhcp6-duid"


class ServerDuidError(Exception):
    """The stored server DUID cannot be read or written; the message names the file."""


def server_duid(state_dir: Path) -> Duid:
    """The DUID in ``state_dir/dhcp6-duid``, made (and synced to disk) if there is none."""
    path = state_dir / DUID_FILE
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return _create(path)
    except (OSError, UnicodeDecodeError) as error:
        raise ServerDuidError(f"{path}: cannot read the DHCPv6 server DUID: {error}") from error
    try:
        return DuidCodec().decode(bytes.fromhex(text.strip().replace(":", "")))
    except (ValueError, MalformedPacket) as error:
        raise ServerDuidError(
            f"{path}: not a DUID ({error}); clients holding leases know the old one: restore "
            "the file, or remove it to make a new DUID (clients then rebind)"
        ) from error


def _create(path: Path) -> Duid:
    duid = DuidUuid(uuid.uuid4())
    text = DuidCodec().encode(duid).hex(":") + "\n"
    temporary = path.with_name(path.name + ".new")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "w", encoding="ascii") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as error:
        raise ServerDuidError(f"{path}: cannot store the DHCPv6 server DUID: {error}") from error
    return duid
