"""Text that came from a client, made safe to show: no control character reaches a log or
a terminal raw.

A hostname (DHCP option 12), a TFTP file name or a vendor class is whatever the
sender wrote: a carriage return or an escape sequence in it would forge log rows
or drive the operator's terminal. Every such string is shown through these.
A URL is shown through :func:`redacted` as well: what a log keeps must not be
a credential that was sent in it.
"""

from __future__ import annotations

import re

SURROGATE_ESCAPES = range(0xDC80, 0xDD00)  # bytes that were not UTF-8 (surrogateescape)


def printable(text: str) -> str:
    """``text`` with control characters and undecodable bytes as \\xNN escapes."""
    if text.isprintable():
        return text
    return "".join(_escaped(char, "") for char in text)


def quoted(text: str) -> str:
    """Double-quoted, escaped as :func:`printable`, with quotes and backslashes escaped too."""
    return '"' + "".join(_escaped(char, '"\\') for char in text) + '"'


_SECRET_QUERY = re.compile(r"(?i)((?:^|[?&;])(?:token|secret)=)[^&;\s\"]*")
# The answer-file paths of pxed.provisioning's families (/ks/, /preseed/), which sign them.
_SIGNED_ANSWER = re.compile(r"((?:^|[\s\"])/(?:ks|preseed)/[^/\s?\"]+/)[^\s?\"]+")


def redacted(text: str) -> str:
    """``text`` (a URL, a log line) with credentials replaced by ``<redacted>``.

    pxed refuses a callback token in a URL, but the refused request is still
    logged; a signed answer-file URL (``/ks/<mac>/<signature>``,
    ``/preseed/<mac>/<signature>``) admits its host
    from behind a router while it installs, so its signature is kept out too.
    """
    return _SIGNED_ANSWER.sub(r"\1<redacted>", _SECRET_QUERY.sub(r"\1<redacted>", text))


def _escaped(char: str, special: str) -> str:
    code = ord(char)
    if code in SURROGATE_ESCAPES:
        return f"\\x{code - 0xDC00:02x}"
    if char in special:
        return "\\" + char
    if not char.isprintable():
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return char


def first_line(error: object) -> str:
    """An error's first line: libpq's and SQLite's messages run to several lines (hints,
    the socket tried), and a log line wants one."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
