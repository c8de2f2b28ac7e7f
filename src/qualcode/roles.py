"""Speaker roles: who in a transcript asks (interviewer, facilitator) and who answers.

Every segment with a speaker carries a role in ``segments.speaker_role``, and where it came
from in ``segments.speaker_role_source``:

* ``spreadsheet``: a coded spreadsheet's ``speaker_role`` column gave it, row by row;
* ``document``: the speaker map of that one document (``qualcode roles set S R --document D``);
* ``project``: the project's speaker map (``qualcode roles set S R``);
* ``convention``: nobody said, so the labels transcripts use decide (``I:``, ``Interviewer:``,
  the document's ``interviewer`` attribute) and everyone else is a participant.

:func:`apply_roles` recomputes every segment but the spreadsheet's, with that precedence, so
changing the map, a document's kind or its ``interviewer`` attribute is never out of step.
Segments with no speaker have no role (NULL).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from .errors import QualcodeError

#: Labels that mark the interviewer's or facilitator's turns.
INTERVIEWER = re.compile(r"^(?:I|Q|Interviewer|Facilitator|Moderator)$", re.I)
#: Where a segment's role came from, strongest first (a spreadsheet's row is never overridden).
SOURCES = ("spreadsheet", "document", "project", "convention")
#: A role name: lowercase words (letters), joined by single spaces, '-' or '_'.
ROLE_RE = re.compile(r"^[a-z]+(?:[ _-][a-z]+)*$")
MAX_ROLE_LENGTH = 40
MAX_IMPORT_BYTES = 5 * 1024 * 1024

_PROJECT = ""  # speaker_roles.document_id of the project-wide map


class RoleError(QualcodeError):
    """A bad role name, speaker map file, or an unknown document or mapping."""


@dataclass
class RolesResult:
    """What a change to the speaker map did."""

    speakers: int = 0  # speakers mapped (or cleared) by this change
    changed: int = 0  # segments whose role or its source changed
    from_map: int = 0  # segments whose role now comes from the map (document or project)
    unknown: list[str] = field(default_factory=list)  # mapped speakers no segment has (yet)

    def summary(self, verb: str = "mapped") -> str:
        line = (f"{self.speakers:,} speaker{'' if self.speakers == 1 else 's'} {verb}; "
                f"{self.from_map:,} segment{'' if self.from_map == 1 else 's'} now have a role from the map")
        if self.unknown:
            line += f" ({len(self.unknown)} not in any segment yet: {', '.join(self.unknown[:3])}"
            line += ", ..." if len(self.unknown) > 3 else ""
            line += ")"
        return line


def normalise_role(value: object, path: str | Path | None = None, line: int | None = None) -> str:
    """A role name as stored: trimmed, lowercase, single spaces; raises :class:`RoleError` when
    it is not lowercase words ('participant', 'focus group member')."""
    text = " ".join(str(value).split()).lower() if value is not None else ""
    if not text:
        raise RoleError("the role is empty", path, line, hint="give a role such as 'participant' or 'interviewer'")
    if len(text) > MAX_ROLE_LENGTH or not ROLE_RE.match(text):
        shown = text if len(text) <= MAX_ROLE_LENGTH else text[: MAX_ROLE_LENGTH - 1] + "…"
        raise RoleError(f"'{shown}' is not a role name", path, line,
                        hint=f"use lowercase words (letters only, at most {MAX_ROLE_LENGTH} characters), "
                             "e.g. 'participant', 'interviewer', 'teacher'")
    return text


def convention_role(kind: str | None, speaker: str | None, interviewer: str | None = None) -> str | None:
    """The role a speaker label implies when no map says otherwise.

    ``I``, ``Q``, ``Interviewer``, ``Facilitator``, ``Moderator`` (any case) and the document's
    ``interviewer`` attribute ask the questions: 'facilitator' in a focus group, 'interviewer'
    elsewhere. Anyone else is a 'participant'; no speaker, no role.
    """
    if not speaker or not speaker.strip():
        return None
    speaker = speaker.strip()
    if INTERVIEWER.match(speaker) or (interviewer and speaker == str(interviewer).strip()):
        return "facilitator" if kind == "focus_group" else "interviewer"
    return "participant"


def _speaker(value: object, path: str | Path | None = None, line: int | None = None) -> str:
    text = " ".join(str(value).split()) if value is not None else ""
    if not text:
        raise RoleError("the speaker is empty", path, line, hint="give the speaker as transcripts label them")
    return text


def _document(db: sqlite_utils.Database, document: str | None, path: str | Path | None = None,
              line: int | None = None) -> str:
    if not document:
        return _PROJECT
    row = next(db.query("SELECT id FROM documents WHERE id = ?", [document.strip()]), None)
    if row is None:
        raise RoleError(f"unknown document '{document}'", path, line, hint="see `qualcode status` or the documents table")
    return row["id"]


def _known_speakers(db: sqlite_utils.Database, speakers: list[tuple[str, str]]) -> list[str]:
    """The mapped speakers (document, speaker) that no segment has."""
    missing = []
    for doc, speaker in speakers:
        sql = "SELECT 1 FROM segments WHERE speaker = ? COLLATE NOCASE" + (" AND document_id = ?" if doc else "")
        if next(db.query(sql + " LIMIT 1", [speaker, doc] if doc else [speaker]), None) is None:
            missing.append(speaker)
    return missing


def _from_map(db: sqlite_utils.Database) -> int:
    return db.execute(
        "SELECT count(*) FROM segments WHERE speaker_role_source IN ('document', 'project')").fetchone()[0]


def set_role(db: sqlite_utils.Database, speaker: str, role: str, document: str | None = None) -> RolesResult:
    """Map a speaker to a role, in one document or (no ``document``) the whole project, and
    re-apply roles. Speakers match whatever their case. Raises :class:`RoleError`."""
    speaker, role = _speaker(speaker), normalise_role(role)
    with db.atomic():
        doc = _document(db, document)
        db.execute("INSERT OR REPLACE INTO speaker_roles (document_id, speaker, role) VALUES (?, ?, ?)",
                   [doc, speaker, role])
        changed = apply_roles(db, [doc] if doc else None, speakers=[speaker])
        return RolesResult(1, changed, _from_map(db), _known_speakers(db, [(doc, speaker)]))


def clear_role(db: sqlite_utils.Database, speaker: str, document: str | None = None) -> RolesResult:
    """Remove a speaker's mapping (in one document, or the project's) and re-apply roles, so
    their segments fall back to the next source. Raises :class:`RoleError` when there is none."""
    speaker = _speaker(speaker)
    with db.atomic():
        doc = _document(db, document)
        gone = db.execute("DELETE FROM speaker_roles WHERE document_id = ? AND speaker = ?", [doc, speaker]).rowcount
        if not gone:
            where = f"in document '{doc}'" if doc else "for the whole project"
            raise RoleError(f"speaker '{speaker}' has no role mapped {where}",
                            hint="see `qualcode roles list` for the map")
        changed = apply_roles(db, [doc] if doc else None, speakers=[speaker])
        return RolesResult(1, changed, _from_map(db))


def list_roles(db: sqlite_utils.Database) -> list[dict]:
    """Every speaker with their role, its source, the document of a document mapping, and how
    many segments they have; mapped speakers no segment has are listed with 0 segments."""
    rows = list(db.query(
        """SELECT s.speaker, s.speaker_role AS role, s.speaker_role_source AS source,
                  CASE WHEN s.speaker_role_source = 'document' THEN s.document_id END AS document,
                  count(*) AS segments, count(DISTINCT s.document_id) AS documents
           FROM segments s WHERE s.speaker IS NOT NULL
           GROUP BY s.speaker, s.speaker_role, s.speaker_role_source, document
           ORDER BY s.speaker COLLATE NOCASE, segments DESC"""))
    for m in db.query(
            """SELECT m.speaker, m.role, CASE WHEN m.document_id = '' THEN 'project' ELSE 'document' END AS source,
                      nullif(m.document_id, '') AS document
               FROM speaker_roles m
               WHERE NOT EXISTS (SELECT 1 FROM segments s WHERE s.speaker = m.speaker
                                 AND (m.document_id = '' OR s.document_id = m.document_id))
               ORDER BY m.speaker COLLATE NOCASE"""):
        rows.append({**m, "segments": 0, "documents": 0})
    rows.sort(key=lambda r: (r["speaker"].casefold(), -r["segments"]))
    return rows


def read_role_file(path: str | Path) -> list[tuple[int, str, str, str | None]]:
    """(line, speaker, role, document) rows of a speaker map CSV: columns ``speaker`` and
    ``role``, optionally ``document``. Raises :class:`RoleError` naming the file and line."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_IMPORT_BYTES:
            raise RoleError(f"the file is larger than {MAX_IMPORT_BYTES // 2**20} MB", path,
                            hint="a speaker map has one row per speaker")
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise RoleError("no such file", path) from None
    except UnicodeDecodeError as e:
        raise RoleError(f"cannot be read as UTF-8 text (byte {e.start})", path, hint="save it as UTF-8 CSV") from None
    except IsADirectoryError:
        raise RoleError("is a folder, not a CSV file", path) from None
    except OSError as e:
        raise RoleError(f"cannot be read ({e.strerror})", path) from None
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if header is None:
            raise RoleError("the file is empty", path, hint="write a header row: speaker,role[,document]")
        names = [h.strip().lower() for h in header]
        missing = [c for c in ("speaker", "role") if c not in names]
        if missing:
            raise RoleError(f"no '{missing[0]}' column (columns: {', '.join(h for h in names if h)[:120]})", path, 1,
                            hint="write a header row: speaker,role[,document]")
        unknown = [h for h in names if h and h not in ("speaker", "role", "document")]
        if unknown:
            raise RoleError(f"unknown column '{unknown[0][:40]}'", path, 1, hint="the columns are speaker, role and document")
        where = {c: names.index(c) for c in ("speaker", "role", "document") if c in names}
        rows, seen = [], {}
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(names):
                raise RoleError(f"the row has {len(cells)} cells but the header {len(names)}", path, line,
                                hint="quote a value that holds a comma")
            cells += [""] * (len(names) - len(cells))
            speaker = _speaker(cells[where["speaker"]], path, line)
            role = normalise_role(cells[where["role"]], path, line)
            doc = cells[where["document"]].strip() or None if "document" in where else None
            key = (doc or "", speaker.casefold())
            if key in seen:
                raise RoleError(f"speaker '{speaker}' is mapped twice (first on line {seen[key]})", path, line,
                                hint="keep one row per speaker (and document)")
            seen[key] = line
            rows.append((line, speaker, role, doc))
    except csv.Error as e:
        raise RoleError(f"not a valid CSV file ({e})", path, reader.line_num) from None
    return rows


def import_roles(db: sqlite_utils.Database, path: str | Path) -> RolesResult:
    """Map every speaker a CSV file lists (columns speaker, role, optional document), in one
    transaction, and re-apply roles. A bad row raises :class:`RoleError` with its line and
    changes nothing."""
    rows = read_role_file(path)
    with db.atomic():
        mapped = []
        for line, speaker, role, document in rows:
            doc = _document(db, document, path, line)
            db.execute("INSERT OR REPLACE INTO speaker_roles (document_id, speaker, role) VALUES (?, ?, ?)",
                       [doc, speaker, role])
            mapped.append((doc, speaker))
        changed = apply_roles(db, speakers=[s for _, s in mapped]) if mapped else 0
        return RolesResult(len(rows), changed, _from_map(db), _known_speakers(db, mapped))


def apply_roles(db: sqlite_utils.Database, documents: list[str] | None = None,
                speakers: list[str] | None = None) -> int:
    """Recompute ``segments.speaker_role`` of every segment (of ``documents``, and of ``speakers``,
    when given) whose role did not come from a spreadsheet: the document's map, else the
    project's, else the convention. Returns how many segments changed; the caller may hold
    the transaction (this one joins it)."""
    db.conn.create_function("qualcode_convention_role", 3, convention_role, deterministic=True)
    where, params = ["coalesce(s.speaker_role_source, '') != 'spreadsheet'"], []
    if documents is not None:
        if not documents:
            return 0
        where.append(f"s.document_id IN ({', '.join('?' * len(documents))})")
        params += list(documents)
    if speakers is not None:
        if not speakers:
            return 0
        where.append(f"s.speaker COLLATE NOCASE IN ({', '.join('?' * len(speakers))})")
        params += list(speakers)
    changes = db.execute(
        f"""SELECT id, role, CASE WHEN role IS NULL THEN NULL ELSE source END AS source FROM (
              SELECT s.id, s.speaker_role AS old_role, s.speaker_role_source AS old_source,
                     CASE WHEN dm.role IS NOT NULL THEN dm.role WHEN pm.role IS NOT NULL THEN pm.role
                          ELSE qualcode_convention_role(d.kind, s.speaker, json_extract(d.attributes, '$.interviewer'))
                     END AS role,
                     CASE WHEN dm.role IS NOT NULL THEN 'document' WHEN pm.role IS NOT NULL THEN 'project'
                          ELSE 'convention' END AS source
              FROM segments s JOIN documents d ON d.id = s.document_id
              LEFT JOIN speaker_roles dm ON dm.document_id = s.document_id AND dm.speaker = s.speaker
              LEFT JOIN speaker_roles pm ON pm.document_id = '' AND pm.speaker = s.speaker
              WHERE {' AND '.join(where)})
            WHERE old_role IS NOT role
               OR old_source IS NOT (CASE WHEN role IS NULL THEN NULL ELSE source END)""", params).fetchall()
    db.conn.executemany("UPDATE segments SET speaker_role = ?, speaker_role_source = ? WHERE id = ?",
                        [(role, source, seg_id) for seg_id, role, source in changes])
    return len(changes)
