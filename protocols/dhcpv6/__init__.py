"""DHCPv6 (RFC 8415) with the netboot options of RFC 5970: the wire grammar."""
