"""Writing a read document into the project: new, unchanged, or replaced.

Replacing keeps coders' work wherever it can: a segment whose text did not
change keeps its id, so its codings, memos and suggestions stay attached.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from ..db import now
from ..errors import IngestError
from ..roles import apply_roles
from .readers import Coding, Parsed, slug
from .segment import Segment

_SEGMENT_COLUMNS = "document_id, seq, speaker, start_char, end_char, text, start_time, end_time"
#: Document columns that describe it (as opposed to its content); `attributes` holds the rest.
ATTRIBUTE_COLUMNS = ("title", "kind", "site", "district", "role", "date", "published")

#: One attribute that changed: (name, old value, new value); None is "not set".
Change = tuple[str, Any, Any]


@dataclass
class Stored:
    status: str  # added | unchanged | changed | replaced
    document_id: str
    segments: int = 0
    words: int = 0
    codings: int = 0
    kept_codings: int = 0
    dropped_codings: int = 0
    note: str = ""
    changes: list[Change] = field(default_factory=list)


def describe_changes(changes: list[Change]) -> str:
    """``site Northfield -> Eastbrook; role (none) -> teacher``, as the CLI prints it."""
    def shown(value: Any) -> str:
        if value is None:
            return "(none)"
        if isinstance(value, bool):
            return "true" if value else "false"
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    return "; ".join(f"{name} {shown(old)} -> {shown(new)}" for name, old, new in changes)


def _flag(value: Any) -> int:
    return int(str(value).strip().lower() not in ("false", "no", "0"))


def stored_document(db: sqlite_utils.Database, doc_id: str) -> dict | None:
    """The stored row of a document, without its text, or None."""
    columns = ", ".join(("id", "source_path", "sha256", "attributes") + ATTRIBUTE_COLUMNS)
    return next(db.query(f"SELECT {columns} FROM documents WHERE id = ?", [doc_id]), None)


def update_attributes(db: sqlite_utils.Database, doc_id: str, columns: dict, extra: dict) -> list[Change]:
    """Set the attributes given in ``columns`` and ``extra`` on a stored document; keep the others.

    Only the documents row changes: text, segments and codings stay as they are, and the
    excerpts table follows through its trigger. The caller holds the transaction.
    """
    row = stored_document(db, doc_id)
    if row is None:
        raise IngestError(f"unknown document '{doc_id}'")
    sets: dict[str, Any] = {}
    changes: list[Change] = []
    for key in ATTRIBUTE_COLUMNS:
        if key not in columns:
            continue
        new: Any = _flag(columns[key]) if key == "published" else str(columns[key])
        if row[key] != new:
            sets[key] = new
            changes.append((key, bool(row[key]), bool(new)) if key == "published" else (key, row[key], new))
    old_extra = json.loads(row["attributes"] or "{}")
    merged = dict(old_extra)
    for key, value in extra.items():
        value = json.loads(json.dumps(value, ensure_ascii=False, default=str))  # as it will be stored
        if old_extra.get(key) != value:
            changes.append((key, old_extra.get(key), value))
            merged[key] = value
    if merged != old_extra:
        sets["attributes"] = json.dumps(merged, ensure_ascii=False)
    if sets:
        assignments = ", ".join(f"{k} = ?" for k in sets)
        db.execute(f"UPDATE documents SET {assignments} WHERE id = ?", [*sets.values(), doc_id])
    if any(name in ("kind", "interviewer") for name, _, _ in changes):
        apply_roles(db, [doc_id])  # the conventions read both
    return changes


def existing_state(db: sqlite_utils.Database, doc_id: str, sha: str) -> tuple[dict | None, str | None]:
    """The stored document with this id, and the id of any document with these exact bytes."""
    row = next(db.query("SELECT id, sha256, source_path FROM documents WHERE id = ?", [doc_id]), None)
    same = next(db.query("SELECT id FROM documents WHERE sha256 = ? LIMIT 1", [sha]), None)
    return row, (same["id"] if same else None)


def _segment_rows(doc_id: str, text: str, segments: list[Segment]) -> list[tuple]:
    return [
        (doc_id, seq, s.speaker, s.start, s.end, text[s.start : s.end], s.start_time, s.end_time)
        for seq, s in enumerate(segments, 1)
    ]


def _document_row(parsed: Parsed, columns: dict, extra: dict, source_path: str | None) -> dict:
    return {
        "id": columns.get("id") or parsed.id,
        "title": str(columns.get("title") or parsed.id),
        "kind": columns.get("kind") or "document",
        "site": columns.get("site"),
        "district": columns.get("district"),
        "role": columns.get("role"),
        "date": columns.get("date"),
        "format": parsed.format,
        "source_path": source_path,
        "sha256": parsed.sha256,
        "text": parsed.text,
        "word_count": len(parsed.text.split()),
        "attributes": json.dumps(extra, ensure_ascii=False, default=str),
        "published": _flag(columns.get("published", True)),
        "ingested_at": now(),
    }


def write_document(
    db: sqlite_utils.Database,
    parsed: Parsed,
    columns: dict,
    extra: dict,
    segments: list[Segment],
    source_path: str | None,
    replace: bool,
    create_codes: bool = False,
    defaults: dict | None = None,
    given: tuple[dict, dict] | None = None,
) -> Stored:
    """Insert or replace one document; the caller holds the transaction.

    ``defaults`` (a title made from the file name) are used for a new document only: a replaced
    one keeps every stored attribute that ``columns`` and ``extra`` do not give anew, so what a
    manifest, an option or ``qualcode attributes set`` gave it survives a re-ingest.
    ``given`` are the attributes this ingest's manifest and options name (front matter aside):
    on an unchanged file they are applied, and the file reports ``attributes updated``.
    """
    doc = _document_row(parsed, {**(defaults or {}), **columns}, extra, source_path)
    doc_id = doc["id"]
    old, same_bytes = existing_state(db, doc_id, parsed.sha256)
    if old is not None and old["sha256"] == parsed.sha256:
        changes = update_attributes(db, doc_id, *given) if given else []
        if changes:
            return Stored("attributes updated", doc_id, note=describe_changes(changes), changes=changes)
        return Stored("unchanged", doc_id)
    if old is None and same_bytes is not None:
        return Stored("unchanged", same_bytes, note=f"same content as document '{same_bytes}'")
    if old is not None and old["source_path"] != source_path and old["source_path"] is not None:
        raise IngestError(
            f"document id '{doc_id}' is already used by {old['source_path']}",
            source_path,
            hint="give this file its own id in its front matter or the manifest",
        )
    if old is not None and not replace:
        return Stored("changed", doc_id, note="changed since it was ingested; use --replace to re-ingest it")
    rows = _segment_rows(doc_id, parsed.text, segments)
    stored = Stored("replaced" if old else "added", doc_id, len(rows), doc["word_count"])
    names = ", ".join(doc)
    marks = ", ".join("?" * len(doc))
    if old is None:
        db.execute(f"INSERT INTO documents ({names}) VALUES ({marks})", list(doc.values()))
        db.conn.executemany(f"INSERT INTO segments ({_SEGMENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    else:
        stored.changes = update_attributes(db, doc_id, columns, extra)
        stored.note = describe_changes(stored.changes)
        content = {k: v for k, v in doc.items() if k not in ("id", "attributes", *ATTRIBUTE_COLUMNS)}
        sets = ", ".join(f"{k} = ?" for k in content)
        db.execute(f"UPDATE documents SET {sets} WHERE id = ?", [*content.values(), doc_id])
        stored.kept_codings, stored.dropped_codings = _replace_segments(db, doc_id, rows)
    _store_roles(db, doc_id, segments)
    if parsed.codings:
        stored.codings = _import_codings(db, doc_id, parsed, create_codes, source_path)
    return stored


def _store_roles(db: sqlite_utils.Database, doc_id: str, segments: list[Segment]) -> None:
    """Give the document's segments their roles: a spreadsheet's row by row, the others from the
    speaker map or the conventions (:func:`qualcode.roles.apply_roles`)."""
    given = [(s.role, doc_id, seq) for seq, s in enumerate(segments, 1) if s.role]
    db.execute("UPDATE segments SET speaker_role_source = NULL WHERE document_id = ? AND speaker_role_source = 'spreadsheet'",
               [doc_id])
    db.conn.executemany("UPDATE segments SET speaker_role = ?, speaker_role_source = 'spreadsheet' "
                        "WHERE document_id = ? AND seq = ?", given)
    apply_roles(db, [doc_id])


def _replace_segments(db: sqlite_utils.Database, doc_id: str, rows: list[tuple]) -> tuple[int, int]:
    """Re-segment a changed document, keeping segments (and their codings) whose text is unchanged."""
    old = list(db.query("SELECT id, text, start_char FROM segments WHERE document_id = ? ORDER BY seq", [doc_id]))
    pool: dict[str, list[dict]] = {}
    for seg in old:
        pool.setdefault(seg["text"], []).append(seg)
    # Park old seq numbers out of the way of the UNIQUE(document_id, seq) constraint.
    db.execute("UPDATE segments SET seq = -seq WHERE document_id = ?", [doc_id])
    kept_ids, fresh = set(), []
    for row in rows:
        match = pool.get(row[5])
        if match:
            seg = match.pop(0)
            kept_ids.add(seg["id"])
            shift = row[3] - seg["start_char"]
            db.execute(
                "UPDATE segments SET seq = ?, speaker = ?, start_char = ?, end_char = ?, start_time = ?, end_time = ? WHERE id = ?",
                [row[1], row[2], row[3], row[4], row[6], row[7], seg["id"]],
            )
            if shift:
                db.execute(
                    "UPDATE codings SET start_char = start_char + ?, end_char = end_char + ? WHERE segment_id = ? AND start_char IS NOT NULL",
                    [shift, shift, seg["id"]],
                )
        else:
            fresh.append(row)
    gone = [seg["id"] for seg in old if seg["id"] not in kept_ids]
    dropped = 0
    for seg_id in gone:
        dropped += db.execute("SELECT count(*) FROM codings WHERE segment_id = ?", [seg_id]).fetchone()[0]
        db.execute("DELETE FROM segments WHERE id = ?", [seg_id])
    db.conn.executemany(f"INSERT INTO segments ({_SEGMENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", fresh)
    kept = 0
    if kept_ids:
        kept = db.execute(
            f"SELECT count(*) FROM codings WHERE segment_id IN ({', '.join('?' * len(kept_ids))})", list(kept_ids)
        ).fetchone()[0]
    return kept, dropped


def coder_id(db: sqlite_utils.Database, name: str) -> int:
    """The id of a coder, created on first use by an import."""
    row = next(db.query("SELECT id FROM coders WHERE name = ?", [name]), None)
    if row:
        return row["id"]
    return db.execute("INSERT INTO coders (name, created_at) VALUES (?, ?)", [name, now()]).lastrowid


def _resolve_codes(db: sqlite_utils.Database, parsed: Parsed, create: bool, path: str | None) -> dict[str, str]:
    known: dict[str, str] = {}
    for row in db.query("SELECT id, name FROM codes WHERE archived = 0"):
        known[row["id"].lower()] = row["id"]
        known.setdefault(row["name"].lower(), row["id"])
    wanted = {c.code for c in parsed.codings}
    resolved = {}
    for value in sorted(wanted):
        hit = known.get(value.lower())
        if hit is None and create:
            hit = _create_code(db, value, path)
            known[value.lower()] = hit
        if hit is None:
            first: Coding = next(c for c in parsed.codings if c.code == value)
            raise IngestError(
                f"unknown code '{value}'",
                path,
                first.line,
                hint="load a codebook that has it, or use --create-codes to add the spreadsheet's codes",
            )
        resolved[value] = hit
    return resolved


def _create_code(db: sqlite_utils.Database, value: str, path: str | None) -> str:
    book = "imported"
    stamp = now()
    db.execute(
        "INSERT OR IGNORE INTO codebooks (id, name, description, loaded_at) VALUES (?, ?, ?, ?)",
        [book, "Imported codes", "Codes created from spreadsheet columns during ingest.", stamp],
    )
    code_id = slug(value).replace("-", "_")
    order = db.execute("SELECT coalesce(max(sort_order), 0) + 1 FROM codes").fetchone()[0]
    db.execute(
        """INSERT INTO codes (id, codebook_id, parent_id, lesson_id, depth, name, definition, sort_order, updated_at)
           VALUES (?, ?, NULL, ?, 0, ?, ?, ?, ?)""",
        [code_id, book, code_id, value, f"Imported from the '{value}' column values of {path}.", order, stamp],
    )
    return code_id


def _import_codings(db: sqlite_utils.Database, doc_id: str, parsed: Parsed, create: bool, path: str | None) -> int:
    codes = _resolve_codes(db, parsed, create, path)
    seg_ids = {r["seq"]: r["id"] for r in db.query("SELECT id, seq FROM segments WHERE document_id = ?", [doc_id])}
    coders = {name: coder_id(db, name) for name in {c.coder for c in parsed.codings}}
    stamp = now()
    rows = [(seg_ids[c.seq], codes[c.code], coders[c.coder], stamp) for c in parsed.codings]
    cursor = db.conn.executemany(  # rowcount sums the inserts, not the rows triggers write
        "INSERT OR IGNORE INTO codings (segment_id, code_id, coder_id, origin, created_at) VALUES (?, ?, ?, 'import', ?)",
        rows,
    )
    return cursor.rowcount
