"""A document read as a transcript: its turns in order, each with the codings on it.

One reading serves the terminal (`qualcode show`) and the browser, so a coder sees the same turn
numbers, speakers, times and codes in both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlite_utils

from .errors import QualcodeError


@dataclass
class Turn:
    id: int
    seq: int
    speaker: str | None
    start_time: float | None
    end_time: float | None
    start_char: int
    end_char: int
    text: str
    codings: list[dict] = field(default_factory=list)


@dataclass
class Transcript:
    document: dict
    turns: list[Turn]


def find_document(db: sqlite_utils.Database, document_id: str) -> dict:
    row = next(db.query("SELECT id, title, kind, site, district, role, date, format, word_count, published "
                        "FROM documents WHERE id = ?", [document_id]), None)
    if row is None:
        close = [r["id"] for r in db.query("SELECT id FROM documents WHERE id LIKE ? ORDER BY id LIMIT 3",
                                            [f"%{document_id.strip()[:20]}%"])]
        raise QualcodeError(f"unknown document '{document_id}'",
                            hint=f"did you mean {', '.join(close)}?" if close else "see the documents with `qualcode status`")
    return row


def read_transcript(db: sqlite_utils.Database, document_id: str, coders: list[str] | None = None,
                    codes: list[str] | None = None, segment: int | None = None) -> Transcript:
    """The document's turns with their codings; ``coders``/``codes`` narrow the codings shown, and
    ``segment`` reads that one turn only."""
    document = find_document(db, document_id)
    only = " AND id = ?" if segment is not None else ""
    turns = {r["id"]: Turn(**r) for r in db.query(
        "SELECT id, seq, speaker, start_time, end_time, start_char, end_char, text FROM segments "
        f"WHERE document_id = ?{only} ORDER BY seq", [document_id] + ([segment] if segment is not None else []))}
    where, params = ["s.document_id = ?"], [document_id]
    if segment is not None:
        where.append("s.id = ?")
        params.append(segment)
    if coders is not None and not coders:
        return Transcript(document, list(turns.values()))  # nobody's codings may be shown
    if coders:
        where.append(f"c.name IN ({', '.join('?' * len(coders))})")
        params += coders
    if codes:
        where.append(f"(g.code_id IN ({', '.join('?' * len(codes))}) OR k.lesson_id IN ({', '.join('?' * len(codes))}))")
        params += codes + codes
    for row in db.query(
        f"""SELECT g.id, g.segment_id, g.code_id, k.name AS code_name, k.lesson_id,
                   coalesce(k.color, (SELECT l.color FROM codes l WHERE l.id = k.lesson_id)) AS color, c.name AS coder,
                   g.start_char, g.end_char, g.origin, g.memo, g.created_at
            FROM codings g JOIN segments s ON s.id = g.segment_id JOIN codes k ON k.id = g.code_id
            JOIN coders c ON c.id = g.coder_id
            WHERE {' AND '.join(where)} ORDER BY s.seq, k.sort_order, c.name""", params):
        turns[row.pop("segment_id")].codings.append(row)
    return Transcript(document, list(turns.values()))


def clock(seconds: float | None) -> str:
    """A transcript time as H:MM:SS (or M:SS under an hour), as transcription tools print them."""
    if seconds is None:
        return ""
    whole = int(seconds)
    h, m, s = whole // 3600, whole // 60 % 60, whole % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
