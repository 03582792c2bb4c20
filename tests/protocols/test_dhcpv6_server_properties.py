"""Random conversations with the DHCPv6 engine: it never raises, whatever the bytes, and
never gives one address to two IAs while the first still holds it; reservations are only
ever given to their host."""

from __future__ import annotations

from ipaddress import IPv6Address

from hypothesis import given
from hypothesis import strategies as st

from protocols.dhcp.server import Mode
from protocols.dhcpv6.duid import DuidLl
from protocols.dhcpv6.leases import MemoryLeaseStore
from protocols.dhcpv6.options import RAPID_COMMIT, Option
from protocols.dhcpv6.server import Received, Reply
from protocols.dhcpv6.wire import Dhcpv6Message, Dhcpv6Relay, decode_dhcpv6, encode_dhcpv6
from tests.protocols.dhcpv6_engine_support import (
    DUID_HOST,
    DUID_RESERVED,
    FROM_RELAY,
    LINK_LOCAL,
    ON_LAB,
    OTHER_DUID,
    PXE_UEFI,
    RESERVED,
    RESERVED_MAC,
    SERVER,
    SERVER_DUID,
    M,
    duid_bytes,
    ia,
    message,
    relayed,
    server,
)
from tests.support.fuzz import fuzz_settings, property_settings

RESERVED_CLIENT = DuidLl(1, bytes.fromhex(RESERVED_MAC.replace(":", "")))
CLIENTS = [RESERVED_CLIENT, DUID_HOST] + [DuidLl(1, bytes([2, 0, 0, 0, 9, n])) for n in range(12)]
ADDRESSES = [
    RESERVED,
    DUID_RESERVED,
    IPv6Address("fd00:213:7::100"),
    IPv6Address("fd00:213:7::101"),
    IPv6Address("fd00:213:7::109"),
    IPv6Address("fd00:213:7::"),
    IPv6Address("fd00:213:8::100"),
    IPv6Address("fd00:99::1"),
]
# Client messages (weighted to the four-message exchange) and two a client never sends.
KINDS = [M.SOLICIT] * 3 + [M.REQUEST] * 3 + [M.RENEW, M.REBIND, M.RELEASE, M.DECLINE]
KINDS += [M.CONFIRM, M.INFORMATION_REQUEST, M.ADVERTISE, M.RELAY_REPL]
LAB_RELAY = IPv6Address("fd00:213:7::2")

step = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(KINDS),
        "client": st.sampled_from(CLIENTS),
        "iaids": st.lists(st.sampled_from([1, 2]), max_size=2, unique=True),
        # "last": the address the engine last gave this client, as a real client names it.
        "listed": st.lists(st.sampled_from([*ADDRESSES, "last", "last"]), max_size=2),
        # "rule": the server identifier RFC 8415 section 16 wants for the message type.
        "server_id": st.sampled_from(["rule", "rule", "rule", None, SERVER_DUID, OTHER_DUID]),
        "rapid": st.booleans(),
        "pxe": st.booleans(),
        "relay": st.sampled_from([None, LAB_RELAY, IPv6Address("fd00:213:8::1")]),
        "advance": st.floats(0, 2000),
    }
)


RULE = {M.REQUEST, M.RENEW, M.RELEASE, M.DECLINE}


def build(s: dict, last: dict[object, IPv6Address]) -> bytes:
    """The step's message; resolves "last" and "rule" in ``s`` in place."""
    s["listed"] = [last.get(s["client"]) if a == "last" else a for a in s["listed"]]
    s["listed"] = [a for a in s["listed"] if a is not None]
    if s["server_id"] == "rule":
        s["server_id"] = SERVER_DUID if s["kind"] in RULE else None
    options = [ia(iaid, *s["listed"]) for iaid in s["iaids"]]
    if s["rapid"]:
        options.append((RAPID_COMMIT, b""))
    if s["pxe"]:
        options += PXE_UEFI
    inner = message(s["kind"], *options, client=s["client"], server_id=s["server_id"])
    packet = inner if s["relay"] is None else relayed(inner, link=s["relay"])
    return encode_dhcpv6(packet)


def granted(reply: Dhcpv6Message) -> list[tuple[int, IPv6Address, int]]:
    """(IAID, address, valid lifetime) of every IAADDR in the reply's IA_NAs."""
    return [
        (each.iaid, option.value.address, option.value.valid)  # type: ignore[attr-defined]
        for each in reply.ia_na
        for option in each.options
        if option.code == 5
    ]


@property_settings
@given(st.lists(step, max_size=40), st.sampled_from([Mode.FULL, Mode.PROXY]), st.booleans())
def test_random_conversations_never_give_one_address_to_two_ias(steps, mode, rapid):
    store = MemoryLeaseStore()
    engine = server(store, mode=mode, rapid_commit=rapid)
    holders: dict[IPv6Address, tuple[tuple[bytes, int], float]] = {}
    last: dict[object, IPv6Address] = {}
    now = 1000.0
    for s in steps:
        now += s["advance"]
        received = ON_LAB if s["relay"] is None else FROM_RELAY
        action = engine.handle_datagram(build(s, last), received, now)
        if not isinstance(action, Reply):
            continue
        packet = decode_dhcpv6(action.data)
        reply = packet.client_message if isinstance(packet, Dhcpv6Relay) else packet
        client = duid_bytes(s["client"])
        if mode is Mode.PROXY:
            assert granted(reply) == []
        for _, address, valid in granted(reply):
            if valid:
                last[s["client"]] = address
        if reply.msg_type != M.REPLY:
            continue
        for iaid, address, valid in granted(reply):
            key = (client, iaid)
            if valid == 0:
                if holders.get(address, (None,))[0] == key:
                    del holders[address]
                continue
            held = holders.get(address)
            assert held is None or held[0] == key or held[1] <= now, f"{address} given twice"
            holders[address] = (key, now + valid)
            assert address != RESERVED or s["client"] == RESERVED_CLIENT
            assert address != DUID_RESERVED or s["client"] == DUID_HOST
        if s["kind"] in (M.RELEASE, M.DECLINE):
            refused = {each.iaid for each in reply.ia_na}
            for iaid in set(s["iaids"]) - refused:
                for address in s["listed"]:
                    if holders.get(address, (None,))[0] == (client, iaid):
                        del holders[address]


@fuzz_settings
@given(st.binary(max_size=600), st.sampled_from([547, 4011]), st.booleans())
def test_arbitrary_datagrams_never_raise(data, port, proxy):
    """Whatever arrives, the engine answers or says why not; it never raises."""
    engine = server(mode=Mode.PROXY if proxy else Mode.FULL, rapid_commit=True)
    engine.handle_datagram(data, Received(SERVER, (LINK_LOCAL, 546), port=port), 1000.0)
    engine.handle_datagram(data, FROM_RELAY, 1000.0)


_OPTIONS = st.lists(
    st.tuples(
        st.sampled_from([1, 2, 3, 4, 5, 6, 8, 13, 14, 15, 16, 18, 25, 39, 61, 79, 999]),
        st.binary(max_size=40),
    ),
    max_size=8,
)


@property_settings
@given(
    st.sampled_from([k for k in KINDS if k != M.RELAY_REPL]),
    _OPTIONS,
    _OPTIONS,
    st.sampled_from([547, 4011]),
    st.sampled_from([Mode.FULL, Mode.PROXY]),
)
def test_messages_and_relays_with_arbitrary_options_never_raise(kind, options, relay, port, mode):
    engine = server(mode=mode, rapid_commit=True)
    inner = Dhcpv6Message(
        msg_type=kind,
        transaction_id=7,
        options=tuple(Option(code, data) for code, data in options),
    )
    received = Received(SERVER, (LINK_LOCAL, 546), port=port)
    engine.handle(inner, received, 1000.0)
    wrapped = relayed(inner, options=[(code, data) for code, data in relay if code != 9])
    engine.handle(wrapped, FROM_RELAY, 1000.0)
    engine.handle(relayed(wrapped, link=IPv6Address(0)), FROM_RELAY, 1000.0)
