"""Builders shared by the DHCPv6 engine tests: a lab config, client messages, relays."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from ipaddress import IPv6Address, IPv6Network

from protocols.dhcp.policy import BootFamily
from protocols.dhcp.server import Mode
from protocols.dhcpv6.allocation import Host, Link
from protocols.dhcpv6.boot import BootSettings
from protocols.dhcpv6.duid import DuidLl, DuidLlt, DuidUuid
from protocols.dhcpv6.leases import MemoryLeaseStore
from protocols.dhcpv6.options import (
    CLIENTID,
    IA_NA,
    IAADDR,
    SERVERID,
    STATUS_CODE,
    IaAddress,
    IaNa,
    Option,
    Status,
)
from protocols.dhcpv6.server import Dhcpv6Server, Received, Reply, Settings
from protocols.dhcpv6.wire import (
    Dhcpv6Message,
    Dhcpv6Packet,
    Dhcpv6Relay,
    MessageType,
    decode_dhcpv6,
    encode_dhcpv6,
)

M = MessageType
SERVER = IPv6Address("fd00:213:7::1")
SERVER_DUID = DuidLlt(1, 0x2A2B2C2D, bytes.fromhex("525400aabbcc"))
OTHER_DUID = DuidLl(1, bytes.fromhex("525400ddeeff"))
LAB = Link(
    IPv6Network("fd00:213:7::/64"),
    pool=(IPv6Address("fd00:213:7::100"), IPv6Address("fd00:213:7::109")),
    lease_time=3600,
    dns=(SERVER,),
    domains=("lab.internal",),
)
REMOTE = Link(
    IPv6Network("fd00:213:8::/64"),
    pool=(IPv6Address("fd00:213:8::100"), IPv6Address("fd00:213:8::1ff")),
    lease_time=600,
)
RELAY_LINK = IPv6Address("fd00:213:8::1")
RELAY_SOURCE = IPv6Address("fd00:213:8::1")
MAC = "52:54:00:12:34:56"
MAC2 = "52:54:00:12:34:57"
CLIENT = DuidLl(1, bytes.fromhex(MAC.replace(":", "")))
CLIENT2 = DuidLl(1, bytes.fromhex(MAC2.replace(":", "")))
UUID_CLIENT = DuidUuid(uuid.UUID("8c2a7d6e-1f3b-4c5d-9e0f-112233445566"))
RESERVED_MAC = "52:54:00:00:00:21"
RESERVED = IPv6Address("fd00:213:7::21")
DUID_HOST = DuidLl(1, bytes.fromhex("525400000022"))
DUID_RESERVED = IPv6Address("fd00:213:7::22")
LINK_LOCAL = IPv6Address("fe80::5054:ff:fe12:3456")  # MAC's EUI-64 address
BOOT = BootSettings(
    urls={
        BootFamily.UEFI: "tftp://[{server6}]/syslinux.efi",
        BootFamily.ARM64: "tftp://[{server6}]/arm64/grubaa64.efi",
        BootFamily.IPXE: "http://[{server6}]:{http_port}/boot/{mac}.ipxe",
        BootFamily.UEFI_HTTP: "http://[{server6}]:{http_port}/tftp/snponly.efi",
    },
    http_port=8080,
)


def duid_bytes(duid: object) -> bytes:
    return Option.of(CLIENTID, duid).data


HOSTS = (
    Host(
        mac=RESERVED_MAC,
        address=RESERVED,
        loader={BootFamily.UEFI: "tftp://[{server6}]/grubx64.efi"},
    ),
    Host(duid=duid_bytes(DUID_HOST), address=DUID_RESERVED),
)
ON_LAB = Received(SERVER, (LINK_LOCAL, 546))
FROM_RELAY = Received(SERVER, (RELAY_SOURCE, 547))
PXE_UEFI: tuple[tuple[int, object], ...] = (
    (6, (59, 60)),
    (62, bytes([1, 3, 16])),
    (61, (7,)),
    (16, bytes.fromhex("00000157") + b"\x00\x20PXEClient:Arch:00007:UNDI:003016"),
)


def settings(**overrides: object) -> Settings:
    # Most tests play many clients from ON_LAB's one source address: the SOLICIT rate
    # limit is pinned in test_dhcpv6_hostile.py, with its own burst.
    base: dict[str, object] = dict(
        server_duid=SERVER_DUID,
        boot=BOOT,
        mode=Mode.FULL,
        links=(LAB, REMOTE),
        hosts=HOSTS,
        solicit_burst=1_000_000,
    )
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


def server(store: MemoryLeaseStore | None = None, **overrides: object) -> Dhcpv6Server:
    return Dhcpv6Server(settings(**overrides), store or MemoryLeaseStore())


def ia(iaid: int = 1, *addresses: IPv6Address) -> tuple[int, object]:
    inner = tuple(Option.of(IAADDR, IaAddress(address, 0, 0)) for address in addresses)
    return IA_NA, IaNa(iaid, 0, 0, inner)


def message(
    kind: MessageType,
    *options: tuple[int, object],
    client: object = CLIENT,
    server_id: object = None,
    xid: int = 0xA1B2C3,
) -> Dhcpv6Message:
    head: list[tuple[int, object]] = [] if client is None else [(CLIENTID, client)]
    if server_id is not None:
        head.append((SERVERID, server_id))
    return Dhcpv6Message(
        msg_type=kind,
        transaction_id=xid,
        options=tuple(Option.of(code, value) for code, value in [*head, *options]),
    )


def relayed(
    inner: Dhcpv6Packet,
    link: IPv6Address = RELAY_LINK,
    peer: IPv6Address = LINK_LOCAL,
    options: Iterable[tuple[int, object]] = (),
    hop_count: int = 0,
) -> Dhcpv6Relay:
    return Dhcpv6Relay.around(
        inner,
        options=[Option.of(code, value) for code, value in options],
        msg_type=M.RELAY_FORW,
        hop_count=hop_count,
        link_address=link,
        peer_address=peer,
    )


def send(
    engine: Dhcpv6Server,
    packet: Dhcpv6Packet,
    received: Received = ON_LAB,
    now: float = 1000.0,
) -> object:
    """Through the real encoder and decoder, as the adapter will."""
    return engine.handle_datagram(encode_dhcpv6(packet), received, now)


def reply_of(action: object) -> Dhcpv6Packet:
    assert isinstance(action, Reply), action
    return decode_dhcpv6(action.data)


def client_reply(action: object) -> Dhcpv6Message:
    packet = reply_of(action)
    return packet.client_message if isinstance(packet, Dhcpv6Relay) else packet


def addresses(reply: Dhcpv6Message, iaid: int | None = None) -> dict[IPv6Address, int]:
    """Every IAADDR of the reply's IA_NAs (of one IAID if given): address -> valid lifetime."""
    found = {}
    for each in reply.ia_na:
        if iaid is None or each.iaid == iaid:
            for option in each.options:
                if option.code == IAADDR:
                    found[option.value.address] = option.value.valid  # type: ignore[attr-defined]
    return found


def ia_status(reply: Dhcpv6Message, iaid: int = 1) -> int | None:
    for each in reply.ia_na:
        if each.iaid == iaid:
            for option in each.options:
                if option.code == STATUS_CODE:
                    value = option.value
                    assert isinstance(value, Status)
                    return int(value.code)
    return None


def status(reply: Dhcpv6Message) -> int | None:
    found = reply.option(STATUS_CODE)
    return None if found is None else int(found.code)


def lease(engine: Dhcpv6Server, now: float = 1000.0, **kwargs: object) -> IPv6Address:
    """SOLICIT then REQUEST on the lab link; the address bound."""
    options = kwargs.pop("options", ())
    advertise = client_reply(send(engine, message(M.SOLICIT, ia(), *options, **kwargs), now=now))
    (offered,) = addresses(advertise)
    request = message(M.REQUEST, ia(1, offered), *options, server_id=SERVER_DUID, **kwargs)
    reply = client_reply(send(engine, request, now=now))
    assert addresses(reply) == {offered: LAB.lease_time}
    return offered
