"""How a decoded TFTP message reads in `pxed pcap`: one summary line, and every field with -v."""

from __future__ import annotations

from protocols.tftp.wire import (
    Ack,
    Data,
    Error,
    ErrorCode,
    Message,
    Opcode,
    OptionAck,
    ReadRequest,
    WriteRequest,
)
from pxed.pcap.textview import hex_preview
from pxed.text import quoted

Options = tuple[tuple[str, str], ...]


def kind(message: Message) -> str:
    """The message type as the opcode's name: RRQ, WRQ, DATA, ACK, ERROR, OACK."""
    return opcode(message).name


def summary(message: Message) -> str:
    """The fields that matter, after the message type."""
    match message:
        case ReadRequest() | WriteRequest():
            parts = [quoted(message.filename), message.mode, _options(message.options)]
            return " ".join(part for part in parts if part)
        case Data():
            return f"block {message.block} ({len(message.payload)} bytes)"
        case Ack():
            return f"block {message.block}"
        case Error():
            return f"{_error_code(message.code)} {quoted(message.message)}"
        case OptionAck():
            return _options(message.options)


def detail(message: Message) -> list[str]:
    """Every header field, one `name: value` line each, for -v."""
    code = opcode(message)
    lines = [f"opcode: {int(code)} ({code.name})"]
    match message:
        case ReadRequest() | WriteRequest():
            lines += [f"filename: {quoted(message.filename)}", f"mode: {quoted(message.mode)}"]
            lines += _option_lines(message.options)
        case Data():
            lines += [f"block: {message.block}", f"data: {len(message.payload)} bytes"]
            lines += [f"data starts: {hex_preview(message.payload)}"] if message.payload else []
        case Ack():
            lines += [f"block: {message.block}"]
        case Error():
            lines += [f"error code: {_error_code(message.code)}"]
            lines += [f"error message: {quoted(message.message)}"]
        case OptionAck():
            lines += _option_lines(message.options)
    padding = getattr(message, "padding", 0)
    return lines + ([f"trailing NUL padding: {padding} bytes"] if padding else [])


def opcode(message: Message) -> Opcode:
    """The opcode this message travels with on the wire."""
    match message:
        case ReadRequest():
            return Opcode.RRQ
        case WriteRequest():
            return Opcode.WRQ
        case Data():
            return Opcode.DATA
        case Ack():
            return Opcode.ACK
        case Error():
            return Opcode.ERROR
        case OptionAck():
            return Opcode.OACK


def _options(options: Options) -> str:
    return " ".join(f"{name}={value}" for name, value in options)


def _option_lines(options: Options) -> list[str]:
    return [f"option {quoted(name)}: {quoted(value)}" for name, value in options]


def _error_code(code: int) -> str:
    if code not in ErrorCode._value2member_map_:
        return f"{code} (not a standard code)"
    return f"{code} ({ErrorCode(code).name.lower().replace('_', ' ')})"
