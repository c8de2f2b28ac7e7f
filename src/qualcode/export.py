"""Exports in the shapes report writers ask for: quote tables, code matrices,
reports with citations, JSON, and memos.

Every export is built from the same rows (:func:`quote_rows`), so a quote in
the report, the spreadsheet and the JSON is the same quote with the same
citation. ``pseudonymise`` replaces speaker names consistently across one export.
"""

from __future__ import annotations

import csv
import html
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from .coding import CodingError
from .memos import list_memos
from .privacy import GENERIC_SPEAKER, Pseudonymiser  # noqa: F401  (re-exported: the one pseudonymiser)
from .queries import excerpts, where_sql


@dataclass
class Filters:
    codes: list[str] = field(default_factory=list)
    where: dict[str, list[str]] = field(default_factory=dict)
    coders: list[str] = field(default_factory=list)
    search: str | None = None
    all_coders: bool = False  # every coder's codings even when a consensus exists


def with_default_coders(db: sqlite_utils.Database, filters: Filters | None) -> Filters:
    """Once a team has settled a consensus, exports quote it rather than every coder's
    codings; naming coders, or ``all_coders``, overrides that."""
    from dataclasses import replace

    from .team import consensus_names

    filters = filters or Filters()
    if filters.coders or filters.all_coders:
        return filters
    return replace(filters, coders=consensus_names(db))


def _code_paths(db: sqlite_utils.Database) -> dict[str, list[str]]:
    codes = {r["id"]: r for r in db.query("SELECT id, parent_id, name FROM codes")}
    paths = {}
    for code_id in codes:
        path, current = [], code_id
        while current:
            path.append(codes[current]["name"])
            current = codes[current]["parent_id"]
        paths[code_id] = list(reversed(path))
    return paths


def citation(row: dict) -> str:
    """``Principal, Harbor Unified (fictional), interview 2024-10-16, turn 14``."""
    parts = []
    if row.get("role"):
        parts.append(row["role"][0].upper() + row["role"][1:])
    if row.get("district"):
        parts.append(row["district"])
    kind = (row.get("kind") or "document").replace("_", " ")
    parts.append(f"{kind} {row['date']}" if row.get("date") else kind)
    where = f"turn {row['seq']}" if row.get("speaker") else f"paragraph {row['seq']}"
    if row.get("start_time") is not None:
        t = int(row["start_time"])
        where += f" ({t // 3600:d}:{t % 3600 // 60:02d}:{t % 60:02d})"
    parts.append(where)
    return ", ".join(parts)


def quote_rows(db: sqlite_utils.Database, filters: Filters | None = None, pseudonymise: bool = False) -> list[dict]:
    """One row per coded segment or span, with document attributes and the code path."""
    filters = with_default_coders(db, filters)
    rows = excerpts(db, filters.codes, filters.where, filters.coders, filters.search)
    paths = _code_paths(db)
    depth = max((len(p) for p in paths.values()), default=1)
    extra_keys = sorted({k for r in rows for k in json.loads(r["attributes"] or "{}")})
    out = []
    for r in rows:
        attributes = json.loads(r["attributes"] or "{}")
        row = {
            "excerpt_id": r["excerpt_id"], "document_id": r["document_id"], "title": r["title"],
            "kind": r["kind"], "site": r["site"], "district": r["district"], "role": r["role"], "date": r["date"],
        }
        row.update({k: attributes.get(k) for k in extra_keys})
        row.update({
            "speaker": r["speaker"],
            "segment": r["seq"], "start_time": r["start_time"],
            "start_char": r["start_char"], "end_char": r["end_char"],
            "text": r["text"],
            "code_id": r["code_id"],
        })
        path = paths[r["code_id"]]
        row.update({f"level_{i + 1}": path[i] if i < len(path) else None for i in range(depth)})
        row.update({"coder": r["coder"], "origin": r["origin"], "memo": r["memo"]})
        row["citation"] = citation(r)
        out.append(row)
    if pseudonymise:  # every field, column names too: names hide in titles, attributes, coders, ids
        alias = Pseudonymiser.for_project(db)
        out = [alias.walk(row) for row in out]
    return out


def code_matrix(db: sqlite_utils.Database, filters: Filters | None = None, pseudonymise: bool = False) -> list[dict]:
    """One row per segment with a 0/1 column per code (lessons rolled up), plus document attributes."""
    filters = with_default_coders(db, filters)
    clauses, params = where_sql(filters.where)
    clauses.insert(0, "1 = 1")
    segments = list(db.query(
        f"""SELECT s.id AS segment_id, s.document_id, d.title, d.kind, d.site, d.district, d.role, d.date,
                   d.attributes, s.seq AS segment, s.speaker
            FROM segments s JOIN documents d ON d.id = s.document_id
            WHERE {' AND '.join(clauses)} ORDER BY d.date, s.document_id, s.seq""", params))
    codes = [r["id"] for r in db.query("SELECT id FROM codes WHERE archived = 0 ORDER BY codebook_id, sort_order")]
    if filters.codes:
        codes = list(filter(codes_in_scope(db, filters), codes))
    coder_sql, coder_params = "", []
    if filters.coders:
        from .coding import find_coder

        ids = [find_coder(db, c) for c in filters.coders]
        coder_sql = f"WHERE coder_id IN ({', '.join('?' * len(ids))})"
        coder_params = ids
    applied = defaultdict(set)
    for r in db.query(f"SELECT DISTINCT segment_id, code_id FROM coded_segments {coder_sql}", coder_params):
        applied[r["segment_id"]].add(r["code_id"])
    extra_keys = sorted({k for s in segments for k in json.loads(s["attributes"] or "{}")})
    rows = []
    for s in segments:
        attributes = json.loads(s.pop("attributes") or "{}")
        row = dict(s)
        row.update({k: attributes.get(k) for k in extra_keys})
        row.update({c: int(c in applied[s["segment_id"]]) for c in codes})
        rows.append(row)
    if pseudonymise:
        alias = Pseudonymiser.for_project(db)
        rows = [alias.walk(row) for row in rows]
    return rows


def codes_in_scope(db: sqlite_utils.Database, filters: Filters):
    """Whether a code id falls under the codes ``filters`` names (a lesson means its sub-codes);
    every code does when none are named."""
    from .coding import find_code

    wanted = {find_code(db, c, allow_archived=True) for c in filters.codes}
    return lambda code_id: not wanted or any(code_id == w or code_id.startswith(w + ".") for w in wanted)


# --- writers -------------------------------------------------------------------------------------


#: Widest an XLSX column gets, in characters: a quote wraps within it rather than running off screen.
XLSX_MAX_WIDTH = 80


def _text_width(value) -> int:
    """How many characters a value's longest line takes in a cell."""
    if value is None:
        return 0
    return max(len(line) for line in str(value).split("\n"))


def column_widths(columns: list[str], rows: list[dict], cap: int = XLSX_MAX_WIDTH) -> list[int]:
    """A width per column that fits its header and its longest value, plus a little room
    (for the filter button too), and never more than ``cap``."""
    return [min(cap, max(_text_width(c), *(_text_width(row[c]) for row in rows), 1) + 3) for c in columns]


def _write_xlsx(rows: list[dict], columns: list[str], path: Path) -> None:
    """One sheet, laid out to be read in Excel: columns as wide as their content (long text
    capped and wrapped), the header row frozen and a filter on every column. Write-only
    mode streams the rows, so widths and panes are set before the first row goes out."""
    import openpyxl
    from openpyxl.utils import get_column_letter

    from .spreadsheet import xlsx_cell, xlsx_style

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("excerpts" if "excerpt_id" in columns else "matrix")
    widths = column_widths(columns, rows)
    for i, width in enumerate(widths, 1):
        sheet.column_dimensions[get_column_letter(i)].width = width
    if columns:
        sheet.freeze_panes = "A2"
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{len(rows) + 1}"
    sheet.append([xlsx_cell(sheet, c) for c in columns])
    # A row with a wrapped cell grows tall; its other cells align to the top so they sit beside the text's start.
    wrap, top = xlsx_style(sheet, wrap_text=True, vertical="top"), xlsx_style(sheet, vertical="top")
    for row in rows:
        long = [isinstance(row[c], str) and ("\n" in row[c] or len(row[c]) > w) for c, w in zip(columns, widths)]
        if any(long):
            sheet.append([xlsx_cell(sheet, row[c], wrap if is_long else top) if row[c] is not None else None
                          for c, is_long in zip(columns, long)])
        else:
            sheet.append([xlsx_cell(sheet, row[c]) for c in columns])
    book.save(path)


def write_table(rows: list[dict], path: str | Path) -> None:
    """CSV or XLSX, chosen by the file's extension. Text that a spreadsheet would run as a
    formula is neutralised (see :mod:`qualcode.spreadsheet`); numbers stay numbers."""
    from .spreadsheet import csv_cell

    path = Path(path)
    columns = list(rows[0]) if rows else []
    if path.suffix.lower() == ".xlsx":
        _write_xlsx(rows, columns, path)
    elif path.suffix.lower() == ".csv":
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow([csv_cell(c) for c in columns])
            writer.writerows([csv_cell(row[c]) for c in columns] for row in rows)
    else:
        raise CodingError(f"cannot write a table as '{path.suffix or 'no extension'}'", path, hint="use .csv or .xlsx")


def write_json(rows: list[dict], path: str | Path) -> None:
    """JSON keeps every text exactly, formula-like or not: no spreadsheet opens it, and a
    program reading it gets the transcript as it was."""
    Path(path).write_text(json.dumps(rows, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


# --- the report ----------------------------------------------------------------------------------

CAP_RULE = ("at most {n} excerpts per code, taken in turn from each document (documents in date order, "
            "excerpts in turn order), so that every document is quoted once before any is quoted twice")


def _capped(quotes: list[dict], cap: int | None) -> list[dict]:
    if not cap:
        return quotes
    by_doc: dict[str, list[dict]] = defaultdict(list)
    for q in quotes:
        by_doc[q["document_id"]].append(q)
    order = sorted(by_doc, key=lambda d: (by_doc[d][0]["date"] or "", d))
    kept, rank = [], 0
    while len(kept) < cap and any(rank < len(by_doc[d]) for d in order):
        for d in order:
            if rank < len(by_doc[d]) and len(kept) < cap:
                kept.append(by_doc[d][rank])
        rank += 1
    return sorted(kept, key=lambda q: (q["date"] or "", q["document_id"], q["segment"]))


@dataclass
class Report:
    title: str
    filters: str
    rule: str | None
    lessons: list[dict]  # {id, name, definition, codes: [{id, name, definition, by_site, by_role, quotes, total}]}
    unused: list[dict] = field(default_factory=list)  # [{id, name}]: codes in scope with no excerpts, named once at the end


def build_report(db: sqlite_utils.Database, filters: Filters | None = None, cap: int | None = None,
                 pseudonymise: bool = False) -> Report:
    """A chapter per lesson, a section per sub-code: definition, counts, and quoted excerpts.
    A code with no excerpts gets no section: the codes in scope (all, or those ``filters.codes``
    names) that have none are listed together in ``Report.unused``, so an empty code is still seen."""
    filters = with_default_coders(db, filters)
    rows = quote_rows(db, filters)  # pseudonymised with the rest of the report, below
    codes = list(db.query("SELECT * FROM codes WHERE archived = 0 ORDER BY codebook_id, sort_order"))
    in_scope = codes_in_scope(db, filters)
    seen, by_code = set(), defaultdict(list)
    for r in rows:  # one quote per segment (or span) and code, however many coders applied it
        key = (r["code_id"], r["document_id"], r["segment"], r["start_char"], r["end_char"])
        if key not in seen:
            seen.add(key)
            by_code[r["code_id"]].append(r)
    lessons, unused = [], []
    for lesson in (c for c in codes if c["depth"] == 0):
        children = [c for c in codes if c["parent_id"] == lesson["id"]] or [lesson]
        sections = []
        for code in children:
            quotes = by_code.get(code["id"], [])
            if not quotes:
                if in_scope(code["id"]):
                    unused.append({"id": code["id"], "name": code["name"]})
                continue
            count = lambda key: sorted(
                {(v, sum(1 for q in quotes if q[key] == v)) for v in {q[key] for q in quotes}},
                key=lambda item: (-item[1], item[0] or ""))
            sections.append({"id": code["id"], "name": code["name"], "definition": code["definition"],
                             "by_site": count("site"), "by_role": count("role"),
                             "quotes": _capped(quotes, cap), "total": len(quotes)})
        if sections:
            lessons.append({"id": lesson["id"], "name": lesson["name"], "definition": lesson["definition"],
                            "codes": sections})
    described = []
    if filters.codes:
        described.append("codes " + ", ".join(filters.codes))
    for name, values in filters.where.items():
        described.append(f"{name} {', '.join(values)}")
    if filters.coders:
        described.append("coders " + ", ".join(filters.coders))
    if filters.search:
        described.append(f"text matching '{filters.search}'")
    if pseudonymise:
        described.append("speaker names replaced by pseudonyms")
    book = next(db.query("SELECT name FROM codebooks ORDER BY id"), {"name": "Codebook"})
    report = Report(title=f"{book['name']}: coded excerpts",
                    filters="; ".join(described) or "all coded excerpts",
                    rule=CAP_RULE.format(n=cap) if cap else None, lessons=lessons, unused=unused)
    return Pseudonymiser.for_project(db).walk(report) if pseudonymise else report


def _counts_line(counts: list[tuple[str, int]], md=lambda text: text) -> str:
    return ", ".join(f"{md(value or '(none)')} {n}" for value, n in counts)


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]])")


def markdown_text(text: str | None) -> str:
    """Text from a transcript, a memo, a manifest or the codebook, as literal Markdown.

    Raw HTML is escaped, so ``<script>`` or ``<img onerror=...>`` in a transcript line
    shows as text and never runs where the report is rendered; the characters that make
    links, images, code and emphasis are backslash-escaped, so ``[x](javascript:...)``
    is no link either. Rendered, the quote reads exactly as it was said.
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(text or "", quote=False))


def report_markdown(report: Report) -> str:
    md = markdown_text
    lines = [f"# {md(report.title)}", "", f"Filters: {md(report.filters)}."]
    if report.rule:
        lines.append(f"Selection: {md(report.rule)}.")
    for lesson in report.lessons:
        lines += ["", f"## {md(lesson['name'])}", "", md(lesson["definition"])]
        for code in lesson["codes"]:
            lines += ["", f"### {md(code['name'])} (`{code['id']}`)", "", md(code["definition"]), "",
                      f"- Excerpts: {code['total']}" + (f" (showing {len(code['quotes'])})" if len(code['quotes']) < code['total'] else ""),
                      f"- By site: {_counts_line(code['by_site'], md) or 'none'}",
                      f"- By role: {_counts_line(code['by_role'], md) or 'none'}"]
            for q in code["quotes"]:
                speaker = f"**{md(q['speaker'])}:** " if q["speaker"] else ""
                body = md(q["text"]).replace("\n\n", "\n>\n> ")
                lines += ["", f"> {speaker}{body}", ">", f"> — *{md(q['citation'])}*"]
    if report.unused:  # after a rule, so it does not read as part of the last code's section
        lines += ["", "---", "", unused_line(report, lambda c: f"{md(c['name'])} (`{c['id']}`)")]
    return "\n".join(lines) + "\n"


def unused_line(report: Report, name=lambda code: f"{code['name']} ({code['id']})") -> str:
    """``Codes with no excerpts: Dilemmas of time, resources and focus (scaling.dilemmas); ...``,
    each code named as its section heading would be. Semicolons, since code names hold commas."""
    return "Codes with no excerpts: " + "; ".join(name(code) for code in report.unused) + "."


def write_report(report: Report, path: str | Path) -> None:
    """Markdown or DOCX, chosen by the file's extension. Markdown escapes what it quotes
    (:func:`markdown_text`); a DOCX holds text runs only, which Word neither renders as
    HTML nor evaluates as formulas, so its quotes are written exactly."""
    path = Path(path)
    if path.suffix.lower() == ".md":
        path.write_text(report_markdown(report), encoding="utf-8")
        return
    if path.suffix.lower() != ".docx":
        raise CodingError(f"cannot write a report as '{path.suffix or 'no extension'}'", path, hint="use .md or .docx")
    import docx

    document = docx.Document()
    document.core_properties.title = report.title
    document.add_heading(report.title, 0)
    document.add_paragraph(f"Filters: {report.filters}.")
    if report.rule:
        document.add_paragraph(f"Selection: {report.rule}.")
    for lesson in report.lessons:
        document.add_heading(lesson["name"], 1)
        document.add_paragraph(lesson["definition"])
        for code in lesson["codes"]:
            document.add_heading(f"{code['name']} ({code['id']})", 2)
            document.add_paragraph(code["definition"])
            shown = f" (showing {len(code['quotes'])})" if len(code["quotes"]) < code["total"] else ""
            document.add_paragraph(f"Excerpts: {code['total']}{shown}", style="List Bullet")
            document.add_paragraph(f"By site: {_counts_line(code['by_site']) or 'none'}", style="List Bullet")
            document.add_paragraph(f"By role: {_counts_line(code['by_role']) or 'none'}", style="List Bullet")
            for q in code["quotes"]:
                quote = document.add_paragraph(style="Quote")
                if q["speaker"]:
                    quote.add_run(f"{q['speaker']}: ").bold = True
                quote.add_run(q["text"])
                cite = document.add_paragraph()
                cite.add_run(f"— {q['citation']}").italic = True
    if report.unused:
        document.add_paragraph(unused_line(report))
    document.save(path)


def memos_markdown(db: sqlite_utils.Database, coders: list[str] | None = None, pseudonymise: bool = False) -> str:
    """Memos grouped by what they are attached to, with the segment text they comment on,
    escaped as the report is (:func:`markdown_text`)."""
    from .coding import find_coder

    for coder in coders or []:
        find_coder(db, coder)
    memos = [m for m in list_memos(db) if not coders or m["coder"] in coders]
    lines = ["# Memos", ""]
    for kind, heading in (("code", "Memos on codes"), ("document", "Memos on documents"), ("segment", "Memos on segments")):
        group = [m for m in memos if m["target_type"] == kind]
        if not group:
            continue
        lines += [f"## {heading}", ""]
        for m in group:
            lines += [f"### {markdown_text(m['target'])} — {markdown_text(m['target_title'])}", "",
                      f"*{markdown_text(m['coder'] or 'unknown coder')}, {m['created_at']}*", "", markdown_text(m["text"]), ""]
            if m["segment_text"]:
                lines += ["> " + markdown_text(m["segment_text"]).replace("\n\n", "\n>\n> "), ""]
    if len(lines) == 2:
        lines.append("No memos.")
    text = "\n".join(lines).rstrip() + "\n"
    # The whole page at once: targets (document ids), titles, coders, memo and segment text alike.
    return Pseudonymiser.for_project(db).text(text) if pseudonymise else text
