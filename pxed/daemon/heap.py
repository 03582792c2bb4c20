"""Takes what start-up built out of the garbage collector's sight, once every service runs.

CPython's full collection walks every object it tracks, and pxed starts with tens of
thousands that live as long as the process (modules, the config, the inventory, the
leases loaded from disk).  Walking them took 168-215 ms in a 12,000-exchange run of
benchmarks/dhcp_profile.py (one full collection), every request queued behind it;
frozen, the same collection took 31-60 ms (docs/pitfalls.md #24).  The
thresholds stay as they are: a larger first generation is collected less often but
each collection is longer, a worse tail.
"""

from __future__ import annotations

import gc

from twisted.application.service import Service


class FrozenHeap(Service):
    """Started after the services that load state: collect once, then freeze what is left."""

    name = "frozen-heap"

    def startService(self) -> None:
        super().startService()
        gc.collect()
        gc.freeze()
