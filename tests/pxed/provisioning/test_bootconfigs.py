"""Generated pxelinux, GRUB and iPXE configs: install or local boot, images, kernel arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from pxed.config import Config, load_config
from pxed.provisioning import bootconfigs
from pxed.provisioning.bootconfigs import Install, LocalBoot, plan_for
from pxed.provisioning.lifecycle import State
from pxed.provisioning.urls import Urls
from tests.support.provision_lab import (
    BARE,
    DB,
    DEB,
    DEB_HOST,
    KIOSK,
    WEB,
    lab_config,
    write_lab,
)

URLS = Urls("10.213.7.1", 8080)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return lab_config(tmp_path)


def host(config: Config, mac: str):
    found = config.host(mac)
    assert found is not None
    return found


def test_a_ready_once_host_installs_with_ks_and_repo_added_to_its_append(config: Config):
    plan = plan_for(config, host(config, WEB), State.READY, URLS)
    assert isinstance(plan, Install)
    assert plan.args == (
        "ip=dhcp console=ttyS0 hostname=web01 inst.repo=http://10.213.7.1:8080/trees/rocky9/ "
        "inst.ks=http://10.213.7.1:8080/ks/52:54:00:12:34:56"
    )


def test_an_append_that_names_inst_ks_is_not_given_a_second_one(config: Config):
    plan = plan_for(config, host(config, KIOSK), State.READY, URLS)
    assert isinstance(plan, Install)
    assert plan.args == "inst.ks=http://10.213.7.1:8080/ks/52:54:00:12:34:57 quiet"


@pytest.mark.parametrize(
    ("mac", "state", "reason"),
    [
        (WEB, State.INSTALLED, "web01 is installed (netboot once)"),
        (WEB, State.LOOPING, "web01 is looping"),
        (KIOSK, State.LOOPING, "kiosk01 is looping"),
        (DB, State.READY, "db01: netboot never"),
        (BARE, State.READY, "bare01 has no profile"),
    ],
)
def test_hosts_that_must_not_install_get_local_boot(
    config: Config, mac: str, state: State, reason: str
):
    plan = plan_for(config, host(config, mac), state, URLS)
    assert isinstance(plan, LocalBoot)
    assert plan.reason.startswith(reason)


@pytest.mark.parametrize("state", [State.INSTALLED, State.FAILED, State.INSTALLING])
def test_an_always_host_installs_in_any_state_but_looping(config: Config, state: State):
    assert isinstance(plan_for(config, host(config, KIOSK), state, URLS), Install)


def test_pxelinux_install_uses_tftp_paths_under_the_tree_and_ipappend(config: Config):
    plan = plan_for(config, host(config, WEB), State.READY, URLS)
    text = bootconfigs.pxelinux(plan, URLS)
    assert "DEFAULT install\n" in text
    assert "  KERNEL ::/trees/rocky9/images/pxeboot/vmlinuz\n" in text
    assert "  APPEND initrd=::/trees/rocky9/images/pxeboot/initrd.img ip=dhcp" in text
    assert text.endswith("  IPAPPEND 2\n")


def test_pxelinux_without_a_tree_uses_absolute_paths_in_tftp_root(config: Config):
    text = bootconfigs.pxelinux(plan_for(config, host(config, KIOSK), State.READY, URLS), URLS)
    assert "  KERNEL ::/vmlinuz\n  APPEND initrd=::/initrd.gz inst.ks=" in text


def test_pxelinux_for_lpxelinux_uses_http_urls(config: Config):
    plan = plan_for(config, host(config, WEB), State.READY, URLS)
    text = bootconfigs.pxelinux(plan, URLS, http=True)
    assert "  KERNEL http://10.213.7.1:8080/trees/rocky9/images/pxeboot/vmlinuz\n" in text


def test_local_boot_configs_for_each_loader():
    plan = LocalBoot("web01 is installed (netboot once)")
    assert bootconfigs.pxelinux(plan, URLS) == (
        "# pxed: web01 is installed (netboot once): boot the local disk\n"
        "DEFAULT local\nPROMPT 0\nTIMEOUT 1\nLABEL local\n  LOCALBOOT 0\n"
    )
    assert bootconfigs.grub(plan, URLS).endswith("exit\n")
    assert bootconfigs.ipxe(plan, URLS) == (
        "#!ipxe\n# pxed: web01 is installed (netboot once): boot the local disk\n"
        "sanboot --no-describe --drive 0x80 || exit\n"
    )


def test_ipxe_fetches_over_http_with_initrd_name_for_the_efi_stub_and_bootif(config: Config):
    plan = plan_for(config, host(config, WEB), State.READY, URLS)
    lines = bootconfigs.ipxe(plan, URLS).splitlines()
    assert lines[0] == "#!ipxe"
    assert lines[2].startswith(
        "kernel http://10.213.7.1:8080/trees/rocky9/images/pxeboot/vmlinuz initrd=initrd.img "
        "ip=dhcp"
    )
    assert lines[2].endswith(" BOOTIF=01-${net0/mac:hexhyp}")
    assert lines[3] == "initrd http://10.213.7.1:8080/trees/rocky9/images/pxeboot/initrd.img"
    assert lines[4] == "boot"


def test_ipxe_without_a_tree_fetches_tftp_root_over_http(config: Config):
    plan = plan_for(config, host(config, KIOSK), State.READY, URLS)
    assert "initrd http://10.213.7.1:8080/tftp/initrd.gz\n" in bootconfigs.ipxe(plan, URLS)


def test_grub_uses_http_for_a_tree_and_names_bootif(config: Config):
    plan = plan_for(config, host(config, WEB), State.READY, URLS)
    text = bootconfigs.grub_http(plan, URLS)
    assert "  linux (http,10.213.7.1:8080)/trees/rocky9/images/pxeboot/vmlinuz ip=dhcp" in text
    assert " BOOTIF=01-52-54-00-12-34-56\n" in text
    assert "  initrd (http,10.213.7.1:8080)/trees/rocky9/images/pxeboot/initrd.img\n" in text


def test_grub_sources_its_http_entry_first_and_falls_back_to_the_tree_over_tftp(config: Config):
    """Debian's signed GRUB has no http module and cannot load one (docs/firmware.md): the
    source fails there, adds nothing, and the TFTP entry is the only one."""
    text = bootconfigs.grub(plan_for(config, host(config, WEB), State.READY, URLS), URLS)
    lines = text.splitlines()
    assert lines[2] == "source (http,10.213.7.1:8080)/boot/$net_default_mac.grub"
    assert "  linux /trees/rocky9/images/pxeboot/vmlinuz ip=dhcp" in text
    assert "  initrd /trees/rocky9/images/pxeboot/initrd.img\n" in text
    assert "(http," not in "\n".join(lines[3:])


def test_grub_http_entry_is_empty_without_a_tree_or_when_the_host_boots_its_disk(
    config: Config,
):
    kiosk = plan_for(config, host(config, KIOSK), State.READY, URLS)
    installed = plan_for(config, host(config, WEB), State.INSTALLED, URLS)
    assert bootconfigs.grub_http(kiosk, URLS) == bootconfigs.grub_http(installed, URLS) == ""


def test_grub_without_a_tree_uses_tftp_paths(config: Config):
    text = bootconfigs.grub(plan_for(config, host(config, KIOSK), State.READY, URLS), URLS)
    assert "  linux /vmlinuz inst.ks=" in text and "  initrd /initrd.gz\n" in text


def test_grub_loader_loads_the_per_mac_file():
    assert "configfile /grub.cfg-01-$net_default_mac\n" in bootconfigs.grub_loader()


def test_default_follows_the_unknown_hosts_policy(tmp_path: Path):
    assert bootconfigs.default_plan(lab_config(tmp_path / "a"), URLS) is None
    local = bootconfigs.default_plan(lab_config(tmp_path / "b", unknown="local"), URLS)
    assert isinstance(local, LocalBoot)
    plan = bootconfigs.default_plan(lab_config(tmp_path / "c", unknown="kiosk"), URLS)
    assert isinstance(plan, Install)
    assert plan.args == "inst.ks=http://10.213.7.1:8080/ks/ quiet inst.ks.sendmac"


# -- each answer-file family's kernel arguments ----------------------------------------------

DEB_ARGS = (
    "console=ttyS0 auto=true priority=critical "
    f"url=http://10.213.7.1:8080/preseed/{DEB} interface=auto hostname=deb01"
)


def test_a_preseed_host_gets_debian_installers_arguments_instead_of_inst_ks(tmp_path: Path):
    config = lab_config(tmp_path, extra=DEB_HOST)
    plan = plan_for(config, host(config, DEB), State.READY, URLS)
    assert isinstance(plan, Install)
    assert plan.args == DEB_ARGS


@pytest.mark.parametrize("loader", ["pxelinux", "grub", "ipxe"])
@pytest.mark.parametrize(
    ("mac", "wanted", "unwanted"),
    [
        (WEB, ["inst.ks=http://10.213.7.1:8080/ks/52:54:00:12:34:56", "inst.repo="], ["url="]),
        (DEB, [DEB_ARGS], ["inst.ks", "inst.repo"]),
    ],
    ids=["kickstart", "preseed"],
)
def test_every_generated_boot_config_carries_its_familys_arguments(
    tmp_path: Path, loader: str, mac: str, wanted: list[str], unwanted: list[str]
):
    config = lab_config(tmp_path, extra=DEB_HOST)
    text = getattr(bootconfigs, loader)(
        plan_for(config, host(config, mac), State.READY, URLS), URLS
    )
    assert all(arg in text for arg in wanted), text
    assert not any(arg in text for arg in unwanted), text


def test_the_domain_of_a_preseed_hosts_subnet_goes_on_the_command_line(tmp_path: Path):
    path = write_lab(tmp_path, extra=DEB_HOST)
    path.write_text(
        path.read_text().replace("10.213.7.0/24", "10.213.7.0/24\n      domain: lab.internal")
    )
    config = load_config(path)
    plan = plan_for(config, host(config, DEB), State.READY, URLS)
    assert isinstance(plan, Install) and plan.args == f"{DEB_ARGS} domain=lab.internal"


def test_an_append_that_gives_a_preseed_argument_in_either_spelling_keeps_it(tmp_path: Path):
    path = write_lab(tmp_path, extra=DEB_HOST)
    given = "priority=high preseed/url=http://mirror.lab/p.cfg netcfg/choose_interface=ens3"
    path.write_text(path.read_text().replace('append: "console=ttyS0"', f'append: "{given}"'))
    config = load_config(path)
    plan = plan_for(config, host(config, DEB), State.READY, URLS)
    assert isinstance(plan, Install) and plan.args == f"{given} auto=true hostname=deb01"


def test_the_unknown_hosts_default_for_a_preseed_profile_lets_the_neighbour_entry_name_it(
    tmp_path: Path,
):
    plan = bootconfigs.default_plan(lab_config(tmp_path, unknown="deb"), URLS)
    assert isinstance(plan, Install)
    assert plan.args == (
        "console=ttyS0 auto=true priority=critical url=http://10.213.7.1:8080/preseed/ "
        "interface=auto"
    )


def _two_cpu_kiosk(tmp_path: Path) -> Config:
    """The lab with kiosk's profile also giving an arm64 kernel and initrd (tftp.root)."""
    path = write_lab(tmp_path)
    (tmp_path / "tftp/arm64").mkdir()
    for name in ("vmlinuz", "initrd.gz"):
        (tmp_path / "tftp/arm64" / name).write_bytes(b"arm64")
    text = path.read_text().replace(
        "    initrd: initrd.gz\n",
        "    initrd: initrd.gz\n"
        "    cpus: {arm64: {kernel: arm64/vmlinuz, initrd: arm64/initrd.gz}}\n",
        1,
    )
    path.write_text(text)
    return load_config(path)


def test_grub_boots_each_cpu_its_own_kernel_by_grub_cpu_and_x86_the_profiles(tmp_path: Path):
    """Issue 13: one profile for a mixed fleet; GRUB knows the CPU it was built for."""
    import shutil
    import subprocess

    config = _two_cpu_kiosk(tmp_path)
    text = bootconfigs.grub(plan_for(config, host(config, KIOSK), State.READY, URLS), URLS)
    assert text.index('if [ "$grub_cpu" = arm64 ]; then') < text.index("linux /arm64/vmlinuz")
    assert text.index("\nelse\n") < text.index("linux /vmlinuz") < text.index("\nfi\n")
    assert "initrd /arm64/initrd.gz" in text and "initrd /initrd.gz" in text
    if shutil.which("grub-script-check"):
        check = subprocess.run(["grub-script-check"], input=text, text=True, capture_output=True)
        assert check.returncode == 0, check.stderr


def test_ipxe_boots_each_cpu_its_own_kernel_by_buildarch(tmp_path: Path):
    config = _two_cpu_kiosk(tmp_path)
    text = bootconfigs.ipxe(plan_for(config, host(config, KIOSK), State.READY, URLS), URLS)
    lines = text.splitlines()
    jump = lines.index("iseq ${buildarch} arm64 && goto arm64 ||")
    x86 = next(n for n, line in enumerate(lines) if line.startswith("kernel "))
    assert jump < x86 and "/tftp/vmlinuz " in lines[x86] and lines[x86 + 2] == "boot"
    arm64 = lines[lines.index(":arm64") + 1]
    assert arm64.startswith("kernel http://10.213.7.1:8080/tftp/arm64/vmlinuz initrd=initrd.gz ")


def test_pxelinux_and_a_one_cpu_profile_are_as_before(tmp_path: Path, config: Config):
    two = _two_cpu_kiosk(tmp_path / "two")
    plan = plan_for(two, host(two, KIOSK), State.READY, URLS)
    assert "arm64" not in bootconfigs.pxelinux(plan, URLS)  # pxelinux is x86 only
    one = bootconfigs.grub(plan_for(config, host(config, KIOSK), State.READY, URLS), URLS)
    assert "grub_cpu" not in one and one.count("menuentry") == 1


@pytest.mark.parametrize(
    ("cpus", "problem"),
    [
        ("{arm65: {kernel: vmlinuz, initrd: initrd.gz}}", "did you mean 'arm64'?"),
        ("{arm64: {kernel: vmlinuz}}", "profiles.kiosk.cpus.arm64.initrd: missing"),
        ("{arm64: {kernel: nope, initrd: initrd.gz}}", "nope is not in"),
    ],
)
def test_a_bad_cpus_entry_is_an_error_naming_its_key(tmp_path: Path, cpus: str, problem: str):
    from pxed.config import ConfigError

    path = write_lab(tmp_path)
    text = path.read_text().replace(
        "    initrd: initrd.gz\n", f"    initrd: initrd.gz\n    cpus: {cpus}\n", 1
    )
    path.write_text(text)
    with pytest.raises(ConfigError, match=problem.replace("?", r"\?")):
        load_config(path)
