"""Which protocol a captured UDP datagram belongs to: DHCP/BOOTP and DHCPv6 by port, TFTP by
conversation.

DHCP is easy: one side uses 67, 68 or 4011 (the PXE boot-server port); DHCPv6
uses 546 (clients) and 547 (servers and relays).
TFTP is not: only the request goes to port 69; the server answers from a new
port (its transfer ID) and the rest of the transfer runs between the two
TIDs.  So a read or write request opens a conversation keyed by the client's
address and port, and later datagrams between that endpoint and the server
belong to it, whatever the server's port.  A server that keeps answering
from its listening port, or a request sent to a broadcast address (the
server's address is then unknown), is followed the same way.  A request to a
port other than 69 is recognised by its shape; ``--tftp-port`` is for
captures that start after the request.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from pxed.pcap.dissect import Datagram, IPAddress

DHCP_PORTS = frozenset({67, 68, 4011})
DHCPV6_PORTS = frozenset({546, 547})
TFTP_PORT = 69
TFTP_REQUEST_OPCODES = (1, 2)  # RRQ, WRQ
TFTP_MODES = (b"octet", b"netascii", b"mail")
# Long captures of a busy boot server must not grow without bound.
MAX_CONVERSATIONS = 4096


class Protocol(enum.Enum):
    DHCP = "DHCP"
    DHCPV6 = "DHCPv6"
    TFTP = "TFTP"


Endpoint = tuple[IPAddress, int]


@dataclass(frozen=True)
class _Transfer:
    server: IPAddress | None  # None: the request went to a broadcast address


class Classifier:
    """Remembers TFTP requests so later datagrams of the transfer are recognised."""

    def __init__(self, tftp_ports: Iterable[int] = ()) -> None:
        self.tftp_ports = frozenset({TFTP_PORT, *tftp_ports})
        self._transfers: dict[Endpoint, _Transfer] = {}

    def classify(self, datagram: Datagram) -> Protocol | None:
        if self._in_transfer(datagram):
            return Protocol.TFTP
        if datagram.sport in DHCP_PORTS or datagram.dport in DHCP_PORTS:
            return Protocol.DHCP
        if datagram.sport in DHCPV6_PORTS or datagram.dport in DHCPV6_PORTS:
            return Protocol.DHCPV6
        if datagram.dport in self.tftp_ports or _looks_like_request(datagram.payload):
            self._note_request(datagram)
            return Protocol.TFTP
        if datagram.sport in self.tftp_ports:
            return Protocol.TFTP
        return None

    def _in_transfer(self, datagram: Datagram) -> bool:
        client = self._transfers.get((datagram.src, datagram.sport))
        if client is not None and _matches(client, datagram.dst):
            return True
        server = self._transfers.get((datagram.dst, datagram.dport))
        return server is not None and _matches(server, datagram.src)

    def _note_request(self, datagram: Datagram) -> None:
        if int.from_bytes(datagram.payload[:2], "big") not in TFTP_REQUEST_OPCODES:
            return
        client = (datagram.src, datagram.sport)
        self._transfers.pop(client, None)
        if len(self._transfers) >= MAX_CONVERSATIONS:
            del self._transfers[next(iter(self._transfers))]
        server = None if _is_broadcast(datagram.dst) else datagram.dst
        self._transfers[client] = _Transfer(server)


def _looks_like_request(payload: bytes) -> bool:
    """An RRQ/WRQ to any port: opcode, a file name and a known mode, each NUL-terminated.

    Strict enough that other traffic practically never matches, so a server on a
    port other than 69 is found without --tftp-port when its request was captured.
    """
    if int.from_bytes(payload[:2], "big") not in TFTP_REQUEST_OPCODES or payload[-1:] != b"\0":
        return False
    fields = payload[2:].split(b"\0")
    return len(fields) >= 3 and bool(fields[0]) and fields[1].lower() in TFTP_MODES


def _matches(transfer: _Transfer, peer: IPAddress) -> bool:
    return transfer.server is None or transfer.server == peer


def _is_broadcast(address: IPAddress) -> bool:
    """Without the netmask, a final .255 is the best guess at a subnet broadcast
    (IPv6 has none: multicast only)."""
    return address.is_multicast or (address.version == 4 and address.packed[-1] == 255)
