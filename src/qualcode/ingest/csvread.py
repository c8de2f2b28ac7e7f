"""Reading CSV the one way a file says, never guessed.

We used to guess the dialect from the first 4 KB with ``csv.Sniffer``; when no
doubled quote ``""`` appeared there, every later one was misread and texts
were cut or shifted with no error. CSV is read as RFC 4180 (comma, fields in
double quotes, a quote inside doubled) unless the user names another dialect,
and a row whose cell count differs from the header's is refused, because that
is what a misread quote looks like.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterator

from ..errors import IngestError

#: The dialects a user can name with ``--csv-dialect``.
DIALECTS: dict[str, dict] = {
    "rfc4180": dict(delimiter=",", quotechar='"', doublequote=True),
    "semicolon": dict(delimiter=";", quotechar='"', doublequote=True),  # Excel in much of Europe
    "tab": dict(delimiter="\t", quotechar='"', doublequote=True),
    "backslash": dict(delimiter=",", quotechar='"', doublequote=False, escapechar="\\"),  # \" inside quotes
}

_HINT = "check the quoting around that row (a quote inside a quoted cell is written twice: \"\")"


def _reader(text: str, dialect: str):
    if dialect not in DIALECTS:
        raise IngestError(f"unknown CSV dialect '{dialect}'", hint=f"use one of {', '.join(DIALECTS)}")
    return csv.reader(io.StringIO(text, newline=""), strict=True, skipinitialspace=False, **DIALECTS[dialect])


def read_csv(text: str, path: str | Path, dialect: str = "rfc4180") -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The stripped header and the (line, cells) of every non-blank row.

    Each row has exactly as many cells as the header (trailing empty cells
    past it are dropped); any other row is an :class:`IngestError` with its line.
    """
    reader = _reader(text, dialect)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise IngestError("the file is empty", path) from None
    except csv.Error as e:
        raise IngestError(f"bad CSV header: {e}", path, 1, hint=_HINT) from None

    def rows() -> Iterator[tuple[int, list[str]]]:
        start = reader.line_num + 1
        try:
            for row in reader:
                line, start = start, reader.line_num + 1
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) > len(header) and not any(c.strip() for c in row[len(header):]):
                    row = row[: len(header)]
                if len(row) != len(header):
                    raise IngestError(
                        f"row has {len(row)} cell{'' if len(row) == 1 else 's'} but the header has {len(header)}",
                        path,
                        line,
                        hint=_HINT + f"; or name the file's dialect with --csv-dialect ({', '.join(DIALECTS)})",
                    )
                yield line, row
        except csv.Error as e:
            raise IngestError(f"bad CSV: {e}", path, start, hint=_HINT) from None

    return header, rows()
