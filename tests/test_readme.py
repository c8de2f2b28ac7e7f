"""The README's console examples are executable documentation.

Every ```console block runs, command by command, and what each `$ qualcode …` prints must be what the
README shows, apart from volatile parts (times, durations, the folder). Each `###` section runs in a
folder of its own against a fresh copy of the demo project `make demo-db` builds (the recipe is read
from the Makefile, so the two cannot drift), with the small input files the examples name. A block
is steered by an HTML comment on the line before it, which a reader of the rendered README does not
see:

    <!-- readme-test: skip (serves until Ctrl-C) -->   not run, for a reason given
    <!-- readme-test: project=codebook -->             qualcode.db has only the codebook, no documents
    <!-- readme-test: input=a,q -->                    the lines typed at the prompts

In the expected output a line `...` stands for any number of lines, and a line ending in ` ...`
for any line that begins with what comes before it.
"""

import contextlib
import gc
import re
import shlex
import shutil
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from qualcode import cli

from .conftest import ROOT

README = ROOT / "README.md"
HOME = "/home/ana/study"  # the folder the README's examples are written in

# The files the README's examples read, as a new user would have them beside their project.
FILES = {
    "mini.yml": (
        "name: Mini codebook\n"
        "codes:\n"
        "  - id: support\n"
        "    name: Support\n"
        "    colour: blue\n"
        "    children:\n"
        "      - id: scaling.spread\n"
        "        name: Spread\n"
        "        definition: Taking a practice to more schools.\n"
    ),
    "coded.csv": "document;speaker;text\ninterview-a;Ana;Hello there\n",
    "visit.vtt": (
        "WEBVTT\n\n"
        "00:00:01.000 --> 00:00:04.000\n<v Ana Ruiz>We started in August.\n\n"
        "00:00:04.300 -> 00:00:06.000\n<v Ana Ruiz>Then the coaches came.\n"
    ),
    "visit.md": "---\ntitle: Visit to Bayview\ndate: 2024-13-45\n---\nThe visit began in the library.\n",
    "notes/visit.md": "---\ntitle: Site visit to Bayview Elementary\n---\nThe visit began in the library.\n\n"
    "Teachers met in grade-level teams after lunch.\n",
    "names.txt": "",
    "interviews/ortiz-otter.txt": "Maya Chen  0:05\nThanks for making time today. How has the term gone?\n\n"
    "Daniel Ortiz  0:12\nBusy. We moved the team meetings to Tuesdays.\n\nMaya Chen  1:04\nWhat changed after that?\n",
    "interviews/ortiz-notes.txt": "We talked about the schedule first.\n\nShe said Tuesdays work better.\n",
    "fixes.csv": "path,role,date\ncorpora/lakemont/lakemont-05-teacher-northside.vtt,8th-grade ELA teacher,\n"
    "corpora/cedar-valley/cedar-04-teacher-millbrook.srt,,2024-11-15\n",
    "bad-fixes.csv": "path,date\ncorpora/cedar-valley/cedar-04-teacher-millbrook.srt,2024-11-15\n"
    "corpora/harbor/harbor-01-deputy-superintendent.txt,2024-10-51\n",
    "speakers.csv": "speaker,role,document\nP1,teacher,\nP2,teacher,\nP3,coach,\n",
    "bad.csv": "speaker,role\nP1,teacher\nP2,\n",
    "lesson.csv": "doc,speaker,role,text\nclass-1,Ms Ortiz,teacher,What do you notice about these two graphs?\n"
    "class-1,Jamal,student,The second one climbs faster after week three.\n",
    "lesson2.csv": "doc,speaker,who,text\nclass-2,Ms Ortiz,teacher,What do you notice about these two graphs?\n"
    "class-2,Jamal,student,The second one climbs faster after week three.\n",
    "talk.yml": (
        "name: Classroom talk\n"
        "codes:\n"
        "  - id: discussion\n"
        "    name: Discussion\n"
        "    definition: How students talk with each other.\n"
        "    roles: [student, participant]\n"
        "    exclusive: true\n"
        "    children:\n"
        "      - id: discussion.agree\n"
        "        name: Agreeing\n"
        "        definition: Builds on what another student said.\n"
        "      - id: discussion.challenge\n"
        "        name: Challenging\n"
        "        definition: Questions what another student said.\n"
        "  - id: moves\n"
        "    name: Teacher moves\n"
        "    definition: What the teacher does to move the talk on.\n"
        "    roles: [teacher, facilitator]\n"
    ),
    "bad.yml": (
        "name: Classroom talk\n"
        "codes:\n"
        "  - id: discussion\n"
        "    name: Discussion\n"
        "    definition: How students talk with each other.\n"
        "    roles: [student]\n"
        "    exclusive: yes please\n"
        "    children:\n"
        "      - id: discussion.agree\n"
        "        name: Agreeing\n"
        "        definition: Agrees with another student.\n"
    ),
}


def _write_files(folder: Path) -> None:
    for name, text in FILES.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["doc", "turn", "speaker", "text", "start", "code_rosa", "code_sam"])
    sheet.append(["coaching-notes", 1, "Interviewer", "How did coaching start?", 0, "", ""])
    sheet.append(["coaching-notes", 2, "Lee", "Our coach planned with us every Thursday.", 4.5,
                  "support.coaching", "support.coaching"])
    book.save(folder / "coded.xlsx")
    shutil.copytree(ROOT / "corpora", folder / "corpora")
    (folder / "codebooks").mkdir()


@dataclass
class Step:
    command: str
    expected: list[str]
    line: int


@dataclass
class Block:
    section: str
    line: int
    steps: list[Step]
    options: dict = field(default_factory=dict)


def read_blocks(text: str) -> list[Block]:
    blocks, section, lines = [], "", text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## ") or line.startswith("### "):
            section = line.lstrip("# ").strip()
        if line.strip() == "```console":
            options = {}
            previous = lines[i - 1].strip() if i else ""
            match = re.fullmatch(r"<!-- readme-test: (.*) -->", previous)
            if match:
                for part in match.group(1).split(";"):
                    key, _, value = part.strip().partition("=")
                    options[key.split(" ")[0]] = value or part.strip()
            start, body = i + 1, []
            i += 1
            while lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            blocks.append(Block(section, start, _steps(body, start), options))
        i += 1
    return blocks


def _steps(body: list[str], start: int) -> list[Step]:
    steps: list[Step] = []
    j = 0
    while j < len(body):
        line = body[j]
        if line.startswith("$ "):
            command, first = line[2:], j
            while command.endswith("\\"):
                j += 1
                command = command[:-1] + " " + body[j].strip()
            steps.append(Step(command, [], start + first + 1))
        elif steps:
            steps[-1].expected.append(line)
        j += 1
    return steps


BLOCKS = read_blocks(README.read_text())
RUN = [b for b in BLOCKS if "skip" not in b.options]
SECTIONS = list(dict.fromkeys(b.section for b in RUN))


def demo_recipe() -> list[list[str]]:
    """The qualcode commands of the Makefile's demo-db target, as argument lists."""
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    recipe = re.search(r"^demo-db:.*?\n((?:\t.*\n)+)", makefile, re.M).group(1)
    commands = []
    for line in recipe.splitlines():
        line = line.strip().lstrip("@")
        if line.startswith("$(BIN)/qualcode "):
            commands.append(shlex.split(line.removeprefix("$(BIN)/qualcode ")))
    return commands


def _run(args: list[str], runner: CliRunner, input: str | None = None):
    return runner.invoke(cli.cli, args, input=input, catch_exceptions=False)


STAGES = {"empty": ("init",), "codebook": ("codebook", "load"), "corpus": ("ingest",), "coded": ("code",)}


def _snapshot(source: Path, target: Path) -> None:
    """A consistent copy of a project in WAL mode (the backup API reads through the WAL)."""
    gc.collect()  # close connections the CLI left to the garbage collector
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    """The demo project as `make demo-db` builds it, and the stages on the way: after the codebook
    is started (`empty`), the codebook loaded (`codebook`), the corpus ingested (`corpus`) and the coders' sheets applied (`coded`)."""
    folder = tmp_path_factory.mktemp("readme-projects")
    demo = folder / "demo.db"
    recipe = demo_recipe()
    assert any(c[:2] == ["codebook", "load"] for c in recipe) and any(c[0] == "suggest" for c in recipe)
    runner, stages = CliRunner(), {}
    shutil.copytree(ROOT / "corpora", folder / "corpora")
    with contextlib.chdir(folder):
        for args in recipe:
            result = _run([str(demo) if a == "$(DB)" else a for a in args], runner)
            assert result.exit_code == 0, (args, result.output)
            for stage, prefix in STAGES.items():
                if tuple(args[: len(prefix)]) == prefix:
                    _snapshot(demo, folder / f"{stage}.db")
                    stages[stage] = folder / f"{stage}.db"
    stages["demo"] = folder / "demo-final.db"
    _snapshot(demo, stages["demo"])
    return stages


VOLATILE = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?"), "<time>"),
    (re.compile(r"\bin \d+(\.\d+)? s\b"), "in <n> s"),
]


def normalise(text: str, folder: Path) -> list[str]:
    text = text.replace(str(folder.resolve()), HOME).replace(str(folder), HOME)
    for pattern, mask in VOLATILE:
        text = pattern.sub(mask, text)
    return [line.rstrip() for line in text.splitlines()]


def _first_difference(expected: list[str], actual: list[str]) -> str:
    for k, (want, got) in enumerate(zip(expected, actual)):
        if want != got and not (want.endswith(" ...") and got.startswith(want[:-4])):
            return f"{k + 1}: {want!r} != {got!r}"
    return f"lengths {len(expected)} != {len(actual)}"


def _trim(lines: list[str]) -> list[str]:
    """Without blank lines at either end (the README separates commands with them)."""
    while lines and not lines[-1]:
        lines = lines[:-1]
    while lines and not lines[0]:
        lines = lines[1:]
    return lines


def matches(expected: list[str], actual: list[str]) -> bool:
    """Expected lines against actual ones; `...` is any lines, `text ...` any line starting with text."""
    if not expected:
        return not actual
    head, rest = expected[0], expected[1:]
    if head.strip() == "...":
        return any(matches(rest, actual[k:]) for k in range(len(actual) + 1))
    if not actual:
        return False
    if head.endswith(" ..."):
        ok = actual[0].startswith(head[:-4].rstrip())
    else:
        ok = actual[0] == head
    return ok and matches(rest, actual[1:])


def run_step(step: Step, folder: Path, runner: CliRunner, input: str | None) -> tuple[int, list[str]]:
    args = shlex.split(step.command, comments=True)
    assert args[0] == "qualcode", f"README line {step.line}: a console example runs something else: {step.command}"
    args = args[1:]
    target = None
    if ">" in args:
        k = args.index(">")
        args, target = args[:k], args[k + 1]
    result = runner.invoke(cli.cli, args, input=input)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    output = result.output
    if target:
        (folder / target).write_text(result.stdout)
        output = result.stderr
    return result.exit_code, normalise(output, folder)


@pytest.mark.parametrize("section", SECTIONS)
def test_readme_console_examples(section, projects, tmp_path, monkeypatch):
    folder = tmp_path / "study"
    folder.mkdir()
    _write_files(folder)
    monkeypatch.chdir(folder)
    monkeypatch.delenv("QUALCODE_DB", raising=False)
    runner = CliRunner()
    for block in (b for b in RUN if b.section == section):
        _snapshot(projects[block.options.get("project", "demo")], folder / "qualcode.db")
        typed = block.options.get("input")
        for step in block.steps:
            code, actual = run_step(step, folder, runner, typed.replace(",", "\n") + "\n" if typed else None)
            expected = _trim(normalise("\n".join(step.expected), folder))
            actual = _trim(actual)
            assert matches(expected, actual), (
                f"README line {step.line}: `$ {step.command}` printed (exit {code}):\n"
                + "\n".join(actual) + "\n--- the README shows:\n" + "\n".join(expected)
                + "\n--- first line that differs: " + _first_difference(expected, actual))
            if any(line.startswith("Error:") for line in expected):
                assert code != 0, f"README line {step.line}: an error that exits with status 0"


def test_every_block_is_run_or_says_why():
    for block in BLOCKS:
        if "skip" in block.options:
            assert re.search(r"\(.+\)", block.options["skip"]), f"README line {block.line}: skip needs a reason"
        else:
            assert block.steps, f"README line {block.line}: a console block with no `$ qualcode` command"


def test_the_matcher_can_fail():
    assert matches(["a", "...", "z"], ["a", "b", "c", "z"])
    assert not matches(["a", "...", "z"], ["a", "b"])
    assert matches(["Model run 1 ..."], ["Model run 1 (combined)"])
    assert not matches(["x"], ["x", "y"])


def _options(command) -> set[str]:
    return {opt for param in command.params for opt in getattr(param, "opts", []) if opt.startswith("--")}


def _commands(group=cli.cli, prefix=()):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, prefix + (name,))
        else:
            yield prefix + (name,), command


@pytest.mark.parametrize("path,command", list(_commands()), ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_every_option_is_in_the_readme(path, command):
    """Every option of every command is named in the README (as sqlite-utils checks its docs)."""
    readme = README.read_text()
    missing = sorted(o for o in _options(command) - {"--help", "--db"}
                     if not re.search(re.escape(o) + r"(?![\w-])", readme))
    assert not missing, f"`qualcode {' '.join(path)}`: README never mentions {', '.join(missing)}"
