"""Working apart: a coder's own copy of the project, and bringing their work back.

Everything is matched by what it means, not by row id: segments by
``DOCUMENT:SEQ`` (and their text), coders by name, codes by id, memos by
author, target and text. So a merge adds only what is new, merging the same
file twice changes nothing, and two copies that both added rows since the
clone do not collide. A coding removed here is remembered (``coding_removals``,
each with a random id the copy inherits), so a copy made before the removal
cannot bring it back unnoticed.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from .db import APPLICATION_ID, copy_project, schema_version
from .errors import QualcodeError


class MergeError(QualcodeError):
    """A file that cannot be merged into this project."""


def clone(db: sqlite_utils.Database, out: str | Path, force: bool = False, for_coder: str | None = None) -> Path:
    """A copy of the project for one coder to work in (SQLite's backup API, so a project
    being written to is copied consistently).

    ``for_coder`` makes a blind copy: other coders' codings, memos and decisions, and the
    suggestions learned from them, are left out of the file altogether (and its free pages
    cleared), so nothing in it can show that coder what colleagues decided.
    """
    from .privacy import check_target, staged_output

    out = Path(out)
    if for_coder:
        from .coding import find_coder

        keep = find_coder(db, for_coder)
    check_target(db.conn.execute("PRAGMA database_list").fetchone()[2], out, force)
    # Built aside and moved into place when complete: a failed or killed clone leaves no file,
    # and never a blind copy that still holds colleagues' work.
    with staged_output(out) as staged:
        target = copy_project(db, staged)
        try:
            if for_coder:
                target.execute("PRAGMA foreign_keys = ON")  # outside the transaction, where it takes effect
                with target:
                    target.execute("DELETE FROM codings WHERE coder_id != ?", [keep])
                    target.execute("DELETE FROM coding_removals WHERE coder_id != ?", [keep])
                    target.execute("DELETE FROM memos WHERE coder_id IS NOT ? AND coder_id IS NOT NULL", [keep])
                    target.execute("DELETE FROM consensus_decisions")
                    target.execute("DELETE FROM suggestions WHERE status = 'pending' OR decided_by IS NOT ?", [keep])
                    target.execute("UPDATE suggestions SET model_run_id = NULL")
                    target.execute("DELETE FROM model_runs")
                    target.execute("DELETE FROM assignments WHERE coder_id != ?", [keep])
                target.execute("VACUUM")
        finally:
            target.close()
    return out


@dataclass
class MergeResult:
    coders: int = 0
    codings: int = 0
    memos: int = 0
    decisions: int = 0
    consensus: int = 0
    assignments: int = 0
    conflicts: list[str] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return self.coders + self.codings + self.memos + self.decisions + self.consensus + self.assignments


def _open_theirs(path: Path, ours: sqlite_utils.Database) -> sqlite_utils.Database:
    if not path.is_file():
        raise MergeError("no such file", str(path))
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    except sqlite3.DatabaseError:
        raise MergeError("not a qualcode project (not an SQLite database)", str(path)) from None
    if app_id != APPLICATION_ID:
        conn.close()
        raise MergeError("not a qualcode project", str(path))
    theirs = sqlite_utils.Database(conn)
    if schema_version(theirs) != schema_version(ours):
        conn.close()
        raise MergeError("made with a different version of qualcode", str(path),
                         hint="open both files with the same qualcode (e.g. `qualcode status --db FILE`) first")
    return theirs


def _check_documents(ours: sqlite_utils.Database, theirs: sqlite_utils.Database, path: Path) -> None:
    """Their documents must be ours byte for byte (same content hash) and segmented alike."""
    mine = {r["id"]: r["sha256"] for r in ours.query("SELECT id, sha256 FROM documents")}
    differ = [r["id"] for r in theirs.query("SELECT id, sha256 FROM documents ORDER BY id") if mine.get(r["id"]) != r["sha256"]]
    if not differ:
        segs = {(r["document_id"], r["seq"]): r["text"] for r in ours.query("SELECT document_id, seq, text FROM segments")}
        differ = sorted({r["document_id"] for r in theirs.query("SELECT document_id, seq, text FROM segments")
                         if segs.get((r["document_id"], r["seq"])) != r["text"]})
    if differ:
        shown = ", ".join(differ[:5]) + (f" and {len(differ) - 5} more" if len(differ) > 5 else "")
        raise MergeError(f"documents differ from this project's: {shown}", str(path),
                         hint="merge only copies made with `qualcode clone` from this project")


def merge(db: sqlite_utils.Database, path: str | Path) -> MergeResult:
    """Bring a copy's coders, codings, memos, suggestion decisions, consensus decisions and
    assignments into this project, in one transaction.

    Where the same coder decided the same segment and code differently in the two files
    (applied in one, rejected or removed since the copy was made in the other), ours is
    kept and the conflict reported, once. No memo is dropped: a coding memo that cannot
    go on the coding here (ours has another, or the coding is not kept) becomes the
    coder's memo on the segment, reported as a conflict when ours differs."""
    path = Path(path)
    if path.resolve() == Path(db.conn.execute("PRAGMA database_list").fetchone()[2]).resolve():
        raise MergeError("cannot merge a project into itself", str(path))
    theirs = _open_theirs(path, db)
    try:
        _check_documents(db, theirs, path)
        used = theirs.query("SELECT code_id FROM codings UNION SELECT code_id FROM suggestions "
                            "UNION SELECT code_id FROM consensus_decisions UNION SELECT code_id FROM memos")
        missing = sorted({r["code_id"] for r in used if r["code_id"]} - {r["id"] for r in db.query("SELECT id FROM codes")})
        if missing:
            raise MergeError(f"codes not in this project: {', '.join(missing)}", str(path),
                             hint="load the codebook they used (`qualcode codebook load`) and merge again")
        with db.atomic():
            return _merge(db, theirs)
    finally:
        theirs.conn.close()


def _merge(db: sqlite_utils.Database, theirs: sqlite_utils.Database) -> MergeResult:
    result = MergeResult()
    coder = {}
    for r in theirs.query("SELECT id, name, consensus, created_at FROM coders"):
        row = next(db.query("SELECT id FROM coders WHERE name = ?", [r["name"]]), None)
        if row is None:
            row = {"id": db.execute("INSERT INTO coders (name, consensus, created_at) VALUES (?, ?, ?)",
                                    [r["name"], r["consensus"], r["created_at"]]).lastrowid}
            result.coders += 1
        coder[r["id"]] = row["id"]
    ours_seg = {(r["document_id"], r["seq"]): r["id"] for r in db.query("SELECT id, document_id, seq FROM segments")}
    segment = {r["id"]: ours_seg[(r["document_id"], r["seq"])]
               for r in theirs.query("SELECT id, document_id, seq FROM segments")}
    refs = {v: f"{d}:{s}" for (d, s), v in ours_seg.items()}
    names = {r["id"]: r["name"] for r in db.query("SELECT id, name FROM coders")}

    # What each coder decided against a code on a segment: rejected suggestions, consensus rejections.
    def rejections(source, seg_map, coder_map):
        rows = source.query("SELECT segment_id, code_id, decided_by AS coder_id FROM suggestions "
                            "WHERE status = 'rejected' AND decided_by IS NOT NULL "
                            "UNION SELECT segment_id, code_id, coder_id FROM consensus_decisions WHERE decision = 'reject'")
        return {(seg_map(r["segment_id"]), r["code_id"], coder_map(r["coder_id"])) for r in rows}

    ours_rejected = rejections(db, lambda s: s, lambda c: c)
    theirs_rejected = rejections(theirs, segment.get, coder.get)
    ours_applied = {(r["segment_id"], r["code_id"], r["coder_id"])
                    for r in db.query("SELECT segment_id, code_id, coder_id FROM codings")}
    ours_codings = {(r["segment_id"], r["code_id"], r["coder_id"], r["start_char"], r["end_char"]): r
                    for r in db.query("SELECT id, segment_id, code_id, coder_id, start_char, end_char, memo FROM codings")}
    # A removal here that their file does not know of was made after the copy: a decision
    # newer than the copy's coding, so their coding is a conflict, not new work.
    removal = "SELECT id, segment_id, code_id, coder_id, start_char, end_char FROM coding_removals"
    ours_removed: dict[tuple, set[str]] = {}
    for r in db.query(removal):
        ours_removed.setdefault((r["segment_id"], r["code_id"], r["coder_id"], r["start_char"], r["end_char"]),
                                set()).add(r["id"])
    theirs_removed = {r["id"] for r in theirs.query(removal)}
    reported = set()

    def conflict(seg, code, cid, ours_says, theirs_says, kept="kept ours"):
        """One line per coder, segment and code, however many of the tables disagree about it."""
        if (seg, code, cid) not in reported:
            reported.add((seg, code, cid))
            result.conflicts.append(f"{names[cid]} on {refs[seg]} {code}: {ours_says} here, {theirs_says} in theirs ({kept})")

    def keep_memo(seg, code, cid, memo, created_at) -> bool:
        """A coding memo that cannot go on a coding here becomes the coder's memo on the segment."""
        text = f"Memo on {code} from a merged copy: {memo}"
        if db.execute("SELECT 1 FROM memos WHERE coder_id = ? AND segment_id = ? AND text = ?", [cid, seg, text]).fetchone():
            return False
        db.execute("INSERT INTO memos (coder_id, segment_id, text, created_at) VALUES (?, ?, ?, ?)",
                   [cid, seg, text, created_at])
        result.memos += 1
        return True

    for r in theirs.query("SELECT * FROM codings ORDER BY id"):
        key = (segment[r["segment_id"]], r["code_id"], coder[r["coder_id"]])
        full = (*key, r["start_char"], r["end_char"])
        memo = r["memo"] or None
        mine = ours_codings.get(full)
        if mine:
            if memo and memo != mine["memo"]:
                if not mine["memo"]:
                    result.memos += db.execute("UPDATE codings SET memo = ? WHERE id = ?", [memo, mine["id"]]).rowcount
                else:
                    keep_memo(*key, memo, r["created_at"])
                    result.conflicts.append(f"{names[key[2]]} on {refs[key[0]]} {key[1]}: the coding's memo differs "
                                            "here and in theirs (kept ours on the coding, theirs as a memo on the segment)")
            continue
        if key in ours_rejected or ours_removed.get(full, set()) - theirs_removed:
            kept = "kept ours" + ("; their memo kept as a memo on the segment" if memo else "")
            if memo:
                keep_memo(*key, memo, r["created_at"])
            conflict(*key, "rejected" if key in ours_rejected else "removed", "applied", kept)
            continue
        result.codings += db.execute(
            "INSERT OR IGNORE INTO codings (segment_id, code_id, coder_id, start_char, end_char, origin, memo, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [*full, r["origin"], memo, r["created_at"]]).rowcount
    for key in sorted(theirs_rejected & ours_applied):
        conflict(*key, "applied", "rejected")

    for r in theirs.query("SELECT * FROM suggestions WHERE status != 'pending' AND decided_by IS NOT NULL"):
        seg, by = segment[r["segment_id"]], coder[r["decided_by"]]
        if (seg, r["code_id"], by) in ours_applied and r["status"] == "rejected":
            continue  # reported above
        mine = next(db.query("SELECT id, status, decided_by FROM suggestions WHERE segment_id = ? AND code_id = ? "
                             "ORDER BY status = 'pending' LIMIT 1", [seg, r["code_id"]]), None)
        if mine and mine["status"] != "pending":
            if mine["decided_by"] == by and mine["status"] != r["status"]:
                conflict(seg, r["code_id"], by, mine["status"], r["status"])
            continue
        if mine:
            db.execute("UPDATE suggestions SET status = ?, decided_by = ?, decided_at = ? WHERE id = ?",
                       [r["status"], by, r["decided_at"], mine["id"]])
        else:
            db.execute("INSERT INTO suggestions (segment_id, code_id, score, method, evidence, status, decided_by, "
                       "decided_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       [seg, r["code_id"], r["score"], r["method"], r["evidence"], r["status"], by,
                        r["decided_at"], r["created_at"]])
        result.decisions += 1

    for r in theirs.query("SELECT * FROM consensus_decisions"):
        seg, cid = segment[r["segment_id"]], coder[r["coder_id"]]
        mine = next(db.query("SELECT decision FROM consensus_decisions WHERE segment_id = ? AND code_id = ? AND coder_id = ?",
                             [seg, r["code_id"], cid]), None)
        if mine:
            if mine["decision"] != r["decision"]:
                conflict(seg, r["code_id"], cid, mine["decision"], r["decision"])
            continue
        db.execute("INSERT INTO consensus_decisions (segment_id, code_id, coder_id, decision, between_coders, memo, decided_at) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)",
                   [seg, r["code_id"], cid, r["decision"], r["between_coders"], r["memo"], r["decided_at"]])
        result.consensus += 1

    for r in theirs.query("SELECT * FROM memos ORDER BY id"):
        cid = coder.get(r["coder_id"])
        seg = segment[r["segment_id"]] if r["segment_id"] else None
        exists = db.execute(
            "SELECT 1 FROM memos WHERE coder_id IS ? AND document_id IS ? AND segment_id IS ? AND code_id IS ? AND text = ?",
            [cid, r["document_id"], seg, r["code_id"], r["text"]]).fetchone()
        if not exists:
            db.execute("INSERT INTO memos (coder_id, document_id, segment_id, code_id, text, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                       [cid, r["document_id"], seg, r["code_id"], r["text"], r["created_at"]])
            result.memos += 1

    for r in theirs.query("SELECT * FROM assignments"):
        result.assignments += db.execute(
            "INSERT OR IGNORE INTO assignments (document_id, coder_id, blind, assigned_at) VALUES (?, ?, ?, ?)",
            [r["document_id"], coder[r["coder_id"]], r["blind"], r["assigned_at"]]).rowcount
    return result
