"""Ingest: source files into documents and segments, one transaction per file.

A folder with one bad file still ingests the good ones; the bad one is
reported and leaves no trace in the database.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import sqlite_utils

from ..errors import IngestError, QualcodeError
from .limits import check_file_size
from .attributes import Manifest, check_attributes, merge, read_manifest
from .readers import FORMATS, SUBTITLE_FORMATS, TABLE_FORMATS, Parsed, read_docx, read_subtitles, read_text
from .segment import TURN_KINDS, looks_like_transcript, paragraphs, sentences, speaker_turns
from .store import Stored, stored_document, write_document
from .tables import TableMapping, read_table

__all__ = ["IngestOptions", "IngestResult", "FileResult", "TableMapping", "ingest_paths", "collect_files"]

SEGMENT_MODES = ("auto", "turn", "paragraph", "sentence")


@dataclass
class IngestOptions:
    manifest: str | Path | None = None
    attributes: dict = field(default_factory=dict)  # --kind, --site, --role, --date ...
    segment: str = "auto"
    replace: bool = False
    strict: bool = False
    table: TableMapping = field(default_factory=TableMapping)
    create_codes: bool = False


@dataclass
class FileResult:
    path: str
    status: str  # added | unchanged | attributes updated | changed | replaced | mixed | skipped | error
    documents: list[Stored] = field(default_factory=list)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def words(self) -> int:
        return sum(d.words for d in self.documents)

    @property
    def segments(self) -> int:
        return sum(d.segments for d in self.documents)


@dataclass
class IngestResult:
    files: list[FileResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def errors(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "error"]

    @property
    def words(self) -> int:
        return sum(f.words for f in self.files)

    @property
    def segments(self) -> int:
        return sum(f.segments for f in self.files)

    @property
    def codings(self) -> int:
        return sum(d.codings for f in self.files for d in f.documents)


def _skip_in_folder(path: Path, manifest: Path | None) -> bool:
    """Folder walks leave out what is about the corpus rather than in it."""
    name = path.name.lower()
    return (
        name.startswith(("readme", "license", "licence", "."))
        or (manifest is not None and path.resolve() == manifest.resolve())
        or any(part.startswith(".") for part in path.parts[:-1] if part not in (".", ".."))
    )


def collect_files(paths: Iterable[str | Path], options: IngestOptions) -> tuple[list[Path], list[FileResult]]:
    """The files to ingest, in a stable order, and those skipped or refused up front."""
    manifest = Path(options.manifest) if options.manifest else None
    files: list[Path] = []
    refused: list[FileResult] = []
    for raw in paths:
        path = Path(raw)
        try:
            path.stat()
        except (OSError, ValueError) as e:  # missing, or a name the file system cannot hold
            missing = "no such file or folder" if isinstance(e, FileNotFoundError) else "cannot be read"
            refused.append(FileResult(str(path), "error", error=str(IngestError(missing, str(path)[:200]))))
            continue
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if not child.is_file() or _skip_in_folder(child.relative_to(path), manifest):
                    continue
                suffix = child.suffix.lower()
                if suffix in TABLE_FORMATS and not options.table.given:
                    refused.append(FileResult(str(child), "skipped", error="spreadsheet skipped: map its columns with --text-column to ingest it"))
                elif suffix in FORMATS:
                    files.append(child)
        elif path.is_file():
            if path.suffix.lower() not in FORMATS:
                refused.append(FileResult(str(path), "error", error=str(IngestError(
                    f"unsupported format '{path.suffix or 'none'}'", path,
                    hint=f"qualcode reads {', '.join(sorted(FORMATS))}"))))
            else:
                files.append(path)
        else:
            refused.append(FileResult(str(path), "error", error=str(IngestError("no such file or folder", path))))
    return files, refused


def _display_path(path: Path) -> str:
    """Paths are stored relative to where the user works, never as a home-folder path."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def _read(path: Path, options: IngestOptions) -> list[Parsed]:
    check_file_size(path, path.stat().st_size)
    data = path.read_bytes()
    suffix = path.suffix.lower()
    if suffix in TABLE_FORMATS:
        return read_table(path, data, options.table)
    if suffix in SUBTITLE_FORMATS:
        return [read_subtitles(path, data)]
    if suffix == ".docx":
        if not data:
            raise IngestError("the file is empty", path, hint="remove it or add its text")
        return [read_docx(path, data)]
    return [read_text(path, data)]


def _segments(parsed: Parsed, kind: str | None, mode: str, path: str):
    markdown = parsed.format == "md"
    if parsed.segments is not None:
        base = parsed.segments
    elif mode == "turn" or (mode in ("auto", "sentence") and (kind in TURN_KINDS or (kind is None and looks_like_transcript(parsed.text)))):
        base = speaker_turns(parsed.text, markdown)
    else:
        base = paragraphs(parsed.text, markdown=markdown)
    if mode == "sentence":
        try:
            base = sentences(parsed.text, base)
        except IngestError as e:
            raise IngestError(e.message, path, hint=e.hint) from None
    return base


def _no_turns_warning(path: str, kind: str, fmt: str) -> str:
    expected = ("cues like '<v Name>text' or 'Name: text'" if fmt in ("vtt", "srt")
                else "lines like 'Name: text' or 'Name  0:05'")
    return (f"{path}: ingested as {'an interview' if kind == 'interview' else 'a focus group'} "
            f"but no speaker turns were found (expected {expected})")


def _ingest_file(db: sqlite_utils.Database, path: Path, options: IngestOptions, manifest: Manifest | None) -> FileResult:
    shown = _display_path(path)
    parsed_docs = _read(path, options)
    where, from_manifest = manifest.lookup(path) if manifest else ("", {})
    # What this very ingest names, without the file's own front matter: an unchanged file
    # takes these, so a corrected manifest or option is not ignored.
    given = merge(from_manifest, options.attributes)
    result = FileResult(shown, "added")
    with db.atomic():
        for parsed in parsed_docs:
            result.warnings.extend(parsed.warnings)
            front = check_attributes(dict(parsed.meta), shown, parsed.meta_lines)
            columns, extra = merge(front, from_manifest, options.attributes)
            old = stored_document(db, columns.get("id") or parsed.id)
            # A replaced file is segmented by the kind it was stored with, unless a kind is given
            # anew; 'document' is also what no kind at all was stored as, so it still looks for turns.
            kind = columns.get("kind") or (old["kind"] if old and old["kind"] != "document" else None)
            segs = _segments(parsed, kind, options.segment, shown)
            if not segs:
                raise IngestError("no text to segment", path, hint="check the file's content")
            stored = write_document(db, parsed, columns, extra, segs, shown, options.replace, options.create_codes,
                                    defaults={"title": path.stem}, given=given)
            result.documents.append(stored)
            if (stored.status in ("added", "replaced") and kind in TURN_KINDS and options.segment != "paragraph"
                    and not any(s.speaker for s in segs)):
                result.warnings.append(_no_turns_warning(shown, kind, parsed.format))
    statuses = {d.status for d in result.documents}
    result.status = statuses.pop() if len(statuses) == 1 else "mixed"
    return result


def ingest_paths(
    db: sqlite_utils.Database,
    paths: Iterable[str | Path],
    options: IngestOptions | None = None,
    on_file: Callable[[FileResult, int, int], None] | None = None,
) -> IngestResult:
    """Ingest files and folders (recursively); with no paths, the manifest's files.

    Problems with the manifest itself stop everything before any file is read.
    A problem with one file is recorded in its :class:`FileResult` and, unless
    ``strict``, the other files go on.
    """
    options = options or IngestOptions()
    if options.segment not in SEGMENT_MODES:
        raise QualcodeError(f"unknown segment mode '{options.segment}'", hint=f"use one of {', '.join(SEGMENT_MODES)}")
    check_attributes(options.attributes, "command line")
    manifest = read_manifest(options.manifest) if options.manifest else None
    paths = list(paths)
    if not paths and manifest is not None:
        paths = sorted(manifest.rows)
    files, refused = collect_files(paths, options)
    result = IngestResult(files=list(refused))
    if options.strict and any(f.status == "error" for f in refused):
        return result
    for done, path in enumerate(files, 1):
        try:
            outcome = _ingest_file(db, path, options, manifest)
        except QualcodeError as e:
            outcome = FileResult(_display_path(path), "error", error=str(e))
        except OSError as e:
            outcome = FileResult(_display_path(path), "error", error=f"{_display_path(path)}: cannot be read ({e.strerror})")
        result.files.append(outcome)
        if on_file:
            on_file(outcome, done, len(files))
        if options.strict and outcome.status == "error":
            break
    return result
