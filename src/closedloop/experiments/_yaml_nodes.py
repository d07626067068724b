"""Walk a composed YAML node tree, failing with the file, line and field of a bad node.

PyYAML's ``safe_load`` forgets where values came from and silently keeps the last of two
equal keys; composing the node tree keeps each node's mark (its line) and every key, so
a duplicate version or an unknown key is reported where it is written.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from closedloop._extras import extra_needed
from closedloop.experiments._prompt_errors import PromptFileError

with extra_needed("experiments", "The prompt registry"):
    import yaml
    import yaml.reader
    from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["Fields", "MappingNode", "Node", "NodeReader", "ScalarNode", "SequenceNode", "line_of"]

_TAG = "tag:yaml.org,2002:"
_KINDS = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true/false",
    "null": "empty",
    "timestamp": "a date",
}


def line_of(node: Node) -> int:
    """The 1-based line where ``node`` starts."""
    return int(node.start_mark.line) + 1


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    kind = _KINDS.get(str(node.tag).removeprefix(_TAG), "a value")
    return kind if kind == "empty" else f"{kind} ({node.value})"


class Fields(dict[str, Node]):
    """A mapping's value nodes by key; ``key_nodes`` has where each key is written."""

    def __init__(self) -> None:
        super().__init__()
        self.key_nodes: dict[str, Node] = {}


class NodeReader:
    """Reads one file's nodes; every ``fail`` raises a :class:`PromptFileError` for it."""

    def __init__(self, path: Path, loader: yaml.SafeLoader) -> None:
        self.path = path
        self._loader = loader

    def fail(self, node: Node | None, field: str | None, problem: str, fix: str) -> NoReturn:
        raise PromptFileError(
            self.path, None if node is None else line_of(node), field, problem, fix
        )

    def value(self, node: Node, field: str, fix: str) -> object:
        """The Python value of ``node`` (a scalar, or a whole sub-tree for free-form values).

        Constructing can fail past composing: an unknown tag (``!!python/name:...``, which
        the safe loader refuses), a bad ``!!int abc``; each is this file's error at the
        node's line, never an exception that escapes the loader (and a reload)."""
        try:
            return self._loader.construct_object(node, deep=True)
        except yaml.YAMLError as error:
            problem = getattr(error, "problem", None) or str(error)
            self.fail(node, field, f"cannot be read: {problem}", fix)
        except (ValueError, OverflowError) as error:
            self.fail(node, field, f"cannot be read: {error}", fix)

    def wrong_type(self, node: Node, field: str, expected: str, fix: str) -> NoReturn:
        self.fail(node, field, f"is {_kind(node)}, not {expected}", fix)

    def string(self, node: Node, field: str, fix: str) -> str:
        if not isinstance(node, ScalarNode) or node.tag != _TAG + "str":
            self.wrong_type(node, field, "a string", fix)
        if not node.value:
            self.fail(node, field, "is an empty string", fix)
        return str(node.value)

    def entries(self, node: Node, field: str, fix: str) -> Iterator[tuple[str, Node, Node]]:
        """(key, key node, value node) of a mapping whose keys are strings, each once."""
        if not isinstance(node, MappingNode):
            self.wrong_type(node, field, "a mapping", fix)
        seen: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag != _TAG + "str":
                shown = key_node.value if isinstance(key_node, ScalarNode) else "?"
                self.fail(
                    key_node,
                    f"{field}.{shown}",
                    f"the key is {_kind(key_node)}, not a string",
                    f"quote it: '{shown}'",
                )
            key = str(key_node.value)
            if key in seen:
                self.fail(
                    key_node,
                    f"{field}.{key}",
                    f"written twice (first at line {line_of(seen[key])})",
                    "keep one, or give the other a name of its own",
                )
            seen[key] = key_node
            yield key, key_node, value_node

    def fields(
        self,
        node: Node,
        field: str,
        *,
        required: Mapping[str, str],
        optional: Collection[str],
        fix: str,
        hint: dict[str, str] | None = None,
        owner: Node | None = None,
    ) -> Fields:
        """The value nodes of a mapping with fixed keys: unknown keys fail (``hint`` gives
        the fix for a known mistake, such as a misplaced key), and so do missing required
        ones (``required`` maps each to the fix that adds it), reported at ``owner``, the
        key that holds the mapping, when there is one."""
        allowed = [*required, *optional]
        found = Fields()
        for key, key_node, value_node in self.entries(node, field, fix):
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                known = (hint or {}).get(key) or (
                    f"did you mean {close[0]}?" if close else f"use {', '.join(allowed)}"
                )
                self.fail(key_node, _join(field, key), "unknown key", known)
            found[key] = value_node
            found.key_nodes[key] = key_node
        for key, add_it in required.items():
            if key not in found:
                self.fail(owner or node, _join(field, key), "missing", add_it)
        return found


def _join(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key


@contextmanager
def composed(path: Path, text: str) -> Iterator[tuple[NodeReader, Node | None]]:
    """The node tree of ``text`` (None for an empty file) and a reader for it; a YAML
    syntax error is a :class:`PromptFileError` at its line."""
    try:
        loader = yaml.SafeLoader(text)  # its reader refuses control characters at once
    except yaml.reader.ReaderError as error:
        raise PromptFileError(
            path, None, None, f"not valid YAML: {error.reason}", "remove the control characters"
        ) from None
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            line = None if mark is None else int(mark.line) + 1
            problem = error.problem or error.context or "unreadable"
            started = error.context_mark
            if error.context and started is not None and int(started.line) + 1 != line:
                problem += f" ({error.context}, which starts on line {int(started.line) + 1})"
            raise PromptFileError(
                path, line, None, f"not valid YAML: {problem}", "fix the YAML syntax"
            ) from None
        except RecursionError:  # composing recurses once per level of nesting
            raise PromptFileError(
                path, None, None, "is nested too deeply to read", "flatten the YAML"
            ) from None
        yield NodeReader(path, loader), root
    finally:
        loader.dispose()
