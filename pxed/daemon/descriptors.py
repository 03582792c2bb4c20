"""The daemon's open-file budget: every service's share, raised once at start.

A TFTP transfer holds three descriptors (its connected socket, the twin that
hears strangers, the file), an HTTP connection one (plus a file while it sends),
and DHCP, the lease and state databases, the logs and the listeners a handful.
The usual soft limit of 1024 would refuse transfers long before
``tftp.max_sessions``; and if HTTP at its cap could take the descriptors TFTP
counts on, a slowloris on HTTP would stop TFTP too (it did). So the limit is
raised to the sum of the caps plus a reserve, and each service stays within its
own cap.
"""

from __future__ import annotations

import resource

from twisted.logger import Logger

from pxed.config import Config

TFTP_PER_SESSION = 3
HTTP_PER_CONNECTION = 2
RESERVE = 256  # DHCP sockets, databases, logs, listeners, ISO images, refusal ports

log = Logger(namespace="pxed.config")


def budget(config: Config) -> int:
    """Descriptors the config's caps add up to, with the reserve."""
    tftp = TFTP_PER_SESSION * config.tftp.max_sessions if config.tftp.enabled else 0
    http = HTTP_PER_CONNECTION * config.http.max_connections if config.http.enabled else 0
    return tftp + http + RESERVE


def raise_limit(needed: int) -> int:
    """Raise the soft limit on open files to ``needed``, as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return needed
    wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if wanted < needed:
        log.warn(
            "only {limit} open files allowed (ulimit -n, LimitNOFILE); tftp.max_sessions and "
            "http.max_connections need {needed}: past the limit requests are refused busy",
            limit=wanted,
            needed=needed,
        )
    return wanted
