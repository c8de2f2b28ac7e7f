"""The facilitation corpus: generated, fictional focus groups whose codes depend on the conversation.

The generator must be deterministic (the committed CSVs are its output), and the labels must obey
the codebook: every code exists, facilitation codes only on facilitator turns, discussion codes only
on participant turns, at most one code of an exclusive group per turn.
"""

import csv
import importlib.util
import re
import subprocess
import sys
from collections import Counter

import pytest
import yaml
from click.testing import CliRunner

from qualcode import cli
from qualcode.codebook import validate_codebook

from .conftest import CORPORA, ROOT

HERE = CORPORA / "facilitation"
GENERATOR = HERE / "generate.py"
CODEBOOK = ROOT / "codebooks" / "facilitation.yml"
OUTPUTS = ["focus-groups.csv", "second-coder.csv", "second-coder-batch.csv"]
COLUMNS = ["document", "title", "kind", "site", "district", "date", "seq", "speaker", "speaker_role", "text",
           "codes", "coder", "split"]
MIN_ROWS_PER_CODE = 150


def rows(name: str = "focus-groups.csv") -> list[dict]:
    with (HERE / name).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def codebook_codes() -> dict[str, dict]:
    """Every code by id, with the roles it inherits and the exclusive group it belongs to."""
    book = yaml.safe_load(CODEBOOK.read_text(encoding="utf-8"))
    codes: dict[str, dict] = {}

    def walk(code: dict, roles: list[str], group: str | None) -> None:
        roles = code.get("roles", roles)
        codes[code["id"]] = {"roles": roles, "group": group, "leaf": not code.get("children")}
        for child in code.get("children", []):
            walk(child, roles, code["id"] if code.get("exclusive") else group)

    for top in book["codes"]:
        walk(top, [], None)
    return codes


def generate(out) -> None:
    result = subprocess.run([sys.executable, str(GENERATOR), "--out", str(out), "--quiet"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_generator_is_deterministic_and_matches_committed_files(tmp_path):
    generate(tmp_path / "a")
    generate(tmp_path / "b")
    for name in OUTPUTS:
        first = (tmp_path / "a" / name).read_bytes()
        assert first == (tmp_path / "b" / name).read_bytes(), name
        assert first == (HERE / name).read_bytes(), f"{name} is stale: run python corpora/facilitation/generate.py"


def test_generator_uses_only_the_standard_library():
    source = GENERATOR.read_text(encoding="utf-8")
    imported = set(re.findall(r"^(?:from (\w+)[\w.]* import |import (\w+))", source, re.M))
    modules = {a or b for a, b in imported}
    assert modules and modules <= set(sys.stdlib_module_names), modules - set(sys.stdlib_module_names)
    assert "random.Random(SEED)" in source and "SEED = 2026" in source


@pytest.mark.parametrize("name", ["focus-groups.csv", "second-coder.csv"])
def test_csv_columns_and_fictional_marking(name):
    with (HERE / name).open(newline="", encoding="utf-8") as f:
        assert next(csv.reader(f)) == COLUMNS
    data = rows(name)
    assert all(r["kind"] == "focus_group" and r["title"].endswith("(fictional)") for r in data)
    assert all("(fictional)" in r["district"] for r in data)
    assert {r["speaker_role"] for r in data} == {"facilitator", "participant"}
    assert all((r["speaker"] == "Facilitator") == (r["speaker_role"] == "facilitator") for r in data)
    assert {r["coder"] for r in data} == {"Rosa Delgado" if name == "focus-groups.csv" else "Sam Okonjo"}


def test_corpus_size_and_split():
    data = rows()
    per_doc = Counter(r["document"] for r in data)
    assert 55 <= len(per_doc) <= 65
    assert 3000 <= len(data) <= 4500
    assert all(40 <= n <= 80 for n in per_doc.values())
    split_of = {}
    for r in data:
        assert split_of.setdefault(r["document"], r["split"]) == r["split"], "a document is in one split"
    tests = sum(s == "test" for s in split_of.values())
    assert 0.15 <= tests / len(split_of) <= 0.25
    uncoded = sum(not r["codes"] for r in data) / len(data)
    assert 0.35 <= uncoded <= 0.6
    assert len({r["text"] for r in data}) >= 2000
    assert sum(p.stat().st_size for p in HERE.glob("*.csv")) < 2_000_000


@pytest.mark.parametrize("name", ["focus-groups.csv", "second-coder.csv"])
def test_codes_exist_fit_roles_and_exclusive_groups(name):
    codes = codebook_codes()
    for r in rows(name):
        applied = [c for c in r["codes"].split(";") if c]
        groups = Counter(codes[c]["group"] for c in applied if c in codes and codes[c]["group"])
        for code in applied:
            assert code in codes, (r["document"], r["seq"], code)
            assert r["speaker_role"] in codes[code]["roles"], (r["document"], r["seq"], code, r["speaker_role"])
        assert all(n <= 1 for n in groups.values()), (r["document"], r["seq"], applied)


def test_codebook_roles_and_exclusive_parents():
    book = yaml.safe_load(CODEBOOK.read_text(encoding="utf-8"))
    tops = {c["id"]: c for c in book["codes"]}
    assert tops["facilitation"]["roles"] == ["facilitator"] and tops["facilitation"]["exclusive"] is True
    assert tops["discussion"]["roles"] == ["participant"] and tops["discussion"]["exclusive"] is True
    for top in tops.values():
        for child in top["children"]:
            assert len(child["examples"]) == 2 and child["terms"] and child["include"] and child["exclude"]


def test_every_code_has_enough_rows():
    counts = Counter(c for r in rows() for c in r["codes"].split(";") if c)
    leaves = [c for c, info in codebook_codes().items() if info["leaf"]]
    assert len(leaves) == 6
    for code in leaves:
        assert counts[code] >= MIN_ROWS_PER_CODE, (code, counts[code])


def test_second_coder_covers_twenty_groups_and_disagrees_sometimes():
    first = {(r["document"], r["seq"]): r for r in rows()}
    second = rows("second-coder.csv")
    assert len({r["document"] for r in second}) == 20
    for r in second:
        assert first[(r["document"], r["seq"])]["text"] == r["text"]
    differ = sum(first[(r["document"], r["seq"])]["codes"] != r["codes"] for r in second) / len(second)
    assert 0.05 <= differ <= 0.15
    batch = rows("second-coder-batch.csv")
    assert len(batch) == sum(len([c for c in r["codes"].split(";") if c]) for r in second)


def load_generator():
    spec = importlib.util.spec_from_file_location("facilitation_generate", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_shows_the_generators_counts():
    generator = load_generator()
    _, _, counts = generator.generate()
    assert generator.report(counts) in (HERE / "README.md").read_text(encoding="utf-8")


def test_summaries_and_builds_reuse_the_previous_turn():
    """What makes the corpus worth having: most summaries and builds share words with the turn before."""
    data = rows()
    def words(text):
        return {w for w in re.findall(r"[a-z']+", text.lower()) if len(w) > 3}
    reused = Counter()
    total = Counter()
    for before, turn in zip(data, data[1:]):
        if before["document"] != turn["document"] or turn["codes"] not in ("facilitation.summarise", "discussion.build"):
            continue
        total[turn["codes"]] += 1
        reused[turn["codes"]] += len(words(before["text"]) & words(turn["text"])) >= 3
    for code in total:
        assert reused[code] / total[code] >= 0.6, (code, reused[code], total[code])


def loadable_codebook(tmp_path):
    """The codebook, or a copy without `roles:`/`exclusive:` while the loader does not know them yet."""
    problems = validate_codebook(CODEBOOK)
    if not problems:
        return CODEBOOK
    assert all(re.search(r"'(roles|exclusive)'", str(p)) for p in problems), problems
    copy = tmp_path / "facilitation.yml"
    copy.write_text("".join(line for line in CODEBOOK.read_text(encoding="utf-8").splitlines(keepends=True)
                            if not re.match(r"\s+(roles|exclusive):", line)), encoding="utf-8")
    assert not validate_codebook(copy)
    return copy


def test_ingest_and_agreement(tmp_path):
    db = str(tmp_path / "fac.db")
    runner = CliRunner()

    def run(*args):
        result = runner.invoke(cli.cli, [*args, "--db", db])
        assert result.exit_code == 0, result.output
        return result.output

    run("init")
    run("codebook", "load", str(loadable_codebook(tmp_path)))
    out = run("ingest", str(HERE / "focus-groups.csv"), "--document-column", "document", "--order-column", "seq",
              "--speaker-column", "speaker", "--text-column", "text", "--code-column", "codes=Rosa Delgado")
    data = rows()
    assert f"{len(data):,} segments" in out
    assert f"{sum(bool(r['codes']) for r in data):,} codings" in out
    run("code", "--batch", str(HERE / "second-coder-batch.csv"), "--create-coder")
    out = run("agreement", "--coders", "Rosa Delgado,Sam Okonjo")
    assert "20 documents coded by all" in out
