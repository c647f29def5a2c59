"""The bounded YAML loader every YAML file a user hands nasfcn is read with: unique keys,
limits on size, nesting and expanded aliases."""

from __future__ import annotations

from typing import Any

import yaml


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of silently keeping the last."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


#: Limits on a space file, far above any real one (the shipped ones: ~1 KB, ~150 nodes, 5 levels),
#: so that a hostile file (a "billion laughs" of nested aliases, a document nested thousands of
#: levels deep) is refused before it costs seconds or gigabytes.
MAX_SPACE_BYTES = 1_048_576
MAX_SPACE_NODES = 10_000  # counted with every alias expanded
MAX_SPACE_DEPTH = 64


class _LimitError(yaml.MarkedYAMLError):
    """A well-formed document refused for its size."""


class _BoundedLoader(_UniqueKeyLoader):
    """Refuses documents nested deeper than ``MAX_SPACE_DEPTH`` or larger than ``MAX_SPACE_NODES``
    once aliases are expanded, while composing: an alias is not copied by the loader, but every
    consumer of the data (validation, error messages, ``str``) walks the expanded tree."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._sizes: dict[int, int] = {}  # id(node) -> expanded node count, for composed nodes

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        mark = self.peek_event().start_mark
        if self._depth >= MAX_SPACE_DEPTH:
            raise _LimitError(None, None, f"nested deeper than {MAX_SPACE_DEPTH} levels", mark)
        alias = self.check_event(yaml.AliasEvent)
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if not alias:
            self._sizes[id(node)] = self._expanded_size(node, mark)
        elif id(node) not in self._sizes:  # the alias is inside the node it names: endless
            raise _LimitError(None, None, "an alias refers to the node that contains it", mark)
        return node

    def _expanded_size(self, node: yaml.Node, mark: Any) -> int:
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        size = 1 + sum(self._sizes[id(child)] for child in children)
        if size > MAX_SPACE_NODES:
            raise _LimitError(
                None,
                None,
                f"the document expands to more than {MAX_SPACE_NODES:,} values once its aliases "
                f"(*name) are resolved; nasfcn's YAML files need a few hundred",
                mark,
            )
        return size


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` within the limits of a space file (nesting, aliases expanded), for every
    YAML file a user hands nasfcn; raises ``yaml.YAMLError`` (duplicate keys too)."""
    return yaml.load(text, Loader=_BoundedLoader)


def yaml_problem(err: yaml.YAMLError) -> str:
    """One line for a YAML error: where, and what (``refused`` for a document past the limits)."""
    mark = getattr(err, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = getattr(err, "problem", None) or str(err)
    return f"{'refused' if is_refused(err) else 'invalid YAML'} at {where}{problem}"


def is_refused(err: yaml.YAMLError) -> bool:
    """Whether a YAML error is a well-formed document refused for its size."""
    return isinstance(err, _LimitError)
