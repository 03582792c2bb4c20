"""The DHCP server's Twisted side: sockets per interface, the engine's settings, durable leases."""
