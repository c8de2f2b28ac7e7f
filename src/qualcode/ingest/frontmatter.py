"""YAML front matter at the top of .txt and .md files."""

from __future__ import annotations

import datetime
import re

import yaml

from ..errors import IngestError

_OPEN = re.compile(r"\A---[ \t]*\n")
_CLOSE = re.compile(r"^(?:---|\.\.\.)[ \t]*$\n?", re.M)


def split_front_matter(text: str, path: str) -> tuple[dict, str]:
    """Return the front-matter mapping and the body that follows it.

    The body is what we store as the document text, so offsets never point
    into the metadata block.
    """
    if not _OPEN.match(text):
        return {}, text
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
    try:
        meta = yaml.safe_load(block) if block.strip() else {}
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
    return {str(k): _plain(v) for k, v in meta.items()}, text[close.end():]


def _plain(value: object) -> object:
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return value
