"""Every default of the config file, in one table: the loader reads it, the services that
take settings without a file (tests, tools) read it, and a test holds the commented
reference config (etc/pxed.yaml) to it."""

from __future__ import annotations

from pathlib import Path

CONFIG_PATH = "/etc/pxed/pxed.yaml"  # where twistd and the pxed tools look without --config

DEFAULTS: dict[str, object] = {
    "server.state_dir": Path("/var/lib/pxed"),
    "server.database": None,  # none: leases in SQLite in state_dir
    "server.name": None,  # none: the machine's host name
    "server.peer_timeout": 3,  # seconds: a peer whose heartbeat is older is gone
    "server.peer_ack_delay": 10,  # secs: a live peer's client retrying this long is answered
    "server.address6": None,  # none: the first listen6 address (a routable one first)
    "tftp.enabled": True,
    "tftp.root": Path("/srv/tftp"),
    "tftp.listen": (),  # none given: the addresses of server.interfaces
    "tftp.listen6": (),  # none: no IPv6
    "tftp.port": 69,
    "tftp.max_blksize": 1468,
    "tftp.max_windowsize": 16,
    "tftp.max_sessions": 1000,
    "tftp.max_per_client": 16,
    "tftp.timeout": 1,
    "tftp.retries": 5,
    "dhcp.mode": "off",
    "dhcp.authoritative": True,
    "dhcp.server_port": 67,
    "dhcp.client_port": 68,
    "dhcp.decline_quarantine": 600,
    "dhcp.decline_limit": 3,
    "dhcp.max_quarantined_percent": 25,
    "dhcp.discover_burst": 8,
    "dhcp.discover_rate": 1,
    "dhcp.bootp_lease_time": 3600,
    "dhcp.relays": (),
    "dhcp.deny": (),
    "dhcp.subnets.lease_time": 3600,
    "dhcp.boot.bios": "pxelinux.0",
    "dhcp.boot.uefi": "syslinux.efi",
    "dhcp.boot.ipxe": "http://{server}:{http_port}/boot/{mac}.ipxe",
    "dhcp.boot.uefi_http": "http://{server}:{http_port}/tftp/snponly.efi",
    "dhcp.boot.default_arch": "none",
    "dhcp.boot.uefi32": None,  # an architecture without a loader gets no boot file
    "dhcp.boot.arm32": None,
    "dhcp.boot.arm64": None,
    "dhcp.boot.riscv64": None,
    "dhcp.boot.loongarch64": None,
    "dhcp.boot.arm64_http": None,
    "dhcp6.mode": "off",
    "dhcp6.interfaces": (),  # none given: server.interfaces
    "dhcp6.rapid_commit": False,
    "dhcp6.decline_quarantine": 600,
    "dhcp6.release_quarantine": 600,
    "dhcp6.preference": 255,
    "dhcp6.max_quarantined_percent": 25,
    "dhcp6.max_offered_percent": 25,
    "dhcp6.solicit_burst": 8,
    "dhcp6.solicit_rate": 1,
    "dhcp6.relays": (),
    "dhcp6.subnets.lease_time": 3600,
    "dhcp6.boot.uefi": None,  # a kind without a URL gets an address and no boot file
    "dhcp6.boot.uefi_http": "http://[{server6}]:{http_port}/tftp/snponly.efi",
    "dhcp6.boot.ipxe": "http://[{server6}]:{http_port}/boot/{mac}.ipxe",
    "dhcp6.boot.uefi32": None,
    "dhcp6.boot.arm32": None,
    "dhcp6.boot.arm64": None,
    "dhcp6.boot.riscv64": None,
    "dhcp6.boot.loongarch64": None,
    "dhcp6.boot.arm64_http": None,
    "dhcp6.boot.default_arch": "none",
    "http.enabled": True,
    "http.listen": (),  # none given: the addresses of server.interfaces
    "http.listen6": (),  # none: no IPv6
    "http.port": 80,
    "http.max_connections": 512,
    "http.max_per_client": 32,
    "http.header_timeout": 10,
    "install.kickstart_open": False,
    "install.loop_fetches": 3,
    "install.loop_window": 86400,
    "install.mac_header_networks": (),
    "logging.json": False,
    "logging.level": "info",
}


def default(key: str) -> object:
    """The default of ``key`` (a dotted path as the reference config shows it)."""
    return DEFAULTS[key]


def default_int(key: str) -> int:
    """The default of ``key``, a whole number (for settings built without a file)."""
    value = DEFAULTS[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{key}'s default is not a whole number: {value!r}")
    return value
