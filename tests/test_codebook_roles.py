"""Codebook role scopes (`roles:`) and exclusive sets (`exclusive:`): loading, storing, errors, dump."""

import json

import pytest
import yaml
from click.testing import CliRunner

from qualcode import cli, open_project
from qualcode.codebook import dump_codebook, load_codebook, sync_codebook, validate_codebook

from .conftest import dump

CODEBOOK = """name: Talk
codes:
  - id: discussion
    name: Discussion
    definition: How the group talks.
    roles: [participant, Student]
    exclusive: true
    children:
      - id: discussion.agree
        name: Agreeing
        definition: Builds on what another said.
      - id: discussion.disagree
        name: Disagreeing
        definition: Challenges what another said.
  - id: facilitation
    name: Facilitation
    definition: Moves the facilitator makes.
    roles: facilitator
    children:
      - id: facilitation.probe
        name: Probing
        definition: Asks for more.
        roles: [facilitator, interviewer]
      - id: facilitation.any
        name: Anyone
        definition: Said by anyone.
        roles: []
  - id: context
    name: Context
    definition: The setting.
    exclusive: false
"""


def stored(db):
    return {r["id"]: (json.loads(r["roles"]) if r["roles"] else None, r["exclusive"])
            for r in db.query("SELECT id, roles, exclusive FROM codes")}


def test_roles_and_exclusive_are_stored_with_inheritance(db, tmp_path):
    path = tmp_path / "talk.yml"
    path.write_text(CODEBOOK)
    assert validate_codebook(path) == []
    sync_codebook(db, load_codebook(path))
    assert stored(db) == {
        "discussion": (["participant", "student"], 1),
        "discussion.agree": (["participant", "student"], 0),  # sub-codes inherit their parent's
        "discussion.disagree": (["participant", "student"], 0),
        "facilitation": (["facilitator"], 0),
        "facilitation.probe": (["facilitator", "interviewer"], 0),  # unless they set their own
        "facilitation.any": (None, 0),  # an empty list: no scope, whatever the parent's
        "context": (None, 0),
    }


def test_suggest_reads_the_scopes_and_sets(db, tmp_path):
    from qualcode.suggest import model_codes

    path = tmp_path / "talk.yml"
    path.write_text(CODEBOOK)
    sync_codebook(db, load_codebook(path))
    codes = {c["id"]: c for c in model_codes(db)}
    assert codes["discussion.agree"]["exclusive_group"] == "discussion"
    assert codes["discussion.agree"]["roles"] == ["participant", "student"]
    assert codes["facilitation.probe"]["exclusive_group"] is None
    assert codes["facilitation.any"]["roles"] is None


def test_changing_scope_updates_the_code(db, tmp_path):
    path = tmp_path / "talk.yml"
    path.write_text(CODEBOOK)
    sync_codebook(db, load_codebook(path))
    path.write_text(CODEBOOK.replace("    roles: [participant, Student]\n    exclusive: true\n", ""))
    result = sync_codebook(db, load_codebook(path))
    assert set(result.updated) == {"discussion", "discussion.agree", "discussion.disagree"}
    assert stored(db)["discussion"] == (None, 0) and stored(db)["discussion.agree"] == (None, 0)
    assert sync_codebook(db, load_codebook(path)).updated == []


def test_dump_round_trips_roles_and_exclusive(db, tmp_path):
    path = tmp_path / "talk.yml"
    path.write_text(CODEBOOK)
    sync_codebook(db, load_codebook(path))
    text = dump_codebook(db)
    data = yaml.safe_load(text)
    discussion, facilitation, context = data["codes"]
    assert discussion["roles"] == ["participant", "student"] and discussion["exclusive"] is True
    assert "roles" not in discussion["children"][0]  # inherited: written once, on the parent
    assert facilitation["children"][0]["roles"] == ["facilitator", "interviewer"]
    assert facilitation["children"][1]["roles"] == []
    assert "roles" not in context and "exclusive" not in context
    again = tmp_path / "again.yml"
    again.write_text(text)
    other = open_project(tmp_path / "other.db")
    sync_codebook(other, load_codebook(again))
    assert stored(other) == stored(db)


@pytest.mark.parametrize("lines,line,message", [
    ("    roles: [Teach3r]\n", 6, "'roles' of code 'a': 'teach3r' is not a role name"),
    ("    roles:\n      - participant\n      - {x: 1}\n", 8, "'roles' of code 'a' must list role names, not a mapping"),
    ("    roles: {p: 1}\n", 6, "'roles' of code 'a' must be a list of role names, not a mapping"),
    ("    roles: [participant, Participant]\n", 6, "'roles' of code 'a' names 'participant' twice"),
    ("    roles: ['']\n", 6, "'roles' of code 'a': the role is empty"),
    ("    exclusive: maybe\n", 6, "'exclusive' of code 'a' must be true or false, not 'maybe'"),
    ("    exclusive: [true]\n", 6, "'exclusive' of code 'a' must be true or false, not a list"),
    ("    exclusive: true\n", 6, "code 'a' is exclusive but has no sub-codes"),
])
def test_bad_roles_and_exclusive(tmp_path, db, lines, line, message):
    path = tmp_path / "bad.yml"
    path.write_text("name: Bad\ncodes:\n  - id: a\n    name: A\n    definition: A.\n" + lines)
    problems = [str(p) for p in validate_codebook(path)]
    assert len(problems) == 1 and problems[0].startswith(f"{path}:{line}: {message}"), problems
    before = dump(db.execute("PRAGMA database_list").fetchone()[2])
    result = CliRunner().invoke(cli.cli, ["codebook", "load", str(path), "--db", db.execute("PRAGMA database_list").fetchone()[2]])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {path}:{line}: {message}") and len(result.output.splitlines()) == 1
    assert dump(db.execute("PRAGMA database_list").fetchone()[2]) == before
