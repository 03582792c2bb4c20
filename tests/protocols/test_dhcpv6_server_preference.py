"""Option 7 (preference) in full-mode ADVERTISEs: at 255 a client REQUESTs at once
instead of waiting for other servers (RFC 8415 18.2.1; OVMF waits 5 s)."""

from __future__ import annotations

from protocols.dhcp.server import Mode
from protocols.dhcpv6.options import PREFERENCE, RAPID_COMMIT
from tests.protocols.dhcpv6_engine_support import (
    PXE_UEFI,
    M,
    client_reply,
    ia,
    message,
    send,
    server,
)


def test_advertise_carries_the_configured_preference():
    advertise = client_reply(send(server(preference=255), message(M.SOLICIT, ia())))
    assert advertise.msg_type == M.ADVERTISE and advertise.option(PREFERENCE) == 255


def test_preference_zero_sends_no_option_as_rfc_8415_reads_its_absence_as_zero():
    advertise = client_reply(send(server(preference=0), message(M.SOLICIT, ia())))
    assert advertise.get(PREFERENCE) is None


def test_a_rapid_commit_reply_carries_no_preference():
    engine = server(preference=255, rapid_commit=True)
    reply = client_reply(send(engine, message(M.SOLICIT, ia(), (RAPID_COMMIT, b""))))
    assert reply.msg_type == M.REPLY and reply.get(PREFERENCE) is None


def test_a_proxy_advertise_carries_no_preference_so_the_address_server_still_counts():
    engine = server(preference=255, mode=Mode.PROXY)
    advertise = client_reply(send(engine, message(M.SOLICIT, *PXE_UEFI)))
    assert advertise.msg_type == M.ADVERTISE and advertise.get(PREFERENCE) is None
