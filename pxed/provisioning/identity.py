"""Who is asking for a host's answer file: the requester's MAC as the kernel knows it.

A Kickstart holds root password hashes, SSH keys and the callback token, so it
goes to its own machine only. What a requester writes (an
``X-RHN-Provisioning-MAC`` header, a MAC in the URL) proves nothing. What the
kernel's neighbour table (ARP; NDP for IPv6) says does: a requester on a link pxed serves
reached pxed's TCP stack, which resolved its address to the MAC it answered
from. So, in order:

1. The requester has a neighbour entry (it is on a served link): it is the host
   whose MAC that entry holds, whatever it writes. A header naming another MAC
   is a forgery attempt: refused and logged.
2. No entry (it is behind a router, or on loopback): its address is the host's
   reservation or DHCP lease (TCP cannot be answered from a spoofed address
   across a router); or, while that host is booting or installing, it fetches
   the signed Kickstart URL of the host's generated boot config, or calls back
   with the token of the Kickstart that URL got (both change with each
   install, so an old config's URL or token is void); or
   the operator trusts what requesters in its network claim
   (``install.mac_header_networks``: a documented trade-off, off by default):
   the MAC header for a Kickstart, the token for a callback.

The signed URL is as secret as the boot config that carries it, which TFTP and
HTTP hand to whoever names the MAC: it narrows an off-link fetch to the
install's window, it does not make it private. On a served link it counts for
nothing (rule 1 decides), so a neighbour cannot use it.

``install.kickstart_open`` serves everyone, as before, but an unverified fetch
then counts for nothing (no state change, no loop breaker).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from pxed.provisioning import ndp

ARP_TABLE = Path("/proc/net/arp")
ATF_COM = 0x2  # a complete entry: the kernel has the MAC, not a pending resolution


@dataclass(frozen=True)
class Verdict:
    """Whether ``requester`` may have ``mac``'s answer file, by which rule (for logs, explain)."""

    admitted: bool
    rule: str
    forged: bool = False


class Neighbours:
    """The kernel's neighbour tables, read at each question: IPv4's from /proc/net/arp,
    IPv6's over rtnetlink (``pxed.provisioning.ndp``)."""

    def __init__(self, table: Path = ARP_TABLE, ndp_dump: ndp.Dump = ndp.dump) -> None:
        self.table = table
        self.ndp_dump = ndp_dump

    def mac_of(self, address: str) -> str | None:
        """The MAC of ``address`` if it is a complete neighbour entry, else None."""
        if ":" in address:
            return ndp.mac_of(address, self.ndp_dump)
        try:
            table = self.table.read_text()
        except OSError:
            return None
        # Only the lines of ``address`` are split: a storm's table has a line per client,
        # and splitting them all cost ~0.6 ms a Kickstart fetch at 500 entries.
        key = f"\n{address} "
        start = table.find(key)
        while start >= 0:
            end = table.find("\n", start + 1)
            fields = table[start + 1 : end if end >= 0 else None].split()
            if len(fields) >= 4 and int(fields[2], 16) & ATF_COM:
                return fields[3].lower()
            start = table.find(key, start + 1)
        return None


def verify(
    mac: str,
    requester: str,
    neighbour: str | None,
    headers: Sequence[str],
    holder: Callable[[str], str | None],
    header_networks: Sequence[IPv4Network],
    claimed: bool,
    signed: bool = False,
) -> Verdict:
    """Is ``requester`` (an address) the machine ``mac``? See the module doc.

    ``neighbour`` is the requester's MAC from the neighbour table (None: no entry),
    ``headers`` the MACs its headers name, ``holder(address)`` the MAC whose
    reservation or lease the address is, ``claimed`` whether the request itself
    says it is ``mac`` (its MAC header, a callback's valid token), ``signed`` whether it
    holds a credential only this install's boot config or verified Kickstart carried (the
    signed Kickstart URL, the callback token) while the host boots or installs.
    """
    if neighbour is not None:
        if any(named != neighbour for named in headers):
            return Verdict(False, f"a MAC header that is not its neighbour entry {neighbour}", True)
        if neighbour == mac:
            return Verdict(True, "its neighbour entry is the host's MAC")
        return Verdict(False, f"its neighbour entry is {neighbour}, another machine")
    if holder(requester) == mac:
        return Verdict(True, "off-link, from the host's reserved or leased address")
    if signed:
        return Verdict(True, "off-link, with this install's signed Kickstart URL or token")
    if claimed and _within(requester, header_networks):
        return Verdict(True, "off-link, in install.mac_header_networks")
    return Verdict(
        False, "off-link, not the host's address, nor its signed URL while it installs, nor trusted"
    )


def _within(address: str, networks: Sequence[IPv4Network]) -> bool:
    try:
        ip = IPv4Address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
