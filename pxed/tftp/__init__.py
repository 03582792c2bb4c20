"""The TFTP server's Twisted side: listeners, the transfer loop, the sources transfers read."""
