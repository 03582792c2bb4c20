"""Per-client rate limits: what one MAC may ask of the server in a given time, sans-I/O.

An install LAN is full of machines nobody has vetted yet; a client that loops
(or a hostile one) must not be able to take the pool or the server's time from
the rest. A token bucket per key allows a burst and then a steady rate. The
number of keys is bounded too, the least recently seen forgotten first, so a
flood of random MACs costs a fixed amount of memory (a forgotten key starts
again with a full bucket, which is what a new client gets anyway).
"""

from __future__ import annotations

from collections import OrderedDict


class RateLimit:
    """A token bucket per key: ``burst`` at once, then ``rate`` a second."""

    def __init__(self, rate: float, burst: float, max_keys: int = 65536) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, key: str, now: float) -> bool:
        """Take a token for ``key`` if it has one; False means over its limit."""
        tokens, stamp = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - stamp) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return allowed

    def __len__(self) -> int:
        return len(self._buckets)
