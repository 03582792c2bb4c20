"""The one error type that bad input may raise out of a decoder.

Callers (listeners, ``pxed pcap``) catch exactly this to log-and-drop a
datagram; anything else escaping a decoder is a bug in pxed.
"""

from __future__ import annotations


class MalformedPacket(ValueError):
    """A datagram that does not follow its protocol's grammar.

    ``offset`` points at the byte where decoding gave up, when known, so the
    message can be matched against a hex dump of the capture.
    """

    def __init__(self, reason: str, offset: int | None = None) -> None:
        self.reason = reason
        self.offset = offset
        where = "" if offset is None else f", at offset {offset}"
        super().__init__(f"{reason}{where}")
