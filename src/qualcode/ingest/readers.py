"""One reader per file format; each returns the text to store and, where the
format itself defines them, the segments."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import IngestError
from .decode import decode_text
from .frontmatter import split_front_matter
from .limits import check_zip
from .segment import Segment
from .subtitles import cues_to_turns, parse_cues

TEXT_FORMATS = {".txt": "txt", ".text": "txt", ".md": "md", ".markdown": "md"}
SUBTITLE_FORMATS = {".vtt": "vtt", ".srt": "srt"}
TABLE_FORMATS = {".csv": "csv", ".xlsx": "xlsx"}
FORMATS = {**TEXT_FORMATS, ".docx": "docx", **SUBTITLE_FORMATS, **TABLE_FORMATS}


@dataclass
class Coding:
    """A code applied in a spreadsheet row, before codes are resolved in the project."""

    seq: int
    code: str
    coder: str
    line: int


@dataclass
class Parsed:
    """A document as read from its source, before it is written to the project."""

    id: str
    text: str
    format: str
    sha256: str
    meta: dict = field(default_factory=dict)
    segments: list[Segment] | None = None  # None: segment the text by kind
    codings: list[Coding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    meta_lines: dict[str, int] = field(default_factory=dict)  # front-matter key -> line, for errors


def slug(text: str) -> str:
    """A stable, URL-safe document id from a file name or spreadsheet value."""
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "document"


def read_text(path: Path, data: bytes) -> Parsed:
    text, warnings = decode_text(data, str(path))
    meta, body, lines = split_front_matter(text, str(path))
    if not body.strip():
        raise IngestError("the file has front matter but no text", path, hint="add the text below the front matter")
    fmt = TEXT_FORMATS[path.suffix.lower()]
    return Parsed(slug(path.stem), body, fmt, hashlib.sha256(data).hexdigest(), meta, warnings=warnings,
                  meta_lines=lines)


def read_subtitles(path: Path, data: bytes) -> Parsed:
    text, warnings = decode_text(data, str(path))
    fmt = SUBTITLE_FORMATS[path.suffix.lower()]
    body, segments = cues_to_turns(parse_cues(text, str(path), fmt))
    return Parsed(slug(path.stem), body, fmt, hashlib.sha256(data).hexdigest(), segments=segments, warnings=warnings)


def read_docx(path: Path, data: bytes) -> Parsed:
    import docx
    from docx.table import Table

    check_zip(path, "docx")
    fix = "open and re-save it in Word or LibreOffice as .docx"
    try:
        document = docx.Document(str(path))
        blocks = []
        for item in document.iter_inner_content():
            if isinstance(item, Table):
                # Transcripts kept as a two-column table (speaker | words) read as "speaker: words".
                for cells in _table_rows(item, path):
                    if len(cells) >= 2 and cells[0] and cells[1]:
                        blocks.append(f"{cells[0]}: {' '.join(cells[1:])}")
                    elif any(cells):
                        blocks.append(" ".join(c for c in cells if c))
            elif item.text.strip():
                blocks.append(item.text.strip())
        title = document.core_properties.title
    except IngestError:
        raise
    except Exception as e:  # python-docx and lxml raise many types for a broken package
        detail = str(e).splitlines()[0][:80] if str(e) else ""
        raise IngestError(f"not a valid Word .docx file ({e.__class__.__name__}{': ' + detail if detail else ''})",
                          path, hint=fix) from None
    if not blocks:
        raise IngestError("the file is empty", path, hint="remove it or add its text")
    meta = {"title": title} if title else {}
    return Parsed(slug(path.stem), "\n\n".join(blocks), "docx", hashlib.sha256(data).hexdigest(), meta)


def _table_rows(table, path: Path) -> list[list[str]]:
    """The text of each cell actually present in each row, once.

    python-docx's ``row.cells`` repeats a cell once per grid column it spans
    (``gridSpan="99999999"`` is a hundred million cells) and follows vertical
    merges upward row by row (quadratic in a long merged column); here each
    ``<w:tc>`` is read once, and a vertically merged cell repeats the text it
    continues, found by its grid offset.
    """
    from docx.oxml.ns import qn
    from docx.text.paragraph import Paragraph

    above: dict[int, str] = {}
    out = []
    for tr in table._tbl.tr_lst:
        offset = _grid_value(tr.find(f"{qn('w:trPr')}/{qn('w:gridBefore')}"), 0, path)
        cells = []
        for tc in tr.findall(qn("w:tc")):
            merge = tc.find(f"{qn('w:tcPr')}/{qn('w:vMerge')}")
            if merge is not None and merge.get(qn("w:val"), "continue") == "continue":
                text = above.get(offset, "")
            else:
                text = "\n".join(Paragraph(p, table).text for p in tc.findall(qn("w:p"))).strip()
            above[offset] = text
            cells.append(text)
            offset += _grid_value(tc.find(f"{qn('w:tcPr')}/{qn('w:gridSpan')}"), 1, path)
        out.append(cells)
    return out


def _grid_value(element, default: int, path: Path) -> int:
    from docx.oxml.ns import qn

    if element is None:
        return default
    value = element.get(qn("w:val"), str(default))
    if not re.fullmatch(r"[0-9]{1,9}", value):
        raise IngestError(f"not a valid Word .docx file (a table cell spans '{value[:20]}' columns)", path,
                          hint="open and re-save it in Word or LibreOffice as .docx")
    return int(value)
