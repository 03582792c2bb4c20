"""YAML read as a tree of nodes that keep their marks, so every problem has a line and column.

PyYAML's ``safe_load`` throws the marks away and silently keeps the last of two
duplicate keys (docs/pitfalls.md #9), so pxed composes the node tree
itself and builds values from it: scalars through SafeLoader's own
constructors (YAML 1.1 rules, no Python objects), mappings here, where
duplicate keys are errors and ``<<`` merge keys still work.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar, cast

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pxed.config.defaults import default
from pxed.config.problems import Problems

T = TypeVar("T")
NULL_TAG = "tag:yaml.org,2002:null"
MERGE_TAG = "tag:yaml.org,2002:merge"
STANDARD_TAGS: dict[type[Node], str] = {
    SequenceNode: "tag:yaml.org,2002:seq",
    MappingNode: "tag:yaml.org,2002:map",
}


class Invalid:
    """The value of a node that was already reported as an error."""


INVALID = Invalid()


@dataclass(frozen=True)
class Entry:
    """One ``key: value`` pair of a mapping, merged keys included."""

    key: str
    key_node: Node
    value_node: Node


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def describe(value: object) -> str:
    """Name a constructed YAML value the way an error message needs it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    return f"the {type(value).__name__} {value}"


def describe_node(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return f"{node.value!r}"


def is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == NULL_TAG


def is_plain(node: Node) -> bool:
    """True for an unquoted scalar: the kind YAML 1.1 turns into ints, floats and booleans."""
    return isinstance(node, ScalarNode) and node.style is None


class Context:
    """Problems, the folder relative paths resolve against, and a scalar constructor."""

    def __init__(self, problems: Problems, base: Path) -> None:
        self.problems = problems
        self.base = base
        self._loader = yaml.SafeLoader("")  # only its scalar constructors are used

    def compose(self, text: str) -> Node | None:
        """Parse ``text`` into nodes; a syntax error becomes one problem at its mark."""
        try:
            return yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            message = " ".join(part for part in (error.context, error.problem) if part)
            self.problems.error(mark, "", f"YAML syntax: {message}")
        except yaml.YAMLError as error:
            self.problems.error(None, "", f"YAML: {error}")
        return None

    def scalar(self, node: ScalarNode, path: str) -> object:
        """The YAML 1.1 value of a scalar, or INVALID (reported) for tags safe YAML refuses."""
        try:
            return self._loader.construct_object(node)
        except yaml.constructor.ConstructorError as error:
            self.problems.error(node, path, str(error.problem))
            return INVALID

    def entries(self, node: MappingNode, path: str) -> list[Entry]:
        """The pairs of a mapping with string keys; duplicates and bad keys reported.

        Keys written in the mapping win over keys merged in with ``<<``, and an
        earlier merge source wins over a later one, as the YAML merge spec says.
        """
        explicit: dict[str, Entry] = {}
        merged: dict[str, Entry] = {}
        if not self.standard_tag(node, path):
            return []
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                for source in self._merge_sources(value_node, path):
                    for entry in self.entries(source, path):
                        merged.setdefault(entry.key, entry)
                continue
            key = self._key(key_node, path)
            if key is None:
                continue
            if key in explicit:
                first = explicit[key].key_node.start_mark
                self.problems.error(
                    key_node,
                    join(path, key),
                    f"duplicate key {key!r}; first set at line {first.line + 1}, "
                    f"column {first.column + 1} (YAML would silently keep only the last)",
                )
                continue
            explicit[key] = Entry(key, key_node, value_node)
        return [*(e for k, e in merged.items() if k not in explicit), *explicit.values()]

    def items(self, node: SequenceNode, path: str) -> list[tuple[str, Node]]:
        """The key path and node of each item of a list."""
        if not self.standard_tag(node, path):
            return []
        return [(f"{path}[{index}]", item) for index, item in enumerate(node.value)]

    def standard_tag(self, node: Node, path: str) -> bool:
        """False (reported) for a list or mapping with an explicit tag, like !!python/object."""
        if node.tag == STANDARD_TAGS.get(type(node)):
            return True
        self.problems.error(node, path, f"tag {node.tag} is not allowed in a pxed config")
        return False

    def _merge_sources(self, node: Node, path: str) -> Iterator[MappingNode]:
        sources = node.value if isinstance(node, SequenceNode) else [node]
        for source in sources:
            if isinstance(source, MappingNode):
                yield source
            else:
                self.problems.error(source, path, "<< merges only mappings (or a list of them)")

    def _key(self, node: Node, path: str) -> str | None:
        if not isinstance(node, ScalarNode):
            self.problems.error(node, path, f"a key must be a name, not {describe_node(node)}")
            return None
        value = self.scalar(node, path)
        if isinstance(value, str):
            return value
        if value is not INVALID:
            self.problems.error(
                node, path, f"key {node.value} was read as {describe(value)}; quote it"
            )
        return None

    def plain(self, node: Node, path: str, active: frozenset[int] = frozenset()) -> object:
        """Free-form data (``vars``) as immutable Python values: mappings, tuples, scalars."""
        if id(node) in active:
            self.problems.error(node, path, "an alias refers to itself")
            return INVALID
        inner = active | {id(node)}
        if isinstance(node, MappingNode):
            return MappingProxyType(
                {
                    e.key: self.plain(e.value_node, join(path, e.key), inner)
                    for e in self.entries(node, path)
                }
            )
        if isinstance(node, SequenceNode):
            return tuple(self.plain(item, key, inner) for key, item in self.items(node, path))
        assert isinstance(node, ScalarNode)
        return self.scalar(node, path)


Convert = Callable[[Context, Node, str], T | None]


class Fields:
    """The keys of one YAML mapping, checked against the names its section allows.

    A missing or null section reads as empty, so every key takes its default;
    an explicit null value is the same as leaving the key out.
    """

    def __init__(
        self, ctx: Context, node: Node | None, path: str, allowed: Collection[str]
    ) -> None:
        self.ctx = ctx
        self.node = node
        self.path = path
        self.values: dict[str, Node] = {}
        if node is None or is_null(node):
            return
        if not isinstance(node, MappingNode):
            ctx.problems.error(node, path, f"expected a mapping of keys, got {describe_node(node)}")
            return
        for entry in ctx.entries(node, path):
            if entry.key not in allowed:
                ctx.problems.error(
                    entry.key_node, join(path, entry.key), unknown_key(entry.key, allowed)
                )
            elif not is_null(entry.value_node):
                self.values[entry.key] = entry.value_node

    @property
    def valid(self) -> bool:
        """False when the section itself was not a mapping (already reported)."""
        return self.node is None or is_null(self.node) or isinstance(self.node, MappingNode)

    def key(self, name: str) -> str:
        return join(self.path, name)

    def get(self, name: str, convert: Convert[T], default: T) -> T:
        """The converted value, or ``default`` when absent or invalid (invalid is reported)."""
        value = self.optional(name, convert)
        return default if value is None else value

    def defaulted(self, name: str, convert: Convert[T]) -> T:
        """The converted value, or the default ``pxed.config.defaults`` gives this key."""
        return self.get(name, convert, cast(T, default(re.sub(r"\[\d+\]", "", self.key(name)))))

    def optional(self, name: str, convert: Convert[T]) -> T | None:
        node = self.values.get(name)
        return None if node is None else convert(self.ctx, node, self.key(name))

    def required(self, name: str, convert: Convert[T]) -> T | None:
        if name not in self.values:
            if self.valid:
                self.ctx.problems.error(self.node, self.key(name), "missing (required)")
            return None
        return self.optional(name, convert)


def unknown_key(key: str, allowed: Collection[str]) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
    if close:
        return f"unknown key {key!r}; did you mean {close[0]!r}?"
    return f"unknown key {key!r}; expected one of: {', '.join(sorted(allowed))}"


def suggest(name: str, known: Mapping[str, object] | Collection[str]) -> str:
    """A ``; did you mean 'x'?`` tail for a reference to a name that does not exist."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
