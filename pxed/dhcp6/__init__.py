"""The DHCPv6 server's appliance side: settings, sockets, server DUID, durable leases."""
