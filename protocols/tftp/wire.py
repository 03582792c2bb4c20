"""TFTP wire format (RFC 1350, 2347): typed messages over a Construct grammar.

API
---
Messages are frozen dataclasses::

    ReadRequest(filename, mode="octet", options=(), padding=0)   # opcode 1
    WriteRequest(filename, mode="octet", options=(), padding=0)  # opcode 2
    Data(block, payload)                                         # opcode 3
    Ack(block)                                                   # opcode 4
    Error(code, message, padding=0)                              # opcode 5; code: ErrorCode or int
    OptionAck(options=(), padding=0)                             # opcode 6

``decode_tftp(datagram) -> Message`` raises only ``MalformedPacket`` (its reason
names the opcode, the field and what is wrong; ``offset`` points at the byte).
``encode_tftp(message) -> bytes`` is its exact inverse: ``encode_tftp(decode_tftp(x)) == x``
for every datagram that decodes.  Encoding a message that cannot exist on the wire
(a NUL inside a string, an empty option name, a block number above 65535) raises
``ValueError``: that is a bug in the caller, not bad input.

Per-block hot path (plain ``struct``, no Construct, byte-identical to the grammar):
``encode_data(block, payload)``, ``encode_ack(block)``, ``decode_data(datagram)``,
``decode_ack(datagram)`` and ``ack_block(datagram) -> int | None``.

Decisions
---------
* Strings (file name, mode, option names and values, error messages) are bytes on the
  wire and ``str`` here, decoded as UTF-8 with ``surrogateescape``: any byte string maps to
  exactly one ``str`` and back, so odd file names survive round trips and map onto Linux
  paths the same way ``os.fsdecode`` would.
* Mode and option names keep the case the client sent (round trip); compare them with
  ``ReadRequest.mode_name`` and ``ReadRequest.option()``, which ignore case.  Options are an
  ordered tuple of ``(name, value)`` pairs because RFC 2347 answers in the client's order.
* Trailing NUL bytes after the last string of RRQ, WRQ, ERROR and OACK are accepted and
  counted in ``padding`` (some embedded clients pad requests).  Anything else after the
  last complete string is malformed: an option name without a value, a non-NUL byte after
  NUL padding (an empty option name), an unterminated string.  None of the public captures
  pads, but refusing padding would buy nothing.
* ACK must be exactly 4 bytes.  DATA may carry 0 to 65531 payload bytes (blksize is a
  session matter, not a grammar one).  ERROR codes outside 0-8 decode as plain ``int``.
* Grammars are never ``.compile()``d (docs/pitfalls.md #8) and no ``GreedyRange`` is
  used: option lists are parsed by a small construct that reports exactly where they break.
* A well-formed RRQ/WRQ is split at its NULs in one pass (``_OnePass``); any other shape
  goes through the field-by-field grammar, which reports the error. A property test holds
  the two to the same answers; the one pass is what a flood of distinct names costs.
"""

from __future__ import annotations

import enum
import io
import struct
from dataclasses import dataclass
from typing import Any, assert_never

from construct import (
    Construct,
    ConstructError,
    Container,
    ExplicitError,
    GreedyBytes,
    Struct,
    Switch,
    this,
)
from construct.core import stream_read_entire, stream_seek, stream_tell, stream_write

from protocols.errors import MalformedPacket

__all__ = [
    "Ack",
    "Data",
    "Error",
    "ErrorCode",
    "Message",
    "Opcode",
    "OptionAck",
    "Options",
    "ReadRequest",
    "WriteRequest",
    "ack_block",
    "decode_ack",
    "decode_data",
    "decode_tftp",
    "encode_ack",
    "encode_data",
    "encode_tftp",
]


class Opcode(enum.IntEnum):
    RRQ = 1
    WRQ = 2
    DATA = 3
    ACK = 4
    ERROR = 5
    OACK = 6


class ErrorCode(enum.IntEnum):
    """RFC 1350 error codes 0-7 and RFC 2347's 8 (option negotiation refused)."""

    NOT_DEFINED = 0
    FILE_NOT_FOUND = 1
    ACCESS_VIOLATION = 2
    DISK_FULL = 3
    ILLEGAL_OPERATION = 4
    UNKNOWN_TID = 5
    FILE_EXISTS = 6
    NO_SUCH_USER = 7
    OPTION_REFUSED = 8


Options = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class _Request:
    filename: str
    mode: str = "octet"
    options: Options = ()
    padding: int = 0

    @property
    def mode_name(self) -> str:
        """The mode in lower case: RFC 1350 compares modes without regard to case."""
        return self.mode.lower()

    def option(self, name: str) -> str | None:
        """The value of option `name` (any case), the first one if the client repeated it."""
        wanted = name.lower()
        for key, value in self.options:
            if key.lower() == wanted:
                return value
        return None


@dataclass(frozen=True)
class ReadRequest(_Request):
    """RRQ: the client wants to read `filename`."""


@dataclass(frozen=True)
class WriteRequest(_Request):
    """WRQ: the client wants to write `filename` (pxed refuses; decoded to answer properly)."""


@dataclass(frozen=True)
class Data:
    block: int
    payload: bytes


@dataclass(frozen=True)
class Ack:
    block: int


@dataclass(frozen=True)
class Error:
    code: int
    message: str
    padding: int = 0


@dataclass(frozen=True)
class OptionAck:
    options: Options = ()
    padding: int = 0


Message = ReadRequest | WriteRequest | Data | Ack | Error | OptionAck


# --- the grammar -------------------------------------------------------------------------


class _Bad(ExplicitError):  # type: ignore[misc]
    """Raised inside the grammar with a sysadmin-readable reason and the offending offset."""

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offset = offset


class _CString(Construct):  # type: ignore[misc]
    """Bytes up to a NUL, which is consumed; says which field lacks its NUL."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def _parse(self, stream: Any, context: Any, path: str) -> bytes:
        start = stream_tell(stream, path)
        rest: bytes = stream_read_entire(stream, path)
        end = rest.find(b"\0")
        if end < 0:
            if not rest:
                raise _Bad(f"{self.what} missing", start)
            raise _Bad(f"{self.what} not NUL-terminated", start + len(rest))
        stream_seek(stream, start + end + 1, 0, path)
        return rest[:end]

    def _build(self, obj: bytes, stream: Any, context: Any, path: str) -> bytes:
        if b"\0" in obj:
            raise _Bad(f"{self.what} contains a NUL byte", stream_tell(stream, path))
        stream_write(stream, obj + b"\0", len(obj) + 1, path)
        return obj


class _OptionPairs(Construct):  # type: ignore[misc]
    """RFC 2347 `name NUL value NUL` pairs, until the data ends or a NUL starts the padding."""

    _name = _CString("option name")

    def _parse(self, stream: Any, context: Any, path: str) -> list[tuple[bytes, bytes]]:
        pairs: list[tuple[bytes, bytes]] = []
        while True:
            start = stream_tell(stream, path)
            head = stream.read(1)
            stream_seek(stream, start, 0, path)
            if head in (b"", b"\0"):
                return pairs
            name = self._name._parse(stream, context, path)
            value = _CString(f"value of option {_text(name)!r}")._parse(stream, context, path)
            pairs.append((name, value))

    def _build(
        self, obj: list[tuple[bytes, bytes]], stream: Any, context: Any, path: str
    ) -> list[tuple[bytes, bytes]]:
        for name, value in obj:
            if not name:
                raise _Bad("empty option name", stream_tell(stream, path))
            self._name._build(name, stream, context, path)
            _CString("option value")._build(value, stream, context, path)
        return obj


class _NulPadding(Construct):  # type: ignore[misc]
    """Zero or more trailing NULs, kept as a count so the datagram re-encodes exactly."""

    def _parse(self, stream: Any, context: Any, path: str) -> int:
        start = stream_tell(stream, path)
        rest: bytes = stream_read_entire(stream, path)
        junk = len(rest) - len(rest.lstrip(b"\0"))
        if junk != len(rest):
            raise _Bad(
                "unexpected data after the last NUL-terminated field (an empty option name?)",
                start + junk,
            )
        return len(rest)

    def _build(self, obj: int, stream: Any, context: Any, path: str) -> int:
        if obj < 0:
            raise _Bad("negative padding", stream_tell(stream, path))
        stream_write(stream, b"\0" * obj, obj, path)
        return obj


class _U16(Construct):  # type: ignore[misc]
    """Big-endian 16-bit field that names itself when the datagram is cut short."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def _parse(self, stream: Any, context: Any, path: str) -> int:
        start = stream_tell(stream, path)
        raw = stream.read(2)
        if len(raw) != 2:
            raise _Bad(f"{self.what} truncated: {len(raw)} of 2 bytes", start)
        value: int = _U16_STRUCT.unpack(raw)[0]
        return value

    def _build(self, obj: int, stream: Any, context: Any, path: str) -> int:
        if not 0 <= obj <= 0xFFFF:
            raise _Bad(f"{self.what} {obj} does not fit in 16 bits", stream_tell(stream, path))
        stream_write(stream, _U16_STRUCT.pack(obj), 2, path)
        return obj


class _End(Construct):  # type: ignore[misc]
    """Nothing may follow: unlike `Terminated`, says how much did."""

    def __init__(self, after: str) -> None:
        super().__init__()
        self.after = after
        self.flagbuildnone = True

    def _parse(self, stream: Any, context: Any, path: str) -> None:
        start = stream_tell(stream, path)
        rest = stream_read_entire(stream, path)
        if rest:
            raise _Bad(f"{len(rest)} unexpected byte(s) after {self.after}", start)

    def _build(self, obj: None, stream: Any, context: Any, path: str) -> None:
        return None


class _UnknownOpcode(Construct):  # type: ignore[misc]
    def _parse(self, stream: Any, context: Any, path: str) -> None:
        raise _Bad(f"unknown opcode {context.opcode} (TFTP has 1-6)", 0)


_U16_STRUCT = struct.Struct("!H")


class _OnePass(Construct):  # type: ignore[misc]
    """RRQ/WRQ fields (``filename``, ``mode``, ``options``, ``padding``) split at their NULs
    in one pass; input of any other shape goes through ``fields``, field by field, which
    says what broke and where. Same containers, same errors (a property test holds them
    to it): the field-by-field Struct was most of a request's decode, which a flood of
    distinct names pays on every datagram (issue 18)."""

    def __init__(self, fields: Construct) -> None:
        super().__init__()
        self.fields = fields

    def _parse(self, stream: Any, context: Any, path: str) -> Container:
        start = stream_tell(stream, path)
        rest: bytes = stream_read_entire(stream, path)
        strings = rest.split(b"\0")
        end = len(strings) - 1  # the piece after the last NUL: empty when well-formed
        at = 2
        while at < end and strings[at]:  # name, value; an empty string starts the padding
            at += 2
        if strings[end] or at > end or any(strings[at:end]):
            stream_seek(stream, start, 0, path)
            return self.fields._parsereport(stream, context, path)
        options = list(zip(strings[2:at:2], strings[3:at:2], strict=True))
        return Container(filename=strings[0], mode=strings[1], options=options, padding=end - at)

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        return self.fields._build(obj, stream, context, path)


_REQUEST_FIELDS = Struct(
    "filename" / _CString("file name"),
    "mode" / _CString("mode"),
    "options" / _OptionPairs(),
    "padding" / _NulPadding(),
)
_REQUEST = _OnePass(_REQUEST_FIELDS)

_OPCODE = _U16("opcode")
_BODIES: dict[int, Construct] = {
    Opcode.RRQ: _REQUEST,
    Opcode.WRQ: _REQUEST,
    Opcode.DATA: Struct("block" / _U16("block number"), "payload" / GreedyBytes),
    Opcode.ACK: Struct("block" / _U16("block number"), _End("the block number")),
    Opcode.ERROR: Struct(
        "code" / _U16("error code"),
        "message" / _CString("error message"),
        "padding" / _NulPadding(),
    ),
    Opcode.OACK: Struct("options" / _OptionPairs(), "padding" / _NulPadding()),
}
_UNKNOWN_OPCODE = _UnknownOpcode()

_TFTP = Struct("opcode" / _OPCODE, "body" / Switch(this.opcode, _BODIES, default=_UNKNOWN_OPCODE))


# --- typed messages <-> Construct containers ----------------------------------------------


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _raw(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _label(datagram: bytes) -> str:
    if len(datagram) < 2:
        return "TFTP"
    code = _U16_STRUCT.unpack_from(datagram)[0]
    return Opcode(code).name if code in Opcode._value2member_map_ else "TFTP"


def decode_tftp(datagram: bytes) -> Message:
    """Decode one TFTP datagram; MalformedPacket is the only exception bad input can raise."""
    stream = io.BytesIO(datagram)
    try:
        # _TFTP's two steps, the opcode and then its body, taken here: the outer Struct and
        # Switch were half of what Construct spent on a request (issue 18's refusal flood).
        # The opcode as the per-block hot path reads it; _OPCODE says why when it is short.
        if len(datagram) < 2:
            _OPCODE.parse_stream(stream)
        opcode: int = _U16_STRUCT.unpack_from(datagram)[0]
        stream.seek(2)
        body = _BODIES.get(opcode, _UNKNOWN_OPCODE).parse_stream(stream, opcode=opcode)
    except _Bad as bad:
        raise MalformedPacket(f"{_label(datagram)}: {bad.reason}", bad.offset) from None
    except ConstructError as err:  # a grammar path not covered by _Bad: still the user's input
        raise MalformedPacket(f"{_label(datagram)}: {err}") from None
    return _to_message(opcode, body)


def _options(pairs: list[tuple[bytes, bytes]]) -> Options:
    return tuple((_text(name), _text(value)) for name, value in pairs)


# By plain int: an enum member read from its class is an unspecialised attribute load.
_REQUEST_KINDS: dict[int, type[ReadRequest | WriteRequest]] = {
    int(Opcode.RRQ): ReadRequest,
    int(Opcode.WRQ): WriteRequest,
}


def _to_message(opcode: int, body: Any) -> Message:
    kind = _REQUEST_KINDS.get(opcode)
    if kind is not None:
        return kind(_text(body.filename), _text(body.mode), _options(body.options), body.padding)
    if opcode == Opcode.DATA:
        return Data(body.block, body.payload)
    if opcode == Opcode.ACK:
        return Ack(body.block)
    if opcode == Opcode.ERROR:
        code = body.code
        known = ErrorCode(code) if code in ErrorCode._value2member_map_ else code
        return Error(known, _text(body.message), body.padding)
    return OptionAck(_options(body.options), body.padding)


def _raw_options(options: Options) -> list[tuple[bytes, bytes]]:
    return [(_raw(name), _raw(value)) for name, value in options]


def _to_container(message: Message) -> dict[str, Any]:
    match message:
        case ReadRequest() | WriteRequest():
            opcode = Opcode.RRQ if isinstance(message, ReadRequest) else Opcode.WRQ
            body: dict[str, Any] = {
                "filename": _raw(message.filename),
                "mode": _raw(message.mode),
                "options": _raw_options(message.options),
                "padding": message.padding,
            }
        case Data():
            opcode, body = Opcode.DATA, {"block": message.block, "payload": message.payload}
        case Ack():
            opcode, body = Opcode.ACK, {"block": message.block}
        case Error():
            opcode = Opcode.ERROR
            body = {
                "code": message.code,
                "message": _raw(message.message),
                "padding": message.padding,
            }
        case OptionAck():
            opcode = Opcode.OACK
            body = {"options": _raw_options(message.options), "padding": message.padding}
        case _:
            assert_never(message)
    return {"opcode": opcode, "body": body}


def encode_tftp(message: Message) -> bytes:
    """The exact bytes of `message`; ValueError if it cannot exist on the wire."""
    try:
        data: bytes = _TFTP.build(_to_container(message))
    except _Bad as bad:
        raise ValueError(f"cannot encode {message!r}: {bad.reason}") from None
    return data


# --- the per-block hot path ---------------------------------------------------------------

_HEADER = struct.Struct("!HH")
_DATA = int(Opcode.DATA)  # a plain int: packing an enum member costs a lookup per block
_ACK_PREFIX = b"\0\4"


def encode_data(block: int, payload: bytes) -> bytes:
    """DATA `block` carrying `payload`; the same bytes as encode_tftp(Data(block, payload))."""
    return _HEADER.pack(_DATA, block) + payload


def encode_ack(block: int) -> bytes:
    return _HEADER.pack(Opcode.ACK, block)


def ack_block(datagram: bytes) -> int | None:
    """The block number if `datagram` is a well-formed ACK, else None (cheapest test)."""
    if len(datagram) == 4 and datagram[:2] == _ACK_PREFIX:
        block: int = _HEADER.unpack(datagram)[1]
        return block
    return None


def decode_ack(datagram: bytes) -> Ack:
    """Like decode_tftp for an ACK, without Construct; MalformedPacket for anything else."""
    block = ack_block(datagram)
    if block is None:
        raise MalformedPacket(f"not a 4-byte ACK ({len(datagram)} bytes)", 0)
    return Ack(block)


def decode_data(datagram: bytes) -> Data:
    """Like decode_tftp for a DATA, without Construct; MalformedPacket for anything else."""
    if len(datagram) < 4 or datagram[:2] != b"\0\3":
        raise MalformedPacket(f"not a DATA datagram ({len(datagram)} bytes)", 0)
    return Data(_HEADER.unpack_from(datagram)[1], datagram[4:])
