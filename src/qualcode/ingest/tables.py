"""Spreadsheets (.csv, .xlsx) with one row per segment, often already coded.

This is how many teams code today, so it must take tens of thousands of rows
in one go: rows are streamed, and each document becomes one transcript whose
segments are the rows.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..errors import IngestError
from .decode import decode_text
from .readers import Coding, Parsed, slug
from .segment import join_turns

#: Columns that, when present and not mapped otherwise, describe the document.
DOCUMENT_COLUMNS = ("title", "kind", "site", "district", "role", "date")


@dataclass
class TableMapping:
    """Which spreadsheet column holds what. Only the text column is required."""

    text: str | None = None
    document: str | None = None
    speaker: str | None = None
    time: str | None = None
    order: str | None = None
    codes: list[tuple[str, str | None]] = field(default_factory=list)  # (column, coder)
    coder: str | None = None
    separator: str = ";"
    sheet: str | None = None

    @property
    def given(self) -> bool:
        return self.text is not None


def _rows_csv(path: Path, data: bytes) -> tuple[list[str], Iterator[tuple[int, dict]], list[str]]:
    text, warnings = decode_text(data, str(path))
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise IngestError("the file is empty", path) from None

    def rows() -> Iterator[tuple[int, dict]]:
        try:
            for row in reader:
                if any(cell.strip() for cell in row):
                    yield reader.line_num, dict(zip(header, row))
        except csv.Error as e:
            raise IngestError(f"bad CSV: {e}", path, reader.line_num, hint="check quoting around that row") from None

    return header, rows(), warnings


def _rows_xlsx(path: Path, sheet: str | None) -> tuple[list[str], Iterator[tuple[int, dict]], list[str]]:
    import openpyxl

    try:
        book = openpyxl.load_workbook(str(path), read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises many types for a broken file
        raise IngestError(
            f"not a valid .xlsx workbook ({e.__class__.__name__})", path, hint="re-save it from Excel as .xlsx"
        ) from None
    if sheet is not None and sheet not in book.sheetnames:
        raise IngestError(f"no sheet named '{sheet}' (sheets: {', '.join(book.sheetnames)})", path)
    ws = book[sheet] if sheet else book.worksheets[0]
    values = ws.iter_rows(values_only=True)
    try:
        header = ["" if h is None else str(h).strip() for h in next(values)]
    except StopIteration:
        raise IngestError("the sheet is empty", path) from None

    def rows() -> Iterator[tuple[int, dict]]:
        for number, row in enumerate(values, 2):
            cells = ["" if v is None else str(v) for v in row]
            if any(c.strip() for c in cells):
                yield number, dict(zip(header, cells))

    return header, rows(), []


def read_rows(path: Path, sheet: str | None = None) -> tuple[list[str], Iterator[tuple[int, dict]], list[str]]:
    """The header and (line, row) pairs of a .csv or .xlsx file, plus any decoding warnings."""
    if not path.is_file():
        raise IngestError("no such file", path)
    if path.suffix.lower() == ".xlsx":
        return _rows_xlsx(path, sheet)
    if path.suffix.lower() != ".csv":
        raise IngestError(f"unsupported format '{path.suffix or 'none'}'", path, hint="use a .csv or .xlsx file")
    return _rows_csv(path, path.read_bytes())


def _seconds(value: str, path: Path, line: int) -> float | None:
    value = value.strip()
    if not value:
        return None
    m = re.fullmatch(r"(?:(\d+):)?(\d{1,2}):(\d{2}(?:[.,]\d+)?)", value)
    try:
        if m:
            return int(m.group(1) or 0) * 3600 + int(m.group(2)) * 60 + float(m.group(3).replace(",", "."))
        return float(value)
    except ValueError:
        pass
    raise IngestError(f"'{value}' is not a time", path, line, hint="use seconds (83.5) or HH:MM:SS")


def read_table(path: Path, data: bytes, mapping: TableMapping) -> list[Parsed]:
    """Read a segment spreadsheet into documents, grouped by the document column."""
    if not mapping.given:
        raise IngestError(
            "a spreadsheet needs its columns mapped",
            path,
            hint="say which column holds the text with --text-column (and --document-column, --speaker-column, --code-column)",
        )
    header, rows, warnings = _rows_xlsx(path, mapping.sheet) if path.suffix.lower() == ".xlsx" else _rows_csv(path, data)
    wanted = [("--text-column", mapping.text), ("--document-column", mapping.document),
              ("--speaker-column", mapping.speaker), ("--time-column", mapping.time),
              ("--order-column", mapping.order)] + [("--code-column", c) for c, _ in mapping.codes]
    for option, column in wanted:
        if column is not None and column not in header:
            raise IngestError(
                f"no column '{column}' for {option} (columns: {', '.join(h for h in header if h)})",
                path,
                1,
                hint=f"name one of these columns with {option}",
            )
    for column, coder in mapping.codes:
        if not (coder or mapping.coder):
            raise IngestError(
                f"no coder named for the codes in column '{column}'",
                path,
                hint=f"write --code-column '{column}=CODER NAME' or give --coder",
            )
    extra = [c for c in DOCUMENT_COLUMNS if c in header and c not in {mapping.text, mapping.document, mapping.speaker}]
    groups: dict[str, list[tuple[int, dict]]] = {}
    for line, row in rows:
        key = row.get(mapping.document, "").strip() if mapping.document else path.stem
        if not key:
            raise IngestError(f"row has no value in '{mapping.document}'", path, line, hint="every row needs its document id")
        groups.setdefault(key, []).append((line, row))
    if not groups:
        raise IngestError("the spreadsheet has a header but no rows", path)
    docs = []
    for key, group in groups.items():
        if mapping.order:
            try:
                group.sort(key=lambda item: float(item[1][mapping.order]))
            except ValueError:
                bad = next(line for line, row in group if not _is_number(row[mapping.order]))
                raise IngestError(f"'{mapping.order}' is not a number", path, bad) from None
        turns, codings = [], []
        for line, row in group:
            body = re.sub(r"\s+", " ", row[mapping.text]).strip()
            if not body:
                continue
            speaker = row[mapping.speaker].strip() or None if mapping.speaker else None
            at = _seconds(row[mapping.time], path, line) if mapping.time else None
            turns.append((speaker, body, at, None))
            for column, coder in mapping.codes:
                for value in row[column].split(mapping.separator):
                    if value.strip():
                        codings.append(Coding(len(turns), value.strip(), coder or mapping.coder, line))
        if not turns:
            continue
        text, segments = join_turns(turns)
        meta = {c: group[0][1][c].strip() for c in extra if group[0][1][c].strip()}
        meta.setdefault("title", key)
        digest = hashlib.sha256(
            json.dumps([text, [(c.seq, c.code, c.coder) for c in codings], meta], ensure_ascii=False).encode()
        ).hexdigest()
        docs.append(Parsed(slug(key), text, path.suffix.lower()[1:], digest, meta, segments, codings, list(warnings)))
    return docs


def _is_number(value: str) -> bool:
    try:
        float(value)
        return True
    except ValueError:
        return False
