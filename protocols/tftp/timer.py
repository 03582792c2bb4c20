"""An adaptive retransmit timeout for one transfer (RFC 6298's estimator, Karn's rule).

A fixed 1 s timer (dnsmasq, tftpd-hpa) makes every lost datagram on a LAN cost a second;
measuring the round trip lets a lost block be resent after a few round trips instead.
The timeout never exceeds `ceiling` (the client's negotiated `timeout`, else the initial
value), so the server is never slower to retransmit than a fixed-timer one, and never
drops below `floor`, so a client that pauses briefly is not flooded.
"""

from __future__ import annotations

__all__ = ["RetransmitTimer"]


class RetransmitTimer:
    """SRTT/RTTVAR smoothing; the caller feeds samples only from unretransmitted sends."""

    __slots__ = ("_estimate", "ceiling", "floor", "rto", "rttvar", "srtt")

    def __init__(self, initial: float, floor: float, ceiling: float) -> None:
        self.floor = min(floor, ceiling)
        self.ceiling = ceiling
        self.rto = self._estimate = max(self.floor, min(initial, ceiling))
        self.srtt: float | None = None
        self.rttvar = 0.0

    def sample(self, rtt: float) -> None:
        """A measured round trip (Karn: never one whose send was repeated)."""
        # Once per ACK, so plain comparisons rather than max()/min() calls.
        if rtt < 0.0:  # a wall clock stepped back must not make the estimate negative
            rtt = 0.0
        srtt = self.srtt
        if srtt is None:
            self.srtt, self.rttvar = srtt, rttvar = rtt, rtt / 2
        else:
            self.rttvar = rttvar = 0.75 * self.rttvar + 0.25 * abs(srtt - rtt)
            self.srtt = srtt = 0.875 * srtt + 0.125 * rtt
        rto = srtt + 4 * rttvar
        if rto > self.ceiling:
            rto = self.ceiling
        if rto < self.floor:
            rto = self.floor
        self.rto = self._estimate = rto

    def backoff(self) -> None:
        """A timeout fired: double the wait, up to the ceiling (RFC 6298 5.5)."""
        self.rto = min(self.rto * 2, self.ceiling)

    def progress(self) -> None:
        """An ACK moved the transfer forward: the path works again, so drop the backoff.

        Without this a lossy window keeps doubling (Karn's rule withholds the sample that
        would reset it), and a client that does not ACK gaps at once waits ever longer
        for each resend. Linux TCP resets its backoff on forward progress the same way.
        """
        self.rto = self._estimate
