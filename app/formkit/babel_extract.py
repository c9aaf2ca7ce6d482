"""Babel extractor for form definitions and ``forms/lists.yaml``.

Wired in ``babel.cfg``::

    [extractors]
    forms = app.formkit.babel_extract:extract_forms

    [forms: forms/**.yaml]

Every ``title``, ``intro``, ``label`` and ``help`` text in the YAML is a message; each
carries a translator comment saying where it comes from.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

#: Keys whose text is shown to people, so translated.
TRANSLATABLE_KEYS = ("title", "intro", "label", "help")

Message = tuple[int, None, str, list[str]]


def extract_forms(
    fileobj: IO[bytes],
    keywords: object,
    comment_tags: object,
    options: dict,
) -> Iterator[Message]:
    """Yield ``(lineno, funcname, message, comments)`` for each translatable text.

    ``keywords`` and ``comment_tags`` are part of Babel's extractor interface and unused.
    """
    encoding = options.get("encoding", "utf-8")
    root = yaml.compose(fileobj.read().decode(encoding))
    if root is not None:
        yield from _walk(root, "")


def _walk(node: Node, where: str) -> Iterator[Message]:
    if isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            yield from _walk(item, f"{where}[{index}]")
    elif isinstance(node, MappingNode):
        name = _scalar(node, "name") or _scalar(node, "value")
        for key_node, value_node in node.value:
            key = key_node.value
            path = f"{where}.{key}" if where else str(key)
            if key in TRANSLATABLE_KEYS and isinstance(value_node, ScalarNode):
                text = value_node.value.strip()
                if text:
                    comment = f"{key} of {name}" if name else path
                    yield value_node.start_mark.line + 1, None, text, [comment]
            else:
                yield from _walk(value_node, path)


def _scalar(node: MappingNode, key: str) -> str | None:
    for key_node, value_node in node.value:
        if key_node.value == key and isinstance(value_node, ScalarNode):
            return value_node.value
    return None
