"""The TFTP provider for generated files: pxelinux and GRUB configs, and install trees.

Sits ahead of ``StaticRoot`` in the TFTP provider chain; it answers ``None``
for every name it does not generate, so those fall through to tftp.root.

pxelinux probes, in order: ``pxelinux.cfg/<uuid>``, ``01-<mac>``, the client IP
in hex (8 digits down to 1), then ``default``. pxed answers:

* ``01-<mac>``: the host's config (install, or local boot when it must not
  install); an unknown MAC gets what ``dhcp.unknown_hosts`` says, or falls
  through under ``ignore``.
* ``<uuid>`` (pxed does not know UUIDs) and the 8-digit hex IP: the same
  config as ``01-<mac>`` when the address (the requester's for the UUID, the
  named one for hex) is a known host's reservation or lease, else fall through,
  so pxelinux keeps probing. Shorter hex prefixes always fall through: they
  name subnets, not hosts.
* ``default``: the unknown-hosts policy (local boot or a default profile);
  under ``ignore``, or under ``local`` when tftp.root has its own
  ``pxelinux.cfg/default`` (the operator's menu), the file in tftp.root.

GRUB: ``grub.cfg-01-<mac>`` (dashes as GRUB probes it, or colons as
``$net_default_mac`` spells it) and ``grub/grub.cfg``, which loads the former.
Any folder prefix is accepted (pxelinux and GRUB probe next to their loader).

Install trees are served at ``trees/<tree>/<path>`` because plain pxelinux.0
can only fetch over TFTP. Every per-host config fetched tells the lifecycle
the host was seen (ready -> booting).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path

from twisted.logger import Logger

from protocols.tftp.wire import ErrorCode
from pxed.config import Host, parse_mac
from pxed.files.iso9660 import IsoError, IsoFile, IsoImage
from pxed.provisioning import bootconfigs
from pxed.provisioning.bootconfigs import Plan
from pxed.provisioning.host_states import HostStates
from pxed.provisioning.inventory import Inventory
from pxed.provisioning.urls import Urls
from pxed.tftp.sources import BlockSource, BytesSource, Client, FileRefused, StaticRoot

log = Logger(namespace="pxed.provision")

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HEX_IP = re.compile(r"[0-9A-Fa-f]{1,8}")
_MAC_NAME = re.compile(r"01-((?:[0-9a-f]{2}[-:]){5}[0-9a-f]{2})")

Clock = Callable[[], float]
Render = Callable[[Plan, Urls], str]
Sign = Callable[[str, int], str]


class ProvisionFiles:
    """A ``FileProvider`` (pxed.tftp.sources) for the files the inventory generates."""

    def __init__(
        self, inventory: Inventory, lifecycle: HostStates, clock: Clock, sign: Sign | None = None
    ) -> None:
        self.inventory = inventory
        self.lifecycle = lifecycle
        self.clock = clock
        # (mac, install generation) -> the signature of its Kickstart URL; None: unsigned.
        self.sign = sign
        self._isos: dict[Path, IsoImage] = {}
        self._folders: dict[Path, StaticRoot] = {}

    def open(self, path: str, client: Client) -> BlockSource | None:
        text = self.config_text(path, client[0])
        if text is not None:
            return BytesSource(text.encode())
        if path.startswith("trees/"):
            return self._tree_file(path)
        return None

    def config_text(self, path: str, requester: str, source: str = "tftp") -> str | None:
        """The generated config at ``path`` (as TFTP or HTTP asks for it), or None.

        ``source`` (tftp, http) is what the lifecycle records as having seen the host; its
        URLs are in the address family ``requester`` came in on.
        """
        urls = self.inventory.urls_for(requester)
        folder, _, name = path.rpartition("/")
        if folder == "pxelinux.cfg" or folder.endswith("/pxelinux.cfg"):
            return self._pxelinux(name, requester, folder, source, urls)
        if name.startswith("grub.cfg-"):
            match = _MAC_NAME.fullmatch(name.removeprefix("grub.cfg-").lower())
            return self._per_mac(match.group(1), bootconfigs.grub, source, urls) if match else None
        if path == "grub/grub.cfg" or (path == "grub.cfg" and not self._in_root(path)):
            return bootconfigs.grub_loader()
        return None

    def ipxe_script(self, mac: str, requester: str) -> str | None:
        """``/boot/<mac>.ipxe``, its URLs in ``requester``'s family: None for a MAC pxed ignores."""
        return self._per_mac(mac, bootconfigs.ipxe, "http", self.inventory.urls_for(requester))

    def grub_http(self, mac: str, requester: str) -> str | None:
        """``/boot/<mac>.grub``: GRUB's install entry over HTTP, in ``requester``'s family;
        None for a MAC pxed ignores."""
        return self._per_mac(mac, bootconfigs.grub_http, "http", self.inventory.urls_for(requester))

    # -- pxelinux ---------------------------------------------------------------------

    def _pxelinux(
        self, name: str, requester: str, folder: str, source: str, urls: Urls
    ) -> str | None:
        lowered = name.lower()
        match = _MAC_NAME.fullmatch(lowered)
        if match:
            return self._per_mac(match.group(1), self._pxelinux_text, source, urls)
        if _UUID.fullmatch(lowered):
            mac = self.inventory.mac_for_ip(requester, self.clock())
            return self._known(mac, self._pxelinux_text, source, urls)
        if _HEX_IP.fullmatch(name):
            if len(name) != 8:
                return None
            address = str(IPv4Address(int(name, 16)))
            mac = self.inventory.mac_for_ip(address, self.clock())
            return self._known(mac, self._pxelinux_text, source, urls)
        if name == "default":
            return self._default(f"{folder}/default", urls)
        return None

    def _default(self, path: str, urls: Urls) -> str | None:
        plan = bootconfigs.default_plan(self.inventory.config, urls)
        if plan is None or (isinstance(plan, bootconfigs.LocalBoot) and self._in_root(path)):
            return None
        return self._pxelinux_text(plan, urls)

    def _pxelinux_text(self, plan: Plan, urls: Urls) -> str:
        config = self.inventory.config
        http = False
        if isinstance(plan, bootconfigs.Install):
            loader = plan.profile.loader.bios or config.dhcp.boot.bios
            http = loader.rpartition("/")[2] == "lpxelinux.0"
        return bootconfigs.pxelinux(plan, urls, http=http)

    # -- per host -------------------------------------------------------------------------

    def _known(self, mac: str | None, render: Render, source: str, urls: Urls) -> str | None:
        """The per-MAC config for a host pxed knows by name (not the unknown-hosts stand-in)."""
        if mac is None or self.inventory.config.host(mac) is None:
            return None
        return self._per_mac(mac, render, source, urls)

    def host(self, mac: str) -> Host | None:
        """The host a URL or file name ``mac`` stands for, or None.

        An inventory host; or, under a default profile for unknown hosts, a MAC that a
        DHCP exchange has already shown (the lifecycle has its row). Anyone can write a
        URL: a MAC that only a URL names gets nothing and leaves nothing behind.
        """
        host = self.inventory.host(mac)
        if host is None or self.inventory.config.host(mac) is not None:
            return host
        return host if self.lifecycle.known(mac) else None

    def _per_mac(self, mac_text: str, render: Render, source: str, urls: Urls) -> str | None:
        try:
            mac = parse_mac(mac_text)
        except ValueError:
            return None
        config = self.inventory.config
        host = self.host(mac)
        if host is None:
            if self.inventory.host(mac) is not None:
                return None  # under a default profile, but no DHCP exchange showed this MAC
            if config.dhcp.unknown_hosts != "local" or mac in config.dhcp.deny:
                return None
            return render(bootconfigs.LocalBoot("unknown host (dhcp.unknown_hosts: local)"), urls)
        current = self.lifecycle.seen(mac, source, self.clock())
        signature = self.sign(mac, current.generation) if self.sign else ""
        return render(bootconfigs.plan_for(config, host, current.state, urls, signature), urls)

    # -- files ------------------------------------------------------------------------------

    def _in_root(self, path: str) -> bool:
        return (self.inventory.config.tftp.root / path).is_file()

    def _tree_file(self, path: str) -> BlockSource | None:
        _, name, rest = path.split("/", 2) if path.count("/") >= 2 else (None, "", "")
        tree = self.inventory.config.trees.get(name)
        if tree is None or not rest:
            return None
        if tree.path is not None:
            folder = self._folders.setdefault(tree.path, StaticRoot(tree.path))
            return folder.open(rest, ("", 0))
        return self._iso_file(tree.source, rest)

    def _iso_file(self, image_path: Path, rest: str) -> BlockSource:
        image = self._isos.get(image_path)
        if image is not None and not _same_file(image):
            del self._isos[image_path]  # replaced on disk: index the new one
            image = None
        if image is None:
            try:
                image = IsoImage(image_path)
            except (IsoError, OSError) as error:
                log.error("cannot read tree image {path}: {error}", path=image_path, error=error)
                raise FileRefused(
                    ErrorCode.FILE_NOT_FOUND, f"trees: {image_path.name} unreadable"
                ) from None
            self._isos[image_path] = image
        # The name's own bytes: a TFTP path that was not UTF-8 arrives surrogate-escaped.
        node = image.lookup([part.encode("utf-8", "surrogateescape") for part in rest.split("/")])
        if not isinstance(node, IsoFile):
            raise FileRefused(ErrorCode.FILE_NOT_FOUND, f"{rest}: file not found")
        return ExtentsSource(image, node)


def _same_file(image: IsoImage) -> bool:
    try:
        info = os.stat(image.path)
    except OSError:
        return False
    return (info.st_ino, info.st_mtime_ns) == image.identity


class ExtentsSource:
    """A file inside an ISO image: its extents read from the image's shared descriptor."""

    def __init__(self, image: IsoImage, node: IsoFile) -> None:
        self._image = image  # holds the image file open for the transfer
        self._extents = node.extents
        self._size = node.size
        # This file of this version of the image, for netascii's cache of layouts.
        self.identity = (str(image.path), image.identity, node.extents)

    def size(self) -> int:
        return self._size

    def read(self, offset: int, length: int) -> bytes:
        out = bytearray()
        position = 0
        for start, extent_length in self._extents:
            if length <= 0:
                break
            if offset < position + extent_length:
                skip = max(0, offset - position)
                take = min(extent_length - skip, length)
                out += os.pread(self._image.fd, take, start + skip)
                offset += take
                length -= take
            position += extent_length
        return bytes(out)

    def close(self) -> None:
        """The image stays open for other transfers; nothing to release per transfer."""
