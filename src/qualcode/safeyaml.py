"""YAML from users' files, with the work bounded by the size of the file.

PyYAML follows aliases without limit ("billion laughs": a few hundred bytes
that expand to 10^9 values), builds self-referring structures, recurses once
per nesting level, and turns ``2024-13-45`` into a ``ValueError`` from
``datetime``. Front matter and codebooks go through here instead, so each of
these is a :class:`YamlLimit` with a line number rather than a hang or a
traceback.
"""

from __future__ import annotations

import yaml

#: Deeper nesting than this is never a codebook or front matter (a code tree
#: uses two levels per generation of codes).
MAX_DEPTH = 64
#: Aliases may repeat values, but not expand a file past this many values.
MAX_EXPANDED = 100_000


class YamlLimit(Exception):
    """The YAML is well formed but past a limit; ``line`` is 1-based."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class TextLoader(yaml.SafeLoader):
    """SafeLoader that leaves dates as text, and stops nesting at :data:`MAX_DEPTH`.

    The depth is checked as the scanner reads, not after: PyYAML's scanner
    rechecks every open ``[`` or ``{`` at each token, so 3,000 nested
    brackets took 6 s before the first value was built.
    """

    def fetch_flow_collection_start(self, TokenClass):
        if self.flow_level >= MAX_DEPTH:
            raise YamlLimit(f"YAML nested more than {MAX_DEPTH} levels deep", self.get_mark().line + 1)
        super().fetch_flow_collection_start(TokenClass)

    def add_indent(self, column):
        if len(self.indents) >= MAX_DEPTH:
            raise YamlLimit(f"YAML nested more than {MAX_DEPTH} levels deep", self.get_mark().line + 1)
        return super().add_indent(column)


TextLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _check(root: yaml.Node) -> None:
    """Refuse cycles, deep nesting and alias expansion past the limits, in linear time."""
    size: dict[int, int] = {}  # id(node) -> values it expands to
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    distinct = 0
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            on_path.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in children)
            if size[key] > MAX_EXPANDED and size[key] > distinct:
                raise YamlLimit(f"YAML aliases expand to more than {MAX_EXPANDED:,} values", node.start_mark.line + 1)
            continue
        if key in size:
            continue
        if key in on_path:
            raise YamlLimit("a YAML alias refers to the value that contains it", node.start_mark.line + 1)
        if depth > MAX_DEPTH:
            raise YamlLimit(f"YAML nested more than {MAX_DEPTH} levels deep", node.start_mark.line + 1)
        distinct += 1
        on_path.add(key)
        stack.append((node, depth, True))
        for child in children:
            if id(child) in on_path:
                raise YamlLimit("a YAML alias refers to the value that contains it", child.start_mark.line + 1)
            if id(child) not in size:
                stack.append((child, depth + 1, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def compose(source: str) -> yaml.Node | None:
    """The node tree of one YAML document, checked against the limits.

    Raises :class:`yaml.YAMLError` for bad syntax and :class:`YamlLimit` past a limit.
    """
    loader = TextLoader(source)
    try:
        root = loader.get_single_node()
    except RecursionError:
        raise YamlLimit(f"YAML nested more than {MAX_DEPTH} levels deep", _line(loader)) from None
    finally:
        loader.dispose()
    if root is not None:
        _check(root)
    return root


def load(source: str) -> object:
    """Python values of one YAML document (dates stay text), checked against the limits."""
    root = compose(source)
    if root is None:
        return None
    loader = TextLoader("")
    try:
        return loader.construct_document(root)
    except (ValueError, TypeError, OverflowError) as e:  # an explicit tag such as !!timestamp 2024-13-45
        raise YamlLimit(f"a value cannot be read ({e})", root.start_mark.line + 1) from None
    finally:
        loader.dispose()


def _line(loader: yaml.SafeLoader) -> int:
    mark = getattr(loader, "get_mark", None)
    return mark().line + 1 if mark else 1
