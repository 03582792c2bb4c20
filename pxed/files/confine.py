"""Nothing outside a served root is ever opened: the one check TFTP and HTTP both use.

A request path is joined to the root and resolved as ``realpath`` would: the
result must be the root or lie under it (a symlink inside the tree that points
inside it works, one pointing out does not; ``/srv/tftp-private`` is not under
``/srv/tftp``). Paths are bytes, so a name that is not UTF-8 is judged by its
own bytes. Between that check and ``open`` a symlink could be swapped in, so
after opening, :func:`opened_inside` asks the kernel where the descriptor
really points.

The root is a real path already, so only the components under it are looked
at, one ``lstat`` each, and the walk stops at the first that does not exist:
``realpath`` on the whole path re-read every directory above the root on every
request, which was a quarter of what a refused TFTP request cost (issue 18,
benchmarks/README.md). A symlink or ``..`` under the root still goes through
``realpath`` itself.
"""

from __future__ import annotations

import os
import stat


class OutsideRoot(Exception):
    """The path resolves outside the served root."""


def confined(root: bytes, relative: bytes) -> bytes:
    """The real path of ``relative`` under ``root`` (itself a real path), or OutsideRoot."""
    real = _plain_walk(root, relative)
    if real is None:
        real = os.path.realpath(os.path.join(root, relative.lstrip(b"/")))
    if real != root and not real.startswith(root.rstrip(b"/") + b"/"):
        raise OutsideRoot(relative)
    return real


def _plain_walk(root: bytes, relative: bytes) -> bytes | None:
    """What ``realpath`` makes of ``relative`` under ``root`` when no component under the
    root is a symlink or ``..``; None when one is (``realpath`` must then decide).

    As ``realpath`` does, a component that cannot be looked at (missing, not a directory,
    no permission) ends the resolving and the rest is joined as written: nothing under a
    missing directory can be a symlink.
    """
    parts = [part for part in relative.split(b"/") if part not in (b"", b".")]
    if b".." in parts:
        return None
    path = root.rstrip(b"/")
    for index, part in enumerate(parts):
        path += b"/" + part
        try:
            info = os.lstat(path)
        except OSError:
            return b"/".join((path, *parts[index + 1 :]))
        if stat.S_ISLNK(info.st_mode):
            return None
    return path or root


def opened_inside(root: bytes, fd: int) -> bool:
    """Whether the open descriptor ``fd`` is a file under ``root``, as the kernel sees it."""
    try:
        actual = os.readlink(f"/proc/self/fd/{fd}".encode())
    except OSError:
        return True  # no /proc: the realpath check before opening is what is left
    return actual == root or actual.startswith(root.rstrip(b"/") + b"/")
