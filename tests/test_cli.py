import re

import pytest
from click.testing import CliRunner

from qualcode import cli

from .conftest import ROOT, dump


def all_commands(group=cli.cli, prefix=()):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from all_commands(command, prefix + (name,))
        else:
            yield prefix + (name,)


COMMANDS = sorted(all_commands())


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(command):
    result = CliRunner().invoke(cli.cli, [*command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output, f"`qualcode {' '.join(command)} --help` has no example"


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_is_in_the_readme(command):
    readme = (ROOT / "README.md").read_text()
    assert f"qualcode {' '.join(command)}" in readme, f"README does not show `qualcode {' '.join(command)}`"


def test_readme_shows_the_two_commands_first():
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```(?:bash|sh)?\n(.*?)```", readme, re.S).group(1)
    assert "make demo" in first_block and "make test" in first_block


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_init_creates_and_reopens(tmp_path):
    db = tmp_path / "study.db"
    result = CliRunner().invoke(cli.cli, ["init", "--db", str(db)])
    assert result.exit_code == 0 and "Created project" in result.output
    result = CliRunner().invoke(cli.cli, ["init", "--db", str(db)])
    assert "Opened project" in result.output


def test_init_refuses_a_foreign_file(tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("hello " * 200)
    result = CliRunner().invoke(cli.cli, ["init", "--db", str(other)])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {other}: not a SQLite database — pass the project file with --db"
    assert other.read_text() == "hello " * 200


def test_db_from_environment(tmp_path, monkeypatch):
    db = tmp_path / "env.db"
    monkeypatch.setenv("QUALCODE_DB", str(db))
    assert CliRunner().invoke(cli.cli, ["init"]).exit_code == 0
    assert db.exists()


def test_status_counts(corpus_db):
    result = CliRunner().invoke(cli.cli, ["status", "--db", str(corpus_db)])
    assert result.exit_code == 0, result.output
    documents = int(re.search(r"Documents: (\d+)", result.output).group(1))
    assert documents >= 18
    assert "interview" in result.output and "focus_group" in result.output
    assert "Bayview Elementary" in result.output
    assert re.search(r"Coded: [\d,]+ of [\d,]+ segments \(\d+\.\d%\)", result.output)


def test_status_missing_project(tmp_path):
    result = CliRunner().invoke(cli.cli, ["status", "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 1
    assert "no project database here" in result.output
    assert not (tmp_path / "x.db").exists()


def test_ingest_cli_success_and_unchanged(tmp_path):
    db = tmp_path / "p.db"
    runner = CliRunner()
    note = tmp_path / "visit.txt"
    note.write_text("We visited.\n\nIt rained.\n")
    result = runner.invoke(cli.cli, ["ingest", str(note), "--kind", "site_visit", "--site", "Bayview", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "visit.txt: added (2 segments, 4 words)" in result.output
    assert "Ingesting" not in result.output  # no progress bar when not on a terminal
    result = runner.invoke(cli.cli, ["ingest", str(note), "--db", str(db)])
    assert "visit.txt: unchanged" in result.output and result.exit_code == 0


def test_ingest_cli_bad_option_value(tmp_path):
    db = tmp_path / "p.db"
    note = tmp_path / "visit.txt"
    note.write_text("We visited.\n")
    CliRunner().invoke(cli.cli, ["init", "--db", str(db)])
    before = dump(db)
    result = CliRunner().invoke(cli.cli, ["ingest", str(note), "--date", "March 3", "--db", str(db)])
    assert result.exit_code == 1
    assert "date 'March 3' is not YYYY-MM-DD" in result.output
    assert dump(db) == before


def test_ingest_cli_needs_paths_or_manifest(tmp_path):
    result = CliRunner().invoke(cli.cli, ["ingest", "--db", str(tmp_path / "p.db")])
    assert result.exit_code == 2
    assert "give files or folders to ingest" in result.output
