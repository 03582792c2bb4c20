"""DHCPv4 and BOOTP (RFC 951, 2131, 2132) for PXE."""
