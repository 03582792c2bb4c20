"""A deterministic UDP reactor for adapter tests: task.Clock plus recorded datagram ports.

``MemoryReactor`` has no ``listenUDP`` (docs/pitfalls.md #7). This one
records every ``listenUDP``/``adoptDatagramPort`` call with its
``maxPacketSize``, hands out ephemeral ports from a counter, lets a test
deliver a datagram to whatever port is bound at an address, and keeps every
datagram a port wrote so the test can read the server's replies in order.
Datagrams sent past Twisted through ``port.socket.sendto`` (or ``send`` on a
port connected as pxed.tftp.transfer_loop's are) are recorded the same way, and a
``sendto_error`` makes the next one fail as the kernel would. It also stands in
for the transfer loop itself (``callFromThread`` runs at once, one thread). The
socket does UDP GSO like Linux: with ``UDP_SEGMENT`` set, one sendto of
several segments is recorded as the datagrams the kernel would cut it into.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass, field

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import Clock

Address = tuple[str, int]
UDP_SEGMENT = 103  # linux/udp.h
SO_RCVBUFFORCE = 33  # asm-generic/socket.h
UDP_MAX_SEGMENTS = 64
MAX_UDP_PAYLOAD = 65507
IP_UDP_HEADERS = 28


@dataclass
class FakeSocket:
    """The bound socket under a port, as far as a protocol calls it directly."""

    port: FakeDatagramPort
    sendto_error: OSError | None = None  # raised by the next sendto, then cleared
    gso: bool = True  # False: setsockopt(UDP_SEGMENT) fails as on a kernel without GSO
    segment: int = 0  # UDP_SEGMENT as set; 0 is off
    mtu: int = 65536  # of the path; only a GSO send checks it, a plain one fragments
    receive_buffer: int = 212992  # SO_RCVBUF, the kernel's usual default

    def setsockopt(self, level: int, option: int, value: int) -> None:
        if (level, option) == (socket.SOL_SOCKET, SO_RCVBUFFORCE):
            raise PermissionError(errno.EPERM, "Operation not permitted")  # not CAP_NET_ADMIN
        if (level, option) == (socket.SOL_SOCKET, socket.SO_RCVBUF):
            self.receive_buffer = value
            return
        if (level, option) != (socket.SOL_UDP, UDP_SEGMENT) or not self.gso:
            raise OSError(errno.ENOPROTOOPT, "Protocol not available")
        self.segment = value

    def send(self, datagram: bytes) -> int:
        if self.port.peer is None:
            raise OSError(errno.EDESTADDRREQ, "Destination address required")
        return self.sendto(datagram, self.port.peer)

    def sendto(self, datagram: bytes, addr: Address) -> int:
        if not self.port.listening:
            raise OSError(errno.EBADF, "Bad file descriptor")  # the port closed its socket
        if self.sendto_error is not None:
            failure, self.sendto_error = self.sendto_error, None
            raise failure
        if len(datagram) > MAX_UDP_PAYLOAD:
            raise OSError(errno.EMSGSIZE, "Message too long")
        if self.segment and min(len(datagram), self.segment) + IP_UDP_HEADERS > self.mtu:
            raise OSError(errno.EMSGSIZE, "Message too long")  # what Linux says then
        step = self.segment or max(len(datagram), 1)
        if len(datagram) > step * UDP_MAX_SEGMENTS:
            raise OSError(errno.EINVAL, "Invalid argument")
        for start in range(0, len(datagram) or 1, step):
            self.port.record(datagram[start : start + step], addr)
        return len(datagram)


@dataclass
class FakeDatagramPort:
    """One bound UDP port: what it was bound with and what it wrote."""

    reactor: FakeUDPReactor
    protocol: DatagramProtocol
    interface: str
    port: int
    max_packet_size: int
    adopted_fd: int | None = None
    written: list[tuple[bytes, Address]] = field(default_factory=list)
    listening: bool = True
    peer: Address | None = None  # set by connect(); strangers still reach the protocol
    socket: FakeSocket = field(init=False)

    def __post_init__(self) -> None:
        self.socket = FakeSocket(self)

    def getHost(self) -> IPv4Address:
        return IPv4Address("UDP", self.interface or "0.0.0.0", self.port)

    def write(self, datagram: bytes, addr: Address | None = None) -> None:
        if not self.listening:
            raise AssertionError(f"write on port {self.port} after stopListening")
        if addr is None:
            raise AssertionError("write without a destination on an unconnected port")
        self.record(datagram, addr)

    def record(self, datagram: bytes, addr: Address) -> None:
        self.written.append((datagram, addr))
        self.reactor.sent.append((self.address, datagram, addr))

    def connect(self, host: str, port: int) -> None:
        """As pxed.tftp.transfer_loop's ports: send() goes to the peer, everyone still arrives."""
        self.peer = (host, port)

    def setBroadcastAllowed(self, enabled: bool) -> None:
        self.broadcast = enabled

    def stopListening(self) -> Deferred[None]:
        if self.listening:
            self.listening = False
            self.protocol.doStop()
        return succeed(None)

    @property
    def address(self) -> Address:
        return (self.interface or "0.0.0.0", self.port)


class FakeUDPReactor(Clock):
    """``task.Clock`` that also binds fake UDP ports."""

    def __init__(self, first_ephemeral: int = 40000) -> None:
        super().__init__()
        self.ports: list[FakeDatagramPort] = []
        self.sent: list[tuple[Address, bytes, Address]] = []
        self._next_port = first_ephemeral
        self.refusal_ports: dict[str, int] = {}  # send_refusal: one port per address

    def listenUDP(
        self,
        port: int,
        protocol: DatagramProtocol,
        interface: str = "",
        maxPacketSize: int = 8192,
    ) -> FakeDatagramPort:
        if port == 0:
            port, self._next_port = self._next_port, self._next_port + 1
        elif any(p.listening and p.address == (interface or "0.0.0.0", port) for p in self.ports):
            raise CannotListenError(interface, port, OSError("address already in use"))
        bound = FakeDatagramPort(self, protocol, interface, port, maxPacketSize)
        self.ports.append(bound)
        protocol.makeConnection(bound)
        return bound

    def adoptDatagramPort(
        self,
        fileDescriptor: int,
        addressFamily: object,
        protocol: DatagramProtocol,
        maxPacketSize: int = 8192,
    ) -> FakeDatagramPort:
        port, self._next_port = self._next_port, self._next_port + 1
        bound = FakeDatagramPort(self, protocol, "0.0.0.0", port, maxPacketSize, fileDescriptor)
        self.ports.append(bound)
        protocol.makeConnection(bound)
        return bound

    def callFromThread(self, func, *args, **kwargs) -> None:
        """One thread here: the call runs at once, as if the other side ran it then."""
        func(*args, **kwargs)

    alive = True  # the TransferLoop's thread, for a fake standing in for it

    def send_refusal(self, address: str, datagram: bytes, client: Address) -> None:
        """As ``TransferLoop.send_refusal``: recorded from the address's one refusal port."""
        if address not in self.refusal_ports:
            self.refusal_ports[address], self._next_port = self._next_port, self._next_port + 1
        self.sent.append(((address or "0.0.0.0", self.refusal_ports[address]), datagram, client))

    def start(self) -> None:
        """The TransferLoop's life, for a fake standing in for it: nothing to start."""

    def stop(self) -> Deferred[None]:
        return succeed(None)

    @property
    def open_ports(self) -> list[FakeDatagramPort]:
        return [port for port in self.ports if port.listening]

    def port_at(self, address: Address) -> FakeDatagramPort:
        (port,) = [p for p in self.open_ports if p.address == address]
        return port

    def deliver(self, datagram: bytes, to: Address, sender: Address) -> bool:
        """A datagram from ``sender`` arrives at ``to``; False if nothing is bound there (lost)."""
        bound = [p for p in self.open_ports if p.address == to]
        for port in bound:
            port.protocol.datagramReceived(datagram, sender)
        return bool(bound)
