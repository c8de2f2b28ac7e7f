"""Opening a project database, and the schema that every qualcode file shares.

Every ``CREATE`` in qualcode lives here, as numbered migration steps: a new
project and an old one being upgraded go through the same steps, so there is
one schema, not two.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import sqlite3
import stat
import sys
from pathlib import Path
from typing import Iterator

import sqlite_utils
from sqlite_utils.migrations import Migrations

from .errors import NotAProject, QualcodeError

#: ``PRAGMA application_id`` of qualcode projects: "QCOD" in ASCII.
APPLICATION_ID = 0x51434F44

#: Where commands look for the project when ``--db`` is not given.
DEFAULT_DB = "qualcode.db"

migrations = Migrations("qualcode")


@migrations(name="0001_core")
def _m0001_core(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE documents (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            kind TEXT NOT NULL DEFAULT 'document',
            site TEXT,
            district TEXT,
            role TEXT,
            date TEXT,
            format TEXT NOT NULL,
            source_path TEXT,
            sha256 TEXT NOT NULL,
            text TEXT NOT NULL,
            word_count INTEGER NOT NULL,
            attributes TEXT NOT NULL DEFAULT '{}',
            published INTEGER NOT NULL DEFAULT 1,
            ingested_at TEXT NOT NULL
        );
        CREATE INDEX idx_documents_sha256 ON documents(sha256);
        CREATE INDEX idx_documents_site ON documents(site);
        CREATE INDEX idx_documents_kind ON documents(kind);

        CREATE TABLE segments (
            id INTEGER PRIMARY KEY,
            document_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            speaker TEXT,
            start_char INTEGER NOT NULL,
            end_char INTEGER NOT NULL,
            text TEXT NOT NULL,
            start_time REAL,
            end_time REAL,
            CHECK (end_char > start_char),
            UNIQUE (document_id, seq)
        );
        CREATE INDEX idx_segments_speaker ON segments(speaker);

        CREATE VIRTUAL TABLE segments_fts USING fts5(
            text, speaker,
            content='segments', content_rowid='id',
            tokenize='porter unicode61'
        );
        CREATE TRIGGER segments_ai AFTER INSERT ON segments BEGIN
            INSERT INTO segments_fts(rowid, text, speaker)
            VALUES (new.id, new.text, new.speaker);
        END;
        CREATE TRIGGER segments_ad AFTER DELETE ON segments BEGIN
            INSERT INTO segments_fts(segments_fts, rowid, text, speaker)
            VALUES ('delete', old.id, old.text, old.speaker);
        END;
        CREATE TRIGGER segments_au AFTER UPDATE OF text, speaker ON segments BEGIN
            INSERT INTO segments_fts(segments_fts, rowid, text, speaker)
            VALUES ('delete', old.id, old.text, old.speaker);
            INSERT INTO segments_fts(rowid, text, speaker)
            VALUES (new.id, new.text, new.speaker);
        END;

        CREATE TABLE codebooks (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            version TEXT,
            description TEXT,
            source_path TEXT,
            loaded_at TEXT NOT NULL
        );

        CREATE TABLE codes (
            id TEXT PRIMARY KEY,
            codebook_id TEXT NOT NULL REFERENCES codebooks(id),
            parent_id TEXT REFERENCES codes(id),
            lesson_id TEXT NOT NULL,
            depth INTEGER NOT NULL,
            name TEXT NOT NULL,
            definition TEXT NOT NULL,
            include TEXT,
            exclude TEXT,
            examples TEXT NOT NULL DEFAULT '[]',
            terms TEXT NOT NULL DEFAULT '[]',
            color TEXT,
            sort_order INTEGER NOT NULL,
            archived INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX idx_codes_parent ON codes(parent_id);

        CREATE TABLE coders (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL
        );

        CREATE TABLE codings (
            id INTEGER PRIMARY KEY,
            segment_id INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
            code_id TEXT NOT NULL REFERENCES codes(id),
            coder_id INTEGER NOT NULL REFERENCES coders(id),
            start_char INTEGER,
            end_char INTEGER,
            origin TEXT NOT NULL CHECK (origin IN ('manual', 'suggestion', 'import')),
            memo TEXT,
            created_at TEXT NOT NULL,
            CHECK ((start_char IS NULL) = (end_char IS NULL)),
            CHECK (start_char IS NULL OR end_char > start_char)
        );
        CREATE UNIQUE INDEX idx_codings_unique ON codings(
            segment_id, code_id, coder_id, coalesce(start_char, -1), coalesce(end_char, -1)
        );
        CREATE INDEX idx_codings_code ON codings(code_id);
        CREATE INDEX idx_codings_coder ON codings(coder_id);

        CREATE TABLE memos (
            id INTEGER PRIMARY KEY,
            coder_id INTEGER REFERENCES coders(id),
            document_id TEXT REFERENCES documents(id) ON DELETE CASCADE,
            segment_id INTEGER REFERENCES segments(id) ON DELETE CASCADE,
            code_id TEXT REFERENCES codes(id),
            text TEXT NOT NULL,
            created_at TEXT NOT NULL,
            CHECK ((document_id IS NOT NULL) + (segment_id IS NOT NULL) + (code_id IS NOT NULL) = 1)
        );

        CREATE TABLE model_runs (
            id INTEGER PRIMARY KEY,
            created_at TEXT NOT NULL,
            method TEXT NOT NULL,
            training_size INTEGER NOT NULL DEFAULT 0,
            parameters TEXT NOT NULL DEFAULT '{}',
            metrics TEXT NOT NULL DEFAULT '{}'
        );

        CREATE TABLE suggestions (
            id INTEGER PRIMARY KEY,
            segment_id INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
            code_id TEXT NOT NULL REFERENCES codes(id),
            score REAL NOT NULL,
            method TEXT NOT NULL,
            evidence TEXT NOT NULL DEFAULT '[]',
            model_run_id INTEGER REFERENCES model_runs(id),
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'accepted', 'rejected')),
            decided_by INTEGER REFERENCES coders(id),
            decided_at TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX idx_suggestions_segment ON suggestions(segment_id);
        CREATE INDEX idx_suggestions_code_status ON suggestions(code_id, status);
        """
    )


#: How long a writer waits for another to finish before giving up, in milliseconds.
BUSY_TIMEOUT_MS = int(os.environ.get("QUALCODE_BUSY_TIMEOUT_MS", "10000"))


class ProjectBusy(QualcodeError):
    """Another writer held the project for longer than the busy timeout."""


def _set_pragmas(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


def _holder_path(conn: sqlite3.Connection) -> Path | None:
    file = conn.execute("PRAGMA database_list").fetchone()[2]
    return Path(file + "-writer") if file else None


def lock_holder(conn: sqlite3.Connection) -> str:
    """Who is writing to the project, as the writer recorded it when it took the lock."""
    path = _holder_path(conn)
    try:
        note = json.loads(path.read_text(encoding="utf-8")) if path else None
    except (OSError, ValueError):
        note = None
    if not note:
        return "another program (not qualcode, or one that has just finished)"
    try:
        os.kill(note["pid"], 0)
        alive = ""
    except ProcessLookupError:
        alive = ", which has since ended"
    except (PermissionError, KeyError, TypeError):
        alive = ""
    return f"`{note.get('command', '?')}` (process {note.get('pid', '?')}{alive}, writing since {note.get('since', '?')})"


class Project(sqlite_utils.Database):
    """A project database whose write transactions wait their turn.

    sqlite-utils begins transactions as DEFERRED: one that reads before it writes
    holds a read snapshot, and when another writer commits first SQLite refuses to
    upgrade it at once, busy timeout or not. Every unit of work here begins
    IMMEDIATE instead, so it takes the write lock first (waiting up to the busy
    timeout) and never fails half way; the writer leaves a note saying who it is,
    so one that gives up can say who held the lock.
    """

    @contextlib.contextmanager
    def atomic(self) -> Iterator["Project"]:
        if self.conn.in_transaction:
            with super().atomic():
                yield self
            return
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise
            raise busy_error(self.conn) from None
        note = _holder_path(self.conn)
        try:
            if note:
                with contextlib.suppress(OSError):
                    note.write_text(json.dumps({"pid": os.getpid(), "since": now(),
                                                "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:3]])}))
            yield self
        except BaseException:
            self.rollback()
            raise
        else:
            try:
                self.conn.execute("COMMIT")
            except BaseException:
                self.rollback()
                raise
        finally:
            if note:
                with contextlib.suppress(OSError):
                    note.unlink()


def busy_error(conn: sqlite3.Connection) -> ProjectBusy:
    file = conn.execute("PRAGMA database_list").fetchone()[2]
    return ProjectBusy(f"the project is busy: {lock_holder(conn)} held it for more than "
                       f"{BUSY_TIMEOUT_MS / 1000:g} s", file,
                       hint="try again when it has finished (or set QUALCODE_BUSY_TIMEOUT_MS to wait longer)")


def open_project(path: str | os.PathLike[str], create: bool = True) -> Project:
    """Open (or create) a project database and bring its schema up to date.

    Raises :class:`NotAProject` for a file that is not SQLite or belongs to
    another application, so we never write our tables into someone else's file.
    """
    path = Path(path)
    exists = path.exists() and path.stat().st_size > 0
    if not exists and not create:
        raise NotAProject(
            "no project database here", path, hint="create one with `qualcode init`"
        )
    conn = sqlite3.connect(str(path))
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        has_tables = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
        ).fetchone()[0]
    except sqlite3.DatabaseError:
        conn.close()
        raise NotAProject(
            "not a SQLite database", path, hint="pass the project file with --db"
        ) from None
    if app_id != APPLICATION_ID and (app_id != 0 or has_tables):
        conn.close()
        raise NotAProject(
            "this SQLite file is not a qualcode project",
            path,
            hint="choose another file with --db or create one with `qualcode init`",
        )
    _set_pragmas(conn)
    conn.execute("PRAGMA journal_mode = WAL")
    # WAL with synchronous=NORMAL cannot corrupt the file; it only risks the
    # last commit on power loss, and makes one-transaction-per-file ingest fast.
    conn.execute("PRAGMA synchronous = NORMAL")
    db = Project(conn)
    if app_id == 0:
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    migrations.apply(db)
    return db


def copy_project(db: sqlite_utils.Database, out: str | os.PathLike[str], force: bool = False,
                 what: str = "copy") -> sqlite3.Connection:
    """Copy the project to a new file with SQLite's backup API (consistent even while
    someone is writing) and return a connection to the copy."""
    out = Path(out)
    source = Path(db.conn.execute("PRAGMA database_list").fetchone()[2])
    if out.resolve() == source.resolve():
        raise QualcodeError(f"the {what} must be a different file from the project", out)
    if out.exists():
        if not force:
            raise QualcodeError("file exists", out, hint="choose another name or pass --force to replace it")
        out.chmod(stat.S_IWUSR | stat.S_IRUSR)  # a published copy is read-only
        out.unlink()
    target = sqlite3.connect(str(out))
    db.conn.backup(target)
    return target


def schema_version(db: sqlite_utils.Database) -> list[str]:
    """Names of the migrations applied to this project, oldest first."""
    return [m.name for m in migrations.applied(db)]


def now() -> str:
    """Timestamps are UTC ISO 8601 strings, sortable as text."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@migrations(name="0002_views")
def _m0002_views(db: sqlite_utils.Database) -> None:
    """Views that read well in Datasette and that exports and queries share."""
    db.executescript(
        """
        CREATE VIEW excerpts AS
        SELECT g.id AS excerpt_id,
               d.id AS document_id, d.title, d.kind, d.site, d.district, d.role, d.date,
               s.id AS segment_id, s.seq, s.speaker, s.start_time,
               CASE WHEN g.start_char IS NULL THEN s.text
                    ELSE substr(d.text, g.start_char + 1, g.end_char - g.start_char) END AS text,
               coalesce(g.start_char, s.start_char) AS start_char,
               coalesce(g.end_char, s.end_char) AS end_char,
               g.code_id, k.name AS code_name, k.lesson_id, l.name AS lesson_name,
               c.name AS coder, g.origin, g.memo, g.created_at
        FROM codings g
        JOIN segments s ON s.id = g.segment_id
        JOIN documents d ON d.id = s.document_id
        JOIN codes k ON k.id = g.code_id
        JOIN codes l ON l.id = k.lesson_id
        JOIN coders c ON c.id = g.coder_id;

        -- One row per (segment, code) whatever the number of coders, with the
        -- code's lesson added, so counts roll up from sub-codes to lessons.
        CREATE VIEW coded_segments AS
        SELECT DISTINCT g.segment_id, g.code_id, g.coder_id FROM codings g
        UNION
        SELECT DISTINCT g.segment_id, k.lesson_id, g.coder_id FROM codings g
        JOIN codes k ON k.id = g.code_id WHERE k.lesson_id != k.id;

        CREATE VIEW code_by_site AS
        SELECT k.lesson_id, x.code_id, k.name AS code_name, k.depth, d.district, d.site,
               count(DISTINCT x.segment_id) AS segments,
               count(DISTINCT d.id) AS documents,
               count(DISTINCT s.document_id || ':' || coalesce(s.speaker, '')) AS speakers
        FROM coded_segments x
        JOIN codes k ON k.id = x.code_id
        JOIN segments s ON s.id = x.segment_id
        JOIN documents d ON d.id = s.document_id
        GROUP BY x.code_id, d.district, d.site;

        CREATE VIEW code_by_role AS
        SELECT k.lesson_id, x.code_id, k.name AS code_name, k.depth, d.role,
               count(DISTINCT x.segment_id) AS segments,
               count(DISTINCT d.id) AS documents,
               count(DISTINCT s.document_id || ':' || coalesce(s.speaker, '')) AS speakers
        FROM coded_segments x
        JOIN codes k ON k.id = x.code_id
        JOIN segments s ON s.id = x.segment_id
        JOIN documents d ON d.id = s.document_id
        GROUP BY x.code_id, d.role;

        CREATE VIEW cooccurrence AS
        WITH pairs AS (SELECT DISTINCT segment_id, code_id FROM coded_segments),
             totals AS (SELECT code_id, count(*) AS n FROM pairs GROUP BY code_id)
        -- Codes are paired with codes of the same level (sub-code with sub-code,
        -- lesson with lesson); c = n12 / (n1 + n2 - n12).
        SELECT ka.depth AS level, a.code_id AS code_a, b.code_id AS code_b,
               count(*) AS n12, ta.n AS n1, tb.n AS n2,
               round(1.0 * count(*) / (ta.n + tb.n - count(*)), 4) AS coefficient
        FROM pairs a
        JOIN pairs b ON a.segment_id = b.segment_id AND a.code_id < b.code_id
        JOIN codes ka ON ka.id = a.code_id
        JOIN codes kb ON kb.id = b.code_id AND kb.depth = ka.depth
        JOIN totals ta ON ta.code_id = a.code_id
        JOIN totals tb ON tb.code_id = b.code_id
        GROUP BY a.code_id, b.code_id;
        """
    )


@migrations(name="0003_publish_views")
def _m0003_publish_views(db: sqlite_utils.Database) -> None:
    """Views for reading the project in Datasette: the codebook as a tree, the review queue."""
    db.executescript(
        """
        -- The codebook in reading order, indented by depth, with the guidance a
        -- coder needs written as Markdown (Datasette renders it).
        CREATE VIEW codebook_tree AS
        WITH RECURSIVE tree(id, path) AS (
            SELECT id, printf('%06d', sort_order) FROM codes WHERE parent_id IS NULL
            UNION ALL
            SELECT c.id, tree.path || '/' || printf('%06d', c.sort_order)
            FROM codes c JOIN tree ON c.parent_id = tree.id
        )
        SELECT replace(hex(zeroblob(k.depth)), '00', '\u2003\u2003')
                 || CASE WHEN k.depth > 0 THEN '└ ' ELSE '' END || k.name AS code,
               '**Definition.** ' || k.definition
                 || coalesce(char(10, 10) || '**Use when:** ' || k.include, '')
                 || coalesce(char(10, 10) || '**Not when:** ' || k.exclude, '')
                 || coalesce((SELECT char(10, 10) || '**Examples:**' || char(10, 10)
                                     || group_concat('> ' || e.value, char(10, 10))
                              FROM json_each(k.examples) e), '') AS guidance,
               (SELECT count(DISTINCT g.segment_id) FROM codes c JOIN codings g ON g.code_id = c.id
                WHERE c.id = k.id OR c.lesson_id = k.id) AS coded_segments,
               (SELECT group_concat(t.value, ', ') FROM json_each(k.terms) t) AS terms,
               k.id AS code_id, k.lesson_id, k.depth, k.codebook_id, k.archived,
               tree.path AS sort_key
        FROM tree JOIN codes k ON k.id = tree.id;

        CREATE VIEW suggestions_to_review AS
        SELECT x.id AS suggestion_id, d.id || ':' || s.seq AS segment,
               d.title, d.site, d.district, d.role, s.speaker, s.text,
               x.code_id, k.name AS code_name, k.lesson_id, round(x.score, 3) AS score,
               x.method,
               (SELECT group_concat(t.value, ', ') FROM json_each(x.evidence, '$.terms') t) AS terms,
               x.model_run_id, x.created_at
        FROM suggestions x
        JOIN segments s ON s.id = x.segment_id
        JOIN documents d ON d.id = s.document_id
        JOIN codes k ON k.id = x.code_id
        WHERE x.status = 'pending';
        """
    )


_EXCERPT_SOURCE = "INSERT OR REPLACE INTO excerpts SELECT * FROM excerpt_source WHERE"


@migrations(name="0004_excerpts_table")
def _m0004_excerpts_table(db: sqlite_utils.Database) -> None:
    """Excerpts become a table kept up to date by triggers, indexed for Datasette's facets.

    As a view over five joined tables, a million-segment project took 0.7 s just to
    count its excerpts and over a second to facet them, on every page. The view
    survives as ``excerpt_source``: the triggers copy from it, and a test checks the
    table against it after every kind of change.
    """
    source = db.execute("SELECT sql FROM sqlite_master WHERE name = 'excerpts'").fetchone()[0]
    db.executescript(
        "DROP VIEW excerpts;\n"
        + source.replace("CREATE VIEW excerpts AS", "CREATE VIEW excerpt_source AS") + ";\n"
        + f"""
        CREATE TABLE excerpts (
            excerpt_id INTEGER PRIMARY KEY,
            document_id TEXT, title TEXT, kind TEXT, site TEXT, district TEXT, role TEXT, date TEXT,
            segment_id INTEGER, seq INTEGER, speaker TEXT, start_time REAL,
            text TEXT, start_char INTEGER, end_char INTEGER,
            code_id TEXT, code_name TEXT, lesson_id TEXT, lesson_name TEXT,
            coder TEXT, origin TEXT, memo TEXT, created_at TEXT
        );
        INSERT INTO excerpts SELECT * FROM excerpt_source;
        CREATE INDEX idx_excerpts_segment ON excerpts(segment_id, lesson_name, code_name, site, role, coder);
        CREATE INDEX idx_excerpts_document ON excerpts(document_id, seq);
        -- Excerpts are mostly read one code or lesson at a time: these two cover the
        -- facets of such a page, so each facet reads the index alone; the first also
        -- covers the dashboard's counts of segments per code and site or role.
        CREATE INDEX idx_excerpts_code ON excerpts(code_id, lesson_id, district, site, role, segment_id,
                                                   lesson_name, code_name, coder);
        CREATE INDEX idx_excerpts_lesson ON excerpts(lesson_id, lesson_name, code_name, site, role, coder);
        CREATE INDEX idx_excerpts_code_name ON excerpts(code_name);
        CREATE INDEX idx_excerpts_lesson_name ON excerpts(lesson_name);
        CREATE INDEX idx_excerpts_site ON excerpts(site);
        CREATE INDEX idx_excerpts_role ON excerpts(role);
        CREATE INDEX idx_excerpts_coder ON excerpts(coder);
        CREATE INDEX idx_codings_origin ON codings(origin);
        DROP INDEX idx_codings_code;  -- covered by the next, which also counts segments per code
        CREATE INDEX idx_codings_code_segment ON codings(code_id, segment_id);

        CREATE TRIGGER excerpts_coding_insert AFTER INSERT ON codings BEGIN
            {_EXCERPT_SOURCE} excerpt_id = new.id;
        END;
        CREATE TRIGGER excerpts_coding_delete AFTER DELETE ON codings BEGIN
            DELETE FROM excerpts WHERE excerpt_id = old.id;
        END;
        CREATE TRIGGER excerpts_coding_update AFTER UPDATE ON codings BEGIN
            DELETE FROM excerpts WHERE excerpt_id = old.id;
            {_EXCERPT_SOURCE} excerpt_id = new.id;
        END;
        CREATE TRIGGER excerpts_segment_update
        AFTER UPDATE OF id, document_id, seq, speaker, start_time, text, start_char, end_char ON segments BEGIN
            DELETE FROM excerpts WHERE segment_id = old.id;
            {_EXCERPT_SOURCE} segment_id = new.id;
        END;
        CREATE TRIGGER excerpts_document_update
        AFTER UPDATE OF id, title, kind, site, district, role, date, text ON documents BEGIN
            DELETE FROM excerpts WHERE document_id = old.id;
            {_EXCERPT_SOURCE} document_id = new.id;
        END;
        CREATE TRIGGER excerpts_code_update AFTER UPDATE OF id, name, lesson_id ON codes BEGIN
            DELETE FROM excerpts WHERE code_id = old.id OR lesson_id = old.id;
            {_EXCERPT_SOURCE} code_id = new.id OR lesson_id = new.id;
        END;
        CREATE TRIGGER excerpts_coder_update AFTER UPDATE OF name ON coders BEGIN
            DELETE FROM excerpts WHERE coder = old.name;
            {_EXCERPT_SOURCE} coder = new.name;
        END;
        """
    )


@migrations(name="0005_team")
def _m0005_team(db: sqlite_utils.Database) -> None:
    """Team coding: consensus coders, assignments, reconciliation decisions, agreement."""
    db.executescript(
        """
        ALTER TABLE coders ADD COLUMN consensus INTEGER NOT NULL DEFAULT 0;

        CREATE TABLE assignments (
            document_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE ON UPDATE CASCADE,
            coder_id INTEGER NOT NULL REFERENCES coders(id),
            blind INTEGER NOT NULL DEFAULT 1,
            assigned_at TEXT NOT NULL,
            PRIMARY KEY (document_id, coder_id)
        );

        -- What a consensus coder decided about one disagreement, "apply" or "reject",
        -- so a walk through the disagreements can stop and resume, and a rejection
        -- is remembered as firmly as an application.
        CREATE TABLE consensus_decisions (
            id INTEGER PRIMARY KEY,
            segment_id INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
            code_id TEXT NOT NULL REFERENCES codes(id) ON UPDATE CASCADE,
            coder_id INTEGER NOT NULL REFERENCES coders(id),
            decision TEXT NOT NULL CHECK (decision IN ('apply', 'reject')),
            between_coders TEXT NOT NULL,
            memo TEXT,
            decided_at TEXT NOT NULL,
            UNIQUE (segment_id, code_id, coder_id)
        );

        -- Segment-level agreement for every pair of coders and every code (lessons
        -- rolled up), over the segments of documents both coders coded (at least
        -- one coding each). a = both applied, b and c = one only, d = neither.
        -- Positive agreement = 2a / (2a + b + c) leaves out the many segments
        -- neither coder coded, which inflate percent agreement.
        -- Cohen's kappa = (po - pe) / (1 - pe); Krippendorff's alpha (nominal,
        -- two coders, no missing values) = 1 - Do / De with Do = (b + c) / N and
        -- De = 2 n1 n0 / (2N (2N - 1)), n1 = 2a + b + c, n0 = 2N - n1.
        CREATE VIEW agreement AS
        WITH coded_docs AS (
            SELECT DISTINCT s.document_id, g.coder_id FROM codings g JOIN segments s ON s.id = g.segment_id
        ),
        pair_docs AS (
            SELECT a.coder_id AS coder_a, b.coder_id AS coder_b, a.document_id
            FROM coded_docs a JOIN coded_docs b ON b.document_id = a.document_id AND a.coder_id < b.coder_id
        ),
        units AS (
            SELECT p.coder_a, p.coder_b, count(DISTINCT p.document_id) AS documents, count(*) AS n
            FROM pair_docs p JOIN segments s ON s.document_id = p.document_id
            GROUP BY p.coder_a, p.coder_b
        ),
        marks AS (
            SELECT p.coder_a, p.coder_b, x.segment_id, x.code_id,
                   max(x.coder_id = p.coder_a) AS ya, max(x.coder_id = p.coder_b) AS yb
            FROM pair_docs p
            JOIN segments s ON s.document_id = p.document_id
            JOIN coded_segments x ON x.segment_id = s.id AND x.coder_id IN (p.coder_a, p.coder_b)
            GROUP BY p.coder_a, p.coder_b, x.segment_id, x.code_id
        ),
        counts AS (
            SELECT coder_a, coder_b, code_id,
                   sum(ya AND yb) AS a, sum(ya AND NOT yb) AS b, sum(yb AND NOT ya) AS c
            FROM marks GROUP BY coder_a, coder_b, code_id
        ),
        figures AS (
            SELECT k.coder_a, k.coder_b, k.code_id, u.documents, u.n, k.a, k.b, k.c, u.n - k.a - k.b - k.c AS d,
                   1.0 * (k.a + k.b) / u.n AS pa, 1.0 * (k.a + k.c) / u.n AS pb,
                   2 * k.a + k.b + k.c AS n1
            FROM counts k JOIN units u ON u.coder_a = k.coder_a AND u.coder_b = k.coder_b
        )
        SELECT ca.name AS coder_a, cb.name AS coder_b, f.code_id, c.lesson_id, c.depth AS level,
               f.documents, f.n AS units, f.a + f.b + f.c AS positive_units,
               f.a + f.b AS positives_a, f.a + f.c AS positives_b, f.a AS both_applied,
               round(1.0 * (f.a + f.d) / f.n, 4) AS percent_agreement,
               round(CASE WHEN f.n1 > 0 THEN 2.0 * f.a / f.n1 END, 4) AS positive_agreement,
               round(CASE WHEN (f.pa * f.pb + (1 - f.pa) * (1 - f.pb)) < 1
                     THEN ((1.0 * (f.a + f.d) / f.n) - (f.pa * f.pb + (1 - f.pa) * (1 - f.pb)))
                          / (1 - (f.pa * f.pb + (1 - f.pa) * (1 - f.pb))) END, 4) AS cohen_kappa,
               round(CASE WHEN f.n1 > 0 AND f.n1 < 2 * f.n
                     THEN 1 - (1.0 * (f.b + f.c) / f.n)
                              / (2.0 * f.n1 * (2 * f.n - f.n1) / (2.0 * f.n * (2 * f.n - 1))) END, 4)
                 AS krippendorff_alpha
        FROM figures f
        JOIN coders ca ON ca.id = f.coder_a
        JOIN coders cb ON cb.id = f.coder_b
        JOIN codes c ON c.id = f.code_id;
        """
    )


@migrations(name="0006_about")
def _m0006_about(db: sqlite_utils.Database) -> None:
    """What a project says about itself when served: its own title, description and licence."""
    db.executescript(
        """
        CREATE TABLE about (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            title TEXT,
            description TEXT,
            license TEXT,
            license_url TEXT,
            source TEXT,
            source_url TEXT
        );
        """
    )


@migrations(name="0007_coding_removals")
def _m0007_coding_removals(db: sqlite_utils.Database) -> None:
    """A record of removed codings, so `qualcode merge` can tell a coding removed here since a
    copy was made (a conflict) from one the copy added (new work).

    A trigger keeps it, so every way of removing a coding is recorded. Codings that go with
    their segment or code (a re-ingested turn, a merged code) are not removals of a decision
    and are not recorded.
    """
    db.executescript(
        """
        -- id: random, so a copy knows a removal by the id it carries from the clone,
        -- whatever the clocks of the two machines say.
        CREATE TABLE coding_removals (
            id TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(8)))),
            segment_id INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
            code_id TEXT NOT NULL REFERENCES codes(id) ON UPDATE CASCADE ON DELETE CASCADE,
            coder_id INTEGER NOT NULL REFERENCES coders(id) ON DELETE CASCADE,
            start_char INTEGER,
            end_char INTEGER,
            removed_at TEXT NOT NULL
        );
        CREATE INDEX idx_coding_removals ON coding_removals(segment_id, code_id, coder_id);
        CREATE TRIGGER coding_removals_record AFTER DELETE ON codings
        WHEN EXISTS (SELECT 1 FROM segments WHERE id = old.segment_id)
         AND EXISTS (SELECT 1 FROM codes WHERE id = old.code_id)
        BEGIN
            INSERT INTO coding_removals (segment_id, code_id, coder_id, start_char, end_char, removed_at)
            VALUES (old.segment_id, old.code_id, old.coder_id, old.start_char, old.end_char,
                    strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'));
        END;
        """
    )


@migrations(name="0008_speaker_roles")
def _m0008_speaker_roles(db: sqlite_utils.Database) -> None:
    """Speaker roles: each segment's role and where it came from, a speaker map, and the codebook's
    role scopes and exclusive sets.

    Roles are filled at once from the conventions (see :mod:`qualcode.roles`), so an old
    project reads as a new one would; excerpts carry the role too, for report writers.
    """
    from .roles import apply_roles

    db.executescript(
        """
        ALTER TABLE segments ADD COLUMN speaker_role TEXT;
        ALTER TABLE segments ADD COLUMN speaker_role_source TEXT
            CHECK (speaker_role_source IN ('spreadsheet', 'document', 'project', 'convention'));
        CREATE INDEX idx_segments_speaker_role ON segments(speaker_role);

        -- A role scope: a JSON list of role names, or NULL for none. exclusive = 1 on a
        -- parent: at most one of its sub-codes applies to a segment.
        ALTER TABLE codes ADD COLUMN roles TEXT;
        ALTER TABLE codes ADD COLUMN exclusive INTEGER NOT NULL DEFAULT 0 CHECK (exclusive IN (0, 1));

        -- The speaker map: document_id '' is the whole project. Speakers match whatever their case.
        CREATE TABLE speaker_roles (
            document_id TEXT NOT NULL DEFAULT '',
            speaker TEXT NOT NULL COLLATE NOCASE,
            role TEXT NOT NULL,
            PRIMARY KEY (document_id, speaker)
        );
        CREATE TRIGGER speaker_roles_document_delete AFTER DELETE ON documents BEGIN
            DELETE FROM speaker_roles WHERE document_id = old.id;
        END;
        """
    )
    # Filled before the excerpts follow segments' roles, so they are copied once, in bulk.
    apply_roles(db)
    source = db.execute("SELECT sql FROM sqlite_master WHERE name = 'excerpt_source'").fetchone()[0]
    last = "g.origin, g.memo, g.created_at"
    assert last in source, "excerpt_source no longer ends as migration 0008 expects"
    db.executescript(
        "DROP VIEW excerpt_source;\n"
        + source.replace(last, last + ", s.speaker_role", 1) + ";\n"
        + f"""
        ALTER TABLE excerpts ADD COLUMN speaker_role TEXT;
        UPDATE excerpts SET speaker_role = (SELECT s.speaker_role FROM segments s WHERE s.id = excerpts.segment_id);
        CREATE INDEX idx_excerpts_speaker_role ON excerpts(speaker_role);
        DROP TRIGGER excerpts_segment_update;
        CREATE TRIGGER excerpts_segment_update
        AFTER UPDATE OF id, document_id, seq, speaker, start_time, text, start_char, end_char, speaker_role ON segments BEGIN
            DELETE FROM excerpts WHERE segment_id = old.id;
            {_EXCERPT_SOURCE} segment_id = new.id;
        END;
        """
    )


#: A random (version 4) UUID as SQLite makes it, for rows that need a GUID to exchange.
_NEW_GUID = ("lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2)"
             " || '-' || substr('89ab', 1 + abs(random()) % 4, 1) || substr(lower(hex(randomblob(2))), 2)"
             " || '-' || lower(hex(randomblob(6)))")


@migrations(name="0009_refi_guids")
def _m0009_refi_guids(db: sqlite_utils.Database) -> None:
    """A GUID on every document, code, coder and memo, for REFI-QDA exchange (:mod:`qualcode.refi`).

    Other tools (NVivo, ATLAS.ti, MAXQDA, QualCoder) know a code or a source by its GUID, so a
    re-export must give the same one: a GUID is made once, when the row is, and kept; an import
    stores the GUIDs of the file it read. Renaming or moving a code copies the row, GUID and all.
    """
    statements = []
    for table in ("documents", "codes", "coders", "memos"):
        statements += [
            f"ALTER TABLE {table} ADD COLUMN guid TEXT;",
            f"UPDATE {table} SET guid = {_NEW_GUID};",
            f"CREATE UNIQUE INDEX idx_{table}_guid ON {table}(guid);",
            f"""CREATE TRIGGER {table}_guid AFTER INSERT ON {table} WHEN new.guid IS NULL BEGIN
                UPDATE {table} SET guid = {_NEW_GUID} WHERE rowid = new.rowid;
            END;""",
        ]
    db.executescript("\n".join(statements))


@contextlib.contextmanager
def bulk_codings(db: sqlite_utils.Database) -> Iterator[None]:
    """Insert many codings at once: the excerpts are copied in one statement at the end instead of
    by the insert trigger row by row (3x faster for the 100,000 codings of a REFI-QDA import).

    The trigger is dropped and put back from its own stored SQL, inside the caller's transaction,
    so no other connection ever sees the table without it.
    """
    if not db.conn.in_transaction:
        raise RuntimeError("bulk_codings needs the caller's transaction")
    sql = db.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'excerpts_coding_insert'").fetchone()[0]
    first = db.execute("SELECT coalesce(max(id), 0) FROM codings").fetchone()[0]
    db.execute("DROP TRIGGER excerpts_coding_insert")
    try:
        yield
        db.execute(f"{_EXCERPT_SOURCE} excerpt_id > ?", [first])
    finally:
        db.execute(sql)
