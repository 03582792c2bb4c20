"""pxed: one daemon, one YAML file, PXE boot and unattended installs."""

__version__ = "0.1.0"
