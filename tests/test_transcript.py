"""A document read as a transcript, in the terminal (`qualcode show`) and through the library."""

import re

from click.testing import CliRunner

from qualcode import cli, open_project
from qualcode.coding import apply_code
from qualcode.transcript import clock, read_transcript

DOC = "cedar-03-coach-ridgeview"


def test_show_prints_every_turn_with_its_codings(gold_db):
    result = CliRunner().invoke(cli.cli, ["show", DOC, "--db", str(gold_db)])
    assert result.exit_code == 0, result.output
    db = open_project(gold_db, create=False)
    seqs = [int(n) for n in re.findall(r"^\[(\d+)\]", result.output, re.M)]
    assert seqs == [r[0] for r in db.execute("SELECT seq FROM segments WHERE document_id = ? ORDER BY seq", [DOC])]
    marks = result.output.count("    ▸ ")
    # One line per (turn, code): each names every coder who applied the code there.
    assert marks == db.execute("SELECT count(DISTINCT g.segment_id || g.code_id) FROM codings g JOIN segments s "
                               "ON s.id = g.segment_id WHERE s.document_id = ?", [DOC]).fetchone()[0] > 0
    assert f"qualcode code {DOC}:TURN CODE" in result.output
    assert "support.coaching (Coaching fitted to the person) — Rosa Delgado, Sam Okonjo" in result.output


def test_show_filters_by_coder_and_code(gold_db):
    transcript = read_transcript(open_project(gold_db, create=False), DOC, coders=["Rosa Delgado"], codes=["support"])
    codings = [c for t in transcript.turns for c in t.codings]
    assert codings and {c["coder"] for c in codings} == {"Rosa Delgado"}
    assert all(c["lesson_id"] == "support" for c in codings)


def test_show_gives_times_and_quotes_spans(gold_copy):
    db = open_project(gold_copy)
    doc, seq, text = db.execute("SELECT s.document_id, s.seq, s.text FROM segments s JOIN documents d ON "
                                "d.id = s.document_id WHERE d.format = 'vtt' AND length(s.text) > 40 LIMIT 1").fetchone()
    apply_code(db, f"{doc}:{seq}", "scaling.spread", "Ana Reyes", span="0:12", create_coder=True)
    result = CliRunner().invoke(cli.cli, ["show", doc, "--coder", "Ana Reyes", "--db", str(gold_copy)])
    assert re.search(rf"^\[{seq}\] .+ \(\d+:\d\d\)$", result.output, re.M)
    assert f'scaling.spread (Spreading practices) "{text[:12]}" — Ana Reyes' in result.output


def test_show_unknown_document_suggests_close_ids(gold_db):
    result = CliRunner().invoke(cli.cli, ["show", "cedar-03", "--db", str(gold_db)])
    assert result.exit_code == 1
    assert result.output == f"Error: unknown document 'cedar-03' — did you mean {DOC}?\n"


def test_clock():
    assert [clock(None), clock(5.9), clock(65), clock(3725)] == ["", "0:05", "1:05", "1:02:05"]
