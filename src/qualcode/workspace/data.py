"""What the workspace pages show, read through the library, filtered by who is looking.

Pure functions of a project connection: the page handlers run them in a thread and render the
result, and the tests call them directly.
"""

from __future__ import annotations

import json

import sqlite_utils

from ..transcript import read_transcript
from .render import colour, crlf_positions, pieces, suggestion_view


def codebook(db: sqlite_utils.Database) -> list[dict]:
    """Every active code in tree order, with its guidance, colour (a lesson's for sub-codes without
    one) and how many segments carry it.

    Counting reads every coding (0.4 s at a million segments), so the answer is kept on the
    connection until anyone commits a change (SQLite's data_version, and this connection's own)."""
    key = (db.execute("PRAGMA data_version").fetchone()[0], db.conn.total_changes)
    cached = getattr(db, "_qualcode_codebook", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    rows = list(db.query(
        """SELECT k.id, k.name, k.parent_id, k.lesson_id, k.depth, k.definition, k.include, k.exclude,
                  k.examples, k.terms, coalesce(k.color, l.color) AS color,
                  (SELECT count(DISTINCT g.segment_id) FROM codings g JOIN codes c ON c.id = g.code_id
                   WHERE c.id = k.id OR c.lesson_id = k.id AND k.depth = 0) AS segments
           FROM codes k LEFT JOIN codes l ON l.id = k.lesson_id
           WHERE k.archived = 0 ORDER BY k.sort_order"""))
    for r in rows:
        r["color"] = colour(r["color"])
        r["examples"] = json.loads(r["examples"] or "[]")
        r["terms"] = json.loads(r["terms"] or "[]")
    db._qualcode_codebook = (key, rows)
    return rows


def coder_names(db: sqlite_utils.Database, visible: list[str] | None) -> list[str]:
    names = [r["name"] for r in db.query("SELECT name FROM coders ORDER BY consensus, name")]
    return names if visible is None else [n for n in names if n in visible]


def pending_suggestions(db: sqlite_utils.Database, document_id: str, coder: str | None, blind: bool,
                        segment: int | None = None) -> dict[int, list[dict]]:
    """Pending suggestions per segment of a document, best first, with their model run; for a coder,
    only codes they have not applied there, and for a blind coder only suggestions that cannot echo
    another coder (from the codebook alone, or a model trained on their own codings)."""
    where, params = "", [document_id]
    if segment is not None:
        where += " AND x.segment_id = ?"
        params.append(segment)
    if coder is not None:
        where += (" AND NOT EXISTS (SELECT 1 FROM codings g JOIN coders c ON c.id = g.coder_id WHERE "
                  "g.segment_id = x.segment_id AND g.code_id = x.code_id AND c.name = ?)")
        params.append(coder)
    if blind:
        where += " AND (r.training_size = 0 OR json_extract(r.parameters, '$.coders') = json_array(?))"
        params.append(coder)
    out: dict[int, list[dict]] = {}
    for row in db.query(
        f"""SELECT x.id, x.segment_id, x.code_id, k.name AS code_name, x.score, x.method, x.evidence,
                   x.model_run_id, r.created_at AS run_at, r.training_size
            FROM suggestions x JOIN segments s ON s.id = x.segment_id JOIN codes k ON k.id = x.code_id
            LEFT JOIN model_runs r ON r.id = x.model_run_id
            WHERE s.document_id = ? AND x.status = 'pending' AND k.archived = 0 {where}
            ORDER BY x.score DESC""", params):
        out.setdefault(row["segment_id"], []).append(suggestion_view(row))
    return out


def memos(db: sqlite_utils.Database, document_id: str, visible: list[str] | None) -> dict:
    """The document's memos and its turns' memos, by the coders this visitor may see."""
    rows = list(db.query(
        """SELECT m.id, m.document_id, m.segment_id, m.text, m.created_at, c.name AS coder FROM memos m
           JOIN coders c ON c.id = m.coder_id LEFT JOIN segments s ON s.id = m.segment_id
           WHERE m.document_id = ? OR s.document_id = ? ORDER BY m.created_at, m.id""", [document_id, document_id]))
    if visible is not None:
        rows = [r for r in rows if r["coder"] in visible]
    by_turn: dict[int, list[dict]] = {}
    for r in rows:
        if r["segment_id"]:
            by_turn.setdefault(r["segment_id"], []).append(r)
    return {"document": [r for r in rows if r["document_id"]], "turns": by_turn}


def turn_view(turn, suggestions: list[dict], turn_memos: list[dict]) -> dict:
    for c in turn.codings:
        c["color"] = colour(c.get("color"))
        if c["start_char"] is not None:
            c["words"] = turn.text[c["start_char"] - turn.start_char:c["end_char"] - turn.start_char]
    return {
        "id": turn.id, "seq": turn.seq, "speaker": turn.speaker, "start_time": turn.start_time,
        "start_char": turn.start_char, "end_char": turn.end_char, "codings": turn.codings,
        "pieces": pieces(turn.start_char, turn.text, turn.codings, suggestions),
        "crlf": crlf_positions(turn.text, turn.start_char), "suggestions": suggestions, "memos": turn_memos,
    }


def document_page(db: sqlite_utils.Database, document_id: str, visible: list[str] | None, coder: str | None,
                  blind: bool, coders: list[str] | None = None, codes: list[str] | None = None) -> dict:
    """Everything the transcript page shows, for one visitor."""
    shown = visible if not coders else [c for c in coders if visible is None or c in visible]
    transcript = read_transcript(db, document_id, shown, codes)
    suggestions = pending_suggestions(db, document_id, coder, blind) if coder else {}
    notes = memos(db, document_id, visible)
    turns = [turn_view(t, suggestions.get(t.id, []), notes["turns"].get(t.id, [])) for t in transcript.turns]
    return {"document": transcript.document, "turns": turns, "document_memos": notes["document"],
            "coders": coder_names(db, visible), "codebook": codebook(db)}


def one_turn(db: sqlite_utils.Database, segment_id: int, visible: list[str] | None, coder: str | None,
             blind: bool) -> dict:
    """One turn as the page shows it, after a write changed it."""
    document_id = db.execute("SELECT document_id FROM segments WHERE id = ?", [segment_id]).fetchone()[0]
    turn = read_transcript(db, document_id, visible, segment=segment_id).turns[0]
    suggestions = pending_suggestions(db, document_id, coder, blind, segment_id).get(segment_id, []) if coder else []
    return turn_view(turn, suggestions, memos(db, document_id, visible)["turns"].get(segment_id, []))


def home(db: sqlite_utils.Database, coder: str | None) -> list[dict]:
    """Every document with the coder's progress; the documents assigned to them first."""
    rows = list(db.query(
        """SELECT d.id, d.title, d.kind, d.site, d.role, d.date, d.word_count,
                  (SELECT count(*) FROM segments s WHERE s.document_id = d.id) AS segments,
                  (SELECT count(DISTINCT g.segment_id) FROM codings g JOIN segments s ON s.id = g.segment_id
                   JOIN coders c ON c.id = g.coder_id WHERE s.document_id = d.id AND c.name = :coder) AS coded,
                  (SELECT count(*) FROM suggestions x JOIN segments s ON s.id = x.segment_id
                   WHERE s.document_id = d.id AND x.status = 'pending') AS pending,
                  EXISTS (SELECT 1 FROM assignments a JOIN coders c ON c.id = a.coder_id
                          WHERE a.document_id = d.id AND c.name = :coder) AS assigned
           FROM documents d ORDER BY assigned DESC, d.id""", {"coder": coder or ""}))
    return rows


def compare(db: sqlite_utils.Database, document_id: str, coders: list[str]) -> dict:
    """Two (or more) coders' codings of a document, turn by turn, with each difference marked."""
    transcript = read_transcript(db, document_id, coders)
    decided = {(r["segment_id"], r["code_id"]): r["decision"] for r in db.query(
        """SELECT x.segment_id, x.code_id, x.decision FROM consensus_decisions x JOIN segments s ON s.id = x.segment_id
           WHERE s.document_id = ?""", [document_id])}
    turns = []
    for t in transcript.turns:
        by_coder = {c: sorted({g["code_id"] for g in t.codings if g["coder"] == c}) for c in coders}
        every = sorted(set().union(*by_coder.values())) if by_coder else []
        differ = [code for code in every if not all(code in codes for codes in by_coder.values())]
        turns.append({"id": t.id, "seq": t.seq, "speaker": t.speaker, "text": t.text, "by_coder": by_coder,
                      "differ": differ, "decided": {code: decided.get((t.id, code)) for code in differ}})
    names = {r["id"]: r["name"] for r in db.query("SELECT id, name FROM codes")}
    return {"document": transcript.document, "turns": turns, "coders": coders, "names": names,
            "disagreements": sum(len(t["differ"]) for t in turns)}
