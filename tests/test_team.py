"""Agreement, disagreements, consensus, assignments, clone and merge, on the sample corpus's two coders."""

import json
import random
import sqlite3

import krippendorff
import numpy as np
import pytest
from click.testing import CliRunner
from datasette.app import Datasette
from sklearn.metrics import cohen_kappa_score

from qualcode import cli, open_project
from qualcode.agreement import agreement, binary_alpha, cohen_kappa, krippendorff_alpha
from qualcode.coding import CodingError, add_coder, apply_code, remove_code
from qualcode.export import Filters, quote_rows
from qualcode.publish import load_metadata
from qualcode.sync import MergeError, clone, merge
from qualcode.team import adopt_agreements, assign, assignments, decide, disagreements, is_blind

from .conftest import ROOT, dump, gold_rows

ROSA, SAM = "Rosa Delgado", "Sam Okonjo"


def gold_marks():
    """Each coder's (document:seq, sub-code) decisions, read from the coding sheets, not from qualcode."""
    marks = {}
    for r in gold_rows():
        marks.setdefault(r["coder"], set()).add((f"{r['document_id']}:{r['seq']}", r["code_id"]))
    return marks


def segment_refs(db):
    return [r["ref"] for r in db.query("SELECT document_id || ':' || seq AS ref FROM segments ORDER BY document_id, seq")]


# --- the statistics against references ---------------------------------------------------------


def test_krippendorffs_worked_example():
    """Krippendorff (2011), 'Computing Krippendorff's alpha-reliability': 4 coders, 12 units, nominal alpha 0.743."""
    data = [[1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
            [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
            [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
            [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None]]
    assert round(krippendorff_alpha(data), 3) == 0.743
    reference = krippendorff.alpha(reliability_data=[[np.nan if v is None else v for v in row] for row in data],
                                   level_of_measurement="nominal")
    assert krippendorff_alpha(data) == pytest.approx(reference)


def test_binary_alpha_matches_the_general_formula_and_the_package():
    rng = random.Random(5)
    for coders in (2, 3, 5):
        marks = np.array([[rng.random() < 0.2 for _ in range(coders)] for _ in range(300)])
        reference = krippendorff.alpha(reliability_data=marks.T.astype(float), level_of_measurement="nominal")
        assert binary_alpha(marks) == pytest.approx(reference)
        assert krippendorff_alpha(marks.T.tolist()) == pytest.approx(reference)


def test_kappa_matches_sklearn_on_lists_and_arrays():
    rng = random.Random(9)
    x = [rng.random() < 0.3 for _ in range(500)]
    y = [v if rng.random() < 0.8 else not v for v in x]
    reference = cohen_kappa_score(x, y)
    assert cohen_kappa(x, y) == pytest.approx(reference)
    assert cohen_kappa(np.array(x), np.array(y)) == pytest.approx(reference)


def test_kappa_is_undefined_without_variation():
    assert cohen_kappa([0, 0, 0], [0, 0, 0]) is None
    assert cohen_kappa([1, 0, 1, 0], [1, 0, 1, 0]) == 1.0


def test_agreement_per_code_matches_sklearn_and_krippendorff(gold_db):
    db = open_project(gold_db)
    report = agreement(db, [ROSA, SAM])
    marks = gold_marks()
    refs = segment_refs(db)
    assert len(report.documents) == 22 and report.figures[0].units == report.segments == len(refs) == 1332
    for f in report.figures:
        rosa = [int((ref, f.code_id) in marks[ROSA]) for ref in refs]
        sam = [int((ref, f.code_id) in marks[SAM]) for ref in refs]
        assert f.positives == {ROSA: sum(rosa), SAM: sum(sam)}
        assert f.percent == pytest.approx(np.mean(np.array(rosa) == np.array(sam)))
        if sum(rosa) and sum(sam):
            assert f.kappa == pytest.approx(cohen_kappa_score(rosa, sam))
        assert f.alpha == pytest.approx(krippendorff.alpha(reliability_data=[rosa, sam], level_of_measurement="nominal"))
    pooled_rosa = [int((ref, f.code_id) in marks[ROSA]) for f in report.figures for ref in refs]
    pooled_sam = [int((ref, f.code_id) in marks[SAM]) for f in report.figures for ref in refs]
    assert report.pooled.units == len(pooled_rosa)
    assert report.pooled.kappa == pytest.approx(cohen_kappa_score(pooled_rosa, pooled_sam))
    kappas = {f.code_id: f.kappa for f in report.figures}
    assert 0.55 < kappas["purpose.shared-aim"] < 0.6 and kappas["purpose.two-goals"] > 0.85


def test_warnings_for_unstable_figures(gold_db):
    report = agreement(open_project(gold_db), [ROSA, SAM])
    rare = next(f for f in report.figures if f.code_id == "context.existing-structures")
    assert f"{ROSA} never applied it" in rare.warnings
    assert any("only 8 positive units" in w for w in rare.warnings)
    common = next(f for f in report.figures if f.code_id == "support.coaching")
    assert common.warnings == []


def test_lessons_roll_up_sub_codes(gold_db):
    db = open_project(gold_db)
    report = agreement(db, [ROSA, SAM], level="lesson")
    marks = gold_marks()
    refs = segment_refs(db)
    for f in report.figures:
        rosa = [int(any((ref, c) in marks[ROSA] for c in marks_codes(marks, f.code_id))) for ref in refs]
        sam = [int(any((ref, c) in marks[SAM] for c in marks_codes(marks, f.code_id))) for ref in refs]
        assert f.kappa == pytest.approx(cohen_kappa_score(rosa, sam))


def marks_codes(marks, lesson):
    return {code for decisions in marks.values() for _, code in decisions if code.startswith(lesson + ".")}


def test_only_documents_every_coder_coded(gold_copy):
    db = open_project(gold_copy)
    db.execute("DELETE FROM codings WHERE coder_id = (SELECT id FROM coders WHERE name = ?) AND segment_id IN "
               "(SELECT id FROM segments WHERE document_id = 'harbor-04-teacher-seacliff')", [SAM])
    report = agreement(db, [ROSA, SAM])
    assert "harbor-04-teacher-seacliff" not in report.documents and len(report.documents) == 21
    n = db.execute("SELECT count(*) FROM segments WHERE document_id != 'harbor-04-teacher-seacliff'").fetchone()[0]
    assert report.figures[0].units == n


def test_three_coders_use_alpha(gold_copy):
    db = open_project(gold_copy)
    add_coder(db, "Third")
    rng = random.Random(1)
    refs = segment_refs(db)
    for ref in rng.sample(refs, 200):
        apply_code(db, ref, "support.coaching", "Third")
    report = agreement(db, [ROSA, SAM, "Third"], codes=["support.coaching"])
    f = report.figures[0]
    assert f.kappa is None and f.coders == [ROSA, SAM, "Third"]
    marks = gold_marks()
    third = {r["ref"] for r in db.query("SELECT s.document_id || ':' || s.seq AS ref FROM codings g JOIN segments s "
                                        "ON s.id = g.segment_id JOIN coders c ON c.id = g.coder_id WHERE c.name = 'Third'")}
    data = [[int((ref, "support.coaching") in marks[ROSA]) for ref in refs],
            [int((ref, "support.coaching") in marks[SAM]) for ref in refs],
            [int(ref in third) for ref in refs]]
    assert f.alpha == pytest.approx(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))


def test_character_overlap_uses_spans(gold_copy):
    db = open_project(gold_copy)
    add_coder(db, "A")
    add_coder(db, "B")
    seg = db.execute("SELECT document_id || ':' || seq, end_char - start_char FROM segments WHERE end_char - start_char > 40 "
                     "ORDER BY id LIMIT 1").fetchone()
    apply_code(db, seg[0], "support.coaching", "A", span="0:30")
    apply_code(db, seg[0], "support.coaching", "B", span="10:40")
    report = agreement(db, ["A", "B"], codes=["support.coaching"])
    assert report.figures[0].overlap == pytest.approx(20 / 40)  # 20 characters in common of 40 coded by either
    assert report.figures[0].percent == 1.0  # both applied the code to the segment


def test_agreement_needs_two_coders_with_shared_documents(coded_db):
    db = coded_db
    add_coder(db, "A")
    with pytest.raises(CodingError, match="at least two coders"):
        agreement(db, ["A"])
    add_coder(db, "B")
    with pytest.raises(CodingError, match="have not coded any document in common"):
        agreement(db, ["A", "B"])


def test_agreement_cli_formats(gold_db):
    runner = CliRunner()
    result = runner.invoke(cli.cli, ["agreement", "--db", str(gold_db)])
    assert result.exit_code == 0, result.output
    assert "Rosa Delgado and Sam Okonjo: 22 documents coded by all, 1,332 segments" in result.output
    assert "(pooled)" in result.output
    data = json.loads(runner.invoke(cli.cli, ["agreement", "--format", "json", "--level", "lesson", "--db", str(gold_db)]).output)
    assert [f["code_id"] for f in data["figures"]] == ["purpose", "support", "scaling", "context"]
    csv_out = runner.invoke(cli.cli, ["agreement", "--format", "csv", "--coders", f"{ROSA},{SAM}", "--db", str(gold_db)]).output
    assert csv_out.splitlines()[0].startswith("code_id,units,positive_units")
    result = runner.invoke(cli.cli, ["agreement", "--coders", "Nobody,Sam Okonjo", "--db", str(gold_db)])
    assert result.exit_code == 1 and "unknown coder 'Nobody'" in result.output and "Traceback" not in result.output


async def test_agreement_view_in_datasette(gold_db):
    db = open_project(gold_db)
    library = {f.code_id: f for f in agreement(db, [ROSA, SAM]).figures + agreement(db, [ROSA, SAM], level="lesson").figures}
    ds = Datasette([str(gold_db)], metadata=load_metadata(ROOT / "datasette-metadata.yml", gold_db))
    response = await ds.client.get("/qualcode/agreement.json?_shape=array&_size=max")
    rows = response.json()
    assert {r["code_id"] for r in rows} == {c for c, f in library.items() if f.positive_units}
    for r in rows:
        f = library[r["code_id"]]
        assert (r["coder_a"], r["coder_b"]) == (ROSA, SAM)
        assert (r["units"], r["positive_units"], r["positives_a"], r["positives_b"]) == (
            f.units, f.positive_units, f.positives[ROSA], f.positives[SAM])
        assert r["percent_agreement"] == pytest.approx(f.percent, abs=1e-4)
        assert r["positive_agreement"] == pytest.approx(f.positive, abs=1e-4)
        assert r["krippendorff_alpha"] == pytest.approx(f.alpha, abs=1e-4)
        if f.kappa is not None:
            assert r["cohen_kappa"] == pytest.approx(f.kappa, abs=1e-4)


# --- disagreements and consensus ----------------------------------------------------------------


def test_disagreements_side_by_side_with_memos(gold_copy):
    db = open_project(gold_copy)
    found = disagreements(db, [ROSA, SAM])
    marks = gold_marks()
    expected = {m for m in marks[ROSA] ^ marks[SAM]}
    assert {(d.segment, d.code_id) for d in found} == expected
    d = next(d for d in found if d.code_id == "purpose.two-goals")
    assert d.applied_by == [SAM] and d.not_applied_by == [ROSA]
    from qualcode.memos import add_memo

    add_memo(db, "This is about benchmarks, not two goals.", ROSA, segment=d.segment)
    again = next(x for x in disagreements(db, [ROSA, SAM], ["purpose"]) if x.segment == d.segment)
    assert again.memos == {ROSA: ["This is about benchmarks, not two goals."]}
    assert all(x.code_id.startswith("purpose.") for x in disagreements(db, [ROSA, SAM], ["purpose"]))
    result = CliRunner().invoke(cli.cli, ["disagreements", "--coders", f"{ROSA},{SAM}", "--code", "purpose.two-goals",
                                          "--db", str(gold_copy)])
    assert result.exit_code == 0 and "3 disagreements" in result.output and "memo (Rosa Delgado)" in result.output


def test_reconcile_records_consensus_and_keeps_originals(gold_copy):
    db = open_project(gold_copy)
    originals = list(db.query("SELECT * FROM codings ORDER BY id"))
    runner = CliRunner()
    args = ["reconcile", "--coders", f"{ROSA},{SAM}", "--as", "Consensus", "--code", "purpose.two-goals", "--db", str(gold_copy)]
    result = runner.invoke(cli.cli, args, input="a\nr\ns\n")
    assert result.exit_code == 0, result.output
    assert "adopted 12 codings" in result.output and "3 open disagreements" in result.output
    assert "Decided 2: 1 applied, 1 rejected; 1 left" in result.output
    db = open_project(gold_copy)
    consensus = db.execute("SELECT count(*) FROM codings g JOIN coders c ON c.id = g.coder_id "
                           "WHERE c.name = 'Consensus' AND c.consensus").fetchone()[0]
    assert consensus == 12 + 1
    assert [r for r in db.query("SELECT * FROM codings WHERE coder_id != (SELECT id FROM coders WHERE name = 'Consensus') "
                                "ORDER BY id")] == originals
    decisions = dict(db.execute("SELECT decision, count(*) FROM consensus_decisions GROUP BY decision").fetchall())
    assert decisions == {"apply": 1, "reject": 1}
    again = runner.invoke(cli.cli, args, input="q\n")
    assert "adopted 0 codings" in again.output and "1 open disagreement" in again.output


def test_exports_read_the_consensus_by_default(gold_copy):
    db = open_project(gold_copy)
    assert {r["coder"] for r in quote_rows(db)} == {ROSA, SAM}
    adopt_agreements(db, [ROSA, SAM], "Consensus")
    d = disagreements(db, [ROSA, SAM], ["support.coaching"])[0]
    decide(db, "Consensus", d, apply=True, memo="agreed in the team meeting")
    rows = quote_rows(db)
    assert {r["coder"] for r in rows} == {"Consensus"}
    assert len(rows) == db.execute("SELECT count(*) FROM codings g JOIN coders c ON c.id = g.coder_id "
                                   "WHERE c.name = 'Consensus'").fetchone()[0]
    assert {r["coder"] for r in quote_rows(db, Filters(all_coders=True))} == {ROSA, SAM, "Consensus"}
    assert {r["coder"] for r in quote_rows(db, Filters(coders=[SAM]))} == {SAM}
    with pytest.raises(CodingError, match="is a coder, not a consensus coder"):
        adopt_agreements(db, [ROSA, SAM], SAM)


# --- assignments and blind coding ----------------------------------------------------------------


def test_assign_and_blind_review(gold_copy):
    db = open_project(gold_copy)
    add_coder(db, "Newcomer")
    assert assign(db, ["Newcomer"], ["harbor-04-teacher-seacliff", "cedar-01-superintendent"]) == 2
    assert assign(db, ["Newcomer"], ["harbor-04-teacher-seacliff"]) == 0
    assert is_blind(db, "Newcomer") and not is_blind(db, ROSA)
    rows = assignments(db, "Newcomer")
    assert [r["document_id"] for r in rows] == ["cedar-01-superintendent", "harbor-04-teacher-seacliff"]
    assert all(r["coded_segments"] == 0 and r["segments"] > 0 for r in rows)
    # Suggestions from a model trained on Sam's codings would echo Sam: a blind queue leaves them out.
    segment = db.execute("SELECT id FROM segments WHERE document_id = 'harbor-04-teacher-seacliff' ORDER BY seq LIMIT 1").fetchone()[0]
    runs = {}
    for name, size, coders in (("lexicon", 0, "all"), ("sam", 500, [SAM]), ("own", 20, ["Newcomer"])):
        runs[name] = db.execute("INSERT INTO model_runs (created_at, method, training_size, parameters) VALUES ('x', 'combined', ?, ?)",
                                [size, json.dumps({"coders": coders})]).lastrowid
    for i, (name, code) in enumerate((("lexicon", "support.coaching"), ("sam", "scaling.spread"), ("own", "context.relationships"))):
        db.execute("INSERT INTO suggestions (segment_id, code_id, score, method, model_run_id, created_at) VALUES (?, ?, 0.5, 'x', ?, 'x')",
                   [segment + i, code, runs[name]])
    from qualcode.suggest.review import queue

    assert {q["code_id"] for q in queue(db, "Newcomer", blind=True)} == {"support.coaching", "context.relationships"}
    assert {"scaling.spread"} <= {q["code_id"] for q in queue(db, "Newcomer")}
    result = CliRunner().invoke(cli.cli, ["review", "--coder", "Newcomer", "--db", str(gold_copy)], input="q\n")
    assert "Blind review" in result.output and "scaling.spread" not in result.output


def test_assign_refuses_unknown_documents(gold_copy):
    before = dump(gold_copy)
    result = CliRunner().invoke(cli.cli, ["assign", "--coders", ROSA, "--documents", "harbor-04-teacher-seacliff,nope",
                                          "--db", str(gold_copy)])
    assert result.exit_code == 1 and "unknown document nope" in result.output
    assert dump(gold_copy) == before
    result = CliRunner().invoke(cli.cli, ["assign", "--coders", f"{ROSA},{SAM}", "-w", "site=Bayview Elementary",
                                          "--db", str(gold_copy)])
    assert result.exit_code == 0 and "(blind)" in result.output
    listed = CliRunner().invoke(cli.cli, ["assignments", "--format", "json", "--db", str(gold_copy)])
    assert {r["coder"] for r in json.loads(listed.output)} == {ROSA, SAM}
    bayview = open_project(gold_copy).execute(
        "SELECT count(*) FROM documents WHERE site = 'Bayview Elementary'").fetchone()[0]
    status = CliRunner().invoke(cli.cli, ["status", "--db", str(gold_copy)]).output
    assert f"  {ROSA}: 533 codings in 22 documents; assigned {bayview}, {bayview} started" in status


# --- clone and merge ----------------------------------------------------------------------------


def counts(path):
    conn = sqlite3.connect(path)
    try:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("codings", "memos", "consensus_decisions", "coders", "assignments")}
    finally:
        conn.close()


def whole_segment_codings(db, coder):
    """(DOCUMENT:SEQ, code) of the coder's whole-segment codings, one coding per segment and code."""
    return [(r["ref"], r["code_id"]) for r in db.query(
        """SELECT s.document_id || ':' || s.seq AS ref, g.code_id FROM codings g
           JOIN segments s ON s.id = g.segment_id JOIN coders c ON c.id = g.coder_id
           WHERE c.name = ? GROUP BY g.segment_id, g.code_id HAVING count(*) = 1 AND max(g.start_char) IS NULL
           ORDER BY s.document_id, s.seq, g.code_id""", [coder])]


def uncoded_refs(db):
    return [r["ref"] for r in db.query(
        "SELECT document_id || ':' || seq AS ref FROM segments s WHERE NOT EXISTS "
        "(SELECT 1 FROM codings g WHERE g.segment_id = s.id) ORDER BY document_id, seq")]


def coding_memo(db, ref, code, coder):
    row = db.execute("SELECT g.memo FROM codings g JOIN segments s ON s.id = g.segment_id JOIN coders c ON c.id = g.coder_id "
                     "WHERE s.document_id || ':' || s.seq = ? AND g.code_id = ? AND c.name = ?", [ref, code, coder]).fetchone()
    return row[0] if row else "no coding"


def segment_memos(db, ref, coder):
    return [r[0] for r in db.execute(
        "SELECT m.text FROM memos m JOIN segments s ON s.id = m.segment_id JOIN coders c ON c.id = m.coder_id "
        "WHERE s.document_id || ':' || s.seq = ? AND c.name = ? ORDER BY m.id", [ref, coder])]


def test_blind_clone_leaves_out_other_coders(gold_copy, tmp_path):
    db = open_project(gold_copy)
    for coder in (ROSA, SAM):  # a removal is a trace of what the coder had applied
        ref, code = whole_segment_codings(db, coder)[0]
        remove_code(db, ref, code, coder)
    out = clone(db, tmp_path / "rosa.db", for_coder=ROSA)
    copy = open_project(out)
    who = {r["name"] for r in copy.query("SELECT DISTINCT c.name FROM codings g JOIN coders c ON c.id = g.coder_id")}
    assert who == {ROSA}
    removed = [r["name"] for r in copy.query("SELECT c.name FROM coding_removals x JOIN coders c ON c.id = x.coder_id")]
    assert removed == [ROSA]
    assert copy.execute("SELECT count(*) FROM excerpts WHERE coder != ?", [ROSA]).fetchone()[0] == 0
    with pytest.raises(Exception, match="file exists"):
        clone(db, out)


def test_parallel_copies_merge_without_loss_or_duplicates(gold_copy, tmp_path):
    from qualcode.memos import add_memo
    from qualcode.suggest.review import decide as decide_suggestion

    main = open_project(gold_copy)
    rosa_path, sam_path = clone(main, tmp_path / "rosa.db"), clone(main, tmp_path / "sam.db")
    refs = segment_refs(main)
    # Rosa's copy: new codings and a memo; she also rejects a suggestion.
    rosa = open_project(rosa_path)
    uncoded = [ref for ref in refs if not rosa.execute(
        "SELECT 1 FROM codings g JOIN segments s ON s.id = g.segment_id WHERE s.document_id || ':' || s.seq = ?", [ref]).fetchone()]
    for ref in uncoded[:5]:
        apply_code(rosa, ref, "support.coaching", ROSA, memo="new in Rosa's copy")
    add_memo(rosa, "Coaching talk clusters after the winter break.", ROSA, code="support.coaching")
    seg = rosa.execute("SELECT id FROM segments WHERE document_id || ':' || seq = ?", [uncoded[10]]).fetchone()[0]
    sid = rosa.execute("INSERT INTO suggestions (segment_id, code_id, score, method, created_at) "
                       "VALUES (?, 'scaling.spread', 0.6, 'lexicon', 'x')", [seg]).lastrowid
    decide_suggestion(rosa, sid, ROSA, accept=False)
    # Sam's copy, in parallel: other segments, and a conflict: Sam codes what he rejected in the main file.
    sam = open_project(sam_path)
    for ref in uncoded[5:8]:
        apply_code(sam, ref, "scaling.dilemmas", SAM)
    seg2 = main.execute("SELECT id FROM segments WHERE document_id || ':' || seq = ?", [uncoded[20]]).fetchone()[0]
    sid2 = main.execute("INSERT INTO suggestions (segment_id, code_id, score, method, created_at) "
                        "VALUES (?, 'support.district-role', 0.6, 'lexicon', 'x')", [seg2]).lastrowid
    decide_suggestion(main, sid2, SAM, accept=False)
    apply_code(sam, uncoded[20], "support.district-role", SAM)
    before = counts(gold_copy)

    r1 = merge(main, rosa_path)
    assert (r1.codings, r1.memos, r1.decisions, r1.conflicts) == (5, 1, 1, [])
    r2 = merge(main, sam_path)
    assert r2.codings == 3 and len(r2.conflicts) == 1
    assert f"{SAM} on {uncoded[20]} support.district-role: rejected here, applied in theirs" in r2.conflicts[0]
    after = counts(gold_copy)
    assert after["codings"] == before["codings"] + 8 and after["memos"] == before["memos"] + 1
    assert main.execute("SELECT status FROM suggestions WHERE segment_id = ? AND code_id = 'scaling.spread'", [seg]).fetchone()[0] == "rejected"
    snapshot = dump(gold_copy)
    again = merge(main, rosa_path)
    assert again.changed == 0 and dump(gold_copy) == snapshot  # merging the same file twice is a no-op
    result = CliRunner().invoke(cli.cli, ["merge", str(sam_path), "--db", str(gold_copy)])
    assert result.exit_code == 0 and "(nothing new)" in result.output and "1 conflict" in result.output
    assert dump(gold_copy) == snapshot


def test_merge_refuses_another_project(gold_copy, coded_db, tmp_path):
    main = open_project(gold_copy)
    before = dump(gold_copy)
    from qualcode.ingest import IngestOptions, ingest_paths

    transcript = tmp_path / "elsewhere.txt"
    transcript.write_text("Interviewer: How did the year go?\nAva Moreno: Better than the last one.\n")
    ingest_paths(coded_db, [transcript], IngestOptions())
    other = tmp_path / "other.db"
    clone(coded_db, other)
    with pytest.raises(MergeError, match="documents differ from this project's"):
        merge(main, other)
    changed = clone(main, tmp_path / "changed.db")
    conn = sqlite3.connect(changed)
    conn.execute("UPDATE documents SET sha256 = 'x' WHERE id = 'lakemont-01-director-ci'")
    conn.commit()
    conn.close()
    result = CliRunner().invoke(cli.cli, ["merge", str(changed), "--db", str(gold_copy)])
    assert result.exit_code == 1
    assert "documents differ from this project's: lakemont-01-director-ci" in result.output
    not_sqlite = tmp_path / "notes.db"
    not_sqlite.write_text("hello")
    result = CliRunner().invoke(cli.cli, ["merge", str(not_sqlite), "--db", str(gold_copy)])
    assert result.exit_code == 1 and "not a qualcode project" in result.output
    assert dump(gold_copy) == before


def test_merge_keeps_every_memo_and_reports_differing_ones(gold_copy, tmp_path):
    main = open_project(gold_copy)
    copy_path = clone(main, tmp_path / "rosa.db")
    copy = open_project(copy_path)
    a, b, c = uncoded_refs(main)[:3]
    apply_code(main, a, "support.coaching", ROSA, memo="Ours: about the coach.")
    apply_code(copy, a, "support.coaching", ROSA, memo="Theirs: about the schedule.")
    apply_code(main, b, "support.coaching", ROSA)
    apply_code(copy, b, "support.coaching", ROSA, memo="Only in the copy.")
    apply_code(main, c, "support.coaching", ROSA, memo="Same in both.")
    apply_code(copy, c, "support.coaching", ROSA, memo="Same in both.")

    result = merge(main, copy_path)
    assert result.conflicts == [f"{ROSA} on {a} support.coaching: the coding's memo differs here and in theirs "
                                "(kept ours on the coding, theirs as a memo on the segment)"]
    assert (result.codings, result.memos) == (0, 2)
    assert coding_memo(main, a, "support.coaching", ROSA) == "Ours: about the coach."
    assert segment_memos(main, a, ROSA) == ["Memo on support.coaching from a merged copy: Theirs: about the schedule."]
    assert coding_memo(main, b, "support.coaching", ROSA) == "Only in the copy."
    assert coding_memo(main, c, "support.coaching", ROSA) == "Same in both." and segment_memos(main, c, ROSA) == []
    assert main.execute("SELECT memo FROM excerpts WHERE memo = 'Only in the copy.'").fetchone()  # the trigger saw it
    snapshot = dump(gold_copy)
    again = merge(main, copy_path)
    assert again.changed == 0 and len(again.conflicts) == 1 and dump(gold_copy) == snapshot


def test_merge_does_not_bring_back_a_coding_removed_here(gold_copy, tmp_path):
    main = open_project(gold_copy)
    (first, code1), (second, code2), (third, code3) = whole_segment_codings(main, ROSA)[:3]
    remove_code(main, first, code1, ROSA)  # removed before the clone ...
    copy_path = clone(main, tmp_path / "rosa.db")
    copy = open_project(copy_path)
    apply_code(copy, first, code1, ROSA, memo="Back on reflection.")  # ... and applied again in the copy: new work
    remove_code(main, second, code2, ROSA)  # removed here after the clone: the copy's coding is older
    remove_code(copy, third, code3, ROSA)  # removed in both, and applied again in the copy with a memo
    apply_code(copy, third, code3, ROSA, memo="Rewritten in the copy.")
    remove_code(main, third, code3, ROSA)
    before = counts(gold_copy)

    result = merge(main, copy_path)
    assert sorted(result.conflicts) == sorted([
        f"{ROSA} on {second} {code2}: removed here, applied in theirs (kept ours)",
        f"{ROSA} on {third} {code3}: removed here, applied in theirs (kept ours; their memo kept as a memo on the segment)"])
    assert (result.codings, result.memos) == (1, 1)
    assert coding_memo(main, first, code1, ROSA) == "Back on reflection."
    assert coding_memo(main, second, code2, ROSA) == coding_memo(main, third, code3, ROSA) == "no coding"
    assert segment_memos(main, third, ROSA) == [f"Memo on {code3} from a merged copy: Rewritten in the copy."]
    assert counts(gold_copy)["codings"] == before["codings"] + 1
    snapshot = dump(gold_copy)
    cli_run = CliRunner().invoke(cli.cli, ["merge", str(copy_path), "--db", str(gold_copy)])
    assert cli_run.exit_code == 0 and "(nothing new)" in cli_run.output and "2 conflicts" in cli_run.output
    assert dump(gold_copy) == snapshot


def test_removals_are_recorded_only_for_decisions(gold_copy):
    """A coding that goes with its segment (a document dropped or re-ingested) is no decision to remember."""
    main = open_project(gold_copy)
    ref, code = whole_segment_codings(main, ROSA)[0]
    remove_code(main, ref, code, ROSA)
    assert main.execute("SELECT count(*) FROM coding_removals").fetchone()[0] == 1
    with main.atomic():
        main.execute("DELETE FROM documents WHERE id = ?", [ref.split(":")[0]])
    assert main.execute("SELECT count(*) FROM coding_removals").fetchone()[0] == 0


@pytest.mark.parametrize("here, there", [(False, True), (True, False)])
def test_merge_reports_a_consensus_conflict_once(gold_copy, tmp_path, here, there):
    main = open_project(gold_copy)
    copy_path = clone(main, tmp_path / "copy.db")
    copy = open_project(copy_path)
    first = disagreements(main, [ROSA, SAM])[0]
    decide(main, "Consensus", first, apply=here)
    decide(copy, "Consensus", disagreements(copy, [ROSA, SAM])[0], apply=there)
    result = merge(main, copy_path)
    ours, theirs = ("applied", "rejected") if here else ("rejected", "applied")
    assert result.conflicts == [f"Consensus on {first.segment} {first.code_id}: {ours} here, {theirs} in theirs (kept ours)"]
    applied = main.execute("SELECT count(*) FROM codings g JOIN coders c ON c.id = g.coder_id WHERE c.name = 'Consensus'")
    assert applied.fetchone()[0] == int(here)
