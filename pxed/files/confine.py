"""Nothing outside a served root is ever opened: the one check TFTP and HTTP both use.

A request path is joined to the root and resolved with ``realpath``: the result
must be the root or lie under it (a symlink inside the tree that points inside
it works, one pointing out does not; ``/srv/tftp-private`` is not under
``/srv/tftp``). Paths are bytes, so a name that is not UTF-8 is judged by its
own bytes. Between that check and ``open`` a symlink could be swapped in, so
after opening, :func:`opened_inside` asks the kernel where the descriptor
really points.
"""

from __future__ import annotations

import os


class OutsideRoot(Exception):
    """The path resolves outside the served root."""


def confined(root: bytes, relative: bytes) -> bytes:
    """The real path of ``relative`` under ``root`` (itself a real path), or OutsideRoot."""
    real = os.path.realpath(os.path.join(root, relative.lstrip(b"/")))
    if real != root and not real.startswith(root.rstrip(b"/") + b"/"):
        raise OutsideRoot(relative)
    return real


def opened_inside(root: bytes, fd: int) -> bool:
    """Whether the open descriptor ``fd`` is a file under ``root``, as the kernel sees it."""
    try:
        actual = os.readlink(f"/proc/self/fd/{fd}".encode())
    except OSError:
        return True  # no /proc: the realpath check before opening is what is left
    return actual == root or actual.startswith(root.rstrip(b"/") + b"/")
