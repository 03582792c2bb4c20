"""Small text helpers shared by the packet views: quoting names so odd bytes stay visible."""

from __future__ import annotations

SURROGATE_ESCAPES = range(0xDC80, 0xDD00)  # bytes that were not UTF-8 (surrogateescape)


def quoted(text: str) -> str:
    """Double-quoted, with control characters and undecodable bytes as \\xNN escapes."""
    return '"' + "".join(_escaped(char) for char in text) + '"'


def _escaped(char: str) -> str:
    code = ord(char)
    if code in SURROGATE_ESCAPES:
        return f"\\x{code - 0xDC00:02x}"
    if char in '"\\':
        return "\\" + char
    if not char.isprintable():
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return char


def hex_preview(data: bytes, limit: int = 16) -> str:
    """The first bytes in hex, with an ellipsis when there are more."""
    more = "..." if len(data) > limit else ""
    return data[:limit].hex(" ") + more


def hex_lines(data: bytes, width: int = 16) -> list[str]:
    """A hex dump with offsets, the way a sysadmin compares it with `tshark -x`."""
    return [
        f"{offset:04x}  {data[offset : offset + width].hex(' ')}"
        for offset in range(0, len(data), width)
    ]
