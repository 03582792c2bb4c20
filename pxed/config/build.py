"""From a YAML node tree to a Config: each section, then the references between them.

Sections are read in dependency order (trees before the profiles that name
them, profiles before hosts), not file order; problems are sorted by line at
the end. A reference is checked against the names defined in the file, even
ones whose own entry had errors, so one mistake is reported once rather than
again at every place that names it.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar, cast

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from protocols.dhcp.policy import BadBootTemplate
from protocols.dhcpv6.boot import check_template
from pxed.config import convert as c
from pxed.config.model import (
    ANSWER_FAMILIES,
    ANSWER_URLS,
    ARCH_LOADERS,
    HOST_ARCHES,
    PROFILE_CPUS,
    AnswerFile,
    Config,
    DefaultArch,
    Dhcp6Boot,
    Dhcp6Config,
    Dhcp6Subnet,
    DhcpBoot,
    DhcpConfig,
    DhcpMode,
    Host,
    HttpConfig,
    Images,
    InstallConfig,
    Loaders,
    LoggingConfig,
    LogLevel,
    Netboot,
    Profile,
    ServerConfig,
    Subnet,
    TftpConfig,
    Tree,
)
from pxed.config.yamltree import Context, Convert, Entry, Fields, describe_node, is_null, suggest

A = TypeVar("A", IPv4Address, IPv6Address)
S = TypeVar("S", Subnet, Dhcp6Subnet)

# Every key pxed accepts, by where it sits ("[]": each list item, "*": each named entry).
# etc/pxed.yaml documents each one; a test holds the two together.
KEYS: dict[str, tuple[str, ...]] = {
    "": ("server", "tftp", "dhcp", "dhcp6", "http", "install", "logging", "vars", "trees",
         "profiles", "hosts"),
    "server": (
        "address", "address6", "interfaces", "state_dir", "database", "name", "peer_timeout",
        "peer_ack_delay", "notice",
    ),
    "tftp": ("enabled", "root", "listen", "listen6", "port", "max_blksize", "max_windowsize",
             "max_sessions", "max_per_client", "timeout", "retries"),
    "dhcp": ("mode", "authoritative", "allow_unknown", "unknown_hosts", "server_port",
             "client_port", "deny", "decline_quarantine", "decline_limit",
             "max_quarantined_percent", "discover_burst", "discover_rate",
             "bootp_lease_time", "relays", "subnets", "boot"),
    "dhcp.subnets[]": ("network", "range", "router", "dns", "domain", "lease_time"),
    "dhcp.boot": ("bios", "uefi", "ipxe", "uefi_http", *ARCH_LOADERS, "default_arch"),
    "dhcp6": ("mode", "interfaces", "rapid_commit", "decline_quarantine", "release_quarantine",
              "preference",
              "max_quarantined_percent", "max_offered_percent", "solicit_burst",
              "solicit_rate", "relays", "subnets", "boot"),
    "dhcp6.subnets[]": ("prefix", "range", "dns", "domains", "lease_time"),
    "dhcp6.boot": ("uefi", "uefi_http", "ipxe", *ARCH_LOADERS, "default_arch"),
    "http": ("enabled", "listen", "listen6", "port", "max_connections", "max_per_client",
             "header_timeout"),
    "install": ("kickstart_open", "loop_fetches", "loop_window", "mac_header_networks"),
    "logging": ("json", "level"),
    "trees.*": ("path", "iso"),
    "profiles.*": ("tree", "kernel", "initrd", "cpus", "append", *ANSWER_FAMILIES, "loader",
                   "vars"),
    "profiles.*.loader": ("bios", "uefi", "ipxe", "uefi_http", *ARCH_LOADERS),
    "profiles.*.cpus": PROFILE_CPUS,
    "profiles.*.cpus.*": ("kernel", "initrd"),
    "hosts[]": ("mac", "hostname", "ip", "duid", "ip6", "profile", "netboot", "arch", "vars"),
}  # fmt: skip
BOOT_PLACEHOLDERS = ("server", "http_port", "mac")
APPEND_PLACEHOLDERS = ("server", "http_port", "mac", "hostname", "tree_url", *ANSWER_URLS.values())
RESERVED_PROFILE_NAMES = ("ignore", "local")
BOOL_TAG = "tag:yaml.org,2002:bool"


def build(ctx: Context, root: Node | None, path: Path) -> Config | None:
    """The Config for ``root``, or None when any error was recorded."""
    if root is None or is_null(root):
        if not ctx.problems.errors:
            ctx.problems.error(None, "", "the file is empty; see etc/pxed.yaml for every key")
        return None
    top = Fields(ctx, root, "", KEYS[""])
    if not top.valid:
        return None
    config = _Builder(ctx, top).config(path)
    return None if ctx.problems.errors else config


class _Builder:
    def __init__(self, ctx: Context, top: Fields) -> None:
        self.ctx = ctx
        self.top = top
        self.error = ctx.problems.error
        self.warn = ctx.problems.warn
        self.interfaces_given = False  # even if invalid: one mistake, one error
        self.tftp_root: Node | None = None  # where to point at when a default file is missing

    def section(self, name: str) -> Fields:
        return Fields(self.ctx, self.top.values.get(name), name, KEYS[name])

    def config(self, path: Path) -> Config:
        server = self.server()
        tftp = self.tftp()
        http = self.http()
        trees, tree_names = self.trees()
        profiles = self.profiles(trees, tree_names, tftp)
        dhcp = self.dhcp(tftp, profiles)
        dhcp6 = self.dhcp6()
        return Config(
            path=path,
            server=server,
            tftp=tftp,
            dhcp=dhcp,
            dhcp6=dhcp6,
            http=http,
            install=self.install(),
            logging=self.logging(),
            trees=MappingProxyType(trees),
            profiles=MappingProxyType({k: v for k, v in profiles.items() if v is not None}),
            hosts=self.hosts(dhcp, dhcp6, profiles),
            vars=self.free_mapping(self.top.values.get("vars"), "vars"),
            warnings=tuple(sorted(self.ctx.problems.warnings)),
        )

    # -- server, tftp, http ---------------------------------------------------

    def server(self) -> ServerConfig:
        f = self.section("server")
        address = f.optional("address", _advertisable)
        address6 = f.optional("address6", _advertisable6)
        interfaces = f.optional("interfaces", c.sequence(c.interface)) or ()
        state_dir = f.defaulted("state_dir", c.local_path)
        database_node = f.values.get("database")
        database = None
        if database_node is not None and not is_null(database_node):
            database = c.postgresql_url(self.ctx, database_node, f.key("database"))
        notice = f.optional("notice", c.text)
        name = f.optional("name", c.text)
        peer_timeout = f.defaulted("peer_timeout", c.integer(2, 300))
        peer_ack_delay = f.defaulted("peer_ack_delay", c.integer(1, 600))
        self.interfaces_given = "interfaces" in f.values
        if not ({"address", "address6"} & set(f.values) or self.interfaces_given):
            self.error(
                f.node,
                "server",
                "set server.address or server.interfaces: pxed must tell clients an address "
                "(next-server, HTTP URLs); server.address6 alone for an IPv6-only pxed",
            )
        if state_dir.exists() and not state_dir.is_dir():
            where = f.values.get("state_dir", f.node)
            self.error(where, f.key("state_dir"), f"{state_dir} is not a folder")
        return ServerConfig(
            address,
            interfaces,
            state_dir,
            database,
            notice,
            name=name,
            address6=address6,
            peer_timeout=peer_timeout,
            peer_ack_delay=peer_ack_delay,
        )

    def tftp(self) -> TftpConfig:
        f = self.section("tftp")
        tftp = TftpConfig(
            enabled=f.defaulted("enabled", c.boolean),
            root=f.defaulted("root", c.local_path),
            listen=f.defaulted("listen", c.sequence(_tftp_listen)),
            port=f.defaulted("port", c.port),
            max_blksize=f.defaulted("max_blksize", c.integer(8, 65464)),
            max_windowsize=f.defaulted("max_windowsize", c.integer(1, 32767)),
            max_sessions=f.defaulted("max_sessions", c.integer(1, 1_000_000)),
            max_per_client=f.defaulted("max_per_client", c.integer(1, 1_000_000)),
            timeout=f.defaulted("timeout", c.integer(1, 255)),
            retries=f.defaulted("retries", c.integer(1, 100)),
            listen6=f.defaulted("listen6", c.sequence(_listen6)),
        )
        self.tftp_root = f.values.get("root")
        if tftp.enabled:
            self.need_listen(f, tftp.listen, tftp.listen6)
            self.check_folder(f, "root", tftp.root, "files cannot be served until it exists")
        return tftp

    def http(self) -> HttpConfig:
        f = self.section("http")
        http = HttpConfig(
            enabled=f.defaulted("enabled", c.boolean),
            listen=f.defaulted("listen", c.sequence(c.ipv4)),
            port=f.defaulted("port", c.port),
            max_connections=f.defaulted("max_connections", c.integer(1, 1_000_000)),
            max_per_client=f.defaulted("max_per_client", c.integer(1, 1_000_000)),
            header_timeout=f.defaulted("header_timeout", c.integer(1, 3600)),
            listen6=f.defaulted("listen6", c.sequence(_listen6)),
        )
        if http.enabled:
            self.need_listen(f, http.listen, http.listen6)
        return http

    def need_listen(
        self, f: Fields, listen: tuple[IPv4Address, ...], listen6: tuple[IPv6Address, ...]
    ) -> None:
        # An invalid listen is reported already; an explicit empty one is as good as none.
        given = f.values.get("listen")
        empty = isinstance(given, SequenceNode) and not given.value
        nowhere = not (listen or listen6 or self.interfaces_given or "listen6" in f.values)
        if nowhere and (given is None or empty):
            self.error(
                given or f.node,
                f.key("listen"),
                f"{f.path} has nowhere to listen: give {f.path}.listen or server.interfaces "
                f"(or set {f.path}.enabled: false)",
            )

    def check_folder(self, f: Fields, key: str, folder: Path, consequence: str) -> None:
        """A folder that is absent is a warning (it may be mounted later); a file there is not."""
        node = f.values.get(key, f.node)
        if not folder.exists():
            self.warn(node, f.key(key), f"{folder} does not exist (yet); {consequence}")
        elif not folder.is_dir():
            self.error(node, f.key(key), f"{folder} is not a folder")

    # -- dhcp -----------------------------------------------------------------

    def dhcp(self, tftp: TftpConfig, profiles: dict[str, Profile | None]) -> DhcpConfig:
        f = self.section("dhcp")
        mode = cast(DhcpMode, f.defaulted("mode", _dhcp_mode))
        allow_unknown, unknown_hosts = self.unknown_policy(f, profiles)
        dhcp = DhcpConfig(
            mode=mode,
            authoritative=f.defaulted("authoritative", c.boolean),
            allow_unknown=allow_unknown,
            unknown_hosts=unknown_hosts,
            server_port=f.defaulted("server_port", c.port),
            client_port=f.defaulted("client_port", c.port),
            subnets=self.subnets(f, self.subnet, lambda subnet: subnet.network),
            boot=self.boot(f.values.get("boot"), tftp, check_files=mode != "off"),
            deny=frozenset(f.optional("deny", c.sequence(c.mac)) or ()),
            decline_quarantine=f.defaulted("decline_quarantine", c.seconds),
            decline_limit=f.defaulted("decline_limit", c.integer(1, 1000)),
            max_quarantined_percent=f.defaulted("max_quarantined_percent", c.integer(0, 100)),
            discover_burst=f.defaulted("discover_burst", c.integer(1, 1_000_000)),
            discover_rate=f.defaulted("discover_rate", c.integer(1, 1_000_000)),
            bootp_lease_time=f.defaulted("bootp_lease_time", c.seconds),
            relays=f.defaulted("relays", c.sequence(c.ipv4)),
        )
        if dhcp.enabled:
            self.check_dhcp_enabled(f, dhcp, tftp)
        return dhcp

    def check_dhcp_enabled(self, f: Fields, dhcp: DhcpConfig, tftp: TftpConfig) -> None:
        mode_node = f.values.get("mode")
        if not self.interfaces_given:
            self.error(
                mode_node,
                f.key("mode"),
                f"dhcp.mode {dhcp.mode} needs server.interfaces (DHCP listens on one socket "
                "per interface)",
            )
        if dhcp.mode == "full" and not dhcp.subnets and "subnets" not in f.values:
            self.error(mode_node, f.key("mode"), "dhcp.mode full needs at least one subnet")
        if dhcp.server_port == dhcp.client_port:
            self.error(f.values.get("client_port"), f.key("client_port"), "equals server_port")
        if tftp.enabled and dhcp.server_port == tftp.port:
            self.error(f.values.get("server_port"), f.key("server_port"), "equals tftp.port")

    def unknown_policy(self, f: Fields, profiles: dict[str, Profile | None]) -> tuple[bool, str]:
        """``allow_unknown`` (the contract's gate) and ``unknown_hosts`` (what unknowns boot)."""
        allow = f.optional("allow_unknown", c.boolean)
        policy = f.optional("unknown_hosts", c.text)
        if policy is not None and policy not in RESERVED_PROFILE_NAMES and policy not in profiles:
            self.error(
                f.values["unknown_hosts"],
                f.key("unknown_hosts"),
                f"{policy!r} is not ignore, local or a profile name{suggest(policy, profiles)}",
            )
        if allow is None:
            allow = policy is not None and policy != "ignore"
        if policy is None:
            policy = "local" if allow else "ignore"
        if allow != (policy != "ignore"):
            self.error(
                f.values.get("unknown_hosts"),
                f.key("unknown_hosts"),
                f"{policy} contradicts dhcp.allow_unknown: {str(allow).lower()}",
            )
        return allow, policy

    def subnets(
        self,
        f: Fields,
        read: Callable[[Node, str], S | None],
        network: Callable[[S], IPv4Network | IPv6Network],
    ) -> tuple[S, ...]:
        """The section's ``subnets``, each read by ``read``; one whose ``network`` overlaps
        an earlier one's is an error (which subnet would a client be on?)."""
        subnets: list[S] = []
        for path, item in self.items(f.values.get("subnets"), f.key("subnets")):
            subnet = read(item, path)
            if subnet is None:
                continue
            for other in subnets:
                if network(subnet).overlaps(network(other)):
                    self.error(item, path, f"overlaps subnet {network(other)}")
            subnets.append(subnet)
        return tuple(subnets)

    def subnet(self, node: Node, path: str) -> Subnet | None:
        f = Fields(self.ctx, node, path, KEYS["dhcp.subnets[]"])
        network = f.required("network", c.network)
        pool = f.optional("range", _address_pair(c.ipv4))
        router = f.optional("router", c.ipv4)
        dns = f.optional("dns", c.sequence(c.ipv4)) or ()
        domain = f.optional("domain", c.dns_name)
        lease_time = f.defaulted("lease_time", c.integer(60, 2**31 - 1))
        if network is None:
            return None
        subnet = Subnet(network, pool, router, dns, domain, lease_time)
        if pool is not None:
            for address in pool:
                self.check_host_address(f.values["range"], f.key("range"), address, subnet)
        if router is not None:
            self.check_host_address(f.values["router"], f.key("router"), router, subnet)
        if pool is not None and not dns:
            self.warn(
                node,
                f.key("dns"),
                "no DNS servers: an unattended installer asks for one before it reads its "
                'answer file (Debian\'s installer stops at "Name server addresses")',
            )
        if pool is not None and router is None:
            self.warn(
                node,
                f.key("router"),
                "no router: Debian's installer's DHCP script fails on the missing default "
                'route before it writes the DNS servers, and stops at "Name server addresses"',
            )
        return subnet

    def check_host_address(
        self, node: Node, path: str, address: IPv4Address, subnet: Subnet
    ) -> bool:
        net = subnet.network
        if address not in net:
            self.error(node, path, f"{address} is outside {net}")
        elif net.prefixlen < 31 and address in (net.network_address, net.broadcast_address):
            self.error(node, path, f"{address} is the network or broadcast address of {net}")
        else:
            return True
        return False

    def boot(self, node: Node | None, tftp: TftpConfig, *, check_files: bool) -> DhcpBoot:
        f = Fields(self.ctx, node, "dhcp.boot", KEYS["dhcp.boot"])
        loader = c.template(BOOT_PLACEHOLDERS)
        boot = DhcpBoot(
            bios=f.defaulted("bios", loader),
            uefi=f.defaulted("uefi", loader),
            ipxe=f.defaulted("ipxe", loader),
            uefi_http=f.defaulted("uefi_http", loader),
            default_arch=cast(
                DefaultArch, f.defaulted("default_arch", c.choice("none", "bios", "uefi"))
            ),
            **{key: f.defaulted(key, loader) for key in ARCH_LOADERS},
        )
        if check_files:
            self.check_loaders(f, Loaders(boot.bios, boot.uefi), tftp)
        return boot

    def check_loaders(self, f: Fields, loaders: Loaders, tftp: TftpConfig) -> None:
        """Warn about a TFTP loader missing from an existing tftp.root: PXE-E32 at boot time."""
        if not tftp.enabled or not tftp.root.is_dir():
            return
        for key in ("bios", "uefi"):
            name = getattr(loaders, key)
            if name is None or "://" in name or c.placeholders_in(name):
                continue
            if (tftp.root / name).is_file():
                continue
            if key in f.values:
                self.warn(f.values[key], f.key(key), f"{name} is not in {tftp.root}")
            else:
                self.warn(self.tftp_root, f.key(key), f"{name} (default) is not in {tftp.root}")

    # -- dhcp6 ----------------------------------------------------------------

    def dhcp6(self) -> Dhcp6Config:
        f = self.section("dhcp6")
        dhcp6 = Dhcp6Config(
            mode=cast(DhcpMode, f.defaulted("mode", _dhcp_mode)),
            interfaces=f.defaulted("interfaces", c.sequence(c.interface)),
            rapid_commit=f.defaulted("rapid_commit", c.boolean),
            decline_quarantine=f.defaulted("decline_quarantine", c.seconds),
            release_quarantine=f.defaulted("release_quarantine", c.integer(0, 2**31 - 1)),
            preference=f.defaulted("preference", c.integer(0, 255)),
            max_quarantined_percent=f.defaulted("max_quarantined_percent", c.integer(0, 100)),
            max_offered_percent=f.defaulted("max_offered_percent", c.integer(0, 100)),
            solicit_burst=f.defaulted("solicit_burst", c.integer(1, 1_000_000)),
            solicit_rate=f.defaulted("solicit_rate", c.integer(1, 1_000_000)),
            relays=f.defaulted("relays", c.sequence(c.ipv6)),
            subnets=self.subnets(f, self.subnet6, lambda subnet: subnet.prefix),
            boot=self.boot6(f.values.get("boot")),
        )
        if dhcp6.enabled:
            mode_node = f.values.get("mode")
            if not dhcp6.interfaces and not self.interfaces_given:
                self.error(
                    mode_node,
                    f.key("mode"),
                    f"dhcp6.mode {dhcp6.mode} needs dhcp6.interfaces or server.interfaces "
                    "(DHCPv6 joins ff02::1:2 on each)",
                )
            if dhcp6.mode == "full" and not dhcp6.subnets and "subnets" not in f.values:
                self.error(mode_node, f.key("mode"), "dhcp6.mode full needs at least one subnet")
        return dhcp6

    def subnet6(self, node: Node, path: str) -> Dhcp6Subnet | None:
        f = Fields(self.ctx, node, path, KEYS["dhcp6.subnets[]"])
        prefix = f.required("prefix", c.network6)
        pool = f.optional("range", _address_pair(c.ipv6))
        dns = f.optional("dns", c.sequence(c.ipv6)) or ()
        domains = f.optional("domains", c.sequence(c.dns_name)) or ()
        lease_time = f.defaulted("lease_time", c.integer(60, 2**31 - 1))
        if prefix is None:
            return None
        if prefix.is_link_local or prefix.is_multicast:
            self.error(
                f.values["prefix"],
                f.key("prefix"),
                f"{prefix} is link-local or multicast; give the link's global or ULA prefix",
            )
            return None
        subnet = Dhcp6Subnet(prefix, pool, dns, domains, lease_time)
        if pool is not None:
            for address in pool:
                self.check_address6(f.values["range"], f.key("range"), address, subnet)
        return subnet

    def check_address6(
        self, node: Node, path: str, address: IPv6Address, subnet: Dhcp6Subnet
    ) -> bool:
        if address not in subnet.prefix:
            self.error(node, path, f"{address} is outside {subnet.prefix}")
        elif address == subnet.prefix.network_address:
            self.error(
                node, path, f"{address} is the Subnet-Router anycast address of {subnet.prefix}"
            )
        else:
            return True
        return False

    def boot6(self, node: Node | None) -> Dhcp6Boot:
        f = Fields(self.ctx, node, "dhcp6.boot", KEYS["dhcp6.boot"])
        urls = {key: f.defaulted(key, _boot_url6) for key in KEYS["dhcp6.boot"][:-1]}
        default_arch = f.defaulted("default_arch", c.choice("none", "uefi"))
        return Dhcp6Boot(**urls, default_arch=cast(DefaultArch, default_arch))

    def check_reservation6(
        self, node: Node, path: str, ip6: IPv6Address, dhcp6: Dhcp6Config
    ) -> None:
        subnet = dhcp6.subnet_for(ip6)
        if subnet is None:
            prefixes = ", ".join(str(s.prefix) for s in dhcp6.subnets)
            self.error(node, path, f"{ip6} is in no dhcp6 subnet ({prefixes})")
        elif self.check_address6(node, path, ip6, subnet) and subnet.range:
            self.check_outside_range(node, path, ip6, subnet.range)

    def check_outside_range(self, node: Node, path: str, ip: A, pool: tuple[A, A]) -> None:
        """A reservation inside the dynamic pool works (the pool skips it) but reads as
        if the address could go to anyone."""
        low, high = pool
        if low <= ip <= high:
            self.warn(
                node,
                path,
                f"{ip} is inside the dynamic range {low}-{high}; it is kept for this host, "
                "but a reservation outside the range is clearer",
            )

    # -- inventory -------------------------------------------------------------

    def trees(self) -> tuple[dict[str, Tree], set[str]]:
        """The valid trees, and every tree name defined (for references to check against)."""
        trees: dict[str, Tree] = {}
        entries = self.named(self.top.values.get("trees"), "trees")
        for entry in entries:
            tree = self.tree(entry, f"trees.{entry.key}")
            if tree is not None:
                trees[entry.key] = tree
        return trees, {entry.key for entry in entries}

    def tree(self, entry: Entry, path: str) -> Tree | None:
        f = Fields(self.ctx, entry.value_node, path, KEYS["trees.*"])
        folder = f.optional("path", c.local_path)
        iso = f.optional("iso", c.local_path)
        if "path" in f.values and "iso" in f.values:
            self.error(f.values["iso"], f.key("iso"), "give path or iso, not both")
            return None
        if "path" not in f.values and "iso" not in f.values:
            if f.valid:
                self.error(
                    entry.value_node,
                    path,
                    "needs path (a folder) or iso (an ISO 9660 image, served without mounting)",
                )
            return None
        if folder is not None:
            self.check_folder(f, "path", folder, "the tree cannot be served until it exists")
        if iso is not None:
            if not iso.exists():
                self.warn(f.values["iso"], f.key("iso"), f"{iso} does not exist (yet)")
            elif not iso.is_file():
                self.error(f.values["iso"], f.key("iso"), f"{iso} is not a file")
        if folder is None and iso is None:
            return None
        return Tree(entry.key, folder, iso)

    def profiles(
        self, trees: dict[str, Tree], tree_names: set[str], tftp: TftpConfig
    ) -> dict[str, Profile | None]:
        """Every defined profile name, mapped to its Profile or None if it had errors."""
        profiles: dict[str, Profile | None] = {}
        for entry in self.named(self.top.values.get("profiles"), "profiles"):
            path = f"profiles.{entry.key}"
            if entry.key in RESERVED_PROFILE_NAMES:
                self.error(entry.key_node, path, "reserved word (dhcp.unknown_hosts uses it)")
            profiles[entry.key] = self.profile(entry, path, tree_names, trees, tftp)
        return profiles

    def profile(
        self,
        entry: Entry,
        path: str,
        tree_names: set[str],
        trees: dict[str, Tree],
        tftp: TftpConfig,
    ) -> Profile | None:
        f = Fields(
            self.ctx,
            entry.value_node,
            path,
            KEYS["profiles.*"],
        )
        tree = f.optional("tree", c.text)
        if tree is not None and tree not in tree_names:
            self.error(
                f.values["tree"],
                f.key("tree"),
                f"no tree named {tree!r}{suggest(tree, tree_names)}",
            )
        kernel = f.required("kernel", c.inner_path)
        initrd = f.required("initrd", c.inner_path)
        append = f.get("append", c.template(APPEND_PLACEHOLDERS), "")
        if tree is None and "tree_url" in c.placeholders_in(append):
            self.error(f.values["append"], f.key("append"), "uses {tree_url} but has no tree")
        answer_file = self.answer_file(f, append)
        loader = self.loaders(f.values.get("loader"), f.key("loader"), tftp)
        variables = self.free_mapping(f.values.get("vars"), f.key("vars"))
        base = self.image_folder(tree, trees, tftp)
        cpus = self.cpu_images(f.values.get("cpus"), f.key("cpus"), base)
        if kernel is None or initrd is None:
            return None
        self.check_images(f, base, kernel, initrd)
        return Profile(
            entry.key, tree, kernel, initrd, append, answer_file, loader, variables, cpus
        )

    def cpu_images(
        self, node: Node | None, path: str, base: Path | None
    ) -> MappingProxyType[str, Images]:
        """``cpus``: the kernel and initrd that CPUs other than x86 boot (arm64: ...)."""
        f = Fields(self.ctx, node, path, KEYS["profiles.*.cpus"])
        images: dict[str, Images] = {}
        for cpu in KEYS["profiles.*.cpus"]:
            if cpu not in f.values:
                continue
            g = Fields(self.ctx, f.values[cpu], f.key(cpu), KEYS["profiles.*.cpus.*"])
            kernel = g.required("kernel", c.inner_path)
            initrd = g.required("initrd", c.inner_path)
            if kernel is not None and initrd is not None:
                self.check_images(g, base, kernel, initrd)
                images[cpu] = Images(kernel, initrd)
        return MappingProxyType(images)

    def check_images(self, f: Fields, base: Path | None, kernel: str, initrd: str) -> None:
        """A kernel or initrd that is not where the profile says, when pxed can tell."""
        if base is None:
            return
        for key, image in (("kernel", kernel), ("initrd", initrd)):
            if not (base / image).is_file():
                self.error(f.values[key], f.key(key), f"{image} is not in {base}")

    def answer_file(self, f: Fields, append: str) -> AnswerFile | None:
        """The one answer-file key a profile may give (``kickstart`` or ``preseed``).

        An ``append`` that names another family's URL would point the installer
        at a file pxed refuses to serve it, so that is an error here.
        """
        given = [family for family in ANSWER_FAMILIES if family in f.values]
        given.sort(key=lambda family: f.values[family].start_mark.index)  # file order
        for extra in given[1:]:
            self.error(
                f.values[extra],
                f.key(extra),
                f"a profile has one answer file; {given[0]!r} already names it",
            )
        if not given:
            return None
        family = given[0]
        template = f.optional(family, c.local_path)
        if template is not None and not template.is_file():
            self.error(f.values[family], f.key(family), f"template {template} does not exist")
        used = c.placeholders_in(append)
        for other, placeholder in ANSWER_URLS.items():
            if other != family and placeholder in used:
                self.error(
                    f.values["append"],
                    f.key("append"),
                    f"uses {{{placeholder}}} but the profile's answer file is {family}",
                )
        return None if template is None else AnswerFile(family, template)

    def image_folder(
        self, tree: str | None, trees: dict[str, Tree], tftp: TftpConfig
    ) -> Path | None:
        """The folder a profile's kernel must already be in, when pxed can tell today.

        Not inside an ISO (read when served), not in a folder that is not there
        yet (a warning already), not in a tree that had errors of its own.
        """
        if tree is None:
            folder: Path | None = tftp.root
        elif tree in trees:
            folder = trees[tree].path
        else:
            return None
        return folder if folder is not None and folder.is_dir() else None

    def loaders(self, node: Node | None, path: str, tftp: TftpConfig) -> Loaders:
        f = Fields(self.ctx, node, path, KEYS["profiles.*.loader"])
        loader = c.template(BOOT_PLACEHOLDERS)
        loaders = Loaders(*(f.optional(key, loader) for key in KEYS["profiles.*.loader"]))
        self.check_loaders(f, loaders, tftp)
        return loaders

    def hosts(
        self, dhcp: DhcpConfig, dhcp6: Dhcp6Config, profiles: dict[str, Profile | None]
    ) -> tuple[Host, ...]:
        hosts: list[Host] = []
        seen: dict[tuple[str, object], Node] = {}
        for path, node in self.items(self.top.values.get("hosts"), "hosts"):
            f = Fields(self.ctx, node, path, KEYS["hosts[]"])
            host = self.host(f, dhcp, dhcp6, profiles)
            if host is not None:
                duid = host.duid.hex(":") if host.duid is not None else None
                for key, value in (
                    ("mac", host.mac),
                    ("hostname", host.hostname),
                    ("ip", host.ip),
                    ("duid", duid),
                    ("ip6", host.ip6),
                ):
                    self.once(seen, f, key, value)
                hosts.append(host)
        return tuple(hosts)

    def once(
        self, seen: dict[tuple[str, object], Node], f: Fields, key: str, value: object
    ) -> None:
        """Report a MAC, hostname or reserved IP that an earlier host already has."""
        if value is None:
            return
        folded = value.lower() if isinstance(value, str) else value
        node = f.values[key]
        first = seen.setdefault((key, folded), node)
        if first is not node:
            self.error(
                node,
                f.key(key),
                f"{value} is already used by the host at line {first.start_mark.line + 1}",
            )

    def host(
        self,
        f: Fields,
        dhcp: DhcpConfig,
        dhcp6: Dhcp6Config,
        profiles: dict[str, Profile | None],
    ) -> Host | None:
        mac = f.required("mac", c.mac)
        hostname = f.optional("hostname", c.dns_name)
        ip = f.optional("ip", c.ipv4)
        duid = f.optional("duid", c.duid)
        ip6 = f.optional("ip6", c.ipv6)
        if ip6 is not None and dhcp6.subnets:
            self.check_reservation6(f.values["ip6"], f.key("ip6"), ip6, dhcp6)
        profile = f.optional("profile", c.text)
        netboot = cast(Netboot, f.get("netboot", c.choice("once", "always", "never"), "once"))
        variables = self.free_mapping(f.values.get("vars"), f.key("vars"))
        if mac is not None and mac in dhcp.deny:
            self.error(f.values["mac"], f.key("mac"), f"{mac} is also in dhcp.deny")
        if profile is not None and profile not in profiles:
            self.error(
                f.values["profile"],
                f.key("profile"),
                f"no profile named {profile!r}{suggest(profile, profiles)}",
            )
        if ip is not None and dhcp.subnets:
            self.check_reservation(f.values["ip"], f.key("ip"), ip, dhcp)
        if "arch" in f.values:
            self.check_arch(f, dhcp.boot, profile, profiles)
        if mac is None or not f.valid:
            return None
        return Host(mac, hostname, ip, profile, netboot, variables, duid, ip6)

    def check_arch(
        self, f: Fields, boot: DhcpBoot, name: str | None, profiles: dict[str, Profile | None]
    ) -> None:
        """Warn before boot day that this host's firmware would get no boot file."""
        arch = f.optional("arch", c.choice(*HOST_ARCHES))
        profile = profiles.get(name) if name else None
        if arch is None or profile is None:
            return  # a host without a (valid) profile boots locally and needs no loader
        if not getattr(boot.with_profile(profile.loader), arch):
            self.warn(
                f.values["arch"],
                f.key("arch"),
                f"profile {name!r} has no {arch} loader and neither has "
                f"dhcp.boot: this host would get an address and no boot file "
                f"(set dhcp.boot.{arch} or the profile's loader.{arch})",
            )

    def check_reservation(self, node: Node, path: str, ip: IPv4Address, dhcp: DhcpConfig) -> None:
        subnet = dhcp.subnet_for(ip)
        if subnet is None:
            networks = ", ".join(str(s.network) for s in dhcp.subnets)
            self.error(node, path, f"{ip} is in no dhcp subnet ({networks})")
        elif self.check_host_address(node, path, ip, subnet) and subnet.range:
            self.check_outside_range(node, path, ip, subnet.range)

    # -- install, logging ---------------------------------------------------------

    def install(self) -> InstallConfig:
        f = self.section("install")
        return InstallConfig(
            kickstart_open=f.defaulted("kickstart_open", c.boolean),
            loop_fetches=f.defaulted("loop_fetches", c.integer(1, 1000)),
            loop_window=f.defaulted("loop_window", c.seconds),
            mac_header_networks=f.defaulted("mac_header_networks", c.sequence(c.network)),
        )

    def logging(self) -> LoggingConfig:
        f = self.section("logging")
        return LoggingConfig(
            json=f.defaulted("json", c.boolean),
            level=cast(LogLevel, f.defaulted("level", c.choice("debug", "info", "warn", "error"))),
        )

    # -- shapes -------------------------------------------------------------------

    def named(self, node: Node | None, path: str) -> list[Entry]:
        """The entries of a mapping keyed by names used in URLs (trees, profiles)."""
        if node is None or is_null(node):
            return []
        if not isinstance(node, MappingNode):
            self.error(node, path, f"expected a mapping of names, got {describe_node(node)}")
            return []
        entries = self.ctx.entries(node, path)
        for entry in entries:
            c.name(self.ctx, entry.key_node, f"{path}.{entry.key}")
        return entries

    def items(self, node: Node | None, path: str) -> list[tuple[str, Node]]:
        if node is None or is_null(node):
            return []
        if not isinstance(node, SequenceNode):
            self.error(node, path, f"expected a list, got {describe_node(node)}")
            return []
        return self.ctx.items(node, path)

    def free_mapping(self, node: Node | None, path: str) -> MappingProxyType[str, object]:
        if node is None:
            return MappingProxyType({})
        if not isinstance(node, MappingNode):
            self.error(node, path, f"expected a mapping, got {describe_node(node)}")
            return MappingProxyType({})
        return cast(MappingProxyType[str, object], self.ctx.plain(node, path))


def _advertisable(ctx: Context, node: Node, path: str) -> IPv4Address | None:
    address = c.ipv4(ctx, node, path)
    if address is not None and (
        address.is_unspecified or address.is_multicast or address == IPv4Address("255.255.255.255")
    ):
        ctx.problems.error(node, path, f"{address} cannot be given to clients as the server")
        return None
    return address


def _advertisable6(ctx: Context, node: Node, path: str) -> IPv6Address | None:
    address = c.ipv6(ctx, node, path)
    if address is None:
        return None
    if address.scope_id is not None:
        ctx.problems.error(
            node,
            path,
            f"{address}: a zone (%{address.scope_id}) names one of pxed's own interfaces and means "
            "nothing to a client (RFC 6874); give the address without it",
        )
        return None
    if address.is_unspecified or address.is_multicast or address.ipv4_mapped is not None:
        ctx.problems.error(node, path, f"{address} cannot be given to clients as the server")
        return None
    return address


def _listen6(ctx: Context, node: Node, path: str) -> IPv6Address | None:
    """An address to bind: a link-local one must name its interface, others must not."""
    address = c.ipv6(ctx, node, path)
    if address is None:
        return None
    problem = None
    if address.is_unspecified:
        problem = (
            ":: is refused: it would take IPv4 too, clashing with the listen addresses, and "
            "TFTP must answer from the address each request came to; list the IPv6 addresses"
        )
    elif address.is_multicast or address.ipv4_mapped is not None:
        problem = f"{address} is not an address of this host to listen on"
    elif address.is_link_local and address.scope_id is None:
        problem = (
            f"{address} is link-local: name the interface it is on, like {address}%br0 "
            "(quote it in YAML)"
        )
    elif not address.is_link_local and address.scope_id is not None:
        problem = f"{address}: a zone (%{address.scope_id}) belongs on link-local addresses only"
    elif address.scope_id is not None and not c.INTERFACE.fullmatch(address.scope_id):
        problem = f"{address}: %{address.scope_id} is not a network interface name"
    if problem is not None:
        ctx.problems.error(node, path, problem)
        return None
    return address


def _tftp_listen(ctx: Context, node: Node, path: str) -> IPv4Address | None:
    address = c.ipv4(ctx, node, path)
    if address is not None and address.is_unspecified:
        ctx.problems.error(
            node,
            path,
            "0.0.0.0 cannot work for TFTP: each transfer must answer from the address the "
            "request came to; list the addresses (or leave tftp.listen out)",
        )
        return None
    return address


def _dhcp_mode(ctx: Context, node: Node, path: str) -> str | None:
    """full, proxy or off, taking the boolean false YAML 1.1 makes of an unquoted off."""
    if isinstance(node, ScalarNode) and node.tag == BOOL_TAG and ctx.scalar(node, path) is False:
        return "off"
    return c.choice("full", "proxy", "off")(ctx, node, path)


def _boot_url6(ctx: Context, node: Node, path: str) -> str | None:
    """An option 59 URL template: {server6} in brackets, {http_port} and {mac} only."""
    value = c.text(ctx, node, path)
    if value is None:
        return None
    try:
        check_template(value)
    except BadBootTemplate as error:
        ctx.problems.error(node, path, str(error))
        return None
    return value


def _address_pair(address: Convert[A]) -> Convert[tuple[A, A]]:
    """A range's ``[first, last]``, two addresses in order."""

    def convert(ctx: Context, node: Node, path: str) -> tuple[A, A] | None:
        addresses = c.sequence(address)(ctx, node, path)
        if addresses is None or not isinstance(node, SequenceNode):
            return None
        if len(node.value) != 2:
            ctx.problems.error(node, path, "expected [first, last], two addresses")
            return None
        if len(addresses) != 2:
            return None
        low, high = addresses
        if low > high:
            ctx.problems.error(node, path, f"{low} comes after {high}")
            return None
        return low, high

    return convert
