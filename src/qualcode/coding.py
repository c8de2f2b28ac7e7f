"""Applying codes: one coder's decisions on segments and spans, never another's.

Segments are referred to as ``DOCUMENT:SEQ`` (``harbor-01-deputy-superintendent:14``),
which a coder can read off a transcript, or by their numeric id. A span is
given in characters inside the segment and stored as document offsets, so it
re-locates the same text whatever else is stored around it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from .db import now
from .errors import QualcodeError

ORIGINS = ("manual", "suggestion", "import")
_SEGMENT_REF = re.compile(r"^(?P<doc>[^:\s]+):(?P<seq>\d+)$")


class CodingError(QualcodeError):
    """A coding decision that refers to something that is not there."""


@dataclass
class Segment:
    id: int
    document_id: str
    seq: int
    start_char: int
    end_char: int
    text: str


@dataclass
class CodingResult:
    added: int = 0
    unchanged: int = 0
    removed: int = 0
    coders_created: list[str] = field(default_factory=list)
    coding_id: int | None = None  # the coding that `apply_code` made, or found already there


def find_segment(db: sqlite_utils.Database, ref: str | int) -> Segment:
    """A segment by ``DOCUMENT:SEQ`` or numeric id."""
    ref = str(ref).strip()
    m = _SEGMENT_REF.match(ref)
    if m:
        row = next(db.query("SELECT id, document_id, seq, start_char, end_char, text FROM segments "
                            "WHERE document_id = ? AND seq = ?", [m["doc"], int(m["seq"])]), None)
    elif ref.isdigit():
        row = next(db.query("SELECT id, document_id, seq, start_char, end_char, text FROM segments WHERE id = ?",
                            [int(ref)]), None)
    else:
        row = None
    if row is None:
        raise CodingError(f"unknown segment '{ref}'",
                          hint="give DOCUMENT:SEQ as shown in Datasette, e.g. harbor-01-deputy-superintendent:14")
    return Segment(**row)


def find_code(db: sqlite_utils.Database, code: str, allow_archived: bool = False) -> str:
    """A code's id, by id or (case-insensitively) by name."""
    row = next(db.query("SELECT id, archived FROM codes WHERE id = ?", [code.strip()]), None) or next(
        db.query("SELECT id, archived FROM codes WHERE lower(name) = lower(?)", [code.strip()]), None)
    if row is None:
        raise CodingError(f"unknown code '{code}'", hint="see `qualcode codebook show` for the codes")
    if row["archived"] and not allow_archived:
        raise CodingError(f"code '{row['id']}' is archived",
                          hint="put it back in the codebook and load it, or choose another code")
    return row["id"]


def find_coder(db: sqlite_utils.Database, name: str, create: bool = False) -> int:
    """A coder's id; coders are created on purpose (`qualcode coder add`) so typos don't become people."""
    row = next(db.query("SELECT id FROM coders WHERE name = ?", [name.strip()]), None)
    if row:
        return row["id"]
    if not create:
        raise CodingError(f"unknown coder '{name}'", hint=f"add them with `qualcode coder add \"{name}\"`",
                          or_option=("--create-coder", "pass --create-coder"))
    if not name.strip():
        raise CodingError("a coder needs a name")
    return db.execute("INSERT INTO coders (name, created_at) VALUES (?, ?)", [name.strip(), now()]).lastrowid


def add_coder(db: sqlite_utils.Database, name: str) -> int:
    """Register a coder; adding one that exists is refused so two people never share a name by accident."""
    if next(db.query("SELECT id FROM coders WHERE name = ?", [name.strip()]), None):
        raise CodingError(f"coder '{name}' already exists")
    with db.atomic():
        return find_coder(db, name, create=True)


def list_coders(db: sqlite_utils.Database) -> list[dict]:
    return list(db.query("""SELECT c.id, c.name, c.created_at, count(g.id) AS codings
                            FROM coders c LEFT JOIN codings g ON g.coder_id = c.id
                            GROUP BY c.id ORDER BY c.name"""))


def parse_span(span: str | None, segment: Segment) -> tuple[int, int] | None:
    """``START:END`` inside the segment, as document offsets."""
    if span is None or span == "":
        return None
    m = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", str(span))
    if not m:
        raise CodingError(f"span '{span}' is not START:END", hint="give character positions inside the segment, e.g. 0:42")
    start, end = int(m[1]), int(m[2])
    length = segment.end_char - segment.start_char
    if not (0 <= start < end <= length):
        raise CodingError(f"span {start}:{end} is outside segment {segment.document_id}:{segment.seq} "
                          f"(which has {length} characters)", hint=f"use positions between 0 and {length}")
    return segment.start_char + start, segment.start_char + end


def _insert(db, segment: Segment, code_id: str, coder_id: int, span, origin: str, memo: str | None) -> bool:
    if origin not in ORIGINS:
        raise CodingError(f"unknown origin '{origin}'", hint=f"use one of {', '.join(ORIGINS)}")
    cursor = db.execute(
        """INSERT OR IGNORE INTO codings (segment_id, code_id, coder_id, start_char, end_char, origin, memo, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
        [segment.id, code_id, coder_id, span[0] if span else None, span[1] if span else None, origin, memo or None, now()],
    )
    return cursor.rowcount == 1


def apply_code(
    db: sqlite_utils.Database,
    segment: str | int,
    code: str,
    coder: str,
    span: str | None = None,
    memo: str | None = None,
    origin: str = "manual",
    create_coder: bool = False,
) -> CodingResult:
    """Record that ``coder`` applies ``code`` to a segment (or a span of it)."""
    with db.atomic():
        seg = find_segment(db, segment)
        code_id = find_code(db, code)
        coder_id = find_coder(db, coder, create_coder)
        bounds = parse_span(span, seg)
        added = _insert(db, seg, code_id, coder_id, bounds, origin, memo)
        coding_id = db.execute("SELECT id FROM codings WHERE segment_id = ? AND code_id = ? AND coder_id = ? "
                               "AND start_char IS ? AND end_char IS ?",
                               [seg.id, code_id, coder_id, *(bounds or (None, None))]).fetchone()[0]
    return CodingResult(added=int(added), unchanged=int(not added), coding_id=coding_id)


def remove_code(db: sqlite_utils.Database, segment: str | int, code: str, coder: str, span: str | None = None) -> int:
    """Remove one coder's coding(s) of a code on a segment; without a span, all of them."""
    with db.atomic():
        seg = find_segment(db, segment)
        code_id = find_code(db, code, allow_archived=True)
        coder_id = find_coder(db, coder)
        where = "segment_id = ? AND code_id = ? AND coder_id = ?"
        params: list = [seg.id, code_id, coder_id]
        bounds = parse_span(span, seg)
        if bounds:
            where += " AND start_char = ? AND end_char = ?"
            params += list(bounds)
        removed = db.execute(f"DELETE FROM codings WHERE {where}", params).rowcount
        if not removed:
            raise CodingError(f"{coder} has not coded {seg.document_id}:{seg.seq} with {code_id}"
                              + (f" at {span}" if span else ""), hint="nothing was removed")
    return removed


# --- decisions from a spreadsheet --------------------------------------------------------------

BATCH_COLUMNS = ("document_id", "seq", "segment_id", "code_id", "code", "coder", "action", "start", "end", "memo")


def apply_batch(
    db: sqlite_utils.Database,
    path: str | Path,
    coder: str | None = None,
    create_coders: bool = False,
    origin: str = "import",
) -> CodingResult:
    """Apply a spreadsheet of coding decisions, all or nothing.

    One row per decision: the segment (``document_id`` and ``seq``, or
    ``segment_id``), the code (``code_id`` or ``code``), the ``coder`` (or the
    ``coder`` argument for all rows), and optionally ``action`` (``add`` or
    ``remove``), a span (``start``, ``end`` inside the segment) and a ``memo``.
    Any bad row stops the whole batch, so a half-applied sheet never exists.
    """
    from .ingest.tables import read_rows

    path = Path(path)
    header, rows, _ = read_rows(path)
    has = set(header)
    if not ({"document_id", "seq"} <= has or "segment_id" in has):
        raise CodingError("the sheet needs 'document_id' and 'seq' columns (or 'segment_id')", path, 1,
                          hint=f"columns found: {', '.join(header)}")
    if not ({"code_id", "code"} & has):
        raise CodingError("the sheet needs a 'code_id' (or 'code') column", path, 1, hint=f"columns found: {', '.join(header)}")
    if "coder" not in has and not coder:
        raise CodingError("the sheet has no 'coder' column", path, 1, hint="add one, or give --coder NAME")
    result = CodingResult()
    known_coders = {r["name"] for r in db.query("SELECT name FROM coders")}
    with db.atomic():
        for line, row in rows:
            try:
                ref = row.get("segment_id") or f"{row.get('document_id', '').strip()}:{row.get('seq', '').strip()}"
                seg = find_segment(db, ref)
                code_id = find_code(db, row.get("code_id") or row.get("code") or "")
                name = (row.get("coder") or coder or "").strip()
                coder_id = find_coder(db, name, create_coders)
                if name not in known_coders:
                    known_coders.add(name)
                    result.coders_created.append(name)
                start, end = (row.get("start") or "").strip(), (row.get("end") or "").strip()
                span = f"{start}:{end}" if start or end else None
                bounds = parse_span(span, seg)
                action = (row.get("action") or "add").strip().lower()
                if action in ("add", "apply", "accept", "1", "yes"):
                    if _insert(db, seg, code_id, coder_id, bounds, origin, row.get("memo")):
                        result.added += 1
                    else:
                        result.unchanged += 1
                elif action in ("remove", "delete", "reject", "0", "no"):
                    where = "segment_id = ? AND code_id = ? AND coder_id = ?"
                    params = [seg.id, code_id, coder_id]
                    if bounds:
                        where += " AND start_char = ? AND end_char = ?"
                        params += list(bounds)
                    result.removed += db.execute(f"DELETE FROM codings WHERE {where}", params).rowcount
                else:
                    raise CodingError(f"unknown action '{action}'", hint="use add or remove")
            except CodingError as e:
                raise CodingError(e.message, path, line, e.hint) from None
    return result


def owned(db: sqlite_utils.Database, table: str, row_id: int, coder: str, noun: str) -> dict:
    """A coding or memo that belongs to ``coder``, or the reason they may not change it."""
    row = next(db.query(f"SELECT t.*, c.name AS coder FROM {table} t JOIN coders c ON c.id = t.coder_id "
                        "WHERE t.id = ?", [row_id]), None)
    if row is None:
        raise CodingError(f"no {noun} {row_id}", hint="it may have been removed already")
    if row["coder"] != coder:
        raise CodingError(f"{noun} {row_id} is {row['coder']}'s", hint=f"a coder changes only their own {noun}s")
    return row


def own_coding(db: sqlite_utils.Database, coding_id: int, coder: str) -> dict:
    return owned(db, "codings", coding_id, coder, "coding")


def remove_coding(db: sqlite_utils.Database, coding_id: int, coder: str) -> dict:
    """Remove one of ``coder``'s own codings by id; returns it, so it can be put back."""
    with db.atomic():
        row = own_coding(db, coding_id, coder)
        db.execute("DELETE FROM codings WHERE id = ?", [coding_id])
    return row


def set_coding_memo(db: sqlite_utils.Database, coding_id: int, coder: str, memo: str | None) -> None:
    """Write (or clear, with an empty memo) the memo on one of ``coder``'s own codings."""
    with db.atomic():
        own_coding(db, coding_id, coder)
        db.execute("UPDATE codings SET memo = ? WHERE id = ?", [(memo or "").strip() or None, coding_id])
