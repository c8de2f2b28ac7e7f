"""Spreadsheets (.csv, .xlsx) with one row per segment, often already coded.

This is how many teams code today, so it must take tens of thousands of rows
in one go: rows are streamed, and each document becomes one transcript whose
segments are the rows.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..errors import IngestError, QualcodeError
from ..roles import normalise_role
from .csvread import read_csv
from .decode import decode_text
from .limits import MAX_COLUMNS, check_file_size, check_zip
from .readers import Coding, Parsed, slug
from .segment import join_turns

#: Columns that, when present and not mapped otherwise, describe the document.
DOCUMENT_COLUMNS = ("title", "kind", "site", "district", "role", "date")
#: The column that, when present and not mapped otherwise, gives each row's speaker role.
SPEAKER_ROLE_COLUMN = "speaker_role"


@dataclass
class TableMapping:
    """Which spreadsheet column holds what. Only the text column is required."""

    text: str | None = None
    document: str | None = None
    speaker: str | None = None
    speaker_role: str | None = None  # default: a column named speaker_role, if there is one
    time: str | None = None
    order: str | None = None
    codes: list[tuple[str, str | None]] = field(default_factory=list)  # (column, coder)
    coder: str | None = None
    separator: str = ";"
    sheet: str | None = None
    csv_dialect: str = "rfc4180"  # see csvread.DIALECTS

    @property
    def given(self) -> bool:
        return self.text is not None


def _rows_csv(path: Path, data: bytes, dialect: str = "rfc4180") -> tuple[list[str], Iterator[tuple[int, dict]], list[str]]:
    text, warnings = decode_text(data, str(path))
    header, records = read_csv(text, path, dialect)
    return header, ((line, dict(zip(header, cells))) for line, cells in records), warnings


class Formula(str):
    """An empty cell value standing for a formula whose result was never saved in the file."""

    def __new__(cls, ref: str, formula: str) -> "Formula":
        value = super().__new__(cls, "")
        value.ref, value.formula = ref, formula
        return value


def _has_formulas(path: Path) -> bool:
    """Whether any sheet holds a formula, so the slower formula-aware read is needed."""
    import zipfile

    tag = re.compile(rb"<(?:\w+:)?f[\s>/]")
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.startswith("xl/worksheets/"):
                continue
            with archive.open(info) as member:
                tail = b""
                while chunk := member.read(1 << 20):
                    if tag.search(tail + chunk):
                        return True
                    tail = chunk[-16:]
    return False


def _open_sheet(path: Path, sheet: str | None, data_only: bool):
    import openpyxl

    book = openpyxl.load_workbook(str(path), read_only=True, data_only=data_only)
    if sheet is not None and sheet not in book.sheetnames:
        raise IngestError(f"no sheet named '{sheet}' (sheets: {', '.join(book.sheetnames)})", path)
    if not book.worksheets:
        raise IngestError("the workbook has no sheets", path)
    ws = book[sheet] if sheet else book.worksheets[0]
    # The sheet's declared size ("A1:XFD1048576") would pad every row to
    # 16,384 cells and add a million empty rows; read only the cells present.
    ws.reset_dimensions()
    return book, ws


def _rows_xlsx(path: Path, sheet: str | None) -> tuple[list[str], Iterator[tuple[int, dict]], list[str]]:
    from openpyxl.utils import get_column_letter

    check_zip(path, "xlsx")
    try:
        book, ws = _open_sheet(path, sheet, data_only=True)
        formulas = _open_sheet(path, sheet, data_only=False)[1] if _has_formulas(path) else None
        first = next(ws.iter_rows(min_row=1, max_row=1, values_only=True), ())
    except IngestError:
        raise
    except Exception as e:  # openpyxl and the XML parser raise many types for a broken file
        raise _broken(path, e) from None
    header = ["" if h is None else str(h).strip() for h in first]
    while header and not header[-1]:
        header.pop()
    if not header:
        raise IngestError("the sheet is empty", path)
    if len(header) > MAX_COLUMNS:
        raise IngestError(f"the header row has {len(header):,} columns, more than {MAX_COLUMNS:,}", path, 1,
                          hint="delete the unused columns")
    width = len(header)

    def rows() -> Iterator[tuple[int, dict]]:
        try:
            values = ws.iter_rows(min_row=2, max_col=width, values_only=True)
            raw = formulas.iter_rows(min_row=2, max_col=width, values_only=True) if formulas is not None else None
            for number, row in enumerate(values, 2):
                source = next(raw) if raw is not None else None
                if row.count(None) == len(row):
                    continue
                cells: list[str] = []
                for i, v in enumerate(row):
                    if v is None and source is not None and source[i] is not None:
                        text = getattr(source[i], "text", None) or str(source[i])
                        cells.append(Formula(f"{get_column_letter(i + 1)}{number}", text))
                    else:
                        cells.append("" if v is None else str(v))
                if any(c.strip() for c in cells) or any(isinstance(c, Formula) for c in cells):
                    yield number, dict(zip(header, cells + [""] * (width - len(cells))))
        except IngestError:
            raise
        except Exception as e:
            raise _broken(path, e) from None
        finally:
            book.close()
            if formulas is not None:
                formulas.parent.close()

    return header, rows(), []


def _broken(path: Path, e: Exception) -> IngestError:
    detail = str(e).splitlines()[0][:80] if str(e) else ""
    return IngestError(
        f"not a valid .xlsx workbook ({e.__class__.__name__}{': ' + detail if detail else ''})",
        path,
        hint="re-save it from Excel as .xlsx",
    )


def read_rows(path: Path, sheet: str | None = None) -> tuple[list[str], Iterator[tuple[int, dict]], list[str]]:
    """The header and (line, row) pairs of a .csv or .xlsx file, plus any decoding warnings."""
    if not path.is_file():
        raise IngestError("no such file", path)
    check_file_size(path, path.stat().st_size)
    if path.suffix.lower() == ".xlsx":
        header, rows, warnings = _rows_xlsx(path, sheet)

        def checked() -> Iterator[tuple[int, dict]]:
            for line, row in rows:
                _refuse_formulas(row, row, path, line)
                yield line, row

        return header, checked(), warnings
    if path.suffix.lower() != ".csv":
        raise IngestError(f"unsupported format '{path.suffix or 'none'}'", path, hint="use a .csv or .xlsx file")
    return _rows_csv(path, path.read_bytes())


def _refuse_formulas(row: dict, columns, path: Path, line: int) -> None:
    """A formula with no saved result reads as empty; refuse it rather than drop the row."""
    for column in columns:
        value = row.get(column)
        if isinstance(value, Formula):
            raise IngestError(
                f"cell {value.ref} holds a formula ({value.formula[:60]}) whose result was never saved",
                path,
                line,
                hint="open and save the workbook in Excel or LibreOffice so results are stored, or paste that column as values",
            )


def _seconds(value: str, path: Path, line: int) -> float | None:
    value = value.strip()
    if not value:
        return None
    m = re.fullmatch(r"(?:([0-9]{1,6}):)?([0-9]{1,2}):([0-9]{2}(?:[.,][0-9]+)?)", value)
    try:
        if m:
            seconds = int(m.group(1) or 0) * 3600 + int(m.group(2)) * 60 + float(m.group(3).replace(",", "."))
        else:
            seconds = float(value)
    except ValueError:
        seconds = math.nan
    # inf and nan parse as floats, and would break every export downstream.
    if not (math.isfinite(seconds) and seconds >= 0):
        raise IngestError(f"'{value[:40]}' is not a time", path, line,
                          hint="use seconds from the start (83.5) or HH:MM:SS")
    return seconds


def read_table(path: Path, data: bytes, mapping: TableMapping) -> list[Parsed]:
    """Read a segment spreadsheet into documents, grouped by the document column."""
    if not mapping.given:
        raise IngestError(
            "a spreadsheet needs its columns mapped",
            path,
            hint="say which column holds the text with --text-column (and --document-column, --speaker-column, --code-column)",
        )
    if path.suffix.lower() == ".xlsx":
        header, rows, warnings = _rows_xlsx(path, mapping.sheet)
    else:
        header, rows, warnings = _rows_csv(path, data, mapping.csv_dialect)
    wanted = [("--text-column", mapping.text), ("--document-column", mapping.document),
              ("--speaker-column", mapping.speaker), ("--speaker-role-column", mapping.speaker_role),
              ("--time-column", mapping.time),
              ("--order-column", mapping.order)] + [("--code-column", c) for c, _ in mapping.codes]
    for option, column in wanted:
        if column is not None and column not in header:
            hint = f"name one of these columns with {option}"
            if path.suffix.lower() == ".csv" and len(header) == 1 and (";" in header[0] or "\t" in header[0]):
                hint = "the file seems to use ';' or tabs between columns: add --csv-dialect semicolon (or tab)"
            raise IngestError(
                f"no column '{column}' for {option} (columns: {', '.join(h for h in header if h)[:200]})",
                path,
                1,
                hint=hint,
            )
    for column, coder in mapping.codes:
        if not (coder or mapping.coder):
            raise IngestError(
                f"no coder named for the codes in column '{column}'",
                path,
                hint=f"write --code-column '{column}=CODER NAME' or give --coder",
            )
    role_column = mapping.speaker_role or (SPEAKER_ROLE_COLUMN if SPEAKER_ROLE_COLUMN in header else None)
    mapped = {mapping.text, mapping.document, mapping.speaker, role_column}
    extra = [c for c in DOCUMENT_COLUMNS if c in header and c not in mapped]
    used = [c for c in (mapping.text, mapping.document, mapping.speaker, role_column, mapping.time, mapping.order) if c]
    used += [c for c, _ in mapping.codes] + extra
    groups: dict[str, list[tuple[int, dict]]] = {}
    ids: dict[str, str] = {}  # document id -> the value it was made from
    for line, row in rows:
        _refuse_formulas(row, used, path, line)
        key = row.get(mapping.document, "").strip() if mapping.document else path.stem
        if not key:
            raise IngestError(f"row has no value in '{mapping.document}'", path, line, hint="every row needs its document id")
        if key not in groups:
            # "Doc A" and "doc-a" make the same id; one would silently replace the other.
            other = ids.setdefault(slug(key), key)
            if other != key:
                raise IngestError(
                    f"documents '{other[:60]}' and '{key[:60]}' both get the id '{slug(key)[:60]}'",
                    path,
                    line,
                    hint=f"make the values in '{mapping.document}' differ by more than case and punctuation",
                )
        groups.setdefault(key, []).append((line, row))
    if not groups:
        raise IngestError("the spreadsheet has a header but no rows", path)
    docs = []
    for key, group in groups.items():
        if mapping.order:
            for line, row in group:
                if not _is_number(row[mapping.order]):
                    raise IngestError(f"'{row[mapping.order][:40]}' in '{mapping.order}' is not a number", path, line,
                                      hint="the order column needs a number on every row")
            group.sort(key=lambda item: float(item[1][mapping.order]))
        # A 'role' column is the document's role (the participant's, as in a manifest); when it
        # differs between a document's rows it can only be each row's speaker role.
        row_roles = role_column
        if row_roles is None and "role" in extra and len({r["role"].strip() for _, r in group if r["role"].strip()}) > 1:
            row_roles = "role"
            warnings_here = [f"{path}: column 'role' varies within document '{key}': read as each row's speaker role"]
        else:
            warnings_here = []
        turns, codings, roles = [], [], []
        for line, row in group:
            body = re.sub(r"\s+", " ", row[mapping.text]).strip()
            if not body:
                continue
            speaker = row[mapping.speaker].strip() or None if mapping.speaker else None
            at = _seconds(row[mapping.time], path, line) if mapping.time else None
            turns.append((speaker, body, at, None))
            if row_roles:
                value = row[row_roles].strip()
                try:
                    roles.append(normalise_role(value) if value else None)
                except QualcodeError as e:
                    raise IngestError(f"column '{row_roles}': {e.message}", path, line, hint=e.hint) from None
            for column, coder in mapping.codes:
                for value in row[column].split(mapping.separator):
                    if value.strip():
                        codings.append(Coding(len(turns), value.strip(), coder or mapping.coder, line))
        if not turns:
            continue
        text, segments = join_turns(turns)
        for segment, role in zip(segments, roles):
            segment.role = role
        meta = {c: group[0][1][c].strip() for c in extra if c != row_roles and group[0][1][c].strip()}
        meta.setdefault("title", key)
        content = [text, [(c.seq, c.code, c.coder) for c in codings], meta]
        if any(roles):  # only then, so the digest of a sheet without roles is what it always was
            content.append(roles)
        digest = hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()
        docs.append(Parsed(slug(key), text, path.suffix.lower()[1:], digest, meta, segments, codings,
                           list(warnings) + warnings_here, meta_lines={c: group[0][0] for c in meta}))
    return docs


def _is_number(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False
