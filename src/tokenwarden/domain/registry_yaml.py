"""The registry's YAML, read by a SafeLoader that refuses what a registry never needs.

A module of its own so that PyYAML is imported where a registry is parsed, not wherever the
registry's models are: most Lambda handlers import those at cold start and parse a registry
later, if ever.
"""

from __future__ import annotations

from typing import Any

import yaml

from tokenwarden.domain.registry import MAX_NESTING, RegistryError, _show


def read_yaml(text: str, source: str) -> Any:
    """The document `text` holds; RegistryError naming `source`, the line and the column when it
    is not YAML a registry may be written in."""
    try:
        return yaml.load(text, Loader=_RegistryLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise RegistryError(_yaml_problem(source, text, exc)) from None


class _RegistryLoader(yaml.SafeLoader):
    """SafeLoader that refuses what a registry never needs and PyYAML would otherwise allow.

    Duplicate keys (PyYAML silently keeps the last one), keys that cannot be compared (a list or
    a mapping as a key), recursive aliases, and nesting deeper than MAX_NESTING are YAML errors
    with a line and column. Anchors, aliases and `<<` merge keys work as YAML defines them; since
    aliases share one object, an "anchor explosion" never multiplies in memory.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._open_anchors: set[str] = set()
        self._checked: set[int] = set()  # mappings whose keys were checked (aliases share nodes)

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):  # type: ignore[no-untyped-call]
            event = self.peek_event()  # type: ignore[no-untyped-call]
            if event.anchor in self._open_anchors:
                raise yaml.composer.ComposerError(
                    None, None, f"the alias *{event.anchor} refers to itself", event.start_mark
                )
            return super().compose_node(parent, index)
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if self._depth >= MAX_NESTING:
            raise yaml.composer.ComposerError(
                None, None, f"nested deeper than {MAX_NESTING} levels", event.start_mark
            )
        anchor = event.anchor
        self._depth += 1
        if anchor is not None:
            self._open_anchors.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            self._open_anchors.discard(anchor)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self._check_keys(node, deep)
        return super().construct_mapping(node, deep=deep)

    def _check_keys(self, node: yaml.MappingNode, deep: bool) -> None:
        if id(node) in self._checked:
            return
        self._checked.add(id(node))
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merged = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for sub in merged:
                    if isinstance(sub, yaml.MappingNode):
                        self._check_keys(sub, deep)
                continue
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            try:
                repeated = key in seen
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "a list or a mapping cannot be a key", key_node.start_mark
                ) from None
            if repeated:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {_show(str(key))}", key_node.start_mark
                )
            seen.add(key)

    def construct_timestamp(self, node: yaml.ScalarNode) -> object:
        """A date-shaped scalar that is no date (``2026-13-01``) is a YAML error with its line, not a crash."""
        try:
            return self.construct_yaml_timestamp(node)  # type: ignore[no-untyped-call]
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"{_show(str(node.value))} is not a date ({exc})", node.start_mark
            ) from None


_RegistryLoader.add_constructor("tag:yaml.org,2002:timestamp", _RegistryLoader.construct_timestamp)


def _yaml_problem(source: str, text: str, exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.reader.ReaderError) and isinstance(exc.position, int):
        code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        return (
            f"{source}: line {line}, column {column}: unacceptable character #x{code:04x} "
            "(control characters are not allowed in YAML)"
        )
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    if mark is not None and problem:
        said = f"{context}, {problem}" if context and "found" in str(problem) else str(problem)
        return f"{source}: line {mark.line + 1}, column {mark.column + 1}: {said}"
    return f"{source}: invalid YAML: {exc}"
