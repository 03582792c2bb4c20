"""The TFTP provider: every name pxelinux and GRUB probe, per-host answers, trees, fall-through."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pxed.provisioning.inventory import Inventory
from pxed.provisioning.lifecycle import Lifecycle, State
from pxed.provisioning.tftp_files import ProvisionFiles
from pxed.tftp.sources import FileRefused, ProviderChain, StaticRoot
from tests.support.provision_lab import BARE, DB, KIOSK, WEB, lab_config

CLIENT = ("10.213.7.21", 2070)  # web01's reserved address
STRANGER = ("10.213.7.99", 2070)


def files_for(root: Path, **kwargs: object) -> ProvisionFiles:
    config = lab_config(root, **kwargs)
    return ProvisionFiles(Inventory(config), Lifecycle.open(config.server.state_dir), lambda: 100.0)


@pytest.fixture
def files(tmp_path: Path) -> ProvisionFiles:
    return files_for(tmp_path)


def text(files: ProvisionFiles, path: str, client: tuple[str, int] = CLIENT) -> str | None:
    source = files.open(path, client)
    return None if source is None else source.read(0, source.size()).decode()


def test_the_per_mac_file_of_a_ready_host_installs_it_and_marks_it_booting(files: ProvisionFiles):
    config = text(files, "pxelinux.cfg/01-52-54-00-12-34-56")
    assert config is not None and "KERNEL ::/trees/rocky9/images/pxeboot/vmlinuz" in config
    state = files.lifecycle.get(WEB)
    assert (state.state, state.source) == (State.BOOTING, "tftp")


def test_an_installed_once_host_gets_local_boot_not_a_missing_file(files: ProvisionFiles):
    files.lifecycle.done(WEB, 1.0)
    config = text(files, "pxelinux.cfg/01-52-54-00-12-34-56")
    assert config is not None and "LOCALBOOT 0" in config


@pytest.mark.parametrize("mac", [DB, BARE])
def test_never_and_profileless_hosts_get_local_boot(files: ProvisionFiles, mac: str):
    config = text(files, "pxelinux.cfg/01-" + mac.replace(":", "-"))
    assert config is not None and "LOCALBOOT 0" in config


def test_the_uuid_name_answers_for_a_known_requester_and_falls_through_for_others(
    files: ProvisionFiles,
):
    name = "pxelinux.cfg/12345678-9abc-def0-1234-56789abcdef0"
    assert "install profile web" in (text(files, name) or "")
    assert text(files, name, STRANGER) is None


def test_the_full_hex_ip_of_a_reserved_host_answers_shorter_prefixes_fall_through(
    files: ProvisionFiles,
):
    assert "install profile web" in (text(files, "pxelinux.cfg/0AD50715") or "")  # 10.213.7.21
    assert text(files, "pxelinux.cfg/0AD50716") is None
    for length in range(1, 8):
        assert text(files, "pxelinux.cfg/" + "0AD50715"[:length]) is None


def test_the_hex_ip_of_a_leased_host_answers_through_the_lease_table(tmp_path: Path):
    files = files_for(tmp_path)
    state_dir = files.inventory.config.server.state_dir
    conn = sqlite3.connect(state_dir / "leases.sqlite3")
    conn.execute("CREATE TABLE leases (mac TEXT PRIMARY KEY, ip TEXT, expires REAL, hostname TEXT)")
    conn.execute("INSERT INTO leases VALUES (?, '10.213.7.150', 200.0, NULL)", (KIOSK,))
    conn.commit()
    conn.close()
    assert "install profile kiosk" in (text(files, "pxelinux.cfg/0AD50796") or "")


def test_an_unknown_mac_falls_through_under_ignore(files: ProvisionFiles):
    assert text(files, "pxelinux.cfg/01-52-54-00-aa-bb-cc") is None
    assert text(files, "pxelinux.cfg/default") is None


def test_unknown_hosts_local_gives_local_boot_unless_tftp_root_has_a_default(tmp_path: Path):
    files = files_for(tmp_path, unknown="local")
    assert "LOCALBOOT 0" in (text(files, "pxelinux.cfg/01-52-54-00-aa-bb-cc") or "")
    assert "LOCALBOOT 0" in (text(files, "pxelinux.cfg/default") or "")
    (tmp_path / "tftp/pxelinux.cfg").mkdir()
    (tmp_path / "tftp/pxelinux.cfg/default").write_text("MENU TITLE ours\n")
    assert text(files, "pxelinux.cfg/default") is None


def test_unknown_hosts_profile_installs_unknown_macs_dhcp_has_seen(tmp_path: Path):
    files = files_for(tmp_path, unknown="kiosk")
    files.lifecycle.seen("52:54:00:aa:bb:cc", "dhcp", 1.0)  # what the DHCP adapter does
    config = text(files, "pxelinux.cfg/01-52-54-00-aa-bb-cc") or ""
    assert "inst.ks=http://127.0.0.1:8080/ks/52:54:00:aa:bb:cc" in config
    assert "inst.ks=http://127.0.0.1:8080/ks/ " in (text(files, "pxelinux.cfg/default") or "")


def test_an_unknown_mac_only_a_file_name_names_gets_nothing_and_leaves_no_row(tmp_path: Path):
    """Anyone can ask for pxelinux.cfg/01-<random>: no host row may come of it."""
    files = files_for(tmp_path, unknown="kiosk")
    for n in range(50):
        assert text(files, f"pxelinux.cfg/01-52-54-00-ee-00-{n:02x}") is None
        assert files.ipxe_script(f"52:54:00:ee:01:{n:02x}", "") is None
    assert files.lifecycle.all() == []


def test_configs_next_to_a_loader_in_a_subfolder_are_answered(files: ProvisionFiles):
    assert text(files, "bios/pxelinux.cfg/01-52-54-00-12-34-56") is not None


def test_grub_per_mac_files_in_both_spellings_and_the_loader(files: ProvisionFiles):
    dashes = text(files, "grub.cfg-01-52-54-00-12-34-56")
    colons = text(files, "grub/grub.cfg-01-52:54:00:12:34:56")
    assert dashes is not None and dashes == colons and "menuentry" in dashes
    assert "configfile /grub.cfg-01-$net_default_mac" in (text(files, "grub/grub.cfg") or "")


def test_a_grub_cfg_in_tftp_root_wins_over_the_generated_loader(files: ProvisionFiles):
    (files.inventory.config.tftp.root / "grub.cfg").write_text("set default=0\n")
    assert text(files, "grub.cfg") is None


def test_tree_files_are_served_over_tftp(files: ProvisionFiles):
    assert text(files, "trees/rocky9/images/pxeboot/vmlinuz") == "tree kernel"
    with pytest.raises(FileRefused):
        files.open("trees/rocky9/nope", CLIENT)
    assert files.open("trees/nosuchtree/vmlinuz", CLIENT) is None


def test_in_the_chain_unknown_names_reach_the_static_root(files: ProvisionFiles):
    chain = ProviderChain([files, StaticRoot(files.inventory.config.tftp.root)])
    source = chain.open("/vmlinuz", CLIENT)
    assert source.read(0, 100) == b"tftp kernel"
    with pytest.raises(FileRefused):
        chain.open("pxelinux.cfg/01-52-54-00-aa-bb-cc", CLIENT)


def test_ipxe_script_is_per_host_and_records_http(files: ProvisionFiles):
    script = files.ipxe_script(WEB, "") or ""
    assert script.startswith("#!ipxe\n") and "kernel http://127.0.0.1:8080/trees/" in script
    assert files.lifecycle.get(WEB).source == "http"
    assert files.ipxe_script("52:54:00:aa:bb:cc", "") is None


def test_iso_tree_files_are_served_over_tftp_byte_for_byte(tmp_path: Path):
    from tests.support.isoimage import make_iso

    source = tmp_path / "isosrc/images/pxeboot"
    source.mkdir(parents=True)
    kernel = bytes(range(256)) * 40  # several ISO blocks
    (source / "vmlinuz").write_bytes(kernel)
    (source / "initrd.img").write_bytes(b"iso initrd")
    make_iso(tmp_path / "isosrc", tmp_path / "tree.iso")
    files = files_for(tmp_path / "lab", extra_trees=f"  iso9: {{iso: {tmp_path}/tree.iso}}\n")
    got = files.open("trees/iso9/images/pxeboot/vmlinuz", CLIENT)
    assert got is not None and got.size() == len(kernel)
    assert got.read(0, len(kernel)) == kernel
    assert got.read(2000, 3000) == kernel[2000:5000]
    # Issue 18: a byte that is not UTF-8 in the name raised, and logged a traceback per packet.
    with pytest.raises(FileRefused, match="file not found"):
        files.open("trees/iso9/images/pxeboot/vmlinuz\udcff", CLIENT)
