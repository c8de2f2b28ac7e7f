import json

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.metrics import cohen_kappa_score, precision_recall_fscore_support

from qualcode import cli, open_project
from qualcode.coding import CodingError, add_coder
from qualcode.evaluate import binary_metrics, evaluate
from qualcode.ingest import IngestOptions, ingest_paths
from qualcode.suggest import load_dataset, model_codes, suggest
from qualcode.suggest.features import Featurizer, Item
from qualcode.suggest.lexicon import Lexicon
from qualcode.suggest.review import Retrainer, decide, decide_batch, queue, undo


def test_lexicon_matches_terms_on_lemmas():
    lexicon = Lexicon([{"id": "time", "terms": ["early release", "common planning"], "examples": []},
                       {"id": "coach", "terms": ["coaching cycle"], "examples": ["She modelled the lesson for me."]}])
    hits = lexicon.score(["We lost our Early Releases and common planning.", "She modelled lessons twice.", "Lunch."])
    assert set(hits[0]) == {"time"} and hits[0]["time"].evidence == ["common planning", "early releases"]
    assert hits[0]["time"].score == pytest.approx(0.75)
    assert set(hits[1]) == {"coach"}  # "modelled lesson" from the example, matched on the lemma "lessons"
    assert hits[2] == {}


def test_lexicon_only_before_any_coding(coded_db, tmp_path):
    path = tmp_path / "visit.txt"
    path.write_text("I: Tell me about time.\n\nR: We never have time to meet since early release was cut.\n\n"
                    "I: And the board?\n\nR: The board and the union barely talk after bargaining.\n")
    ingest_paths(coded_db, [path], IngestOptions(attributes={"kind": "interview"}))
    result = suggest(coded_db)
    assert result.method == "lexicon" and result.training_size == 0
    rows = [dict(r) for r in coded_db.query("SELECT * FROM suggestions")]
    codes = {r["code_id"] for r in rows}
    assert {"context.collaboration-time", "context.relationships"} <= codes
    for r in rows:
        assert r["model_run_id"] == result.model_run_id and r["method"] == "lexicon"
        text = coded_db.execute("SELECT text FROM segments WHERE id = ?", [r["segment_id"]]).fetchone()[0].lower()
        assert all(term in text for term in json.loads(r["evidence"])["terms"])
    run = coded_db.execute("SELECT method, training_size FROM model_runs").fetchone()
    assert tuple(run) == ("lexicon", 0)


def test_combined_suggestions_from_the_gold_coding(gold_copy):
    db = open_project(gold_copy)
    result = suggest(db)
    assert result.method == "combined" and result.training_size == 1332
    assert 0 < result.metrics["macro_f1"] < 1
    overlap = db.execute("""SELECT count(*) FROM suggestions x JOIN codings g
                            ON g.segment_id = x.segment_id AND g.code_id = x.code_id""").fetchone()[0]
    assert overlap == 0  # nothing already coded is suggested again
    evidence = [json.loads(r[0]) for r in db.execute("SELECT evidence FROM suggestions")]
    assert any(e.get("features") for e in evidence)
    params = json.loads(db.execute("SELECT parameters FROM model_runs").fetchone()[0])
    assert params["estimator"] == "logreg" and set(params["thresholds"]) == {c["id"] for c in model_codes(db)}


def test_featurizer_previous_block_follows_the_document():
    items = [Item("Tell me about coaching.", "d1", 1), Item("Our coach co-plans.", "d1", 2),
             Item("A different interview.", "d2", 1), Item("Coaching again.", "d2", 3)]
    f = Featurizer(min_df=1, max_df=1.0).fit(items)
    X = f.transform(items)
    vocab = len(f.names)
    previous = X[:, vocab: 2 * vocab]
    assert [previous[i].nnz > 0 for i in range(4)] == [False, True, False, False]  # d2:3 follows no d2:2
    assert np.allclose(previous[1].toarray(), 0.2 * X[0, :vocab].toarray())


def test_accept_reject_undo_and_rejections_as_training_data(gold_copy):
    db = open_project(gold_copy)
    suggest(db, ["context"])
    add_coder(db, "Lee")
    pending = queue(db, "Lee", "likely")
    assert pending and pending[0]["score"] == max(p["score"] for p in pending)
    uncertain = queue(db, "Lee", "uncertain")
    assert {p["id"] for p in uncertain} == {p["id"] for p in pending}
    first, second = pending[0], pending[1]
    accepted = decide(db, first["id"], "Lee", accept=True)
    coding = db.execute("SELECT origin FROM codings WHERE id = ?", [accepted.coding_id]).fetchone()
    assert coding[0] == "suggestion"
    rejected = decide(db, second["id"], "Lee", accept=False)
    assert rejected.status == "rejected"
    data = load_dataset(db, [c["id"] for c in model_codes(db, ["context"])])
    j = data.codes.index(second["code_id"])
    assert list(data.segment_ids[data.rejected[j]]) == [second["segment_id"]]
    undo(db, accepted)
    assert db.execute("SELECT status FROM suggestions WHERE id = ?", [first["id"]]).fetchone()[0] == "pending"
    assert db.execute("SELECT count(*) FROM codings WHERE id = ?", [accepted.coding_id]).fetchone()[0] == 0
    suggest(db, ["context"])  # a rejected pair is never suggested again
    again = db.execute("SELECT count(*) FROM suggestions WHERE segment_id = ? AND code_id = ? AND status = 'pending'",
                       [second["segment_id"], second["code_id"]]).fetchone()[0]
    assert again == 0


def test_batch_accept_and_reject(gold_copy):
    db = open_project(gold_copy)
    suggest(db)
    add_coder(db, "Lee")
    high = db.execute("SELECT count(*) FROM suggestions WHERE score >= 0.4").fetchone()[0]
    assert decide_batch(db, "Lee", True, min_score=0.4) == high
    assert db.execute("SELECT count(*) FROM codings WHERE origin = 'suggestion'").fetchone()[0] == high
    low = db.execute("SELECT count(*) FROM suggestions WHERE status = 'pending' AND score <= 0.25").fetchone()[0]
    assert decide_batch(db, "Lee", False, max_score=0.25) == low
    with pytest.raises(CodingError, match="score range"):
        decide_batch(db, "Lee", True)


def test_review_cli_keys(gold_copy):
    db = open_project(gold_copy)
    suggest(db, ["scaling"])
    first_two = queue(db, "Rosa Delgado", "likely")[:3]
    result = CliRunner().invoke(cli.cli, ["review", "--coder", "Rosa Delgado", "--code", "scaling", "--retrain-every", "0",
                                          "--db", str(gold_copy)], input="a\nu\nr\nc\ncontext.relationships\ns\nq\n")
    assert result.exit_code == 0, result.output
    assert "Suggested:" in result.output and "Undone." in result.output and "2 answers recorded" in result.output
    status = {r[0]: r[1] for r in db.execute("SELECT id, status FROM suggestions")}
    assert status[first_two[0]["id"]] == "rejected"  # accepted, undone, then rejected
    assert status[first_two[1]["id"]] == "rejected"  # rejected by choosing another code
    other = db.execute("""SELECT origin FROM codings g JOIN coders c ON c.id = g.coder_id
                          WHERE c.name = 'Rosa Delgado' AND g.segment_id = ? AND g.code_id = 'context.relationships'""",
                       [first_two[1]["segment_id"]]).fetchone()
    assert other is not None and other[0] == "manual"


def test_background_retraining(gold_copy):
    db = open_project(gold_copy)
    before = db.execute("SELECT count(*) FROM model_runs").fetchone()[0]
    retrainer = Retrainer(str(gold_copy), ["support"])
    assert retrainer.start()
    retrainer.wait(120)
    assert retrainer.error is None and retrainer.runs == 1
    assert db.execute("SELECT count(*) FROM model_runs").fetchone()[0] == before + 1


def test_binary_metrics_match_scikit_learn():
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    m = binary_metrics(y, p)
    precision, recall, f1, _ = precision_recall_fscore_support(y, p, average="binary")
    assert (m["precision"], m["recall"], m["f1"]) == pytest.approx((precision, recall, f1))
    assert m["kappa"] == pytest.approx(cohen_kappa_score(y, p))


def test_evaluate_grouped_and_held_out(gold_db):
    db = open_project(gold_db)
    result = evaluate(db, codes=["support"], folds=3)
    assert result["mode"] == "grouped cross-validation" and result["segments"] == 1332
    for method in ("combined", "model", "lexicon", "baseline", "baseline_balanced"):
        macro = result["methods"][method]["macro"]
        assert 0 <= macro["f1"] <= 1 and set(result["methods"][method]["per_code"]) == set(result["codes"])
    assert result["methods"]["combined"]["macro"]["f1"] > result["methods"]["baseline"]["macro"]["f1"]
    held = evaluate(db, codes=["support"], test_where={"split": ["test"]})
    assert held["mode"] == "held-out" and held["test_documents"] == 7
    with pytest.raises(CodingError, match="test set is empty"):
        evaluate(db, codes=["support"], test_where={"split": ["nope"]})


def test_suggest_evaluate_accept_cli(gold_copy):
    runner = CliRunner()
    db = str(gold_copy)
    result = runner.invoke(cli.cli, ["suggest", "--code", "context", "--db", db])
    assert result.exit_code == 0 and "Model run" in result.output and "combined" in result.output
    result = runner.invoke(cli.cli, ["suggest", "--code", "nope", "--db", db])
    assert result.exit_code == 1 and "unknown code 'nope'" in result.output
    result = runner.invoke(cli.cli, ["suggest", "--document", "nope", "--db", db])
    assert result.exit_code == 1 and "unknown document 'nope'" in result.output
    result = runner.invoke(cli.cli, ["accept", "--coder", "Rosa Delgado", "--min-score", "0.5", "--db", db])
    assert result.exit_code == 0 and "Accepted" in result.output
    result = runner.invoke(cli.cli, ["reject", "--coder", "Rosa Delgado", "--db", db])
    assert result.exit_code == 1 and "give --min-score or --max-score" in result.output
    result = runner.invoke(cli.cli, ["review", "--coder", "Nobody", "--db", db])
    assert result.exit_code == 1 and "unknown coder 'Nobody'" in result.output
    result = runner.invoke(cli.cli, ["evaluate", "--code", "purpose", "--folds", "2", "--db", db])
    assert result.exit_code == 0 and "baseline_balanced" in result.output
    result = runner.invoke(cli.cli, ["evaluate", "--test-where", "split=nope", "--db", db])
    assert result.exit_code == 1 and "test set is empty" in result.output


def test_a_code_nobody_used_does_not_disable_the_others(gold_db):
    """Rosa never used context.existing-structures; the other codes must still get a learned mix."""
    from qualcode.suggest import train

    db = open_project(gold_db)
    codes = model_codes(db)
    data = load_dataset(db, [c["id"] for c in codes], ["Rosa Delgado"])
    suggester = train(data, codes)
    unused = data.codes.index("context.existing-structures")
    assert data.Y[:, unused].sum() == 0
    stacked = [j for j, s in enumerate(suggester.combiner.stackers) if s is not None]
    assert len(stacked) >= 10 and unused not in stacked
    assert (suggester.thresholds != 0.5).sum() >= 10
