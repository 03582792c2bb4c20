"""Text that came from a client, made safe to show: no control character reaches a log or
a terminal raw.

A hostname (DHCP option 12), a TFTP file name or a vendor class is whatever the
sender wrote: a carriage return or an escape sequence in it would forge log rows
or drive the operator's terminal. Every such string is shown through these.
"""

from __future__ import annotations

SURROGATE_ESCAPES = range(0xDC80, 0xDD00)  # bytes that were not UTF-8 (surrogateescape)


def printable(text: str) -> str:
    """``text`` with control characters and undecodable bytes as \\xNN escapes."""
    if text.isprintable():
        return text
    return "".join(_escaped(char, "") for char in text)


def quoted(text: str) -> str:
    """Double-quoted, escaped as :func:`printable`, with quotes and backslashes escaped too."""
    return '"' + "".join(_escaped(char, '"\\') for char in text) + '"'


def _escaped(char: str, special: str) -> str:
    code = ord(char)
    if code in SURROGATE_ESCAPES:
        return f"\\x{code - 0xDC00:02x}"
    if char in special:
        return "\\" + char
    if not char.isprintable():
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return char
