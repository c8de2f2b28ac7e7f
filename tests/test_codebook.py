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


# --- issue 12: hostile YAML is one line, never a hang or a traceback ---------------------------

LAUGHS = "lol: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"l{i}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)
HOSTILE = {
    "billion-laughs": (LAUGHS + GOOD, "YAML aliases expand to more than 100,000 values", 6),
    "self-reference": ("name: x\ncodes: &c\n  - id: a\n    name: A\n    definition: D\n    children: *c\n",
                       "refers to the value that contains it", 2),
    "deep": ("name: x\ncodes: " + "[" * 3000 + "]" * 3000 + "\n", "nested more than 64 levels deep", None),
    "complex-key": (GOOD.replace("version: \"1\"", "? [a, b]\n: 1"), "a field name must be plain text, not a list", 2),
    "complex-code-key": (GOOD.replace("    color:", "    ? {a: 1}\n    : x\n    color:"), "must be plain text, not a mapping", 7),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_yaml_is_one_line_and_loads_nothing(tmp_path, case):
    import time

    text, message, line = HOSTILE[case]
    db = tmp_path / "p.db"
    runner = CliRunner()
    runner.invoke(cli.cli, ["codebook", "load", str(LESSONS), "--db", str(db)])
    before = dump(db)
    path = tmp_path / "book.yml"
    path.write_text(text)
    started = time.perf_counter()
    result = runner.invoke(cli.cli, ["codebook", "load", str(path), "--db", str(db)])
    assert time.perf_counter() - started < 5
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert result.output.startswith(f"Error: {path}:{line}: " if line else f"Error: {path}:") and message in result.output
    assert dump(db) == before


def test_tagged_impossible_date_is_just_text_in_a_codebook(tmp_path):
    path = write(tmp_path, GOOD.replace('version: "1"', "version: !!timestamp 2024-13-45"))
    assert validate_codebook(path) == []
    assert load_codebook(path).version == "2024-13-45"


def test_anchors_within_the_limits_still_work(tmp_path):
    path = write(tmp_path, GOOD.replace("definition: Why we do it.", "definition: &why Why we do it.")
                 .replace("definition: The aim.", "definition: *why"))
    book = load_codebook(path)
    assert book.codes[0].children[0].definition == "Why we do it."
