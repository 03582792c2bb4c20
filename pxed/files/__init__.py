"""Served files that TFTP and HTTP share: ISO 9660 images read in place."""
