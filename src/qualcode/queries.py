"""Questions report writers ask of the coding: how often, where, with what, and the words.

Counts are of distinct segments, whatever the number of coders who applied a
code, and roll up from sub-codes to lessons (a segment coded with any sub-code
of a lesson counts once for the lesson). The same SQL views back Datasette.
"""

from __future__ import annotations

import sqlite3

import sqlite_utils

from .coding import CodingError, find_code, find_coder

#: Document attributes that are columns; anything else is read from the attributes JSON.
ATTRIBUTE_COLUMNS = ("site", "district", "role", "kind", "date", "title")


def attribute_sql(name: str, alias: str = "d") -> str:
    """SQL for a document attribute, whether a column or a key of ``attributes``."""
    if name in ATTRIBUTE_COLUMNS or name == "id":
        return f"{alias}.{name}"
    if not name.replace("_", "").replace("-", "").isalnum():
        raise CodingError(f"'{name}' is not an attribute name", hint="use letters, digits, - and _")
    return f"json_extract({alias}.attributes, '$.\"{name}\"')"


def where_sql(where: dict[str, list[str]] | None) -> tuple[list[str], list]:
    """SQL clauses (on documents ``d``) and parameters for ATTRIBUTE -> allowed values."""
    clauses, params = [], []
    for name, values in (where or {}).items():
        clauses.append(f"{attribute_sql(name)} IN ({', '.join('?' * len(values))})")
        params += list(values)
    return clauses, params


def _coder_filter(db: sqlite_utils.Database, coders: list[str] | None, alias: str = "x") -> tuple[str, list]:
    if not coders:
        return "", []
    ids = [find_coder(db, c) for c in coders]
    return f" AND {alias}.coder_id IN ({', '.join('?' * len(ids))})", ids


def _level_filter(level: str) -> str:
    if level not in ("code", "lesson", "all"):
        raise CodingError(f"unknown level '{level}'", hint="use code, lesson or all")
    return {"code": " AND k.depth > 0", "lesson": " AND k.depth = 0", "all": ""}[level]


def frequencies(
    db: sqlite_utils.Database, by: str = "site", level: str = "all", coders: list[str] | None = None
) -> list[dict]:
    """Counts of segments, documents and distinct speakers per code and attribute value."""
    attr = attribute_sql(by)
    coder_sql, params = _coder_filter(db, coders)
    return list(db.query(
        f"""SELECT k.lesson_id, x.code_id, k.name AS code_name, k.depth, {attr} AS value,
                   count(DISTINCT x.segment_id) AS segments,
                   count(DISTINCT d.id) AS documents,
                   count(DISTINCT s.document_id || ':' || coalesce(s.speaker, '')) AS speakers
            FROM coded_segments x
            JOIN codes k ON k.id = x.code_id
            JOIN segments s ON s.id = x.segment_id
            JOIN documents d ON d.id = s.document_id
            WHERE 1 = 1 {coder_sql} {_level_filter(level)}
            GROUP BY x.code_id, value
            ORDER BY k.sort_order, value""",
        params,
    ))


def cooccurrence(
    db: sqlite_utils.Database, level: str = "code", coders: list[str] | None = None, code: str | None = None
) -> list[dict]:
    """Pairs of codes applied to the same segment, with c = n12 / (n1 + n2 − n12)."""
    if level not in ("code", "lesson"):
        raise CodingError(f"unknown level '{level}'", hint="use code or lesson")
    coder_sql, params = _coder_filter(db, coders)
    depth = "k.depth > 0" if level == "code" else "k.depth = 0"
    code_sql = ""
    if code:
        code_id = find_code(db, code, allow_archived=True)
        code_sql = " AND (a.code_id = ? OR b.code_id = ?)"
        params_code = [code_id, code_id]
    else:
        params_code = []
    return list(db.query(
        f"""WITH pairs AS (SELECT DISTINCT x.segment_id, x.code_id FROM coded_segments x
                           JOIN codes k ON k.id = x.code_id WHERE {depth} {coder_sql}),
                 totals AS (SELECT code_id, count(*) AS n FROM pairs GROUP BY code_id)
            SELECT a.code_id AS code_a, b.code_id AS code_b, count(*) AS n12, ta.n AS n1, tb.n AS n2,
                   round(1.0 * count(*) / (ta.n + tb.n - count(*)), 4) AS coefficient
            FROM pairs a JOIN pairs b ON a.segment_id = b.segment_id AND a.code_id < b.code_id
            JOIN totals ta ON ta.code_id = a.code_id JOIN totals tb ON tb.code_id = b.code_id
            WHERE 1 = 1 {code_sql}
            GROUP BY a.code_id, b.code_id
            ORDER BY coefficient DESC, n12 DESC""",
        params + params_code,
    ))


def excerpts(
    db: sqlite_utils.Database,
    codes: list[str] | None = None,
    where: dict[str, list[str]] | None = None,
    coders: list[str] | None = None,
    search: str | None = None,
) -> list[dict]:
    """Coded excerpts with their document attributes, in document and turn order.

    ``codes`` may name lessons: a lesson selects all its sub-codes. ``where``
    maps an attribute to the values allowed; ``search`` is an FTS5 query
    over the segment text.
    """
    clauses, params = ["1 = 1"], []
    if codes:
        ids = [find_code(db, c, allow_archived=True) for c in codes]
        marks = ", ".join("?" * len(ids))
        clauses.append(f"(e.code_id IN ({marks}) OR e.lesson_id IN ({marks}))")
        params += ids + ids
    more, more_params = where_sql(where)
    clauses += more
    params += more_params
    if coders:
        for c in coders:
            find_coder(db, c)
        clauses.append(f"e.coder IN ({', '.join('?' * len(coders))})")
        params += list(coders)
    if search:
        check_search(db, search)
        clauses.append("e.segment_id IN (SELECT rowid FROM segments_fts WHERE segments_fts MATCH ?)")
        params.append(search)
    sql = f"""SELECT e.*, d.attributes, k.sort_order
              FROM excerpts e JOIN documents d ON d.id = e.document_id JOIN codes k ON k.id = e.code_id
              WHERE {' AND '.join(clauses)}
              ORDER BY d.date, e.document_id, e.seq, k.sort_order, e.coder"""
    return list(db.query(sql, params))


def check_search(db: sqlite_utils.Database, search: str) -> None:
    """Refuse a full-text query SQLite cannot parse, in words a researcher can act on."""
    try:
        db.execute("SELECT 1 FROM segments_fts WHERE segments_fts MATCH ? LIMIT 1", [search]).fetchall()
    except sqlite3.OperationalError as e:
        raise CodingError(f"bad search '{search}': {e}", hint='quote phrases, e.g. "release time"; use * for prefixes') from None
