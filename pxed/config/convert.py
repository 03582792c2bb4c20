"""Converters from one YAML node to one typed value, reporting what is wrong and how to fix it.

Each converter takes ``(ctx, node, key_path)`` and returns the value or None
after recording an error. YAML 1.1 turns some unquoted text into numbers or
booleans (pitfall 9); where a string was expected the message shows the text
as written and says to quote it.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Collection
from ipaddress import (
    AddressValueError,
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    NetmaskValueError,
)
from pathlib import Path, PurePosixPath
from typing import TypeVar
from urllib.parse import urlsplit

from yaml.nodes import Node, ScalarNode, SequenceNode

from protocols.dhcpv6.duid import DuidCodec
from protocols.errors import MalformedPacket
from pxed.config.model import parse_mac
from pxed.config.yamltree import INVALID, Context, Convert, describe, describe_node, is_plain

T = TypeVar("T")

_OCTAL = re.compile(r"[-+]?0[0-7_]+")
_SEXAGESIMAL = re.compile(r"[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+")
INTERFACE = re.compile(r"[^\s/:]{1,15}")
_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_DNS_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _scalar(ctx: Context, node: Node, path: str, expected: str) -> object:
    if not isinstance(node, ScalarNode):
        ctx.problems.error(node, path, f"expected {expected}, got {describe_node(node)}")
        return INVALID
    return ctx.scalar(node, path)


def text(ctx: Context, node: Node, path: str) -> str | None:
    """A non-empty string; unquoted text YAML read as something else gets a 'quote it'.

    A plain scalar node's ``value`` is its text exactly as written, so the
    message shows ``52:54:00:12:34:56``, not the integer YAML made of it.
    """
    value = _scalar(ctx, node, path, "a string")
    if value is INVALID:
        return None
    if not isinstance(value, str):
        if is_plain(node):
            message = f"unquoted {node.value} was read as {describe(value)}; quote it"
        else:
            message = f"expected a string, got {describe(value)}"
        ctx.problems.error(node, path, message)
        return None
    if not value.strip():
        ctx.problems.error(node, path, "must not be empty")
        return None
    return value


def boolean(ctx: Context, node: Node, path: str) -> bool | None:
    value = _scalar(ctx, node, path, "true or false")
    if isinstance(value, bool):
        return value
    if value is not INVALID:
        ctx.problems.error(node, path, f"expected true or false, got {describe(value)}")
    return None


def integer(low: int, high: int) -> Convert[int]:
    """Whole numbers in ``low..high``, refusing YAML 1.1's octal and base-60 surprises."""

    def convert(ctx: Context, node: Node, path: str) -> int | None:
        value = _scalar(ctx, node, path, "a whole number")
        if value is INVALID:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            ctx.problems.error(node, path, f"expected a whole number, got {describe(value)}")
            return None
        raw = str(node.value)
        if is_plain(node) and _OCTAL.fullmatch(raw):
            ctx.problems.error(
                node, path, f"{raw} is read as octal ({value}) by YAML 1.1; drop the leading 0"
            )
            return None
        if is_plain(node) and _SEXAGESIMAL.fullmatch(raw):
            ctx.problems.error(
                node, path, f"{raw} is read as base 60 ({value}) by YAML 1.1; write the number"
            )
            return None
        if not low <= value <= high:
            ctx.problems.error(node, path, f"{value} is out of range {low}-{high}")
            return None
        return value

    return convert


port = integer(1, 65535)
seconds = integer(1, 2**31 - 1)


def choice(*names: str) -> Convert[str]:
    def convert(ctx: Context, node: Node, path: str) -> str | None:
        value = text(ctx, node, path)
        if value is not None and value not in names:
            ctx.problems.error(node, path, f"{value!r} is not one of: {', '.join(names)}")
            return None
        return value

    return convert


def _parsed(
    parse: Callable[[str], T], errors: tuple[type[Exception], ...], what: str
) -> Convert[T]:
    def convert(ctx: Context, node: Node, path: str) -> T | None:
        value = text(ctx, node, path)
        if value is None:
            return None
        try:
            return parse(value.strip())
        except errors as error:
            ctx.problems.error(node, path, f"not {what}: {value!r} ({error})")
            return None

    return convert


_ADDRESS_ERRORS = (AddressValueError, NetmaskValueError, ValueError)
ipv4 = _parsed(IPv4Address, _ADDRESS_ERRORS, "an IPv4 address")
ipv6 = _parsed(IPv6Address, _ADDRESS_ERRORS, "an IPv6 address (like 2001:db8::1 or fe80::1%br0)")
network = _parsed(IPv4Network, _ADDRESS_ERRORS, "an IPv4 network like 10.213.7.0/24")
network6 = _parsed(IPv6Network, _ADDRESS_ERRORS, "an IPv6 prefix like fd00:213:7::/64")
_DUID_TEXT = re.compile(r"(?:[0-9a-f]{2}[:-]?)+")


def parse_duid(text: str) -> bytes:
    """A DUID's bytes from hex (colons or hyphens between bytes allowed), checked as
    DHCPv6 reads one, so a reservation never names an identifier no client can send."""
    lowered = text.strip().lower()
    if not _DUID_TEXT.fullmatch(lowered):
        raise ValueError("expected hex bytes, like 00:04:<16 bytes of a UUID> or 00:03:00:01:<MAC>")
    data = bytes.fromhex(lowered.replace(":", "").replace("-", ""))
    try:
        DuidCodec().decode(data)
    except MalformedPacket as error:
        raise ValueError(str(error)) from None
    return data


duid = _parsed(parse_duid, (ValueError,), "a DUID")


def mac(ctx: Context, node: Node, path: str) -> str | None:
    value = text(ctx, node, path)
    if value is None:
        return None
    try:
        return parse_mac(value)
    except ValueError as error:
        ctx.problems.error(node, path, str(error))
        return None


def _matching(pattern: re.Pattern[str], what: str) -> Convert[str]:
    def convert(ctx: Context, node: Node, path: str) -> str | None:
        value = text(ctx, node, path)
        if value is not None and not pattern.fullmatch(value):
            ctx.problems.error(node, path, f"{value!r} is not {what}")
            return None
        return value

    return convert


interface = _matching(INTERFACE, "a network interface name (like eth0 or br0)")
dns_name = _matching(_DNS_NAME, "a DNS name (letters, digits and hyphens, dot-separated)")
name = _matching(_NAME, "a name of letters, digits, '.', '_' and '-' (it appears in URLs)")


def local_path(ctx: Context, node: Node, path: str) -> Path | None:
    """A filesystem path; relative ones resolve against the config file's (absolute) folder."""
    value = text(ctx, node, path)
    return None if value is None else ctx.base / value


def postgresql_url(ctx: Context, node: Node, path: str) -> str | None:
    """A ``postgresql://`` URL as libpq reads it; nothing is connected to here."""
    value = text(ctx, node, path)
    if value is None:
        return None
    if urlsplit(value.strip()).scheme not in ("postgresql", "postgres"):
        ctx.problems.error(
            node,
            path,
            f"{value!r} is not a postgresql:// URL (like postgresql://pxed@db.example.net/pxed);"
            " leave it out to keep leases in SQLite in server.state_dir",
        )
        return None
    return value.strip()


def inner_path(ctx: Context, node: Node, path: str) -> str | None:
    """A path inside a tree or tftp.root: relative, '/'-separated, never climbing out."""
    value = text(ctx, node, path)
    if value is None:
        return None
    parts = PurePosixPath(value).parts
    if value.startswith("/") or ".." in parts or "\\" in value:
        ctx.problems.error(
            node, path, f"{value!r} must be a relative path with '/' and no '..' components"
        )
        return None
    return str(PurePosixPath(*parts))


def template(placeholders: Collection[str]) -> Convert[str]:
    """A string with ``{name}`` placeholders pxed fills in; unknown names are errors now."""

    def convert(ctx: Context, node: Node, path: str) -> str | None:
        value = text(ctx, node, path)
        if value is None:
            return None
        try:
            used = placeholders_in(value)
        except ValueError as error:
            ctx.problems.error(node, path, f"bad placeholder: {error} (write {{{{ for a brace)")
            return None
        unknown = sorted(used - set(placeholders))
        if unknown:
            ctx.problems.error(
                node,
                path,
                f"unknown placeholder {{{unknown[0]}}}; known: "
                + ", ".join(f"{{{p}}}" for p in sorted(placeholders)),
            )
            return None
        return value

    return convert


def placeholders_in(value: str) -> set[str]:
    """The ``{name}`` fields of a format string (ValueError for unbalanced braces)."""
    return {field for _, field, _, _ in string.Formatter().parse(value) if field is not None}


def sequence(item: Convert[T]) -> Convert[tuple[T, ...]]:
    """A YAML list of items; an item that fails is reported and left out."""

    def convert(ctx: Context, node: Node, path: str) -> tuple[T, ...] | None:
        if not isinstance(node, SequenceNode):
            ctx.problems.error(node, path, f"expected a list, got {describe_node(node)}")
            return None
        values = (item(ctx, child, key) for key, child in ctx.items(node, path))
        return tuple(value for value in values if value is not None)

    return convert
