"""The loader's contract under damage: any text gives a Config or a ConfigError, nothing else."""

from __future__ import annotations

import contextlib
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pxed.config import Config, ConfigError, parse_config
from tests.support.fuzz import FUZZ_EXAMPLES

ROOT = Path(__file__).resolve().parents[3]
REFERENCE = (ROOT / "etc/pxed.yaml").read_text()
# Each parse checks files on disk (~25 ms), so this runs fewer examples than the grammar fuzzers.
EXAMPLES = min(FUZZ_EXAMPLES, 300)
SNIPPETS = [
    "", ":", ": ", "- ", "{", "}", "[", "]", ",", "&a ", "*a", "<<: *a", "!!str ",
    "!!python/name:os.system ", '"', "'", "\n", "\n  ", "  ", "\t", "#", "~", "off",
    "0755", "10:00", "52:54:00:12:34:56",
    "{server}", "..", "/", "\x00", "\u00e9", "-1", "1e999", ".nan", "2024-01-01", "?",
]  # fmt: skip
EDIT = st.tuples(st.integers(0, len(REFERENCE)), st.integers(0, 8), st.sampled_from(SNIPPETS))


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(EDIT, min_size=1, max_size=4))
def test_damaged_reference_config_gives_a_config_or_a_config_error(
    edits: list[tuple[int, int, str]],
):
    text = REFERENCE
    for position, cut, snippet in edits:
        position = min(position, len(text))
        text = text[:position] + snippet + text[position + cut :]
    try:
        result = parse_config(text, ROOT / "etc/pxed.yaml")
    except ConfigError as error:
        assert error.errors
        assert all(problem.message for problem in error.errors)
    else:
        assert isinstance(result, Config)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_gives_a_config_or_a_config_error(text: str):
    with contextlib.suppress(ConfigError):
        parse_config(text, "/cfg/pxed.yaml")
