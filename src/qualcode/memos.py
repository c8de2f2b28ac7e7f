"""Memos: a coder's notes on a document, a segment or a code."""

from __future__ import annotations

import sqlite_utils

from .coding import CodingError, find_code, find_coder, find_segment, owned
from .db import now


def add_memo(
    db: sqlite_utils.Database,
    text: str,
    coder: str,
    document: str | None = None,
    segment: str | None = None,
    code: str | None = None,
    create_coder: bool = False,
) -> int:
    """Attach a memo to exactly one of a document, a segment or a code."""
    targets = [t for t in (document, segment, code) if t]
    if len(targets) != 1:
        raise CodingError("a memo is attached to exactly one thing", hint="give one of --document, --segment or --code")
    if not text.strip():
        raise CodingError("the memo is empty", hint="write the memo text after the options")
    with db.atomic():
        coder_id = find_coder(db, coder, create_coder)
        doc_id = seg_id = code_id = None
        if document:
            if not next(db.query("SELECT 1 FROM documents WHERE id = ?", [document]), None):
                raise CodingError(f"unknown document '{document}'", hint="see the documents table for ids")
            doc_id = document
        elif segment:
            seg_id = find_segment(db, segment).id
        else:
            code_id = find_code(db, code, allow_archived=True)
        return db.execute(
            """INSERT INTO memos (coder_id, document_id, segment_id, code_id, text, created_at)
               VALUES (?, ?, ?, ?, ?, ?)""",
            [coder_id, doc_id, seg_id, code_id, text.strip(), now()],
        ).lastrowid


def list_memos(
    db: sqlite_utils.Database,
    document: str | None = None,
    segment: str | None = None,
    code: str | None = None,
    coder: str | None = None,
) -> list[dict]:
    """Memos with what each is attached to, oldest first; filters narrow it down.

    A document filter also finds memos on that document's segments, which is
    what someone reviewing one interview wants to see.
    """
    where, params = [], []
    if document:
        where.append("(m.document_id = ? OR s.document_id = ?)")
        params += [document, document]
    if segment:
        where.append("m.segment_id = ?")
        params.append(find_segment(db, segment).id)
    if code:
        where.append("m.code_id = ?")
        params.append(find_code(db, code, allow_archived=True))
    if coder:
        where.append("c.name = ?")
        params.append(coder)
    sql = f"""
        SELECT m.id, c.name AS coder, m.created_at, m.text,
               CASE WHEN m.document_id IS NOT NULL THEN 'document'
                    WHEN m.segment_id IS NOT NULL THEN 'segment' ELSE 'code' END AS target_type,
               coalesce(m.document_id, s.document_id || ':' || s.seq, m.code_id) AS target,
               coalesce(d.title, sd.title, k.name) AS target_title,
               s.text AS segment_text
        FROM memos m
        LEFT JOIN coders c ON c.id = m.coder_id
        LEFT JOIN segments s ON s.id = m.segment_id
        LEFT JOIN documents d ON d.id = m.document_id
        LEFT JOIN documents sd ON sd.id = s.document_id
        LEFT JOIN codes k ON k.id = m.code_id
        {"WHERE " + " AND ".join(where) if where else ""}
        ORDER BY m.created_at, m.id"""
    return list(db.query(sql, params))


def edit_memo(db: sqlite_utils.Database, memo_id: int, coder: str, text: str) -> None:
    """Change the text of one of ``coder``'s own memos; an empty text deletes it."""
    with db.atomic():
        owned(db, "memos", memo_id, coder, "memo")
        if text.strip():
            db.execute("UPDATE memos SET text = ? WHERE id = ?", [text.strip(), memo_id])
        else:
            db.execute("DELETE FROM memos WHERE id = ?", [memo_id])
