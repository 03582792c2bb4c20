"""The runtime inventory: reload swaps a valid file in whole, keeps the old one on errors."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from pxed.provisioning.inventory import Inventory, host_for
from pxed.provisioning.tokens import SecretError, host_token, load_secret, token_matches
from tests.support.provision_lab import WEB, lab_config


def test_reload_swaps_in_a_valid_file(tmp_path: Path):
    inventory = Inventory(lab_config(tmp_path))
    path = inventory.config.path
    path.write_text(path.read_text().replace("hostname: web01", "hostname: web99"))
    assert inventory.reload() is True
    assert inventory.host(WEB).hostname == "web99"  # type: ignore[union-attr]


def test_reload_of_a_broken_file_keeps_the_old_config_serving(tmp_path: Path):
    inventory = Inventory(lab_config(tmp_path))
    old = inventory.config
    path = old.path
    path.write_text(path.read_text().replace("netboot: never", "netboot: sometimes"))
    assert inventory.reload() is False
    assert inventory.config is old


def test_reload_with_a_template_pykickstart_rejects_is_refused(tmp_path: Path):
    inventory = Inventory(lab_config(tmp_path))
    old = inventory.config
    (tmp_path / "web.ks.j2").write_text("text\nbogus\n")
    assert inventory.reload() is False
    assert inventory.config is old


def test_a_known_host_is_found_and_an_unknown_one_only_under_a_profile_policy(tmp_path: Path):
    assert host_for(lab_config(tmp_path / "a"), "52:54:00:aa:bb:cc") is None
    stand_in = host_for(lab_config(tmp_path / "b", unknown="kiosk"), "52-54-00-AA-BB-CC")
    assert stand_in is not None
    assert (stand_in.mac, stand_in.profile, stand_in.netboot) == (
        "52:54:00:aa:bb:cc",
        "kiosk",
        "once",
    )


def test_the_callback_secret_is_created_once_private_and_kept(tmp_path: Path):
    first = load_secret(tmp_path / "state")
    assert stat.S_IMODE((tmp_path / "state/callback.secret").stat().st_mode) == 0o600
    assert load_secret(tmp_path / "state") == first
    token = host_token(first, WEB)
    assert token_matches(first, WEB, token)
    assert not token_matches(first, "52:54:00:12:34:57", token)


def test_a_callback_secret_others_can_read_is_refused_with_the_fix(tmp_path: Path):
    """Anyone who reads the secret can forge every host's done callback."""
    load_secret(tmp_path)
    (tmp_path / "callback.secret").chmod(0o644)
    with pytest.raises(SecretError, match=r"mode 0644.*chmod 600"):
        load_secret(tmp_path)
