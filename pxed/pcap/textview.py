"""Hex helpers shared by the packet views (names are quoted with ``pxed.text.quoted``)."""

from __future__ import annotations


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
