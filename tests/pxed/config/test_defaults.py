"""One table of defaults: the loader uses it, and the reference config documents it exactly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pxed.config import parse_config
from pxed.config.defaults import DEFAULTS

ROOT = Path(__file__).resolve().parents[3]
REFERENCE = (ROOT / "etc/pxed.yaml").read_text().splitlines()
KEY = re.compile(r"^(\s*)(?:- )?(\w+):")


def documented_defaults() -> dict[str, str]:
    """``section.key`` -> the "Default(s): ..." text of the comment block above the key."""
    found: dict[str, str] = {}
    path: list[tuple[int, str]] = []
    comment: list[str] = []
    for line in REFERENCE:
        stripped = line.strip()
        if stripped.startswith("#"):
            comment.append(stripped.lstrip("# "))
            continue
        match = KEY.match(line)
        if not match:
            comment = [] if not stripped else comment
            continue
        indent, name = match.start(2), match.group(2)
        path = [(i, n) for i, n in path if i < indent] + [(indent, name)]
        text = " ".join(comment)
        said = re.search(r"Defaults?: (.*)", text)
        if said:
            found[".".join(n for _, n in path)] = said.group(1)
        elif found and not comment:  # a key right under another shares its comment
            previous = list(found)[-1]
            if previous.rpartition(".")[0] == ".".join(n for _, n in path[:-1]):
                found[".".join(n for _, n in path)] = found[previous]
        comment = []
    return found


def shown(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == ():
        return "[]"
    return str(value)


def test_every_default_in_the_table_is_the_one_etc_pxed_yaml_documents():
    documented = documented_defaults()
    for key, value in DEFAULTS.items():
        if key in ("tftp.listen", "http.listen"):
            assert "server.interfaces" in documented[key]
            continue
        text = documented.get(key)
        assert text is not None, f"etc/pxed.yaml documents no default for {key}"
        assert re.search(rf"(?<![\w.]){re.escape(shown(value))}(?![\w])", text), (key, text)


@pytest.mark.parametrize("key", sorted(k for k in DEFAULTS if "." in k and k.count(".") == 1))
def test_a_file_that_says_nothing_gets_the_tables_default(key: str, tmp_path: Path):
    (tmp_path / "tftp").mkdir()
    text = "server: {address: 127.0.0.1, interfaces: [lo]}\ntftp: {root: tftp}\n"
    config = parse_config(text, tmp_path / "x.yaml")
    section, name = key.split(".")
    value = getattr(getattr(config, section), name)
    expected = DEFAULTS[key]
    if key == "tftp.root":
        assert value == tmp_path / "tftp"
    elif key in ("dhcp.deny",):
        assert value == frozenset()
    else:
        assert value == expected or str(value) == str(expected), (key, value, expected)
