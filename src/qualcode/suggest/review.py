"""Coders' answers to suggestions: the review queue, accept, reject, undo, and batches.

An accepted suggestion becomes the coder's coding with origin ``suggestion``;
a rejected one stays in the table as a rejection, which the next training run
reads as an explicit negative.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

import sqlite_utils

from ..coding import CodingError, find_code, find_coder
from ..db import now, open_project

ORDERS = ("likely", "uncertain")


def queue(db: sqlite_utils.Database, coder: str, order: str = "likely", codes: list[str] | None = None,
          limit: int = 200, blind: bool = False) -> list[dict]:
    """Pending suggestions for segments this coder has not coded with that code.

    ``likely`` puts the highest scores first; ``uncertain`` puts scores nearest
    the decision threshold first (active learning: the answers that teach the
    model most). ``blind`` keeps only suggestions that cannot echo another
    coder's decisions: from the codebook alone, or from a model trained on this
    coder's codings only (`qualcode suggest --coder NAME`).
    """
    if order not in ORDERS:
        raise CodingError(f"unknown order '{order}'", hint="use likely or uncertain")
    coder_id = find_coder(db, coder)
    where, params = "", [coder_id]
    if codes:
        ids = [find_code(db, c) for c in codes]
        where = f" AND (x.code_id IN ({', '.join('?' * len(ids))}) OR k.lesson_id IN ({', '.join('?' * len(ids))}))"
        params += ids + ids
    if blind:
        where += " AND (r.training_size = 0 OR json_extract(r.parameters, '$.coders') = json_array(?))"
        params.append(coder)
    threshold = "coalesce(json_extract(r.parameters, '$.thresholds.\"' || x.code_id || '\"'), 0.5)"
    sort = "x.score DESC" if order == "likely" else f"abs(x.score - {threshold}) ASC"
    return list(db.query(
        f"""SELECT x.id, x.segment_id, x.code_id, x.score, x.method, x.evidence, x.model_run_id,
                   k.name AS code_name, k.definition, s.document_id, s.seq, s.speaker, s.text,
                   (SELECT p.text FROM segments p WHERE p.document_id = s.document_id AND p.seq = s.seq - 1) AS previous,
                   (SELECT p.speaker FROM segments p WHERE p.document_id = s.document_id AND p.seq = s.seq - 1) AS previous_speaker,
                   d.title
            FROM suggestions x
            JOIN codes k ON k.id = x.code_id
            JOIN segments s ON s.id = x.segment_id
            JOIN documents d ON d.id = s.document_id
            LEFT JOIN model_runs r ON r.id = x.model_run_id
            WHERE x.status = 'pending' AND k.archived = 0
              AND NOT EXISTS (SELECT 1 FROM codings g WHERE g.segment_id = x.segment_id
                              AND g.code_id = x.code_id AND g.coder_id = ?) {where}
            ORDER BY {sort}, x.id LIMIT {int(limit)}""", params))


@dataclass
class Decision:
    suggestion_id: int
    status: str
    coding_id: int | None = None


def decide(db: sqlite_utils.Database, suggestion_id: int, coder: str, accept: bool,
           other_code: str | None = None) -> Decision:
    """Accept or reject one suggestion as ``coder``; ``other_code`` rejects it and codes that instead."""
    with db.atomic():
        row = next(db.query("SELECT * FROM suggestions WHERE id = ?", [suggestion_id]), None)
        if row is None:
            raise CodingError(f"unknown suggestion {suggestion_id}")
        coder_id = find_coder(db, coder)
        code_id = find_code(db, other_code) if other_code else row["code_id"]
        status = "accepted" if accept and not other_code else "rejected"
        db.execute("UPDATE suggestions SET status = ?, decided_by = ?, decided_at = ? WHERE id = ?",
                   [status, coder_id, now(), suggestion_id])
        coding_id = None
        if accept or other_code:
            origin = "suggestion" if not other_code else "manual"
            cursor = db.execute(
                """INSERT OR IGNORE INTO codings (segment_id, code_id, coder_id, origin, created_at)
                   VALUES (?, ?, ?, ?, ?)""", [row["segment_id"], code_id, coder_id, origin, now()])
            coding_id = cursor.lastrowid if cursor.rowcount else None
    return Decision(suggestion_id, status, coding_id)


def undo(db: sqlite_utils.Database, decision: Decision) -> None:
    """Put a decided suggestion back in the queue and remove the coding it made."""
    with db.atomic():
        db.execute("UPDATE suggestions SET status = 'pending', decided_by = NULL, decided_at = NULL WHERE id = ?",
                   [decision.suggestion_id])
        if decision.coding_id:
            db.execute("DELETE FROM codings WHERE id = ?", [decision.coding_id])


def decide_batch(db: sqlite_utils.Database, coder: str, accept: bool, code: str | None = None,
                 min_score: float | None = None, max_score: float | None = None) -> int:
    """Accept (or reject) every pending suggestion in a score range, in one transaction."""
    clauses, params = ["status = 'pending'"], []
    if code:
        code_id = find_code(db, code)
        clauses.append("code_id IN (SELECT id FROM codes WHERE id = ? OR lesson_id = ?)")
        params += [code_id, code_id]
    if min_score is not None:
        clauses.append("score >= ?")
        params.append(min_score)
    if max_score is not None:
        clauses.append("score <= ?")
        params.append(max_score)
    if min_score is None and max_score is None:
        raise CodingError("give --min-score or --max-score", hint="a batch decision needs a score range")
    with db.atomic():
        coder_id = find_coder(db, coder)
        ids = [r["id"] for r in db.query(f"SELECT id FROM suggestions WHERE {' AND '.join(clauses)}", params)]
        stamp = now()
        status = "accepted" if accept else "rejected"
        for chunk in range(0, len(ids), 500):
            part = ids[chunk:chunk + 500]
            marks = ", ".join("?" * len(part))
            db.execute(f"UPDATE suggestions SET status = ?, decided_by = ?, decided_at = ? WHERE id IN ({marks})",
                       [status, coder_id, stamp, *part])
            if accept:
                db.execute(
                    f"""INSERT OR IGNORE INTO codings (segment_id, code_id, coder_id, origin, created_at)
                        SELECT segment_id, code_id, ?, 'suggestion', ? FROM suggestions WHERE id IN ({marks})""",
                    [coder_id, stamp, *part])
    return len(ids)


class Retrainer:
    """Retrains in a background thread, on its own connection, so the coder never waits."""

    def __init__(self, db_path: str, codes: list[str] | None = None, coders: list[str] | None = None) -> None:
        self.db_path = db_path
        self.codes = codes
        self.coders = coders
        self.thread: threading.Thread | None = None
        self.runs = 0
        self.error: str | None = None

    def start(self) -> bool:
        if self.thread is not None and self.thread.is_alive():
            return False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return True

    def _run(self) -> None:
        from . import suggest

        db = open_project(self.db_path, create=False)
        try:
            suggest(db, self.codes, coders=self.coders)
            self.runs += 1
        except Exception as e:  # reported to the coder, never fatal to their session
            self.error = str(e)
        finally:
            db.close()

    def wait(self, timeout: float | None = None) -> None:
        if self.thread is not None:
            self.thread.join(timeout)


def evidence_terms(suggestion: dict) -> list[str]:
    return json.loads(suggestion["evidence"] or "{}").get("terms", [])
