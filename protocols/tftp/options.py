"""Option negotiation for a read request (RFC 2347 blksize/tsize/timeout, RFC 7440 windowsize).

``negotiate(request_options, file_size, limits)`` is a pure function: it returns the
``(name, value)`` pairs for the OACK and the ``TransferParameters`` the transfer then uses.

Rules, and why:

* Only options the client asked for and we accept are answered, in the client's order and
  spelled as the client spelled them (names compare without case; echoing the client's own
  spelling is what every client can match).  An empty answer means: send no OACK, start
  with DATA 1 at the RFC 1350 defaults.
* A value that is not a plain decimal number, is empty or out of range is ignored as if
  the client had not sent the option: RFC 2347 lets a server ignore any option, and a
  transfer at defaults beats an aborted boot.  Unknown options are ignored likewise.
  A repeated option counts once: the first occurrence decides, valid or not.
* blksize 8-65464 is answered as min(requested, limits.max_blksize) (a smaller answer is
  allowed by RFC 2348; the ceiling keeps datagrams unfragmented, docs/pitfalls.md #2).
* windowsize 1-65535 is answered as min(requested, limits.max_windowsize, 32767) (RFC 7440).
  The session tells a new ACK from a late one by its distance from the last ACK modulo
  65536; a window over half that space would read a late ACK as the ACK of the next
  window and skip blocks, so no window is larger, whatever ``tftp.max_windowsize`` says.
* timeout 1-255 is accepted as sent (RFC 2349 says the server answers the same value); the
  session uses it as the ceiling of its retransmit timer.
* tsize in a read request is answered with the real size whatever number the client
  sent (clients send 0, RFC 2349).  For netascii the size is the converted size, which is
  what the block source reports.  An empty file's tsize is left out of the OACK: curl
  (7.88) rejects "tsize 0" and cannot fetch an empty file from any server that sends it,
  and the option is the server's to decline (RFC 2347).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from protocols.tftp.wire import Options

__all__ = ["DEFAULT_BLKSIZE", "NegotiationLimits", "TransferParameters", "negotiate"]

DEFAULT_BLKSIZE = 512
MIN_BLKSIZE, MAX_BLKSIZE = 8, 65464
MAX_WINDOWSIZE = 65535
MAX_UNAMBIGUOUS_WINDOW = 0x7FFF  # see the module docstring: ACKs are matched modulo 65536
MIN_TIMEOUT, MAX_TIMEOUT = 1, 255


class NegotiationLimits(Protocol):
    """The server's ceilings; session.SessionLimits is one."""

    @property
    def max_blksize(self) -> int: ...

    @property
    def max_windowsize(self) -> int: ...


@dataclass(frozen=True)
class TransferParameters:
    """What the transfer runs with once the OACK (or its absence) is settled."""

    blksize: int = DEFAULT_BLKSIZE
    windowsize: int = 1
    timeout: int | None = None  # seconds, only when the client negotiated it
    tsize: int | None = None  # the size we announced, when the client asked


def _number(value: str, low: int, high: int) -> int | None:
    # The length cap also keeps int() clear of Python's 4300-digit conversion limit.
    if not (value.isascii() and value.isdigit()) or len(value) > 20:
        return None
    number = int(value)
    return number if low <= number <= high else None


def negotiate(
    request_options: Options, file_size: int, limits: NegotiationLimits
) -> tuple[Options, TransferParameters]:
    """The OACK's options and the transfer's parameters for a read request."""
    answered: list[tuple[str, str]] = []
    chosen: dict[str, int | None] = {}
    for name, value in request_options:
        key = name.lower()
        if key in chosen:
            continue
        chosen[key] = answer = _answer(key, value, file_size, limits)
        if answer is not None:
            answered.append((name, str(answer)))
    parameters = TransferParameters(
        blksize=chosen.get("blksize") or DEFAULT_BLKSIZE,
        windowsize=chosen.get("windowsize") or 1,
        timeout=chosen.get("timeout"),
        tsize=chosen.get("tsize"),
    )
    return tuple(answered), parameters


def _answer(key: str, value: str, file_size: int, limits: NegotiationLimits) -> int | None:
    if key == "blksize":
        requested = _number(value, MIN_BLKSIZE, MAX_BLKSIZE)
        return None if requested is None else min(requested, limits.max_blksize)
    if key == "windowsize":
        requested = _number(value, 1, MAX_WINDOWSIZE)
        if requested is None:
            return None
        return min(requested, limits.max_windowsize, MAX_UNAMBIGUOUS_WINDOW)
    if key == "timeout":
        return _number(value, MIN_TIMEOUT, MAX_TIMEOUT)
    if key == "tsize":
        return None if _number(value, 0, 2**64) is None or file_size == 0 else file_size
    return None
