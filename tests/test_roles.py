"""Speaker roles: conventions, the speaker map and its precedence, spreadsheets, the CLI, privacy."""

import sqlite3

import pytest
from click.testing import CliRunner

from qualcode import cli, open_project
from qualcode.db import migrations
from qualcode.errors import QualcodeError
from qualcode.ingest import IngestOptions, TableMapping, ingest_paths
from qualcode.roles import (RoleError, apply_roles, clear_role, convention_role, import_roles, list_roles,
                            normalise_role, set_role)

from .conftest import assert_excerpts_current, dump

INTERVIEW = """---
kind: interview
interviewer: Dana Whitfield
---
Dana Whitfield: How did the year start?

Ana Ruiz: With coaching cycles.

Dana Whitfield: And then?

Ana Ruiz: We planned together.
"""

FOCUS_GROUP = """---
kind: focus_group
---
Moderator: What helps you learn?

Jo: Working in pairs.

Kim: The coach's feedback.

Ana Ruiz: Time to plan.
"""


def roles_of(db, document):
    return [(r[0], r[1], r[2]) for r in db.execute(
        "SELECT speaker, speaker_role, speaker_role_source FROM segments WHERE document_id = ? ORDER BY seq", [document])]


@pytest.fixture
def project(tmp_path):
    (tmp_path / "interview-ana.md").write_text(INTERVIEW)
    (tmp_path / "focus-group.md").write_text(FOCUS_GROUP)
    (tmp_path / "notes.md").write_text("The visit began in the library.\n\nTeachers met after lunch.\n")
    path = tmp_path / "project.db"
    db = open_project(path)
    result = ingest_paths(db, [tmp_path / "interview-ana.md", tmp_path / "focus-group.md", tmp_path / "notes.md"])
    assert not result.errors, [f.error for f in result.errors]
    yield db
    db.close()


@pytest.mark.parametrize("kind,speaker,interviewer,expected", [
    ("interview", "I", None, "interviewer"),
    ("interview", "q", None, "interviewer"),
    ("interview", "INTERVIEWER", None, "interviewer"),
    ("interview", "Moderator", None, "interviewer"),
    ("focus_group", "Facilitator", None, "facilitator"),
    ("focus_group", "I", None, "facilitator"),
    ("document", "Dana Whitfield", "Dana Whitfield", "interviewer"),
    ("focus_group", "Dana Whitfield", "Dana Whitfield", "facilitator"),
    ("interview", "Ana Ruiz", "Dana Whitfield", "participant"),
    ("interview", "Interviewee", None, "participant"),
    ("interview", None, None, None),
    ("interview", "  ", None, None),
])
def test_conventions(kind, speaker, interviewer, expected):
    assert convention_role(kind, speaker, interviewer) == expected


def test_suggest_uses_the_same_conventions(project):
    """The suggester reads each turn's role as roles.py set it: no second set of conventions."""
    from qualcode.suggest import load_dataset

    items = load_dataset(project, []).items
    seen = {(it.document, it.speaker): it.speaker_role for it in items}
    assert seen[("focus-group", "Moderator")] == "facilitator"
    assert seen[("interview-ana", "Dana Whitfield")] == "interviewer"
    assert seen[("interview-ana", "Ana Ruiz")] == "participant"
    assert {it.speaker_role for it in items if it.document == "notes"} == {""}  # no speaker, no role


@pytest.mark.parametrize("value,expected", [
    ("participant", "participant"), (" Teacher ", "teacher"), ("focus  group member", "focus group member"),
    ("co-teacher", "co-teacher"), ("para_educator", "para_educator"),
])
def test_role_names_are_normalised(value, expected):
    assert normalise_role(value) == expected


@pytest.mark.parametrize("value,message", [
    ("", "the role is empty"), ("teach3r", "is not a role name"), ("p1", "is not a role name"),
    ("a" * 41, "is not a role name"), ("teacher!", "is not a role name"), ("-teacher", "is not a role name"),
])
def test_bad_role_names(value, message):
    with pytest.raises(RoleError, match=message):
        normalise_role(value)


def test_ingest_fills_roles_by_convention(project):
    assert roles_of(project, "interview-ana") == [
        ("Dana Whitfield", "interviewer", "convention"), ("Ana Ruiz", "participant", "convention")] * 2
    assert roles_of(project, "focus-group") == [
        ("Moderator", "facilitator", "convention"), ("Jo", "participant", "convention"),
        ("Kim", "participant", "convention"), ("Ana Ruiz", "participant", "convention")]
    assert roles_of(project, "notes") == [(None, None, None)] * 2


def test_precedence_document_then_project_then_convention(project):
    set_role(project, "ana ruiz", "teacher")  # any case
    assert roles_of(project, "interview-ana")[1] == ("Ana Ruiz", "teacher", "project")
    assert roles_of(project, "focus-group")[3] == ("Ana Ruiz", "teacher", "project")
    result = set_role(project, "Ana Ruiz", "Coach", document="focus-group")
    assert result.speakers == 1 and result.from_map == 3 and result.changed == 1
    assert roles_of(project, "focus-group")[3] == ("Ana Ruiz", "coach", "document")
    assert roles_of(project, "interview-ana")[1] == ("Ana Ruiz", "teacher", "project")
    clear_role(project, "Ana Ruiz")
    assert roles_of(project, "interview-ana")[1] == ("Ana Ruiz", "participant", "convention")
    assert roles_of(project, "focus-group")[3] == ("Ana Ruiz", "coach", "document")
    clear_role(project, "Ana Ruiz", document="focus-group")
    assert roles_of(project, "focus-group")[3] == ("Ana Ruiz", "participant", "convention")
    assert project.execute("SELECT count(*) FROM speaker_roles").fetchone()[0] == 0


def test_set_and_clear_refuse_bad_input(project):
    before = dump(project.execute("PRAGMA database_list").fetchone()[2])
    with pytest.raises(RoleError, match="unknown document 'nope'"):
        set_role(project, "Jo", "student", document="nope")
    with pytest.raises(RoleError, match="is not a role name"):
        set_role(project, "Jo", "student 2")
    with pytest.raises(RoleError, match="the speaker is empty"):
        set_role(project, " ", "student")
    with pytest.raises(RoleError, match="has no role mapped for the whole project"):
        clear_role(project, "Jo")
    assert dump(project.execute("PRAGMA database_list").fetchone()[2]) == before


def test_map_survives_reingest_and_kind_changes(project, tmp_path):
    from qualcode.ingest.reattribute import set_attributes

    set_role(project, "Kim", "student")
    (tmp_path / "focus-group.md").write_text(FOCUS_GROUP + "\nKim: And snacks.\n")
    result = ingest_paths(project, [tmp_path / "focus-group.md"], IngestOptions(replace=True))
    assert result.count("replaced") == 1
    assert [r for r in roles_of(project, "focus-group") if r[0] == "Kim"] == [("Kim", "student", "project")] * 2
    set_attributes(project, "focus-group", {"kind": "interview"})
    assert roles_of(project, "focus-group")[0] == ("Moderator", "interviewer", "convention")


def test_mapped_before_ingest(tmp_path):
    db = open_project(tmp_path / "p.db")
    result = set_role(db, "Jo", "student")
    assert result.unknown == ["Jo"] and "1 not in any segment yet: Jo" in result.summary()
    (tmp_path / "fg.md").write_text(FOCUS_GROUP)
    ingest_paths(db, [tmp_path / "fg.md"])
    assert roles_of(db, "fg")[1] == ("Jo", "student", "project")


def test_list_roles(project):
    set_role(project, "Jo", "student", document="focus-group")
    set_role(project, "Nobody Yet", "parent")
    rows = {(r["speaker"], r["source"]): r for r in list_roles(project)}
    assert rows[("Ana Ruiz", "convention")]["segments"] == 3
    assert rows[("Ana Ruiz", "convention")]["documents"] == 2
    assert rows[("Jo", "document")] == {"speaker": "Jo", "role": "student", "source": "document",
                                        "document": "focus-group", "segments": 1, "documents": 1}
    assert rows[("Nobody Yet", "project")]["segments"] == 0


def test_excerpts_carry_the_role(project):
    project.execute("INSERT INTO codebooks (id, name, loaded_at) VALUES ('b', 'B', 'now')")
    project.execute("""INSERT INTO codes (id, codebook_id, lesson_id, depth, name, definition, sort_order, updated_at)
                       VALUES ('c', 'b', 'c', 0, 'C', 'C.', 0, 'now')""")
    project.execute("INSERT INTO coders (name, created_at) VALUES ('Rosa', 'now')")
    project.execute("""INSERT INTO codings (segment_id, code_id, coder_id, origin, created_at)
                       SELECT id, 'c', 1, 'manual', 'now' FROM segments WHERE speaker = 'Ana Ruiz'""")
    project.conn.commit()
    assert {r[0] for r in project.execute("SELECT speaker_role FROM excerpts")} == {"participant"}
    set_role(project, "Ana Ruiz", "teacher")
    assert {r[0] for r in project.execute("SELECT speaker_role FROM excerpts")} == {"teacher"}
    assert_excerpts_current(project.conn)


# --- migration ----------------------------------------------------------------------------------


def test_old_project_migrates_and_gets_roles(tmp_path):
    """A project made before 0008 gets the columns, the map, and roles from the conventions."""
    path = tmp_path / "old.db"
    index = next(i for i, m in enumerate(migrations._migrations) if m.name == "0008_speaker_roles")
    later = migrations._migrations[index:]
    del migrations._migrations[index:]
    try:
        db = open_project(path)
        assert "speaker_role" not in db["segments"].columns_dict
        with db.atomic():  # rows as the qualcode of then wrote them (today's ingest needs the new columns)
            for doc, kind, attributes, speakers in (
                    ("interview-ana", "interview", '{"interviewer": "Dana Whitfield"}', ["Dana Whitfield", "Ana Ruiz"]),
                    ("focus-group", "focus_group", "{}", ["Moderator", "Jo", None])):
                db.execute("""INSERT INTO documents (id, title, kind, format, sha256, text, word_count, attributes,
                                                     ingested_at) VALUES (?, ?, ?, 'md', ?, 'x', 1, ?, 'now')""",
                           [doc, doc, kind, doc, attributes])
                for seq, speaker in enumerate(speakers, 1):
                    db.execute("""INSERT INTO segments (document_id, seq, speaker, start_char, end_char, text)
                                  VALUES (?, ?, ?, 0, 1, 'x')""", [doc, seq, speaker])
            db.execute("INSERT INTO codebooks (id, name, loaded_at) VALUES ('b', 'B', 'now')")
            db.execute("""INSERT INTO codes (id, codebook_id, lesson_id, depth, name, definition, sort_order, updated_at)
                          VALUES ('c', 'b', 'c', 0, 'C', 'C.', 0, 'now')""")
            db.execute("INSERT INTO coders (name, created_at) VALUES ('Rosa', 'now')")
            db.execute("""INSERT INTO codings (segment_id, code_id, coder_id, origin, created_at)
                          SELECT id, 'c', 1, 'manual', 'now' FROM segments""")
        db.close()
    finally:
        migrations._migrations.extend(later)
    db = open_project(path)
    assert {"speaker_role", "speaker_role_source"} <= set(db["segments"].columns_dict)
    assert {"roles", "exclusive"} <= set(db["codes"].columns_dict)
    assert db["speaker_roles"].pks == ["document_id", "speaker"]
    assert roles_of(db, "focus-group") == [("Moderator", "facilitator", "convention"),
                                           ("Jo", "participant", "convention"), (None, None, None)]
    assert roles_of(db, "interview-ana") == [("Dana Whitfield", "interviewer", "convention"),
                                             ("Ana Ruiz", "participant", "convention")]
    assert db.execute("SELECT exclusive, roles FROM codes").fetchone() == (0, None)
    assert db.execute("SELECT count(*) FROM excerpts WHERE speaker_role IS NULL").fetchone()[0] == 1
    assert_excerpts_current(db.conn)
    db.close()


def test_role_source_is_checked(project):
    with pytest.raises(sqlite3.IntegrityError):
        project.execute("UPDATE segments SET speaker_role_source = 'guess' WHERE id = 1")


# --- spreadsheets -------------------------------------------------------------------------------


def ingest_sheet(db, path, **mapping):
    options = IngestOptions(table=TableMapping(text="text", document="doc", speaker="speaker", **mapping))
    return ingest_paths(db, [path], options)


def test_spreadsheet_speaker_role_column(tmp_path):
    sheet = tmp_path / "coded.csv"
    sheet.write_text("doc,speaker,speaker_role,text\nfg,Ms. Li,Teacher,Who can say?\nfg,Jo,student,I can.\n"
                     "fg,Q,,Why?\n")
    db = open_project(tmp_path / "p.db")
    result = ingest_sheet(db, sheet)
    assert not result.errors and not result.files[0].warnings
    assert roles_of(db, "fg") == [("Ms. Li", "teacher", "spreadsheet"), ("Jo", "student", "spreadsheet"),
                                  ("Q", "interviewer", "convention")]
    set_role(db, "Jo", "parent")  # the map never overrides the spreadsheet's own rows
    assert roles_of(db, "fg")[1] == ("Jo", "student", "spreadsheet")
    # A re-ingest with changed roles replaces the document, and its roles with it.
    sheet.write_text("doc,speaker,speaker_role,text\nfg,Ms. Li,teacher,Who can say?\nfg,Jo,,I can.\nfg,Q,,Why?\n")
    result = ingest_paths(db, [sheet], IngestOptions(replace=True, table=TableMapping(text="text", document="doc",
                                                                                     speaker="speaker")))
    assert result.count("replaced") == 1
    assert roles_of(db, "fg")[1] == ("Jo", "parent", "project")


def test_spreadsheet_speaker_role_option(tmp_path):
    sheet = tmp_path / "coded.csv"
    sheet.write_text("doc,speaker,who,text\nfg,Ms. Li,teacher,Who can say?\nfg,Jo,student,I can.\n")
    db = open_project(tmp_path / "p.db")
    ingest_sheet(db, sheet, speaker_role="who")
    assert [r[1:] for r in roles_of(db, "fg")] == [("teacher", "spreadsheet"), ("student", "spreadsheet")]
    result = ingest_sheet(db, sheet, speaker_role="nope")
    assert "no column 'nope' for --speaker-role-column" in result.files[0].error


def test_spreadsheet_bad_role_is_an_error_with_its_line(tmp_path):
    sheet = tmp_path / "coded.csv"
    sheet.write_text("doc,speaker,speaker_role,text\nfg,Ms. Li,teacher,Who?\nfg,Jo,P1 (student),I can.\n")
    db = open_project(tmp_path / "p.db")
    result = ingest_sheet(db, sheet)
    assert result.files[0].error.startswith(f"{sheet}:3: column 'speaker_role': 'p1 (student)' is not a role name")
    assert db.execute("SELECT count(*) FROM documents").fetchone()[0] == 0


def test_varying_role_column_becomes_speaker_role(tmp_path):
    sheet = tmp_path / "coded.csv"
    sheet.write_text("doc,speaker,role,text\nfg,Ms. Li,teacher,Who can say?\nfg,Jo,Student,I can.\n"
                     "int,Ana,principal,We coach.\nint,Q,principal,Why?\n")
    db = open_project(tmp_path / "p.db")
    result = ingest_sheet(db, sheet)
    assert result.files[0].warnings == [
        f"{sheet}: column 'role' varies within document 'fg': read as each row's speaker role"]
    assert roles_of(db, "fg") == [("Ms. Li", "teacher", "spreadsheet"), ("Jo", "student", "spreadsheet")]
    docs = dict(db.execute("SELECT id, role FROM documents").fetchall())
    assert docs == {"fg": None, "int": "principal"}  # a role the same on every row stays the document's
    assert roles_of(db, "int") == [("Ana", "participant", "convention"), ("Q", "interviewer", "convention")]


def test_varying_role_warning_in_the_cli(tmp_path):
    sheet = tmp_path / "coded.csv"
    sheet.write_text("doc,speaker,role,text\nfg,Ms. Li,teacher,Who can say?\nfg,Jo,student,I can.\n")
    db_path = tmp_path / "p.db"
    result = CliRunner().invoke(cli.cli, ["ingest", str(sheet), "--text-column", "text", "--document-column", "doc",
                                          "--speaker-column", "speaker", "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("Warning:")]
    assert warnings == [f"Warning: {sheet}: column 'role' varies within document 'fg': read as each row's speaker role"]


# --- the CLI ------------------------------------------------------------------------------------


def run(db_path, *args):
    return CliRunner().invoke(cli.cli, ["roles", *args, "--db", str(db_path)])


def test_cli_set_list_clear(project):
    db_path = project.execute("PRAGMA database_list").fetchone()[2]
    result = run(db_path, "set", "Ana Ruiz", "teacher")
    assert result.exit_code == 0, result.output
    assert result.output == "1 speaker mapped; 3 segments now have a role from the map\n"
    result = run(db_path, "set", "Jo", "student", "--document", "focus-group")
    assert result.output == "1 speaker mapped; 4 segments now have a role from the map\n"
    result = run(db_path, "list")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["speaker", "role", "source", "segments", "document"]
    assert any(line.split() == ["Jo", "student", "document", "1", "focus-group"] for line in lines)
    assert any(line.split() == ["Ana", "Ruiz", "teacher", "project", "3"] for line in lines)
    result = run(db_path, "clear", "Ana Ruiz")
    assert result.output == "1 speaker cleared; 1 segment now have a role from the map\n"
    assert roles_of(project, "interview-ana")[1] == ("Ana Ruiz", "participant", "convention")


@pytest.mark.parametrize("args,message", [
    (["set", "Jo", "Stud3nt"], "Error: 'stud3nt' is not a role name"),
    (["set", "Jo", "student", "--document", "nope"], "Error: unknown document 'nope'"),
    (["clear", "Jo"], "Error: speaker 'Jo' has no role mapped for the whole project"),
])
def test_cli_bad_input_changes_nothing(project, args, message):
    db_path = project.execute("PRAGMA database_list").fetchone()[2]
    before = dump(db_path)
    result = run(db_path, *args)
    assert result.exit_code == 1
    assert result.output.startswith(message) and len(result.output.splitlines()) == 1
    assert dump(db_path) == before


def test_cli_import(project, tmp_path):
    db_path = project.execute("PRAGMA database_list").fetchone()[2]
    csv_file = tmp_path / "speakers.csv"
    csv_file.write_text("speaker,role,document\nAna Ruiz,teacher,\nJo,student,focus-group\nKim,Student,\n")
    result = run(db_path, "import", str(csv_file))
    assert result.exit_code == 0, result.output
    assert result.output == "3 speakers mapped; 5 segments now have a role from the map\n"
    assert roles_of(project, "focus-group")[1:] == [("Jo", "student", "document"), ("Kim", "student", "project"),
                                                   ("Ana Ruiz", "teacher", "project")]


@pytest.mark.parametrize("content,message", [
    ("", "speakers.csv: the file is empty"),
    ("name,role\nJo,student\n", "speakers.csv:1: no 'speaker' column"),
    ("speaker,role,site\nJo,student,x\n", "speakers.csv:1: unknown column 'site'"),
    ("speaker,role\nKim,student\nJo,stud3nt\n", "speakers.csv:3: 'stud3nt' is not a role name"),
    ("speaker,role\nKim,student\n,student\n", "speakers.csv:3: the speaker is empty"),
    ("speaker,role\nKim,student\nJo,\n", "speakers.csv:3: the role is empty"),
    ("speaker,role,document\nKim,student,\nJo,student,nope\n", "speakers.csv:3: unknown document 'nope'"),
    ("speaker,role\nKim,student\nkim,parent\n", "speakers.csv:3: speaker 'kim' is mapped twice (first on line 2)"),
    ("speaker,role\nKim,student,extra\n", "speakers.csv:2: the row has 3 cells but the header 2"),
    (b"speaker,role\nK\xe9m,student\n", "speakers.csv: cannot be read as UTF-8 text"),
])
def test_bad_import_file_leaves_the_database_unchanged(project, tmp_path, content, message):
    db_path = project.execute("PRAGMA database_list").fetchone()[2]
    csv_file = tmp_path / "speakers.csv"
    if isinstance(content, bytes):
        csv_file.write_bytes(content)
    else:
        csv_file.write_text(content)
    before = dump(db_path)
    result = run(db_path, "import", str(csv_file))
    assert result.exit_code == 1
    line = result.output.strip()
    assert line.startswith(f"Error: {tmp_path}/{message}"), line
    assert len(result.output.splitlines()) == 1
    assert dump(db_path) == before
    with pytest.raises(QualcodeError):
        import_roles(project, csv_file)


def test_import_missing_file(project, tmp_path):
    result = run(project.execute("PRAGMA database_list").fetchone()[2], "import", str(tmp_path / "none.csv"))
    assert result.exit_code == 1 and "none.csv: no such file" in result.output


def test_every_roles_command_has_help():
    for name in ("list", "set", "clear", "import"):
        result = CliRunner().invoke(cli.cli, ["roles", name, "--help"])
        assert result.exit_code == 0 and "Example" in result.output


def test_apply_roles_is_idempotent(project):
    assert apply_roles(project) == 0
    project.execute("UPDATE segments SET speaker_role = NULL, speaker_role_source = NULL")
    assert apply_roles(project) == 8  # the notes have no speaker, and no role


# --- privacy ------------------------------------------------------------------------------------


def test_privacy_covers_speaker_roles():
    from qualcode.privacy import IDENTIFIER, SAFE, TEXT, field_for

    assert field_for("speaker_roles", "speaker").kind == TEXT
    assert field_for("speaker_roles", "document_id").kind == IDENTIFIER
    for table, column in (("speaker_roles", "role"), ("segments", "speaker_role"),
                          ("segments", "speaker_role_source"), ("codes", "roles")):
        assert field_for(table, column).kind == SAFE


def test_published_copy_pseudonymises_the_speaker_map(project, tmp_path):
    from qualcode.publish import publish

    set_role(project, "Ana Ruiz", "teacher")
    set_role(project, "Mapped Only", "parent")  # a person in no segment is still a person
    db_path = project.execute("PRAGMA database_list").fetchone()[2]
    project.close()
    out = tmp_path / "shared.db"
    publish(db_path, out, pseudonymise=True)
    conn = sqlite3.connect(out)
    speakers = {r[0] for r in conn.execute("SELECT speaker FROM speaker_roles")}
    assert speakers and not speakers & {"Ana Ruiz", "Mapped Only"}
    assert all(s.startswith("Participant ") for s in speakers)
    assert ("teacher",) in conn.execute("SELECT speaker_role FROM segments").fetchall()
    raw = out.read_bytes()
    assert b"Ana Ruiz" not in raw and b"Mapped Only" not in raw
