"""A small inventory on disk for the provisioning tests: three profiles, four hosts.

The third profile, ``deb``, is a preseed one that no host uses unless a test adds
``DEB_HOST`` (``write_lab(extra=DEB_HOST)``).
"""

from __future__ import annotations

from pathlib import Path

from pxed.config import Config, load_config

KS = "text\nurl --url={{ tree_url }}\nnetwork --hostname={{ host.hostname }}\nreboot\n" + (
    "{{ pxed_done }}\n{{ pxed_failed }}\n"
)
PRESEED = (
    "d-i netcfg/get_hostname string {{ host.hostname }}\n"
    "d-i mirror/http/directory string /trees/{{ profile.tree }}\n"
    "d-i passwd/root-password-crypted password $6$lab\n"
    "d-i preseed/late_command string {{ pxed_done }}\n"
)
WEB = "52:54:00:12:34:56"  # netboot once, tree profile, reserved 10.213.7.21
KIOSK = "52:54:00:12:34:57"  # netboot always, tree-less profile
DB = "52:54:00:12:34:58"  # netboot never
BARE = "52:54:00:12:34:59"  # no profile
DEB = "52:54:00:12:34:5a"  # netboot once, preseed profile, reserved 10.213.7.41 (DEB_HOST)
DEB_IP = "10.213.7.41"
DEB_HOST = f'  - {{mac: "{DEB}", hostname: deb01, ip: {DEB_IP}, profile: deb}}\n'


def write_lab(
    root: Path,
    *,
    unknown: str = "ignore",
    extra: str = "",
    extra_trees: str = "",
    http_port: int = 8080,
    tftp_port: int = 6969,
    http_listen6: str = "[]",
) -> Path:
    """Write a config (and its tree, tftp root and template) under ``root``; return its path."""
    tree = root / "tree/images/pxeboot"
    tree.mkdir(parents=True, exist_ok=True)
    (tree / "vmlinuz").write_bytes(b"tree kernel")
    (tree / "initrd.img").write_bytes(b"tree initrd")
    tftp = root / "tftp"
    tftp.mkdir(exist_ok=True)
    (tftp / "vmlinuz").write_bytes(b"tftp kernel")
    (tftp / "initrd.gz").write_bytes(b"tftp initrd")
    (root / "web.ks.j2").write_text(KS)
    (root / "kiosk.ks.j2").write_text(KS.replace("url --url={{ tree_url }}\n", ""))
    (root / "deb.preseed.j2").write_text(PRESEED)
    config = root / "pxed.yaml"
    config.write_text(
        f"""server: {{address: 127.0.0.1, state_dir: {root}/state}}
tftp: {{root: {tftp}, listen: [127.0.0.1], port: {tftp_port}}}
http: {{listen: [127.0.0.1], port: {http_port}, listen6: {http_listen6}}}
dhcp:
  unknown_hosts: {unknown}
  subnets:
    - network: 10.213.7.0/24
install: {{loop_fetches: 2, loop_window: 3600}}
trees:
  rocky9: {{path: {root}/tree}}
{extra_trees}profiles:
  web:
    tree: rocky9
    kernel: images/pxeboot/vmlinuz
    initrd: images/pxeboot/initrd.img
    append: "ip=dhcp console=ttyS0 hostname={{hostname}}"
    kickstart: web.ks.j2
  kiosk:
    kernel: vmlinuz
    initrd: initrd.gz
    append: "inst.ks={{ks_url}} quiet"
    kickstart: kiosk.ks.j2
  deb:
    tree: rocky9
    kernel: images/pxeboot/vmlinuz
    initrd: images/pxeboot/initrd.img
    append: "console=ttyS0"
    preseed: deb.preseed.j2
hosts:
  - {{mac: "{WEB}", hostname: web01, ip: 10.213.7.21, profile: web}}
  - {{mac: "{KIOSK}", hostname: kiosk01, profile: kiosk, netboot: always}}
  - {{mac: "{DB}", hostname: db01, profile: web, netboot: never}}
  - {{mac: "{BARE}", hostname: bare01}}
{extra}"""
    )
    return config


def lab_config(root: Path, **kwargs: object) -> Config:
    return load_config(write_lab(root, **kwargs))  # type: ignore[arg-type]
