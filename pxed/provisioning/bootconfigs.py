"""Boot configs generated from the inventory: pxelinux, GRUB and iPXE, as text.

Pure functions: a :class:`Plan` (install this kernel with this command line,
or boot the local disk, and why) in, a config file out. The caller decides the
plan from the host, its profile and its install state (:func:`plan_for`).

Where the kernel and initrd come from (``Images``):

* iPXE always fetches over HTTP: ``/trees/<tree>/<path>`` for a profile with a
  tree, ``/tftp/<path>`` (tftp.root over HTTP) without one.
* GRUB: TFTP paths under tftp.root without a tree (GRUB's ``$root`` is the
  TFTP server it started from). With a tree, HTTP (``(http,server:port)/trees/...``)
  when GRUB speaks HTTP, else the tree over TFTP (``/trees/...``): Debian's signed
  GRUB images have no ``http`` module and, signed, cannot load one
  (docs/firmware.md). GRUB 2.06's ``insmod`` returns success even when it fails, so
  the config asks by doing: it ``source``s the HTTP entry from pxed over HTTP
  (:func:`grub_http`), which adds a first menu entry only where HTTP works, and the
  TFTP entry follows it.
* pxelinux: absolute TFTP paths, ``::/vmlinuz``. pxelinux 6.04 reads both
  ``vmlinuz`` and ``/vmlinuz`` relative to the folder pxelinux.0 came from
  (checked under QEMU: with the loader in ``sub/``, ``/vmlinuz`` fetched
  ``sub/vmlinuz``); ``::`` means "this TFTP server, from its root", so one
  kernel serves loaders kept in per-architecture folders. A tree's files are
  served over TFTP at ``/trees/<tree>/<path>`` by pxed's TFTP provider,
  because plain pxelinux.0 speaks only TFTP; when the profile's BIOS loader is
  ``lpxelinux.0`` (which speaks HTTP), the config uses ``http://`` URLs,
  many times faster.

A host that must not install gets a local-boot config, never a missing file:
a missing per-MAC file makes pxelinux go on to ``default``, and that is how
reinstall loops happen.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from pxed.config.model import ANSWER_URLS, Config, Host, Images, Profile
from pxed.provisioning.answers import FAMILIES, family_of
from pxed.provisioning.family import Target
from pxed.provisioning.kickstart import KICKSTART
from pxed.provisioning.lifecycle import State
from pxed.provisioning.urls import Urls


@dataclass(frozen=True)
class Install:
    """Boot a profile's kernel: ``images`` names the files, ``args`` the command line."""

    label: str
    profile: Profile
    args: str
    mac: str | None  # None: the unknown-hosts default, for whichever MAC asks


@dataclass(frozen=True)
class LocalBoot:
    reason: str


Plan = Install | LocalBoot


def plan_for(config: Config, host: Host, state: State, urls: Urls, signature: str = "") -> Plan:
    """Install or boot locally, and why, for a host in ``state``; ``signature`` signs
    the answer-file URL for this install (pxed.provisioning.tokens)."""
    who = host.hostname or host.mac
    if host.profile is None or host.profile not in config.profiles:
        return LocalBoot(f"{who} has no profile")
    if host.netboot == "never":
        return LocalBoot(f"{who}: netboot never")
    if state is State.LOOPING:
        return LocalBoot(f"{who} is looping (too many installs without done); pxed hosts rearm")
    if state is State.INSTALLED and host.netboot == "once":
        return LocalBoot(f"{who} is installed (netboot once)")
    profile = config.profiles[host.profile]
    args = kernel_args(config, profile, host, urls, signature)
    return Install(who, profile, args, host.mac)


def default_plan(config: Config, urls: Urls) -> Plan | None:
    """What ``pxelinux.cfg/default`` says under ``dhcp.unknown_hosts``; None for ignore."""
    policy = config.dhcp.unknown_hosts
    if policy == "ignore":
        return None
    if policy == "local":
        return LocalBoot("unknown host (dhcp.unknown_hosts: local)")
    profile = config.profiles[policy]
    return Install(
        f"unknown host, profile {policy}", profile, kernel_args(config, profile, None, urls), None
    )


def kernel_args(
    config: Config, profile: Profile, host: Host | None, urls: Urls, signature: str = ""
) -> str:
    """The profile's ``append`` with its placeholders filled, plus what its family's installer
    needs to find its answer file (``pxed.provisioning.family``), each unless given;
    ``signature`` signs this install's answer-file URL (pxed.provisioning.tokens)."""
    mac = host.mac if host is not None else None
    hostname = host.hostname if host is not None else None
    tree_url = urls.tree(profile.tree) if profile.tree else None
    answer_urls = {
        ANSWER_URLS[f.name]: urls.answer(f.path, mac, signature) for f in FAMILIES.values()
    }
    args = profile.append.format_map(
        {
            "server": urls.server,
            "http_port": urls.http_port,
            "mac": mac or "",
            "hostname": hostname or "",
            "tree_url": tree_url or "",
            **answer_urls,
        }
    ).split()
    family = family_of(profile)
    url = urls.answer(family.path, mac, signature) if family is not None else None
    target = Target(url, tree_url, mac, hostname, _domain(config, host))
    for names, arg in (family or KICKSTART).boot_args(target):
        if not any(_has(args, name) for name in names):
            args.append(arg)
    return " ".join(args)


def _has(args: list[str], name: str) -> bool:
    return any(arg == name or arg.startswith(f"{name}=") for arg in args)


def _domain(config: Config, host: Host | None) -> str | None:
    """The DNS domain of the subnet the host's reservation is in, if pxed knows one."""
    if host is None or host.ip is None:
        return None
    subnet = config.dhcp.subnet_for(host.ip)
    return subnet.domain if subnet is not None else None


# -- where the images are ------------------------------------------------------


def tftp_path(profile: Profile, name: str) -> str:
    """A kernel or initrd as a path from the TFTP root (pxed serves trees at /trees/<tree>/)."""
    if profile.tree:
        return f"/trees/{profile.tree}/{name}"
    return f"/{name}"


def http_url(profile: Profile, name: str, urls: Urls) -> str:
    if profile.tree:
        return urls.tree(profile.tree) + name
    return f"{urls.base}/tftp/{name}"


# -- pxelinux --------------------------------------------------------------------


def pxelinux(plan: Plan, urls: Urls, *, http: bool = False) -> str:
    """A pxelinux/syslinux.efi config; ``http`` for lpxelinux.0 (kernel over HTTP)."""
    if isinstance(plan, LocalBoot):
        return (
            f"# pxed: {plan.reason}: boot the local disk\n"
            "DEFAULT local\nPROMPT 0\nTIMEOUT 1\n"
            "LABEL local\n  LOCALBOOT 0\n"
        )
    profile = plan.profile
    kernel, initrd = (
        (http_url(profile, name, urls) if http else "::" + tftp_path(profile, name))
        for name in (profile.kernel, profile.initrd)
    )
    return (
        f"# pxed: {plan.label}: install profile {profile.name}\n"
        "DEFAULT install\nPROMPT 0\nTIMEOUT 1\n"
        "LABEL install\n"
        f"  KERNEL {kernel}\n"
        f"  APPEND initrd={initrd} {plan.args}\n"
        "  IPAPPEND 2\n"  # BOOTIF=01-<mac>: the installer knows which NIC booted
    )


# -- GRUB ----------------------------------------------------------------------------


def grub(plan: Plan, urls: Urls) -> str:
    """A GRUB config (``grub.cfg-01-<mac>``)."""
    if isinstance(plan, LocalBoot):
        return (
            f"# pxed: {plan.reason}: boot the local disk\n"
            "set timeout=0\n"
            "# exit hands control back to the firmware, which tries its next boot entry\n"
            "exit\n"
        )
    profile = plan.profile
    lines = [f"# pxed: {plan.label}: install profile {profile.name}", "set timeout=0"]
    if profile.tree:
        server = f"(http,{urls.server}:{urls.http_port})"
        lines.append(f"source {server}/boot/$net_default_mac.grub")
        lines += _grub_cpus(plan, f"/trees/{profile.tree}/")
    else:
        lines += _grub_cpus(plan, None)
    return "\n".join(lines) + "\n"


def grub_http(plan: Plan, urls: Urls) -> str:
    """``/boot/<mac>.grub``: the install entry with the tree over HTTP, which the TFTP
    config ``source``s first (module docstring); empty when there is nothing to add."""
    if isinstance(plan, LocalBoot) or not plan.profile.tree:
        return ""
    server = f"(http,{urls.server}:{urls.http_port})"
    return "\n".join(_grub_cpus(plan, f"{server}/trees/{plan.profile.tree}/")) + "\n"


def _grub_cpus(plan: Install, prefix: str | None) -> list[str]:
    """The install entry, one per CPU when the profile has per-CPU kernels: GRUB knows
    the CPU it was built for (``$grub_cpu``)."""
    choices = cpu_images(plan.profile)
    if len(choices) == 1:
        return _grub_entry(plan, choices[0][1], prefix)
    lines: list[str] = []
    for n, (cpu, images) in enumerate(choices):
        test = f'[ "$grub_cpu" = {cpu} ]; then'
        lines.append("else" if cpu is None else f"{'elif' if n else 'if'} {test}")
        lines += _grub_entry(plan, images, prefix)
    return [*lines, "fi"]


def _grub_entry(plan: Install, images: Images, prefix: str | None) -> list[str]:
    """``prefix``: where the tree's files are (HTTP or TFTP); None: in tftp.root."""
    profile = plan.profile
    if prefix is not None:
        kernel, initrd = prefix + images.kernel, prefix + images.initrd
    else:
        kernel, initrd = (tftp_path(profile, name) for name in (images.kernel, images.initrd))
    bootif = f" BOOTIF=01-{plan.mac.replace(':', '-')}" if plan.mac else ""
    return [
        f'menuentry "install {profile.name}" {{',
        f"  linux {kernel} {plan.args}{bootif}",
        f"  initrd {initrd}",
        "}",
    ]


def grub_loader() -> str:
    """``grub/grub.cfg``: load the per-MAC config GRUB itself would look for.

    ``$net_default_mac`` is colon-separated; pxed answers both spellings of
    ``grub.cfg-01-<mac>``. If that file is missing (an unknown host pxed
    ignores), fall back to the firmware's next boot entry.
    """
    return (
        "# pxed: load this machine's own config\n"
        "set timeout=0\n"
        "configfile /grub.cfg-01-$net_default_mac\n"
        "exit\n"
    )


# -- iPXE ---------------------------------------------------------------------------------


def ipxe(plan: Plan, urls: Urls) -> str:
    """An iPXE script: kernel and initrd over HTTP, ``initrd=`` for the EFI stub, BOOTIF."""
    if isinstance(plan, LocalBoot):
        return (
            "#!ipxe\n"
            f"# pxed: {plan.reason}: boot the local disk\n"
            "sanboot --no-describe --drive 0x80 || exit\n"
        )
    profile = plan.profile
    lines = ["#!ipxe", f"# pxed: {plan.label}: install profile {profile.name}"]
    choices = cpu_images(profile)
    # iPXE knows the CPU it was built for: ${buildarch}; the x86 kernel comes first, so
    # the tests jump over it to the other CPUs' labels.
    lines += [
        f"iseq ${{buildarch}} {IPXE_BUILDARCH[cpu]} && goto {cpu} ||"
        for cpu, _ in choices
        if cpu is not None
    ]
    for cpu, images in reversed(choices):
        lines += [f":{cpu}"] if cpu is not None else []
        kernel = http_url(profile, images.kernel, urls)
        initrd = http_url(profile, images.initrd, urls)
        name = posixpath.basename(images.initrd)
        lines += [
            f"kernel {kernel} initrd={name} {plan.args} BOOTIF=01-${{net0/mac:hexhyp}}",
            f"initrd {initrd}",
            "boot",
        ]
    return "\n".join(lines) + "\n"


# iPXE's ${buildarch} for the CPUs a profile may name (GRUB's $grub_cpu names).
IPXE_BUILDARCH = {"arm64": "arm64", "arm": "arm32", "riscv64": "riscv64", "loongarch64": "loong64"}


def cpu_images(profile: Profile) -> list[tuple[str | None, Images]]:
    """The profile's kernels by CPU (``cpus:``), the x86 one (None) last, as the fallback.

    pxelinux runs on x86 only, so its configs take the profile's own kernel.
    """
    return [*profile.cpus.items(), (None, Images(profile.kernel, profile.initrd))]
