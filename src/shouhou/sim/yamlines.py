"""YAML loading that remembers the line of every mapping, for error messages."""

from __future__ import annotations

from typing import Any

import yaml


class Located(dict[str, Any]):
    """A mapping read from YAML, with the 1-based line it starts on."""

    line: int = 0
    key_lines: dict[str, int]


class _Loader(yaml.SafeLoader):
    pass


def _mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Located:
    loader.flatten_mapping(node)
    out = Located()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            raise yaml.MarkedYAMLError(
                problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark
            )
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[str(key)] = key_node.start_mark.line + 1
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load(text: str) -> Any:
    """Parse YAML; mappings come back as :class:`Located`. Raises ``yaml.YAMLError``."""
    return yaml.load(text, Loader=_Loader)


def line_of(value: Any, default: int = 0) -> int:
    return value.line if isinstance(value, Located) else default
