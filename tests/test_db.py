import sqlite3

import pytest

from qualcode.db import APPLICATION_ID, BUSY_TIMEOUT_MS, migrations, open_project, schema_version
from qualcode.errors import NotAProject


def test_new_project_has_pragmas_and_schema(db, db_path):
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_TIMEOUT_MS == 10000
    tables = set(db.table_names())
    assert {"documents", "segments", "segments_fts", "codebooks", "codes", "coders", "codings",
            "memos", "suggestions", "model_runs"} <= tables
    assert schema_version(db) == [m.name for m in migrations._migrations]


def test_reopening_applies_nothing_twice(db_path):
    open_project(db_path).close()
    db = open_project(db_path)
    names = [r["name"] for r in db.query("SELECT name FROM _sqlite_migrations")]
    assert len(names) == len(set(names)) == len(migrations._migrations)


def test_old_project_upgrades_in_place(db_path, monkeypatch):
    """A file made by an older qualcode gets the newer migrations, keeping its rows."""
    db = open_project(db_path)
    db.execute("INSERT INTO coders (name, created_at) VALUES ('Rosa', 'x')")
    db.conn.commit()
    db.close()

    @migrations(name="9999_test_extra")
    def extra(db):
        db.execute("CREATE TABLE extra_for_test (id INTEGER PRIMARY KEY)")

    try:
        db = open_project(db_path)
        assert "extra_for_test" in db.table_names()
        assert db.execute("SELECT name FROM coders").fetchone()[0] == "Rosa"
        assert schema_version(db)[-1] == "9999_test_extra"
    finally:
        migrations._migrations.pop()


def test_foreign_sqlite_file_is_refused(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(NotAProject, match="not a qualcode project"):
        open_project(path)
    conn = sqlite3.connect(path)
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["t"]


def test_non_sqlite_file_is_refused(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("these are not the droids " * 100)
    with pytest.raises(NotAProject, match="not a SQLite database"):
        open_project(path)


def test_missing_file_without_create(tmp_path):
    with pytest.raises(NotAProject, match="qualcode init"):
        open_project(tmp_path / "nope.db", create=False)
    assert not (tmp_path / "nope.db").exists()


def test_fts_follows_segments(db):
    with db.atomic():
        db.execute("""INSERT INTO documents (id, title, format, sha256, text, word_count, ingested_at)
                      VALUES ('d', 'D', 'txt', 'x', 'Coaching helps. Budgets hurt.', 4, 'now')""")
        db.execute("""INSERT INTO segments (document_id, seq, start_char, end_char, text)
                      VALUES ('d', 1, 0, 15, 'Coaching helps.')""")

    def hits(q):
        return db.execute("SELECT count(*) FROM segments_fts WHERE segments_fts MATCH ?", [q]).fetchone()[0]

    assert hits("coach") == 1  # porter stemming: "coach" finds "Coaching"
    with db.atomic():
        db.execute("UPDATE segments SET text = 'Budgets hurt.' WHERE document_id = 'd'")
    assert hits("coach") == 0 and hits("budget") == 1
    with db.atomic():
        db.execute("DELETE FROM segments")
    assert hits("budget") == 0


def test_excerpts_table_follows_every_change(gold_copy):
    """Coding, uncoding, spans, renames, merges, moves, coder names and deletions all reach excerpts."""
    from qualcode.codebook import merge_codes, move_code, rename_code
    from qualcode.coding import apply_code, remove_code

    from .conftest import assert_excerpts_current

    db = open_project(gold_copy)
    assert_excerpts_current(db.conn)
    apply_code(db, "harbor-04-teacher-seacliff:3", "support.coaching", "Rosa Delgado", span="0:10", memo="a span")
    coded = db.execute("SELECT s.document_id || ':' || s.seq FROM codings g JOIN segments s ON s.id = g.segment_id "
                       "JOIN coders c ON c.id = g.coder_id WHERE c.name = 'Rosa Delgado' AND g.code_id = 'support.coaching' "
                       "AND g.start_char IS NULL LIMIT 1").fetchone()[0]
    remove_code(db, coded, "support.coaching", "Rosa Delgado")
    rename_code(db, "support.coaching", new_id="support.coaching-fit", name="Coaching that fits")
    rename_code(db, "support", name="Support, differentiated")
    merge_codes(db, "scaling.spread", "scaling.deepening")
    move_code(db, "context.relationships", "purpose")
    db.execute("UPDATE coders SET name = 'R. Delgado' WHERE name = 'Rosa Delgado'")
    db.execute("UPDATE documents SET site = 'Renamed School', title = 'Renamed' WHERE id = 'harbor-04-teacher-seacliff'")
    db.execute("UPDATE segments SET speaker = 'Someone' WHERE id = (SELECT min(segment_id) FROM codings)")
    assert_excerpts_current(db.conn)
    names = {r[0] for r in db.execute("SELECT DISTINCT lesson_name FROM excerpts WHERE lesson_id = 'support'")}
    assert names == {"Support, differentiated"}
    assert db.execute("SELECT count(*) FROM excerpts WHERE code_id = 'support.coaching-fit'").fetchone()[0] > 0
    db.execute("DELETE FROM documents WHERE id = 'harbor-04-teacher-seacliff'")  # cascades to segments and codings
    assert db.execute("SELECT count(*) FROM excerpts WHERE document_id = 'harbor-04-teacher-seacliff'").fetchone()[0] == 0
    assert_excerpts_current(db.conn)
