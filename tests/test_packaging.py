"""The built wheel is what an appliance image installs: check it, not the checkout."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(work / "dist"), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = (work / "dist").glob("pxed-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True, capture_output=True
    )
    return venv


def _run(venv: Path, *argv: str) -> str:
    # Run from an empty folder so the checkout is not on sys.path.
    result = subprocess.run(
        [str(venv / "bin" / argv[0]), *argv[1:]],
        cwd=venv,
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout


@pytest.mark.slow
def test_wheel_registers_the_twistd_plugin(installed_venv: Path):
    """`find:` would silently drop twisted/plugins; twistd must list pxed from the wheel."""
    assert "pxed" in _run(installed_venv, "twistd", "--help")


@pytest.mark.slow
def test_wheel_installs_the_pxed_command(installed_venv: Path):
    assert "check" in _run(installed_venv, "pxed", "--help")


@pytest.mark.slow
def test_wheel_protocols_package_comes_from_this_distribution(installed_venv: Path):
    out = _run(
        installed_venv, "python", "-c", "import protocols, pathlib; print(protocols.__file__)"
    )
    assert str(installed_venv) in out
    assert "site-packages/protocols/" in out


@pytest.mark.slow
def test_the_wheel_has_one_version_its_license_and_the_status_page(installed_venv: Path):
    """The version is written once (pxed.__version__); the page ships as package data."""
    import pxed

    code = (
        "import importlib.metadata as m, importlib.resources as r, pxed;"
        "print(m.version('pxed'), pxed.__version__,"
        " m.metadata('pxed').get('License-File') == 'LICENSE',"
        " r.files('pxed.ops').joinpath('static/status.html').is_file())"
    )
    assert _run(installed_venv, "python", "-c", code).split() == [
        pxed.__version__,
        pxed.__version__,
        "True",
        "True",
    ]


@pytest.mark.slow
def test_the_wheel_installs_the_reference_config_templates_and_unit(installed_venv: Path):
    share = installed_venv / "share/pxed"
    assert (share / "systemd/pxed.service").is_file()
    assert (share / "templates/rocky9-web.ks.j2").is_file()
    reference = share / "pxed.yaml"
    assert reference.read_text() == (ROOT / "etc/pxed.yaml").read_text()
