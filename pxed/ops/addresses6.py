"""Which MAC an IPv6 address belongs to, as pxed's own DHCPv6 replies said.

TFTP and HTTP events name only the client's address, and the timeline and the boot
view need its MAC. An IPv4 address is looked up in the DHCP leases
(``Inventory.mac_for_ip``); an IPv6 one here, in the addresses DHCPv6 REPLYs gave to a
known MAC, newest last. A RELEASE does not forget one: OVMF releases its address before
starting the loader, and GRUB goes on fetching from it (docs/firmware.md). Bounded, the
oldest forgotten first, so a flood of clients costs no more than ``limit`` entries.
"""

from __future__ import annotations

from collections import OrderedDict
from ipaddress import IPv6Address

from pxed.events import Dhcp6Exchange, Event

MAX_ADDRESSES = 4096


class Addresses6:
    """Event subscriber: IPv6 address -> MAC, from DHCPv6 exchanges answered with one."""

    kinds = (Dhcp6Exchange,)  # what the bus hands it

    def __init__(self, limit: int = MAX_ADDRESSES) -> None:
        self.limit = limit
        self._macs: OrderedDict[IPv6Address, str] = OrderedDict()

    def __call__(self, event: Event) -> None:
        if not isinstance(event, Dhcp6Exchange) or event.mac is None:
            return
        if event.outcome != "reply" or event.address == "-":
            return
        address = IPv6Address(event.address)
        self._macs.pop(address, None)
        self._macs[address] = event.mac
        if len(self._macs) > self.limit:
            self._macs.popitem(last=False)

    def mac_for(self, ip: str) -> str | None:
        """The MAC for ``ip`` (brackets and a zone allowed), None if no REPLY gave it."""
        try:
            address = IPv6Address(ip.strip("[]").partition("%")[0])
        except ValueError:
            return None
        return self._macs.get(address)
