"""Which TFTP refusals are logged and published one by one, and which are only counted.

A flood of refused requests (issue 18: 10,000 a second, most for files that do
not exist) made each refusal pay for an event on the bus and a log line that the
log's own flood guard (``pxed.ops.logguard``) then threw away: about a fifth of
what a refusal cost. Here the first ``burst`` refusals of one kind (client
address and outcome) in each ``window`` are logged and published as before; the
rest are counted in ``TftpStats.refusals_unlogged`` (``/metrics``), and the next
one logged for that kind says how many were not. ``TftpStats.outcomes`` still
counts every refusal.

``burst`` is above what one boot provokes: pxelinux probes about ten
``pxelinux.cfg/`` names that do not exist, and each must reach its host's
timeline. Kinds are remembered for ``KINDS_KEPT`` client addresses and outcomes,
the least recently refused forgotten first, so forged source addresses cost
bounded memory (each new one is logged, and the log's guard limits those lines).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

KINDS_KEPT = 4096


@dataclass
class _Kind:
    started: float  # when this window began
    shown: int = 0  # refusals logged in it
    hidden: int = 0  # refusals not logged since the last one that was


class RefusalSampler:
    """Says whether one refusal is shown (logged and published), and what was hidden."""

    def __init__(self, burst: int = 32, window: float = 10.0) -> None:
        self.burst = burst
        self.window = window
        self._kinds: OrderedDict[tuple[str, str], _Kind] = OrderedDict()

    def show(self, address: str, outcome: str, now: float) -> int | None:
        """None: count this refusal without showing it. Else show it, and the number of
        refusals of its kind not shown since the last one that was."""
        key = (address, outcome)
        kind = self._kinds.get(key)
        if kind is None:
            kind = self._kinds[key] = _Kind(now)
            if len(self._kinds) > KINDS_KEPT:
                self._kinds.popitem(last=False)
        else:
            self._kinds.move_to_end(key)
        if now - kind.started >= self.window:
            kind.started, kind.shown = now, 0
        if kind.shown >= self.burst:
            kind.hidden += 1
            return None
        kind.shown += 1
        hidden, kind.hidden = kind.hidden, 0
        return hidden
