"""Datasette's pages for reading: every passage links to its turn, and text tables read as text.

Datasette shows every table as a grid, which squeezes a quote into a narrow column beside twenty
others. The pages people read — excerpts, documents, the codebook and segment search — get a
layout made for text instead (``templates/_table.html`` picks it from :data:`LAYOUTS`), built
from the page's own rows by :func:`reading_items`; every other table, and these with
``?_layout=table``, keep Datasette's table, whose cells :func:`render_cell` turns into links to the
transcript. Everything shown is escaped here or by the templates' autoescaping; only
:func:`highlight` builds markup from text, and it escapes every piece.
"""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

from markupsafe import Markup, escape

from .render import DEFAULT_COLOUR, colour

#: Table → reading layout (the template ``_qualcode_reading_<layout>.html``).
LAYOUTS = {"excerpts": "excerpts", "documents": "documents", "segments": "segments",
           "codes": "codebook", "codebook_tree": "codebook"}
#: Where FTS5's highlight() marks a match; private-use characters no transcript should hold.
_OPEN, _CLOSE = "\ue000", "\ue001"
#: How much of a document's text its card shows.
OPENING_CHARS = 280
#: A search result longer than this shows the words around its matches, not the whole turn.
LONG_RESULT_CHARS = 700
#: Characters of context kept on each side of a match in a long result.
AROUND_MATCH_CHARS = 160


def turn_anchor(seq) -> str:
    """The id of a turn's element on the document page (see ``_qualcode_turn.html``)."""
    return f"turn-{int(seq)}"


def passage_url(datasette, document_id, seq=None) -> str:
    """The transcript page of a document, at one turn when ``seq`` is given.

    The id is quoted whole (``/`` included): the page's route reads one path segment and
    unquotes it, so ids with spaces, quotes, slashes or accents all arrive intact.
    """
    url = datasette.urls.path("/-/code/" + quote(str(document_id), safe=""))
    return url + ("#" + turn_anchor(seq) if seq not in (None, "") else "")


def _link(url: str, text, title: str, css: str = "qc-context") -> Markup:
    return Markup('<a class="{}" href="{}" title="{}">{}</a>').format(css, url, title, text)


def _plain(value):
    """A foreign key Datasette expanded to {value, label} gives back its value."""
    return value["value"] if isinstance(value, dict) and "value" in value else value


def _get(row, key, default=None):
    try:
        return _plain(row[key])
    except (IndexError, KeyError):
        return default


def render_cell(datasette, value, column, table, row):
    """Links from Datasette's own table cells to the transcript (None: leave the cell to Datasette)."""
    if table == "documents" and column == "title" and _get(row, "id") is not None and value is not None:
        return _link(passage_url(datasette, _get(row, "id")), value, "Read the transcript")
    if table in ("segments", "excerpts") and column == "seq" and value is not None:
        document = _get(row, "document_id")
        if document is not None:
            return _link(passage_url(datasette, document, value), Markup("{}&nbsp;↗").format(value),
                         "View in context: this turn in its transcript")
    if column == "segment" and table in (None, "suggestions_to_review") and isinstance(value, str):
        document, _, seq = value.rpartition(":")
        if document and seq.isdigit():
            return _link(passage_url(datasette, document, seq), value, "View in context: this turn in its transcript")
    return None


# --- highlighting ---------------------------------------------------------------------------------


def marked_ranges(marked: str, original: str) -> list[tuple[int, int]]:
    """The (start, end) offsets in ``original`` that FTS5's highlight() wrapped in the markers.

    If the text held a marker character itself, the marks cannot be trusted: no ranges.
    """
    ranges, plain, start = [], [], None
    for ch in marked:
        if ch == _OPEN:
            start = len(plain)
        elif ch == _CLOSE and start is not None:
            ranges.append((start, len(plain)))
            start = None
        else:
            plain.append(ch)
    return ranges if "".join(plain) == original else []


def highlight(text: str, ranges: list[tuple[int, int]]) -> Markup:
    """``text`` escaped, with the given ranges in ``<mark>`` (ranges outside the text are clipped)."""
    out, at = [], 0
    for start, end in sorted(ranges):
        start, end = max(start, at), min(end, len(text))
        if start >= end:
            continue
        out.append(escape(text[at:start]))
        out.append(Markup("<mark>{}</mark>").format(text[start:end]))
        at = end
    out.append(escape(text[at:]))
    return Markup("").join(out)


def around_matches(text: str, ranges: list[tuple[int, int]], around: int = AROUND_MATCH_CHARS,
                   longest: int = LONG_RESULT_CHARS, most: int = 3) -> Markup:
    """A long turn cut to the words around its first few matches (marked), the cuts shown as "…";
    a short one, or one without matches, whole."""
    ranges = sorted((a, b) for a, b in ranges if 0 <= a < b <= len(text))
    if len(text) <= longest or not ranges:
        return highlight(text, ranges)
    windows: list[list[int]] = []
    for a, b in ranges:
        start, end = max(0, a - around), min(len(text), b + around)
        if start > 0:  # cut at a space, so no word is halved
            space = text.find(" ", start, a)
            start = space + 1 if space >= 0 else start
        if end < len(text):
            space = text.rfind(" ", b, end)
            end = space if space >= 0 else end
        if windows and start <= windows[-1][1] + 1:
            windows[-1][1] = max(windows[-1][1], end)
        elif len(windows) < most:
            windows.append([start, end])
    pieces = []
    for start, end in windows:
        inside = [(max(a, start) - start, min(b, end) - start) for a, b in ranges if a < end and b > start]
        pieces.append(highlight(text[start:end], inside))
    out = Markup(" … ").join(pieces)
    return (Markup("… ") if windows[0][0] > 0 else Markup("")) + out + (Markup(" …") if windows[-1][1] < len(text) else Markup(""))


async def _matches(db, fts: str, query: str, segment_ids: list[int]) -> dict[int, list[tuple[int, int]]]:
    """Where ``query`` matched in the text of each segment, by FTS5's own tokenizer and stemming."""
    from .search import fts_columns

    columns = await fts_columns(db, fts)
    if "text" not in columns or not segment_ids:
        return {}
    sql = (f"SELECT [{fts}].rowid, highlight([{fts}], {columns.index('text')}, char(57344), char(57345)), s.text "
           f"FROM [{fts}] JOIN segments s ON s.id = [{fts}].rowid "
           f"WHERE [{fts}] MATCH :q AND [{fts}].rowid IN (SELECT value FROM json_each(:ids))")
    try:
        rows = await db.execute(sql, {"q": query, "ids": json.dumps(segment_ids)})
    except Exception:  # an invalid query: the page shows Datasette's error; the cards just go unmarked
        return {}
    return {r[0]: marked_ranges(r[1], r[2]) for r in rows}


# --- the layouts ----------------------------------------------------------------------------------


def has_layout(project: str | None, database: str, table: str) -> bool:
    """Whether this table of the project has a reading layout (shown unless the page asks for the table)."""
    return database == project and table in LAYOUTS


def reading_layout(project: str | None, database: str, table: str, request) -> str | None:
    """The reading layout for this table page, or None for Datasette's table."""
    if not has_layout(project, database, table) or request is None:
        return None
    args = request.args
    if args.get("_layout") == "table" or "_col" in args or "_nocol" in args:
        return None
    return LAYOUTS[table]


def _search_query(datasette, database: str, table: str, request, search: str | None) -> str | None:
    """The FTS5 query the page ran (Datasette escapes it unless the table searches raw)."""
    if not search:
        return None
    from datasette.utils import escape_fts

    meta = datasette.table_metadata(database, table)
    raw = {"raw": True, "escaped": False}.get(request.args.get("_searchmode"), meta.get("searchmode") == "raw")
    return search if raw else escape_fts(search)


async def reading_items(datasette, database: str, table: str, rows, request, search: str | None = None) -> list[dict]:
    """One dict per row for the reading layout's template: plain values, plus ``text`` as escaped markup."""
    layout = LAYOUTS.get(table)
    db = datasette.get_database(database)
    query = _search_query(datasette, database, table, request, search)
    fts = datasette.table_metadata(database, table).get("fts_table") or "segments_fts"
    if layout == "excerpts":
        return await _excerpts(datasette, db, fts, rows, query)
    if layout == "segments":
        return await _segments(datasette, db, fts, rows, query)
    if layout == "documents":
        return _documents(datasette, database, rows)
    if layout == "codebook":
        return await _codebook(datasette, db, database, table, rows)
    return []


async def _excerpts(datasette, db, fts, rows, query) -> list[dict]:
    rows = [dict(r) for r in rows]
    ranges: dict[int, list[tuple[int, int]]] = {}
    starts: dict[int, int] = {}
    ids = sorted({r["segment_id"] for r in rows if r.get("segment_id") is not None})
    if query and ids:
        ranges = await _matches(db, fts, query, ids)
        starts = {r["id"]: r["start_char"] for r in await db.execute(
            "SELECT id, start_char FROM segments WHERE id IN (SELECT value FROM json_each(:ids))", {"ids": json.dumps(ids)})}
    colors = {r["id"]: colour(r["color"]) for r in await db.execute("SELECT id, color FROM codes")}
    items = []
    for r in rows:
        text = r.get("text") or ""
        shift = (r.get("start_char") or 0) - starts.get(r.get("segment_id"), r.get("start_char") or 0)
        marks = [(a - shift, b - shift) for a, b in ranges.get(r.get("segment_id"), [])]
        document = r.get("document_id")
        items.append({**r, "text": highlight(text, marks), "color": colors.get(r.get("code_id"), DEFAULT_COLOUR),
                      "context_url": passage_url(datasette, document, r.get("seq")) if document is not None else None,
                      "document_url": passage_url(datasette, document) if document is not None else None,
                      "facts": [f for f in (r.get("site"), r.get("role"), r.get("date")) if f]})
    return items


async def _segments(datasette, db, fts, rows, query) -> list[dict]:
    rows = [{k: _plain(v) for k, v in dict(r).items()} for r in rows]
    ids = [r["id"] for r in rows if r.get("id") is not None]
    ranges = await _matches(db, fts, query, ids) if query else {}
    docs = sorted({r["document_id"] for r in rows if r.get("document_id") is not None})
    about = {d["id"]: dict(d) for d in await db.execute(
        "SELECT id, title, site, role, date FROM documents WHERE id IN (SELECT value FROM json_each(:ids))",
        {"ids": json.dumps(docs)})}
    items = []
    for r in rows:
        document = r.get("document_id")
        doc = about.get(document, {})
        items.append({**r, "text": around_matches(r.get("text") or "", ranges.get(r.get("id"), [])),
                      "title": doc.get("title") or document,
                      "facts": [f for f in (doc.get("site"), doc.get("role"), doc.get("date")) if f],
                      "context_url": passage_url(datasette, document, r.get("seq")) if document is not None else None,
                      "document_url": passage_url(datasette, document) if document is not None else None})
    return items


def _opening(text: str) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= OPENING_CHARS else text[:OPENING_CHARS].rsplit(" ", 1)[0] + " …"


def _documents(datasette, database, rows) -> list[dict]:
    from datasette.utils import tilde_encode

    items = []
    for r in rows:
        r = dict(r)
        document = r.get("id")
        items.append({**r, "url": passage_url(datasette, document) if document is not None else None,
                      "row_url": datasette.urls.row(database, "documents", tilde_encode(str(document))),
                      "facts": [f for f in (r.get("kind"), r.get("district"), r.get("site"), r.get("role"), r.get("date")) if f],
                      "opening": _opening(r.get("text"))})
    return items


def _json_list(value) -> list[str]:
    try:
        items = json.loads(value or "[]")
    except ValueError:
        return [str(value)]
    return [str(i) for i in items] if isinstance(items, list) else [str(items)]


async def _codebook(datasette, db, database, table, rows) -> list[dict]:
    """Codes in the page's order, read from ``codes`` whichever of the two tables the page shows."""
    ids = [_get(r, "code_id" if table == "codebook_tree" else "id") for r in rows]
    ids = [i for i in ids if i is not None]
    codes = {r["id"]: dict(r) for r in await db.execute(
        "SELECT * FROM codes WHERE id IN (SELECT value FROM json_each(:ids))", {"ids": json.dumps(ids)})}
    if table == "codebook_tree" and all(_get(r, "coded_segments") is not None for r in rows):
        counts = {_get(r, "code_id"): _get(r, "coded_segments") for r in rows}  # counted once, by the page itself
    else:
        counts = {r["code_id"]: r["coded_segments"] for r in await db.execute(
            "SELECT code_id, coded_segments FROM codebook_tree WHERE code_id IN (SELECT value FROM json_each(:ids))",
            {"ids": json.dumps(ids)})}
    excerpts = datasette.urls.table(database, "excerpts")
    items = []
    for code_id in ids:
        k = codes.get(code_id)
        if k is None:
            continue
        depth = k.get("depth") or 0
        items.append({**k, "depth": depth, "examples": _json_list(k.get("examples")), "terms": _json_list(k.get("terms")),
                      "color": colour(k.get("color")),
                      "count": counts.get(code_id, 0),
                      "excerpts_url": excerpts + "?" + urlencode({"lesson_id" if depth == 0 else "code_id": code_id})})
    return items
