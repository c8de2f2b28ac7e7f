"""Builders of good and deliberately broken source files, shared by the regression and fuzz tests.

Each returns the file's bytes, built with the same libraries a user's tools
would use (python-docx, openpyxl) and then damaged at the XML or byte level.
"""

from __future__ import annotations

import io
import re
import zipfile

import docx
import openpyxl
from docx.oxml import OxmlElement
from docx.oxml.ns import qn

TEXT = "Interviewer: How did the year start?\n\nAna Ruiz: Busy. We co-planned.\n\nInterviewer: And then?\n"
VTT = "WEBVTT\n\n00:00:01.000 --> 00:00:04.000\n<v Ana>Hello there.\n\n00:00:04.500 --> 00:00:06.000\n<v Ben>Hi.\n"
SRT = "1\n00:00:01,000 --> 00:00:04,000\nAna: Hello there.\n\n2\n00:00:04,500 --> 00:00:06,000\nBen: Hi.\n"
CSV = "document,speaker,time,text,code\nint-1,Ana,1.5,\"Hello, \"\"there\"\".\",support\nint-1,Ben,3,Hi.,\n"
LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)
CODEBOOK = """name: Fuzz codebook
codes:
  - id: support
    name: Support
    definition: Help given.
    children:
      - id: support.coaching
        name: Coaching
        definition: A coach helps.
"""


def rezip(data: bytes, member: str, change) -> bytes:
    """The same zip with one member's text changed by ``change(text) -> text``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == member:
                body = change(body.decode("utf-8")).encode("utf-8")
            dst.writestr(info.filename, body)
    return out.getvalue()


def docx_bytes(span: str | None = None, paragraphs: int = 2) -> bytes:
    """A .docx with paragraphs and a speaker | words table; ``span`` sets a cell's gridSpan."""
    document = docx.Document()
    for i in range(paragraphs):
        document.add_paragraph(f"Paragraph {i} of the notes.")
    table = document.add_table(rows=2, cols=2)
    for r, (who, said) in enumerate([("Ana", "We co-planned."), ("Ben", "It helped.")]):
        table.cell(r, 0).text, table.cell(r, 1).text = who, said
    if span is not None:
        grid = OxmlElement("w:gridSpan")
        grid.set(qn("w:val"), span)
        table.cell(0, 0)._tc.get_or_add_tcPr().append(grid)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def docx_bomb(megabytes: int = 8) -> bytes:
    """A small .docx whose document.xml unpacks to many megabytes (one long run of spaces)."""
    padding = " " * (megabytes * 2**20)
    return rezip(docx_bytes(), "word/document.xml", lambda xml: xml.replace("<w:body>", f"<w:body>{padding}", 1))


def xlsx_bytes(rows=None, formula: bool = False) -> bytes:
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "Sheet1"
    for row in rows or [["document", "speaker", "text"], ["int-1", "Ana", "Hello there."], ["int-1", "Ben", "Hi."]]:
        ws.append(row)
    if formula:
        ws["C3"] = '=A2&" said hi"'  # openpyxl saves no cached result, as many scripts do
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def xlsx_far_cell() -> bytes:
    """Declares the sheet as A1:XFD1048576 and holds an empty cell at XFD1048576."""
    def change(xml: str) -> str:
        xml = re.sub(r'<dimension ref="[^"]*"\s*/>', '<dimension ref="A1:XFD1048576"/>', xml)
        return xml.replace("</sheetData>", '<row r="1048576"><c r="XFD1048576"/></row></sheetData>')

    return rezip(xlsx_bytes(), "xl/worksheets/sheet1.xml", change)


def xlsx_damaged() -> bytes:
    """The sheet XML cut off in the middle of its rows."""
    return rezip(xlsx_bytes(), "xl/worksheets/sheet1.xml", lambda xml: xml[: xml.index("</row>") + 20])
