"""Reading captures: pcap/pcapng frames down to DHCP and TFTP datagrams, shown as text."""
