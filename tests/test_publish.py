import os
import sqlite3

import pytest
from click.testing import CliRunner

from qualcode import cli, open_project
from qualcode.publish import publish, read_names

from .conftest import assert_excerpts_current, dump


@pytest.fixture
def project(gold_copy):
    """A copy of the coded corpus with one unpublished document and a coded span."""
    path = gold_copy
    db = open_project(path)
    with db.atomic():
        db.execute("UPDATE documents SET published = 0 WHERE id = 'cedar-07-site-visit-notes'")
        seg = db.execute("SELECT id, start_char, text FROM segments WHERE document_id = 'harbor-03-coach-seacliff' "
                         "AND text LIKE '%Jonah%' LIMIT 1").fetchone()
        offset = seg[2].index("Jonah")
        db.execute("""INSERT INTO codings (segment_id, code_id, coder_id, start_char, end_char, origin, created_at)
                      VALUES (?, 'support.coaching', 1, ?, ?, 'manual', 'now')""",
                   [seg[0], seg[1] + offset, seg[1] + offset + 40])
    db.close()
    return path


def test_published_copy_exposes_no_listed_name(project, tmp_path):
    names_file = tmp_path / "names.txt"
    names_file.write_text("# people and places\nSeacliff Middle School = a middle school\nDaniela = a student\nFeld\n")
    out = tmp_path / "shared.db"
    before = dump(project)
    result = publish(project, out, pseudonymise=True, names=read_names(names_file))
    assert dump(project) == before  # the working database is untouched
    assert result["dropped_documents"] == 1 and result["documents"] == 21
    conn = sqlite3.connect(out)
    speakers = {r[0] for r in sqlite3.connect(project).execute("SELECT DISTINCT speaker FROM segments")}
    named = {s for s in speakers if s and " " in s} | {"Seacliff Middle School", "Daniela", "Feld", "Natarajan"}
    raw = out.read_bytes().decode("latin-1").lower()  # tables, indexes, FTS index and free pages alike
    for name in named:
        assert name.lower() not in raw, name
    assert "participant 1" in raw and "a middle school" in raw
    texts = dict(conn.execute("SELECT id, text FROM documents"))
    for doc, start, end, text in conn.execute("SELECT document_id, start_char, end_char, text FROM segments"):
        assert texts[doc][start:end] == text
    for doc, start, end, text in conn.execute(
            "SELECT s.document_id, g.start_char, g.end_char, s.text FROM codings g JOIN segments s ON s.id = g.segment_id "
            "WHERE g.start_char IS NOT NULL"):
        assert texts[doc][start:end] in text
    assert conn.execute("SELECT count(*) FROM segments_fts WHERE segments_fts MATCH 'natarajan'").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM segments_fts WHERE segments_fts MATCH 'participant'").fetchone()[0] > 0
    assert_excerpts_current(conn)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert not os.access(out, os.W_OK) or os.geteuid() == 0
    assert oct(out.stat().st_mode & 0o777) == "0o444"


def test_publish_cli_and_refusals(project, tmp_path):
    out = tmp_path / "shared.db"
    runner = CliRunner()
    result = runner.invoke(cli.cli, ["publish", str(out), "--db", str(project)])
    assert result.exit_code == 0 and "21 documents" in result.output and "1 unpublished dropped" in result.output
    result = runner.invoke(cli.cli, ["publish", str(out), "--db", str(project)])
    assert result.exit_code == 1 and "file exists" in result.output
    assert runner.invoke(cli.cli, ["publish", str(out), "--force", "--include-unpublished", "--db", str(project)]).exit_code == 0
    assert sqlite3.connect(out).execute("SELECT count(*) FROM documents").fetchone()[0] == 22
    result = runner.invoke(cli.cli, ["publish", str(project), "--db", str(project)])
    assert result.exit_code == 1 and "different file" in result.output
    bad = tmp_path / "names.txt"
    bad.write_text("Jonah\n= nobody\n")
    result = runner.invoke(cli.cli, ["publish", str(tmp_path / "x.db"), "--names", str(bad), "--db", str(project)])
    assert result.exit_code == 1 and f"{bad}:2: a line with a replacement but no name" in result.output
    assert not (tmp_path / "x.db").exists()
