"""Team coding: who codes which documents, where coders differ, and the consensus they settle.

A consensus coder is a coder row flagged ``consensus``: the team's settled
decisions are its codings, so every query, export and Datasette view reads
them like anyone else's, and the individual coders' originals stay untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sqlite_utils

from .agreement import coder_ids, units
from .coding import CodingError, find_code, find_coder
from .db import now


# --- assignments --------------------------------------------------------------------------------


def assign(db: sqlite_utils.Database, coders: list[str], documents: list[str], blind: bool = True) -> int:
    """Give each document to each coder; returns how many assignments are new."""
    ids = [find_coder(db, c) for c in coders]
    known = {r["id"] for r in db.query("SELECT id FROM documents")}
    missing = [d for d in documents if d not in known]
    if missing:
        raise CodingError(f"unknown document{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
                          hint="see the documents table or `qualcode status` for their ids")
    added = 0
    with db.atomic():
        for document in documents:
            for coder in ids:
                added += db.execute(
                    "INSERT OR IGNORE INTO assignments (document_id, coder_id, blind, assigned_at) VALUES (?, ?, ?, ?)",
                    [document, coder, int(blind), now()]).rowcount
    return added


def assignments(db: sqlite_utils.Database, coder: str | None = None) -> list[dict]:
    """Each assignment with how far the coder has got (segments they coded in the document)."""
    where, params = ("WHERE c.name = ?", [coder]) if coder else ("", [])
    if coder:
        find_coder(db, coder)
    return list(db.query(
        f"""SELECT a.document_id, c.name AS coder, a.blind, a.assigned_at,
                   (SELECT count(DISTINCT g.segment_id) FROM codings g JOIN segments s ON s.id = g.segment_id
                    WHERE s.document_id = a.document_id AND g.coder_id = a.coder_id) AS coded_segments,
                   (SELECT count(*) FROM segments s WHERE s.document_id = a.document_id) AS segments
            FROM assignments a JOIN coders c ON c.id = a.coder_id {where}
            ORDER BY c.name, a.document_id""", params))


def is_blind(db: sqlite_utils.Database, coder: str) -> bool:
    """Whether any of the coder's assignments is blind: then their views hide other coders' work."""
    return bool(db.execute("SELECT 1 FROM assignments a JOIN coders c ON c.id = a.coder_id "
                           "WHERE c.name = ? AND a.blind LIMIT 1", [coder]).fetchone())


# --- the consensus coder ------------------------------------------------------------------------


def consensus_coder(db: sqlite_utils.Database, name: str) -> int:
    """The consensus coder called ``name``, created when new; a person's name is refused."""
    row = next(db.query("SELECT id, consensus FROM coders WHERE name = ?", [name.strip()]), None)
    if row and not row["consensus"]:
        raise CodingError(f"'{name}' is a coder, not a consensus coder",
                          hint="choose another name for the consensus, e.g. --as Consensus")
    if row:
        return row["id"]
    return db.execute("INSERT INTO coders (name, consensus, created_at) VALUES (?, 1, ?)", [name.strip(), now()]).lastrowid


def consensus_names(db: sqlite_utils.Database) -> list[str]:
    """Consensus coders that have codings: what exports read by default."""
    return [r["name"] for r in db.query(
        "SELECT c.name FROM coders c WHERE c.consensus AND EXISTS (SELECT 1 FROM codings g WHERE g.coder_id = c.id) "
        "ORDER BY c.name")]


def subcodes(db: sqlite_utils.Database, codes: list[str] | None) -> list[str] | None:
    """The sub-codes meant by ``codes``: a lesson means all of its sub-codes."""
    if not codes:
        return None
    return list(dict.fromkeys(r["id"] for c in codes for r in db.query(
        "SELECT id FROM codes WHERE (id = ? OR lesson_id = ?) AND depth = 1 ORDER BY sort_order",
        [find_code(db, c, allow_archived=True)] * 2)))


# --- disagreements ------------------------------------------------------------------------------


@dataclass
class Disagreement:
    segment_id: int
    segment: str
    speaker: str | None
    text: str
    code_id: str
    code_name: str
    applied_by: list[str]
    not_applied_by: list[str]
    memos: dict[str, list[str]] = field(default_factory=dict)
    decision: str | None = None


def disagreements(db: sqlite_utils.Database, coders: list[str], codes: list[str] | None = None,
                  consensus: str | None = None) -> list[Disagreement]:
    """Each (segment, sub-code) on which the coders differ, in document and turn order,
    with each coder's memos on the coding and on the segment."""
    ids = coder_ids(db, coders)
    u = units(db, ids, "code", subcodes(db, codes))
    found = np.argwhere(np.any(u.marks != u.marks[:, :, :1], axis=2))
    if not len(found):
        return []
    segments = {r["id"]: r for r in db.query(
        f"SELECT id, document_id || ':' || seq AS ref, speaker, text FROM segments "
        f"WHERE id IN ({', '.join('?' * len(found))})", [u.segments[i] for i, _ in found])}
    names = {r["id"]: r["name"] for r in db.query("SELECT id, name FROM codes")}
    decided = {(r["segment_id"], r["code_id"]): r["decision"] for r in db.query(
        "SELECT d.segment_id, d.code_id, d.decision FROM consensus_decisions d JOIN coders c ON c.id = d.coder_id "
        "WHERE c.name = ?", [consensus])} if consensus else {}
    memos = _memos(db, list(segments), ids)
    out = []
    for i, j in found:
        sid, code = u.segments[i], u.codes[j]
        seg = segments[sid]
        by_coder = {name: [text for target, text in memos.get((sid, name), []) if target in (None, code)]
                    for name in u.coders}
        out.append(Disagreement(
            sid, seg["ref"], seg["speaker"], seg["text"], code, names[code],
            [c for k, c in enumerate(u.coders) if u.marks[i, j, k]],
            [c for k, c in enumerate(u.coders) if not u.marks[i, j, k]],
            {name: texts for name, texts in by_coder.items() if texts}, decided.get((sid, code))))
    return out


def _memos(db, segments: list[int], coders: dict[str, int]) -> dict[tuple[int, str], list[tuple[str | None, str]]]:
    """Each coder's memos on these segments: (code, text) for a coding's memo (filed under the
    code and its parent), (None, text) for a memo on the segment itself."""
    who = {cid: name for name, cid in coders.items()}
    seg_marker, coder_marker = ", ".join("?" * len(segments)), ", ".join("?" * len(who))
    memos: dict[tuple[int, str], list[tuple[str | None, str]]] = {}
    for segment, coder, code, parent, text in db.execute(
            f"""SELECT g.segment_id, g.coder_id, g.code_id, k.parent_id, g.memo FROM codings g
                JOIN codes k ON k.id = g.code_id
                WHERE g.segment_id IN ({seg_marker}) AND g.coder_id IN ({coder_marker}) AND g.memo IS NOT NULL
                ORDER BY g.id""", [*segments, *who]):
        for target in {code, parent} - {None}:
            memos.setdefault((segment, who[coder]), []).append((target, text))
    for segment, coder, text in db.execute(
            f"""SELECT segment_id, coder_id, text FROM memos
                WHERE segment_id IN ({seg_marker}) AND coder_id IN ({coder_marker}) ORDER BY id""", [*segments, *who]):
        memos.setdefault((segment, who[coder]), []).append((None, text))
    return memos


# --- reconciling ---------------------------------------------------------------------------------


def adopt_agreements(db: sqlite_utils.Database, coders: list[str], consensus: str,
                     codes: list[str] | None = None) -> int:
    """Record as consensus every sub-code all the coders applied to a segment; returns codings added."""
    ids = coder_ids(db, coders)
    u = units(db, ids, "code", subcodes(db, codes))
    cid = consensus_coder(db, consensus)
    stamp = now()
    added = 0
    with db.atomic():
        for i, j in np.argwhere(np.all(u.marks, axis=2)):
            added += db.execute(
                "INSERT OR IGNORE INTO codings (segment_id, code_id, coder_id, origin, created_at) "
                "VALUES (?, ?, ?, 'manual', ?)", [u.segments[i], u.codes[j], cid, stamp]).rowcount
    return added


def decide(db: sqlite_utils.Database, consensus: str, disagreement: Disagreement, apply: bool,
           memo: str | None = None) -> None:
    """The consensus on one disagreement: the consensus coder applies the code or not, and the
    decision is kept (with whose codings it settled) so a later walk does not ask again."""
    with db.atomic():
        cid = consensus_coder(db, consensus)
        between = ", ".join(sorted(disagreement.applied_by + disagreement.not_applied_by))
        db.execute(
            """INSERT INTO consensus_decisions (segment_id, code_id, coder_id, decision, between_coders, memo, decided_at)
               VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (segment_id, code_id, coder_id) DO UPDATE SET
                 decision = excluded.decision, between_coders = excluded.between_coders,
                 memo = excluded.memo, decided_at = excluded.decided_at""",
            [disagreement.segment_id, disagreement.code_id, cid, "apply" if apply else "reject", between, memo, now()])
        if apply:
            db.execute("INSERT OR IGNORE INTO codings (segment_id, code_id, coder_id, origin, memo, created_at) "
                       "VALUES (?, ?, ?, 'manual', ?, ?)", [disagreement.segment_id, disagreement.code_id, cid, memo, now()])
        else:
            db.execute("DELETE FROM codings WHERE segment_id = ? AND code_id = ? AND coder_id = ?",
                       [disagreement.segment_id, disagreement.code_id, cid])
        disagreement.decision = "apply" if apply else "reject"
