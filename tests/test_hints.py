"""An error's hint names only options that the command which printed it really has."""

import ast
import re
import shutil

import click
import pytest
from click.testing import CliRunner

from qualcode import cli

from .conftest import ROOT

OPTION = re.compile(r"(?<![\w-])--[a-z][a-z-]*")


def commands(group: click.Group = cli.cli, path: tuple = ()):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))
        else:
            yield (*path, name), command


def options_of(command: click.Command) -> set[str]:
    return {opt for p in command.params for opt in [*p.opts, *p.secondary_opts]}


def leaf(args: list[str]) -> click.Command:
    command = cli.cli
    for arg in args:
        if not isinstance(command, click.Group) or arg not in command.commands:
            break
        command = command.commands[arg]
    return command


def test_every_option_named_in_a_hint_exists():
    """Options named in any hint in the library are options of some command: no stale names."""
    every = set().union(*(options_of(c) for _, c in commands()))
    named = set()
    for source in (ROOT / "src" / "qualcode").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.keyword) and node.arg in ("hint", "or_option"):
                text = ast.unparse(node.value)
                named |= {(source.name, o) for o in OPTION.findall(text) if o != "--"}
    assert named, "the scan found no hints"
    assert {(f, o) for f, o in named if o not in every} == set()


@pytest.fixture
def project(gold_copy):
    return str(gold_copy)


CASES = [
    ["accept", "--coder", "Nobody", "--min-score", "0"],
    ["reject", "--coder", "Nobody", "--min-score", "0"],
    ["code", "harbor-04-teacher-seacliff:3", "support.coaching", "--coder", "Nobody"],
    ["memo", "add", "a note", "--coder", "Nobody", "--document", "harbor-04-teacher-seacliff"],
    ["review", "--coder", "Nobody"],
    ["assign", "--coders", "Rosa Delgado,Sam Okonjo"],
    ["agreement", "--coders", "Rosa Delgado,Nobody"],
    ["codebook", "load", "nonexistent-codebook"],
    ["clone", "copy.db", "--for", "Nobody"],
]


@pytest.mark.parametrize("args", CASES, ids=[" ".join(c[:2]) for c in CASES])
def test_hints_name_options_of_the_failing_command(project, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli.cli, [*args, "--db", project])
    assert result.exit_code != 0 and result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.output.startswith("Error: ")
    named = set(OPTION.findall(result.output))
    assert named <= options_of(leaf(args)), (result.output, named - options_of(leaf(args)))


def test_a_command_with_the_option_is_offered_it(project):
    result = CliRunner().invoke(cli.cli, ["code", "harbor-04-teacher-seacliff:3", "support.coaching",
                                          "--coder", "Nobody", "--db", project])
    assert "or pass --create-coder" in result.output
    result = CliRunner().invoke(cli.cli, ["accept", "--coder", "Nobody", "--min-score", "0", "--db", project])
    assert "unknown coder 'Nobody'" in result.output and "--create-coder" not in result.output
