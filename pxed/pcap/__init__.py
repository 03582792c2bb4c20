"""Reading captures: pcap/pcapng frames down to DHCP, DHCPv6 and TFTP datagrams, shown as text."""
