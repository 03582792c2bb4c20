"""Serving a datagram protocol whose replies wait for a durable store: DHCP and DHCPv6.

Family-neutral: sockets adopted per interface and port, replies of a reactor turn
held until the store has committed (group commit), the expiry sweep.  The DHCP and
DHCPv6 adapters import it; it imports neither.
"""
