"""Correcting documents' attributes after ingest, one document or a whole manifest at once.

A site misspelt in the manifest, a date typed as next year: fixing them must not mean
re-ingesting, which would put coders' work at risk for no reason. Only the documents rows
change; text, segments and codings stay, and the excerpts table follows by its trigger.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from ..errors import IngestError
from ..transcript import find_document
from .attributes import check_attributes, merge, read_manifest
from .readers import slug
from .store import Change, describe_changes, update_attributes

__all__ = ["AttributeChange", "set_attributes", "set_manifest_attributes"]


@dataclass
class AttributeChange:
    document_id: str
    changes: list[Change] = field(default_factory=list)

    def describe(self) -> str:
        return f"{self.document_id}: {describe_changes(self.changes) if self.changes else 'unchanged'}"


def _attributes_only(attrs: dict, where: str) -> tuple[dict, dict]:
    columns, extra = merge(attrs)
    if "id" in columns:
        raise IngestError("a document's id cannot be changed here", where,
                          hint="ids name documents in codings and exports; give attributes other than id")
    return columns, extra


def set_attributes(db: sqlite_utils.Database, document_id: str, attrs: dict) -> AttributeChange:
    """Set attributes (``title``, ``kind``, ``site``, ..., any other key) on one stored document.

    Values are checked as ingest checks them (kind, date, published); attributes not named are
    kept. Raises :class:`QualcodeError` for an unknown document or a bad value, changing nothing.
    """
    attrs = check_attributes(dict(attrs), "command line")
    columns, extra = _attributes_only(attrs, "command line")
    with db.atomic():
        doc_id = find_document(db, document_id)["id"]
        return AttributeChange(doc_id, update_attributes(db, doc_id, columns, extra))


def _documents_of(db: sqlite_utils.Database, file: Path, attrs: dict, by_path: dict[Path, list[str]]) -> list[str]:
    """The documents a manifest row describes: by its ``id``, else those ingested from its file,
    else the document ingest would have named after the file (ingested from another folder)."""
    if attrs.get("id"):
        hit = next(db.query("SELECT id FROM documents WHERE id = ?", [attrs["id"]]), None)
        return [hit["id"]] if hit else []
    if file in by_path:
        return by_path[file]
    hit = next(db.query("SELECT id, source_path FROM documents WHERE id = ?", [slug(file.stem)]), None)
    if hit and (hit["source_path"] is None or Path(hit["source_path"]).name == file.name):
        return [hit["id"]]
    return []


def set_manifest_attributes(db: sqlite_utils.Database, manifest: str | Path, attrs: dict | None = None) -> list[AttributeChange]:
    """Apply a manifest CSV (as ``qualcode ingest --manifest`` reads it) to documents already ingested.

    One transaction for the whole manifest: a bad value or a row that names no ingested
    document raises :class:`QualcodeError` with the manifest's line, and nothing changes.
    ``attrs`` (options) win over the manifest's values, as in ingest. Empty cells keep what is stored.
    """
    options = check_attributes(dict(attrs or {}), "command line")
    _attributes_only(options, "command line")
    rows = read_manifest(manifest)
    out: list[AttributeChange] = []
    with db.atomic():
        by_path: dict[Path, list[str]] = {}
        for row in db.query("SELECT id, source_path FROM documents WHERE source_path IS NOT NULL ORDER BY id"):
            try:
                by_path.setdefault(Path(row["source_path"]).resolve(), []).append(row["id"])
            except (OSError, ValueError):
                continue
        for file, (line, values) in rows.rows.items():
            ids = _documents_of(db, file, values, by_path)
            if not ids:
                named = os.path.relpath(file, rows.path.parent)
                looked = values.get("id") or slug(file.stem)
                raise IngestError(f"no document was ingested from '{named}' (no document '{looked}')", rows.path, line,
                                  hint="ingest it first, or fix the row's path or id")
            # A row's id says which document it describes; it is not a value to set.
            columns, extra = _attributes_only({k: v for k, v in {**values, **options}.items() if k != "id"}, "")
            for doc_id in ids:
                out.append(AttributeChange(doc_id, update_attributes(db, doc_id, columns, extra)))
    return out
