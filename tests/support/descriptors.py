"""What this process has open, to tell a leak from the rest of the test session.

Comparing bare descriptor numbers is flaky: another test's object collected
mid-test closes a number, and a leak can reuse it. A descriptor's number and
what it points at (``socket:[inode]`` is unique while open) together are not.
"""

from __future__ import annotations

import os

OpenFiles = frozenset[tuple[str, str]]


def open_files() -> OpenFiles:
    """Each open descriptor with its target, as /proc/self/fd shows them."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            found.add((fd, os.readlink(f"/proc/self/fd/{fd}")))
        except OSError:  # closed between the listing and the readlink
            continue
    return frozenset(found)


def opened_since(before: OpenFiles) -> OpenFiles:
    """Descriptors open now that were not open at ``before``: a leak, if not empty."""
    return open_files() - before
