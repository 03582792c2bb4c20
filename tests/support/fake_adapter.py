"""What the DHCP and DHCPv6 adapter tests hand a service besides the fake reactor: the
sockets it opens (recorded, for the reactor to adopt) and a lease store that records
its commits and can fail them."""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.support.fake_udp import FakeUDPReactor


@dataclass
class OpenedSocket:
    """A socket the service opened for an interface and port; the reactor adopts its fd."""

    interface: str
    port: int
    fd: int
    closed: bool = False

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        self.closed = True


class SocketOpener:
    """The service's ``open_socket``: records every socket it opened, in order."""

    def __init__(self) -> None:
        self.opened: list[OpenedSocket] = []

    def __call__(self, interface: str, port: int) -> OpenedSocket:
        self.opened.append(OpenedSocket(interface, port, 100 + len(self.opened)))
        return self.opened[-1]


@dataclass
class CommitRecorder:
    """Mixed in before a family's ``MemoryLeaseStore``: records each commit with how many
    datagrams had been sent by then (none of its batch may have been), and the close;
    ``fail_commit`` makes commits fail as a full disk would."""

    reactor: FakeUDPReactor | None = None
    events: list[tuple[str, object]] = field(default_factory=list)
    fail_commit: bool = False

    def __post_init__(self) -> None:
        super().__init__()  # the memory store's

    def commit(self) -> None:
        if self.fail_commit:
            raise OSError(28, "No space left on device")
        assert self.reactor is not None
        self.events.append(("commit", len(self.reactor.sent)))

    def close(self) -> None:
        self.events.append(("close", None))
