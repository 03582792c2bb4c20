"""Decoding one captured payload with pxed's own grammars, and judging the result.

Three outcomes: the payload decoded; it is malformed (the grammar said why,
or the capture lacks bytes); or pxed has a bug: the decoder raised something
other than MalformedPacket, or the decoded message re-encodes to different
bytes.  ``pxed pcap --strict`` fails on the last kind only: a malformed packet
on the wire is the peer's problem, not pxed's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from protocols.dhcp.wire import decode_dhcp, encode_dhcp
from protocols.dhcpv6.wire import decode_dhcpv6, encode_dhcpv6
from protocols.errors import MalformedPacket
from protocols.tftp.wire import decode_tftp, encode_tftp
from pxed.pcap.classify import Protocol
from pxed.pcap.dissect import Datagram

CODECS: dict[Protocol, tuple[Callable[[bytes], Any], Callable[[Any], bytes]]] = {
    Protocol.DHCP: (decode_dhcp, encode_dhcp),
    Protocol.DHCPV6: (decode_dhcpv6, encode_dhcpv6),
    Protocol.TFTP: (decode_tftp, encode_tftp),
}


@dataclass(frozen=True)
class Decoded:
    message: Any


@dataclass(frozen=True)
class Malformed:
    reason: str


@dataclass(frozen=True)
class Bug:
    """pxed got it wrong: the reason says what to report."""

    reason: str


Outcome = Decoded | Malformed | Bug


def judge(protocol: Protocol, datagram: Datagram, check_round_trip: bool) -> Outcome:
    """Decode `datagram`'s payload; with check_round_trip, also re-encode and compare."""
    decode, encode = CODECS[protocol]
    try:
        message = decode(datagram.payload)
    except MalformedPacket as error:
        return _truncated(datagram) if datagram.missing else Malformed(str(error))
    except Exception as error:
        return Bug(f"decoder raised {type(error).__name__}: {error}")
    if datagram.missing:
        return _truncated(datagram)
    return _round_trip(message, datagram.payload, encode) if check_round_trip else Decoded(message)


def _truncated(datagram: Datagram) -> Malformed:
    captured = len(datagram.payload)
    whole = captured + datagram.missing
    cause = (
        "frame cut short by the capture's snap length"
        if datagram.frame.truncated
        else "IP/UDP length says more than the frame holds"
    )
    return Malformed(f"truncated: {captured} of {whole} payload bytes captured ({cause})")


def _round_trip(message: Any, payload: bytes, encode: Callable[[Any], bytes]) -> Outcome:
    try:
        again = encode(message)
    except Exception as error:
        return Bug(f"re-encoding the decoded message raised {type(error).__name__}: {error}")
    if again == payload:
        return Decoded(message)
    return Bug(f"re-encodes differently: {_difference(payload, again)}")


def _difference(original: bytes, again: bytes) -> str:
    first = next(
        (index for index, (a, b) in enumerate(zip(original, again, strict=False)) if a != b),
        min(len(original), len(again)),
    )
    return (
        f"{len(again)} bytes instead of {len(original)}, first difference at byte {first} "
        f"(captured {original[first : first + 8].hex(' ') or 'nothing'}, "
        f"re-encoded {again[first : first + 8].hex(' ') or 'nothing'})"
    )
