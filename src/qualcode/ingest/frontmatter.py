"""YAML front matter at the top of .txt and .md files."""

from __future__ import annotations

import re

import yaml

from .. import safeyaml
from ..errors import IngestError

_OPEN = re.compile(r"\A---[ \t]*\n")
_CLOSE = re.compile(r"^(?:---|\.\.\.)[ \t]*$\n?", re.M)


#: Attributes are a few lines; PyYAML reads about 10,000 lines a second, so bound the block.
MAX_FRONT_MATTER = 256 * 1024
#: Attributes stored in their own columns, so they must be single values.
_SINGLE = ("id", "title", "kind", "site", "district", "role", "date")


def split_front_matter(text: str, path: str) -> tuple[dict, str, dict[str, int]]:
    """Return the front-matter mapping, the body that follows it, and each key's line.

    The body is what we store as the document text, so offsets never point
    into the metadata block. Dates stay text, checked later with their line.
    """
    if not _OPEN.match(text):
        return {}, text, {}
    start = _OPEN.match(text).end()
    close = _CLOSE.search(text, start)
    if close is None:
        raise IngestError(
            "front matter starts with '---' on line 1 but never ends",
            path,
            1,
            hint="close it with a line of '---'",
        )
    block = text[start : close.start()]
    if len(block) > MAX_FRONT_MATTER:
        raise IngestError(
            f"front matter is longer than {MAX_FRONT_MATTER // 1024} KB",
            path,
            1,
            hint="keep attributes in front matter and the text below it (or use a --manifest)",
        )
    try:
        root = safeyaml.compose(block) if block.strip() else None
        meta = safeyaml.load(block) if root is not None else {}
    except safeyaml.YamlLimit as e:
        raise IngestError(f"bad front matter: {e.message}", path, e.line + 1,
                          hint="front matter must be YAML 'key: value' lines between two '---' lines") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        raise IngestError(
            f"bad front matter: {getattr(e, 'problem', None) or e}",
            path,
            line,
            hint="front matter must be YAML 'key: value' lines between two '---' lines",
        ) from None
    if not isinstance(meta, dict):
        raise IngestError(
            "bad front matter: expected 'key: value' lines",
            path,
            2,
            hint="front matter must be YAML 'key: value' lines between two '---' lines",
        )
    lines = {}
    if isinstance(root, yaml.MappingNode):
        lines = {str(k.value): k.start_mark.line + 2 for k, _ in root.value if isinstance(k, yaml.ScalarNode)}
    out = {}
    for key, value in meta.items():
        if isinstance(key, (list, dict, tuple)):
            raise IngestError("bad front matter: a key must be a plain name", path, 2,
                              hint="write 'key: value' lines")
        name = str(key)
        if name in _SINGLE and isinstance(value, (list, dict)):
            kind = "list" if isinstance(value, list) else "mapping"
            raise IngestError(f"bad front matter: '{name}' must be a single value, not a {kind}", path,
                              lines.get(name, 2), hint=f"write '{name}: value' on one line")
        out[name] = value
    return out, text[close.end():], lines
