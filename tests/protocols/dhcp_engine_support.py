"""Builders shared by the DHCP engine tests: a lab config and client requests."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from protocols.dhcp.allocation import Host, Subnet
from protocols.dhcp.leases import MemoryLeaseStore
from protocols.dhcp.options import MessageType
from protocols.dhcp.policy import BootFamily, BootSettings
from protocols.dhcp.server import DhcpServer, Mode, Received, Reply, Settings
from protocols.dhcp.wire import BROADCAST_FLAG, DhcpPacket, decode_dhcp, encode_dhcp, make_options

ZERO = IPv4Address(0)
SERVER = IPv4Address("10.213.7.1")
OTHER_SERVER = IPv4Address("10.213.7.2")
RELAY = IPv4Address("10.213.8.1")
LAB = Subnet(
    IPv4Network("10.213.7.0/24"),
    pool=(IPv4Address("10.213.7.100"), IPv4Address("10.213.7.109")),
    routers=(SERVER,),
    dns=(SERVER,),
    domain="lab.internal",
    lease_time=3600,
)
REMOTE = Subnet(
    IPv4Network("10.213.8.0/24"),
    pool=(IPv4Address("10.213.8.100"), IPv4Address("10.213.8.109")),
    routers=(RELAY,),
    lease_time=600,
)
MAC = "52:54:00:12:34:56"
MAC2 = "52:54:00:12:34:57"
RESERVED_MAC = "52:54:00:00:00:21"
RESERVED_IP = IPv4Address("10.213.7.21")
BOOT = BootSettings(
    files={
        BootFamily.BIOS: "pxelinux.0",
        BootFamily.UEFI: "syslinux.efi",
        BootFamily.IPXE: "http://{server}:{http_port}/boot/{mac}.ipxe",
        BootFamily.UEFI_HTTP: "http://{server}:{http_port}/tftp/snponly.efi",
    },
)
HOSTS = {
    RESERVED_MAC: Host(
        RESERVED_MAC, ip=RESERVED_IP, hostname="web01", loader={BootFamily.UEFI: "grubx64.efi"}
    )
}
ON_LAB = Received(SERVER, (IPv4Address(0), 68))


def settings(**overrides: object) -> Settings:
    base: dict[str, object] = dict(
        boot=BOOT,
        mode=Mode.FULL,
        allow_unknown=True,
        subnets=(LAB, REMOTE),
        hosts=HOSTS,
    )
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


def server(store: MemoryLeaseStore | None = None, **overrides: object) -> DhcpServer:
    return DhcpServer(settings(**overrides), store or MemoryLeaseStore())


def request(
    kind: MessageType | None,
    mac: str = MAC,
    *,
    xid: int = 0x1234,
    options: tuple[tuple[int, object], ...] = (),
    ciaddr: IPv4Address = ZERO,
    giaddr: IPv4Address = ZERO,
    broadcast: bool = False,
    cookie: bool = True,
) -> bytes:
    """The wire bytes of a client request (through the real encoder)."""
    head = [(53, kind)] if kind is not None else []
    packet = DhcpPacket(
        xid=xid,
        chaddr=bytes.fromhex(mac.replace(":", "")),
        flags=BROADCAST_FLAG if broadcast else 0,
        ciaddr=ciaddr,
        giaddr=giaddr,
        options=make_options(head + list(options)),
        vend=None if cookie else bytes(64),
    )
    return encode_dhcp(packet, min_size=300)


def reply_packet(action: object) -> DhcpPacket:
    assert isinstance(action, Reply), action
    return decode_dhcp(action.data)


def codes(packet: DhcpPacket) -> list[int]:
    return [option.code for option in packet.options]


def dora(
    engine: DhcpServer, mac: str = MAC, now: float = 1000.0, **kwargs: object
) -> tuple[DhcpPacket, DhcpPacket]:
    """DISCOVER then REQUEST on the lab link: (OFFER, ACK)."""
    discover = MessageType.DISCOVER
    offer = reply_packet(engine.handle_datagram(request(discover, mac, **kwargs), ON_LAB, now))
    options = ((54, SERVER), (50, offer.yiaddr))
    ack = engine.handle_datagram(
        request(MessageType.REQUEST, mac, options=options, **kwargs),
        ON_LAB,
        now,  # type: ignore[arg-type]
    )
    return offer, reply_packet(ack)
