"""The MAC and the event a DHCPv6 exchange is shown with (pxed.dhcp6.exchange)."""

from __future__ import annotations

import uuid
from ipaddress import IPv6Address

from protocols.dhcpv6.duid import DuidUuid
from protocols.dhcpv6.options import CLIENT_LINKLAYER_ADDR, LinkLayerAddress
from protocols.dhcpv6.server import NoReply
from pxed.dhcp6.exchange import client_mac, exchange_event
from tests.protocols.dhcpv6_engine_support import LINK_LOCAL, MAC, M, ia, message, relayed

UUID_CLIENT = DuidUuid(uuid.UUID("89b0017e-3621-7141-8c99-78e6e12f7de6"))
GLOBAL = IPv6Address("fd00:213:7::99")


def test_the_duids_link_layer_address_is_the_mac():
    assert client_mac(message(M.SOLICIT), GLOBAL) == MAC


def test_a_duid_uuid_client_is_known_by_its_link_local_eui64_as_ovmf_pxev6():
    solicit = message(M.SOLICIT, client=UUID_CLIENT)
    assert client_mac(solicit, LINK_LOCAL) == MAC
    assert client_mac(solicit, GLOBAL) is None


def test_relayed_the_nearest_relays_option_79_wins_then_its_peer_address():
    solicit = message(M.SOLICIT, client=UUID_CLIENT)
    option_79 = (CLIENT_LINKLAYER_ADDR, LinkLayerAddress(1, bytes.fromhex("020000000001")))
    inner = relayed(solicit, options=[option_79])
    outer = relayed(inner, peer=IPv6Address("fd00:213:8::1"))
    assert client_mac(outer, IPv6Address("fd00:213:9::1")) == "02:00:00:00:00:01"
    assert client_mac(relayed(relayed(solicit)), IPv6Address("fd00:213:9::1")) == MAC


def test_a_client_with_no_mac_anywhere_is_named_by_its_duid():
    solicit = message(M.SOLICIT, ia(), client=UUID_CLIENT)
    event = exchange_event(solicit, NoReply("why"), (GLOBAL, 546), "lab0", 547, 5.0)
    assert event.mac is None
    assert event.who == "DUID 00:04:89:b0:01:7e:36:21:71:41:8c:99:78:e6:e1:2f:7d:e6"
    assert (event.outcome, event.address, event.time) == ("ignored", "-", 5.0)
    assert event.text() == (
        f"dhcp6 SOLICIT from {event.who} ([{GLOBAL}]:546) on lab0: ignored -: why"
    )
