"""One pykickstart handler built per thread, copied for each Kickstart: start-up with a rack of
hosts checks each host's file without building the handler once per host (issue 17)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from pxed.config import ConfigError, load_config
from pxed.provisioning import kickstart
from pxed.provisioning.answers import check_config, checked
from pxed.provisioning.kickstart import check, check_one

RACK = 200
BROKEN_DISK = '"sd\'"'  # YAML for sd', an unclosed quote in that host's ignoredisk line
TEMPLATE = """text
network --bootproto=dhcp --hostname={{ host.hostname }}
ignoredisk --drives={{ vars.disk }}
reboot
{{ pxed_done }}
{{ pxed_failed }}
"""
T = TypeVar("T")


def in_a_new_thread(work: Callable[[], T]) -> T:
    """``work``'s result, run where no handler was built yet (the pristine one is per thread)."""
    results: list[T] = []
    thread = threading.Thread(target=lambda: results.append(work()))
    thread.start()
    thread.join(timeout=120)
    assert results, "the check did not finish"
    return results[0]


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Each handler ``makeVersion`` builds, in order."""
    built: list[object] = []
    make = kickstart.makeVersion

    def counted() -> Any:
        built.append(make())
        return built[-1]

    monkeypatch.setattr(kickstart, "makeVersion", counted)
    return built


def write_rack(tmp_path: Path, broken: int | None = None) -> Path:
    """RACK hosts sharing one template; host ``broken`` has a disk name that breaks its file."""
    (tmp_path / "rack.ks.j2").write_text(TEMPLATE)
    (tmp_path / "tree").mkdir()
    for image in ("vmlinuz", "initrd.img"):
        (tmp_path / "tree" / image).write_bytes(b"image")
    hosts = "".join(
        f'  - {{mac: "52:54:00:00:{i >> 8:02x}:{i & 255:02x}", hostname: rack{i:03d},'
        f" profile: rack, vars: {{disk: {BROKEN_DISK if i == broken else 'sda'}}}}}\n"
        for i in range(RACK)
    )
    config = tmp_path / "pxed.yaml"
    config.write_text(
        f"""server: {{address: 10.213.7.1, state_dir: {tmp_path}/state}}
tftp: {{enabled: false}}
http: {{listen: [127.0.0.1], port: 8080}}
trees:
  rocky: {{path: {tmp_path}/tree}}
profiles:
  rack: {{tree: rocky, kernel: vmlinuz, initrd: initrd.img, kickstart: rack.ks.j2}}
hosts:
{hosts}"""
    )
    return config


def test_a_rack_sharing_one_template_builds_pykickstarts_handler_once(
    tmp_path: Path, builds: list[object]
):
    config = load_config(write_rack(tmp_path))
    assert in_a_new_thread(lambda: check_config(config)) == ([], [])
    assert len(builds) == 1


def test_every_host_of_the_rack_is_still_judged_on_its_own_file(
    tmp_path: Path, builds: list[object]
):
    config = load_config(write_rack(tmp_path, broken=137))
    errors, _ = in_a_new_thread(lambda: check_config(config))
    assert [(p.file, p.line, p.key) for p in errors] == [
        (str(tmp_path / "rack.ks.j2"), 3, "hosts[137]")
    ]
    assert "No closing quotation" in errors[0].message
    assert len(builds) == 1


def test_each_thread_builds_its_own_handler(builds: list[object]):
    in_a_new_thread(lambda: check_one("text\n"))
    in_a_new_thread(lambda: check_one("text\n"))
    assert len(builds) == 2 and builds[0] is not builds[1]


def test_a_kickstart_inherits_nothing_from_the_one_judged_before_it():
    """autopart then part would conflict in one file; in two files each is fine."""
    assert check(["text\nautopart\n", "text\npart / --size=1000\n", "text\nautopart\n"]) == [
        None,
        None,
        None,
    ]


def test_an_option_error_names_its_own_line_after_an_earlier_kickstart_used_that_command():
    """A command's argparse parser is shared between the copies; it must not keep the line of
    the Kickstart parsed before."""
    first, second = check(
        ["text\nreboot\nreboot\nreboot\nselinux --enforcing\n", "selinux --sideways\n"]
    )
    assert first is None
    assert second is not None and second[0] == 1 and "--sideways" in second[1]


def test_a_broken_template_still_fails_the_check_with_file_line_and_key(tmp_path: Path):
    path = write_rack(tmp_path)
    (tmp_path / "rack.ks.j2").write_text(TEMPLATE.replace("reboot\n", "reboot --sideways\n"))
    with pytest.raises(ConfigError) as caught:
        checked(load_config(path))
    assert len(caught.value.errors) == RACK
    assert (caught.value.errors[0].file, caught.value.errors[0].line) == (
        str(tmp_path / "rack.ks.j2"),
        4,
    )
    assert caught.value.errors[0].key == "hosts[0]"
