import textwrap

import pytest
from click.testing import CliRunner

from qualcode import cli
from qualcode.codebook import load_codebook, sync_codebook, validate_codebook
from qualcode.errors import CodebookError

from .conftest import LESSONS, dump

GOOD = """\
name: Test book
version: "1"
codes:
  - id: purpose
    name: Purpose
    definition: Why we do it.
    color: "#112233"
    children:
      - id: purpose.aim
        name: Aim
        definition: The aim.
"""


def write(tmp_path, text, name="book.yml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_lessons_codebook_is_valid_and_complete():
    assert validate_codebook(LESSONS) == []
    book = load_codebook(LESSONS)
    assert [c.id for c in book.codes] == ["purpose", "support", "scaling", "context"]
    for lesson in book.codes:
        assert 3 <= len(lesson.children) <= 6, lesson.id
    for code, _, _ in book.walk():
        assert code.definition and code.include and code.exclude, code.id
        assert len(code.examples) >= 1, code.id
        assert len(code.terms) >= 5, code.id


@pytest.mark.parametrize(
    "text,line,message",
    [
        (GOOD.replace("id: purpose.aim", "id: purpose"), 9, "duplicate id 'purpose' (first defined on line 4)"),
        (GOOD.replace("    color:", "    colour: x\n    color:"), 7, "unknown field 'colour'"),
        (GOOD.replace("        definition: The aim.\n", ""), 9, "code 'purpose.aim' has no definition"),
        (GOOD.replace("id: purpose.aim", "id: scaling.aim"), 9, "must be 'purpose.<name>'"),
        (GOOD.replace("#112233", "#11223"), 7, "bad colour '#11223'"),
        (GOOD.replace("name: Aim", "name: [Aim"), 11, "YAML syntax error"),
        (GOOD.replace("id: purpose\n", "id: Purpose Code\n"), 4, "not a dotted slug"),
    ],
    ids=["duplicate", "unknown-field", "no-definition", "outside-prefix", "bad-colour", "yaml-syntax", "bad-id"],
)
def test_validate_reports_file_and_line(tmp_path, text, line, message):
    path = write(tmp_path, text)
    problems = validate_codebook(path)
    assert any(p.line == line and message in p.message for p in problems), [str(p) for p in problems]
    result = CliRunner().invoke(cli.cli, ["codebook", "validate", str(path)])
    assert result.exit_code == 1
    assert f"{path}:{line}: " in result.output
    assert "Traceback" not in result.output


def test_validate_reports_every_problem(tmp_path):
    text = GOOD.replace("#112233", "#zz").replace("        definition: The aim.\n", "")
    assert len(validate_codebook(write(tmp_path, text))) == 2


def test_validate_cli_success():
    result = CliRunner().invoke(cli.cli, ["codebook", "validate", str(LESSONS)])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output


def test_sync_updates_definition_in_place(db, tmp_path):
    path = write(tmp_path, GOOD)
    assert sync_codebook(db, load_codebook(path)).added == ["purpose", "purpose.aim"]
    path.write_text(GOOD.replace("The aim.", "The aim, sharper."))
    result = sync_codebook(db, load_codebook(path))
    assert result.updated == ["purpose.aim"] and result.unchanged == ["purpose"]
    assert db.execute("SELECT definition FROM codes WHERE id = 'purpose.aim'").fetchone()[0] == "The aim, sharper."


def _apply(db, code_id, coder="Rosa"):
    with db.atomic():
        db.execute("INSERT OR IGNORE INTO coders (name, created_at) VALUES (?, 'now')", [coder])
        db.execute("""INSERT OR IGNORE INTO documents (id, title, format, sha256, text, word_count, ingested_at)
                      VALUES ('d', 'D', 'txt', 'x', 'Hello there.', 2, 'now')""")
        db.execute("INSERT OR IGNORE INTO segments (id, document_id, seq, start_char, end_char, text) VALUES (1, 'd', 1, 0, 12, 'Hello there.')")
        db.execute("""INSERT INTO codings (segment_id, code_id, coder_id, origin, created_at)
                      VALUES (1, ?, (SELECT id FROM coders WHERE name = ?), 'manual', 'now')""", [code_id, coder])


def test_removing_a_used_code_is_refused_then_archived_with_force(db, tmp_path, db_path):
    path = write(tmp_path, GOOD)
    sync_codebook(db, load_codebook(path))
    _apply(db, "purpose.aim")
    _apply(db, "purpose.aim", "Sam")
    path.write_text(GOOD.split("    children:")[0])
    before = dump(db_path)
    with pytest.raises(CodebookError, match="would orphan 2 codings: purpose.aim"):
        sync_codebook(db, load_codebook(path))
    assert dump(db_path) == before
    result = sync_codebook(db, load_codebook(path), force=True)
    assert result.archived == ["purpose.aim"]
    assert db.execute("SELECT archived FROM codes WHERE id = 'purpose.aim'").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM codings").fetchone()[0] == 2
    path.write_text(GOOD)
    assert sync_codebook(db, load_codebook(path)).restored == ["purpose.aim"]


def test_unused_code_is_deleted(db, tmp_path):
    path = write(tmp_path, GOOD)
    sync_codebook(db, load_codebook(path))
    path.write_text(GOOD.split("    children:")[0])
    assert sync_codebook(db, load_codebook(path)).deleted == ["purpose.aim"]
    assert db.execute("SELECT count(*) FROM codes").fetchone()[0] == 1


def test_load_and_show_cli(tmp_path):
    db = str(tmp_path / "p.db")
    runner = CliRunner()
    result = runner.invoke(cli.cli, ["codebook", "load", str(LESSONS), "--db", db])
    assert result.exit_code == 0, result.output
    assert "21 added" in result.output
    result = runner.invoke(cli.cli, ["codebook", "show", "--db", db])
    assert result.exit_code == 0
    assert "  support.coaching" in result.output and "[0 codings]" in result.output
    result = runner.invoke(cli.cli, ["codebook", "show", str(LESSONS)])
    assert "scaling.dilemmas" in result.output


def test_load_cli_bad_file_changes_nothing(tmp_path):
    db = tmp_path / "p.db"
    runner = CliRunner()
    runner.invoke(cli.cli, ["codebook", "load", str(LESSONS), "--db", str(db)])
    before = dump(db)
    bad = write(tmp_path, GOOD.replace("#112233", "red"))
    result = runner.invoke(cli.cli, ["codebook", "load", str(bad), "--db", str(db)])
    assert result.exit_code == 1
    assert f"Error: {bad}:7: code 'purpose' has a bad colour 'red'" in result.output
    assert dump(db) == before


def test_show_cli_without_codebook(tmp_path):
    db = tmp_path / "p.db"
    CliRunner().invoke(cli.cli, ["init", "--db", str(db)])
    result = CliRunner().invoke(cli.cli, ["codebook", "show", "--db", str(db)])
    assert result.exit_code == 1
    assert "has no codebook" in result.output
