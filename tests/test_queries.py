import csv
from collections import defaultdict

import pytest
from click.testing import CliRunner

from qualcode import cli, open_project
from qualcode.coding import CodingError
from qualcode.queries import cooccurrence, excerpts, frequencies

from .conftest import CORPORA, gold_rows


def manifest() -> dict[str, dict]:
    with (CORPORA / "manifest.csv").open(newline="") as f:
        return {row["path"].rsplit("/", 1)[-1].rsplit(".", 1)[0]: row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def db(gold_db):
    return open_project(gold_db)


def expected_segments(by: str, lesson: bool) -> dict[tuple[str, str], set]:
    docs = manifest()
    out = defaultdict(set)
    for row in gold_rows():
        code = row["code_id"].split(".")[0] if lesson else row["code_id"]
        out[(code, docs[row["document_id"]][by])].add((row["document_id"], row["seq"]))
    return out


@pytest.mark.parametrize("by", ["site", "role", "district"])
def test_frequencies_match_the_spreadsheets(db, by):
    got = {(r["code_id"], r["value"]): r["segments"] for r in frequencies(db, by, "all")}
    for lesson in (False, True):
        for key, segs in expected_segments(by, lesson).items():
            assert got[key] == len(segs), key


def test_frequencies_count_documents_and_speakers(db):
    rows = {(r["code_id"], r["value"]): r for r in frequencies(db, "kind", "lesson")}
    fg = rows[("support", "focus_group")]
    assert fg["documents"] <= 3 and fg["speakers"] > fg["documents"]


def test_frequencies_by_extra_attribute_and_coder(db):
    rows = frequencies(db, "split", "code", ["Rosa Delgado"])
    assert {r["value"] for r in rows} == {"train", "test"}
    rosa = sum(1 for r in gold_rows() if r["coder"] == "Rosa Delgado")
    # Rosa applies each code at most once per segment, so summing over values gives her row count.
    assert sum(r["segments"] for r in rows) == rosa


def test_cooccurrence_coefficient(db):
    pairs = defaultdict(set)
    for row in gold_rows():
        pairs[row["code_id"]].add((row["document_id"], row["seq"]))
    for r in cooccurrence(db, "code")[:10]:
        a, b = pairs[r["code_a"]], pairs[r["code_b"]]
        n12 = len(a & b)
        assert (r["n12"], r["n1"], r["n2"]) == (n12, len(a), len(b))
        assert r["coefficient"] == pytest.approx(n12 / (len(a) + len(b) - n12), abs=1e-4)


def test_cooccurrence_for_one_code_and_lessons(db):
    rows = cooccurrence(db, "code", code="scaling.spread")
    assert rows and all("scaling.spread" in (r["code_a"], r["code_b"]) for r in rows)
    lessons = cooccurrence(db, "lesson")
    assert {r["code_a"] for r in lessons} | {r["code_b"] for r in lessons} <= {"purpose", "support", "scaling", "context"}


def test_excerpts_filters(db):
    rows = excerpts(db, ["support"], {"role": ["teacher"]}, ["Sam Okonjo"], "coach*")
    assert rows
    for r in rows:
        assert r["lesson_id"] == "support" and r["role"] == "teacher" and r["coder"] == "Sam Okonjo"
        assert "coach" in r["text"].lower()
    with pytest.raises(CodingError, match="bad search"):
        excerpts(db, search='"unclosed')


def test_cli_queries(gold_db):
    runner = CliRunner()
    result = runner.invoke(cli.cli, ["frequencies", "--by", "role", "--level", "lesson", "--db", str(gold_db)])
    assert result.exit_code == 0 and "district leader" in result.output
    result = runner.invoke(cli.cli, ["cooccurrence", "--code", "scaling.spread", "--format", "json", "--db", str(gold_db)])
    assert result.exit_code == 0 and '"coefficient"' in result.output
    result = runner.invoke(cli.cli, ["excerpts", "support.coaching", "-w", "site=Bayview Elementary", "--db", str(gold_db)])
    assert result.exit_code == 0 and "support.coaching" in result.output
    result = runner.invoke(cli.cli, ["excerpts", "support.coach", "--db", str(gold_db)])
    assert result.exit_code == 1 and "unknown code 'support.coach'" in result.output
    result = runner.invoke(cli.cli, ["frequencies", "--by", "site; drop", "--db", str(gold_db)])
    assert result.exit_code == 1 and "not an attribute name" in result.output
