"""Per-host tokens for the install callbacks (``POST /api/hosts/<mac>/done``).

A Kickstart carries its host's token; the callback must present it. The token
is an HMAC of the MAC and the host's install generation with a secret that
lives only in ``server.state_dir``, so nobody can mark another host installed
(and switch it to local boot) without having read that host's Kickstart, a
restart keeps every token valid, and an install that ended (done, failed, or
re-armed by an operator) makes its token worthless: the next install's
Kickstart carries a new one.

The same secret signs the answer-file URL in a host's generated boot config
(``/ks/<mac>/<signature>``, ``/preseed/<mac>/<signature>``; the ``ks:`` domain
predates preseed), in another domain so a signature is never a token: a
requester behind a router, which no neighbour entry names, proves with it
that it booted from that config during this install (see identity).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

SECRET_NAME = "callback.secret"
SECRET_BYTES = 32
TOKEN_HEX = 32  # 128 bits of the HMAC: plenty for a token nobody can query offline


class SecretError(Exception):
    """The callback secret in state_dir cannot be read or created; the message says why."""


def load_secret(state_dir: Path) -> bytes:
    """The secret in ``state_dir``, created (mode 0600) on first start; refused if others can
    read it."""
    path = state_dir / SECRET_NAME
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        return _create(path)
    except FileExistsError:
        pass
    except OSError as error:
        raise SecretError(f"{path}: cannot create the callback secret: {error.strerror}") from None
    try:
        mode = path.stat().st_mode
        secret = path.read_bytes()
    except OSError as error:
        raise SecretError(f"{path}: cannot read the callback secret: {error.strerror}") from None
    if mode & 0o077:
        raise SecretError(
            f"{path}: the callback secret is open to group or others (mode {mode & 0o777:04o}); "
            f"whoever reads it can mark any host installed: chmod 600 {path}"
        )
    if len(secret) < 16:
        raise SecretError(f"{path}: the callback secret is too short; delete it to make a new one")
    return secret


def _create(path: Path) -> bytes:
    """Write a new secret with O_EXCL, so two starting processes never both write one."""
    secret = secrets.token_bytes(SECRET_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secret)
        os.fsync(fd)
    finally:
        os.close(fd)
    return secret


def host_token(secret: bytes, mac: str, generation: int = 0) -> str:
    """The token the host with ``mac`` (parse_mac form) presents in this install's callbacks."""
    message = mac if generation == 0 else f"{mac}/{generation}"  # 0: tokens issued before
    return hmac.new(secret, message.encode("ascii"), hashlib.sha256).hexdigest()[:TOKEN_HEX]


def token_matches(secret: bytes, mac: str, token: str, generation: int = 0) -> bool:
    """Whether ``token`` is ``mac``'s, compared in constant time.

    As bytes: compare_digest raises TypeError on a str with non-ASCII
    characters, which a client can put in the form field or header.
    """
    presented = token.encode("utf-8", "surrogatepass")
    return hmac.compare_digest(host_token(secret, mac, generation).encode("ascii"), presented)


def kickstart_signature(secret: bytes, mac: str, generation: int) -> str:
    """The signature in ``mac``'s Kickstart URL for this install (``ks:`` keeps it apart from
    the callback token, which the same secret makes from the same MAC and generation)."""
    message = f"ks:{mac}/{generation}"
    return hmac.new(secret, message.encode("ascii"), hashlib.sha256).hexdigest()[:TOKEN_HEX]


def signature_matches(secret: bytes, mac: str, signature: str, generation: int) -> bool:
    """Whether ``signature`` is this install's for ``mac``, compared in constant time."""
    presented = signature.encode("utf-8", "surrogatepass")
    expected = kickstart_signature(secret, mac, generation).encode("ascii")
    return hmac.compare_digest(expected, presented)
