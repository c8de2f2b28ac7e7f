"""Suggestions that read a turn in its conversation: signals, relations, exclusive sets, role scopes,
operating points, and evidence in words."""

from __future__ import annotations

import csv
import json
import random

import numpy as np
import pytest
from click.testing import CliRunner

from qualcode.cli import cli
from qualcode.evaluate import label_metrics, reliability
from qualcode.suggest import Dataset, in_scope, train
from qualcode.suggest import features as F
from qualcode.suggest.features import Featurizer, Item, relation, signals, tokens
from qualcode.suggest.model import precision_threshold


def test_signals_keep_what_a_coder_reads():
    asks = signals("Can you say more about that?", tokens("Can you say more about that?"))
    tells = signals("I can say more about that.", tokens("I can say more about that."))
    assert "s:ends with ?" in asks and "s:asks" in asks and "s:ends with ?" not in tells
    assert "s:negation" in signals("We don't have time.", tokens("We don't have time."))
    assert "s:quotes" in signals('She said "the data is late" again.', tokens('She said "the data is late"'))
    assert "s:number" in signals("Three of our 40 teachers.", tokens("Three of our 40 teachers."))
    assert "s:opens so what" in signals("So what I hear is", tokens("So what I hear is"))


def test_relation_to_the_previous_speaker():
    prev = tokens("The data meetings feel rushed every Friday")
    exact = relation(tokens("The data meetings feel rushed every Friday."), "", prev, "", False, "Dana")
    assert exact.get("repeats exactly") == 1.0 and exact["speaker changed"] == 1.0
    part = relation(tokens("Yes, the data meetings feel rushed, and we never see results either"), "", prev, "",
                    False, "Dana")
    assert part.get("repeats in part") == 1.0
    new = relation(tokens("Our coach visits twice a month"), "", prev, "", False, "Dana")
    assert new.get("shares no words") == 1.0 and "repeats exactly" not in new
    named = relation(tokens("Like Dana said, it is hard"), "", prev, "Is it?", False, "Dana Reyes")
    assert named.get("names the previous speaker") == 1.0 and named.get("answers a question") == 1.0
    assert relation(tokens("Hello"), "", None, "", None, "") == {"first turn": 1.0}


def _conversation(n_docs: int, seed: int = 3) -> tuple[list[Item], np.ndarray]:
    """Focus groups in which a participant's turn is an agreement only when it echoes the
    previous participant's words: its own words alone cannot tell."""
    rng = random.Random(seed)
    topics = ["data meetings", "coaching cycles", "planning time", "district walkthroughs", "reading block",
              "grade level teams", "attendance calls", "math pilot", "bell schedule", "peer visits"]
    verbs = ["feel rushed", "help a lot", "keep moving", "need more time", "changed this year", "work for us"]
    items, labels = [], []
    for d in range(n_docs):
        seq, last = 0, None
        for _ in range(30):
            seq += 1
            if rng.random() < 0.25:
                items.append(Item(f"What about the {rng.choice(topics)}?", f"fg{d}", seq, speaker="Facilitator",
                                  speaker_role="facilitator"))
                labels.append(0)
                last = None
                continue
            name = rng.choice(["Ana", "Ben", "Cal", "Dee"])
            if last is not None and rng.random() < 0.4:
                text = f"{rng.choice(['Yes', 'Right', 'True'])}, the {last} for sure."
                label = 1
            else:
                last = f"{rng.choice(topics)} {rng.choice(verbs)}"
                text = f"{rng.choice(['Yes', 'Right', 'True', 'Well'])}, the {last} for sure."
                label = 0
            items.append(Item(text, f"fg{d}", seq, speaker=name, speaker_role="participant"))
            labels.append(label)
    return items, np.array(labels)


CODES = [
    {"id": "discussion.agree", "name": "Agreeing", "definition": "agrees with another participant", "include": "",
     "terms": [], "examples": [], "lesson_id": "discussion", "roles": ["participant"], "exclusive_group": "discussion"},
    {"id": "discussion.build", "name": "Building", "definition": "builds on an idea", "include": "", "terms": [],
     "examples": [], "lesson_id": "discussion", "roles": ["participant"], "exclusive_group": "discussion"},
    {"id": "facilitation.probe", "name": "Probing", "definition": "asks for more", "include": "", "terms": [],
     "examples": [], "lesson_id": "facilitation", "roles": ["facilitator"], "exclusive_group": None},
]


def _dataset(items: list[Item], labels: np.ndarray) -> Dataset:
    Y = np.zeros((len(items), len(CODES)), dtype=np.int8)
    Y[:, 0] = labels
    Y[:, 2] = [1 if it.speaker_role == "facilitator" and i % 3 == 0 else 0 for i, it in enumerate(items)]
    return Dataset(np.arange(len(items)), items, np.array([it.document for it in items]), [c["id"] for c in CODES],
                   Y, np.ones(len(items), dtype=bool))


def _macro_f1(suggester, items, labels) -> float:
    decided = suggester.decide(suggester.score(items)[0])
    truth = ["discussion.agree" if y else "none" for y in labels]
    predicted = ["discussion.agree" if d else "discussion.build" if b else "none"
                 for d, b in zip(decided[:, 0], decided[:, 1])]
    rows = [i for i, it in enumerate(items) if it.speaker_role == "participant"]
    return label_metrics([truth[i] for i in rows], [predicted[i] for i in rows],
                         ["none", "discussion.agree"])["macro_f1"]


def test_an_echo_of_the_previous_turn_is_learned_from_the_conversation(monkeypatch):
    train_items, train_labels = _conversation(24)
    test_items, test_labels = _conversation(8, seed=11)
    with_context = train(_dataset(train_items, train_labels), CODES)
    monkeypatch.setattr(F, "CONTEXT_WEIGHT", 0.0)
    without = train(_dataset(train_items, train_labels), CODES)
    f1_without = _macro_f1(without, test_items, test_labels)
    monkeypatch.setattr(F, "CONTEXT_WEIGHT", 1.0)
    f1_with = _macro_f1(with_context, test_items, test_labels)
    assert f1_with > 0.8 and f1_with > f1_without + 0.1, (f1_with, f1_without)


def test_exclusive_sets_give_one_code_and_roles_are_respected():
    items, labels = _conversation(20)
    data = _dataset(items, labels)
    data.Y[::7, 1] = 1  # some "build" codes, so the set has three classes
    data.Y[::7, 0] = 0
    suggester = train(data, CODES)
    assert set(suggester.groups) == {"discussion"} and suggester.binary == [2]
    combined = suggester.score(items)[0]
    decided = suggester.decide(combined, min_score=0.0)
    assert decided[:, :2].sum(axis=1).max() <= 1  # never two codes of the set on one turn
    facilitator = np.array([it.speaker_role == "facilitator" for it in items])
    assert (combined[facilitator, :2] == 0).all() and (combined[~facilitator, 2] == 0).all()
    model = suggester.groups["discussion"]
    held_out = model.oof[~np.isnan(model.oof).any(axis=1)]
    assert np.allclose(held_out.sum(axis=1), 1.0)  # calibrated class probabilities, none included


def test_codes_without_roles_are_not_suggested_on_interviewer_turns():
    code = {"id": "x", "roles": None}
    assert in_scope(code, "participant") and in_scope(code, "") and not in_scope(code, "interviewer")
    assert in_scope({"id": "y", "roles": ["interviewer"]}, "interviewer")


def test_precision_threshold_reaches_the_target():
    rng = np.random.default_rng(0)
    p = rng.random(2000)
    y = (rng.random(2000) < p).astype(int)
    cut = precision_threshold(y, p, 0.8)
    assert y[p >= cut].mean() >= 0.8 and y[p >= cut - 0.05].mean() < 0.8 + 0.05
    assert precision_threshold(np.zeros(50, dtype=int), rng.random(50), 0.8) == float("inf")


def test_reliability_bands_and_brier():
    scores = np.array([0.05, 0.05, 0.95, 0.95])
    result = reliability(scores, np.array([0.0, 0.0, 1.0, 1.0]))
    assert result["brier"] == pytest.approx(0.0025)
    assert [b["observed"] for b in result["table"]] == [0.0, 1.0]


def test_evidence_is_whole_words_not_fragments():
    items = [Item("Our coaching cycles changed everything", "d", 1, speaker_role="participant"),
             Item("The coaching cycle is new", "d", 2, speaker_role="participant")] * 3
    f = Featurizer(min_df=1, max_df=1.0).fit(items)
    X = f.transform(items)
    weights = np.zeros(X.shape[1])
    weights[[f.index[n] for n in f.names if n.startswith("c:") and "oach" in n]] = 1.0
    shown = f.explain(items[0], None, X[0], weights, "support")
    assert shown and shown[0] == "coaching" and not any("…" in s or "<" in s for s in shown)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from qualcode import open_project
    from qualcode.codebook import load_codebook, sync_codebook
    from qualcode.coding import apply_batch
    from qualcode.ingest import IngestOptions, ingest_paths
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    path = tmp_path_factory.mktemp("demo") / "q.db"
    db = open_project(path)
    sync_codebook(db, load_codebook(root / "codebooks" / "lessons.yml"))
    ingest_paths(db, [], IngestOptions(manifest=root / "corpora" / "manifest.csv"))
    for sheet in sorted((root / "corpora" / "coding").glob("*.csv")):
        apply_batch(db, sheet, create_coders=True)
    db.conn.close()
    return path


def _copy(demo, tmp_path):
    import shutil

    shutil.copy(demo, tmp_path / "q.db")
    return str(tmp_path / "q.db")


def test_suggest_where_filter_and_operating_point(demo, tmp_path):
    import sqlite_utils

    path = _copy(demo, tmp_path)
    result = CliRunner().invoke(cli, ["suggest", "--db", path, "-w", "site=Bayview Elementary"])
    assert result.exit_code == 0, result.output
    assert "trained on 1,332 segments in " in result.output and "operating point: best held-out F1" in result.output
    db = sqlite_utils.Database(path)
    sites = {r["site"] for r in db.query(
        "SELECT DISTINCT d.site FROM suggestions x JOIN segments s ON s.id = x.segment_id JOIN documents d ON d.id = s.document_id")}
    assert sites == {"Bayview Elementary"}
    params = json.loads(db.execute("SELECT parameters FROM model_runs ORDER BY id DESC").fetchone()[0])
    low = [(r["code_id"], r["score"]) for r in db.query("SELECT code_id, score FROM suggestions")
           if r["score"] < params["thresholds"][r["code_id"]]]
    assert low == []  # nothing below the code's own operating point
    rows = db.execute("SELECT count(*) FROM suggestions").fetchone()[0]
    bad = CliRunner().invoke(cli, ["suggest", "--db", path, "-w", "site=Nowhere"])
    assert bad.exit_code == 1 and "no document matches site=Nowhere" in bad.output and "Traceback" not in bad.output
    assert db.execute("SELECT count(*) FROM suggestions").fetchone()[0] == rows


def test_evaluate_writes_held_out_predictions(demo, tmp_path):
    path = _copy(demo, tmp_path)
    out = tmp_path / "held-out.csv"
    result = CliRunner().invoke(cli, ["evaluate", "--db", path, "--test-where", "split=test", "--predictions", str(out)])
    assert result.exit_code == 0, result.output
    assert "calibration: Brier score" in result.output and "speaker role" in result.output
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert rows and set(rows[0]) == {"segment", "segment_id", "speaker_role", "group", "predicted", "score", "coded"}
    assert f"Wrote {len(rows):,} held-out decisions" in result.output
    assert all(r["speaker_role"] not in ("interviewer", "facilitator") for r in rows)
    assert {r["predicted"] for r in rows} - {""} <= {r["group"] for r in rows}


def test_the_model_as_a_coder_never_scores_what_it_learned_from(demo, tmp_path):
    """Changing a document's codings cannot change the model's held-out decisions on that document."""
    import sqlite_utils

    from qualcode.evaluate import held_out_decisions

    path = _copy(demo, tmp_path)
    db = sqlite_utils.Database(path)
    doc = "lakemont-04-coach-northside"
    before = held_out_decisions(db, [doc], codes=["support"])
    db.execute("DELETE FROM codings WHERE segment_id IN (SELECT id FROM segments WHERE document_id = ?)", [doc])
    db.conn.commit()
    after = held_out_decisions(db, [doc], codes=["support"])
    assert before == after and any(before.values())
    result = CliRunner().invoke(cli, ["agreement", "--db", path, "--model", "--coders", "Rosa Delgado",
                                      "--code", "support"])
    assert result.exit_code == 0, result.output
    assert "Rosa Delgado and model (held-out)" in result.output
    refused = CliRunner().invoke(cli, ["agreement", "--db", path, "--model"])
    assert refused.exit_code == 1 and "name the one coder" in refused.output


def test_an_accepted_suggestion_keeps_the_run_that_proposed_it(demo, tmp_path):
    """Later runs replace only pending suggestions: the accepted one, its decider and its model run stay."""
    import sqlite_utils

    from qualcode.suggest import suggest
    from qualcode.suggest.review import decide

    path = _copy(demo, tmp_path)
    db = sqlite_utils.Database(path)
    first = suggest(db, codes=["support"])
    row = db.execute("SELECT id, segment_id, code_id FROM suggestions WHERE model_run_id = ? ORDER BY score DESC",
                     [first.model_run_id]).fetchone()
    decision = decide(db, row[0], "Rosa Delgado", accept=True)
    assert decision.status == "accepted" and decision.coding_id is not None
    second = suggest(db, codes=["support"])
    assert second.model_run_id != first.model_run_id
    kept = db.execute("SELECT status, model_run_id FROM suggestions WHERE id = ?", [row[0]]).fetchone()
    assert kept == ("accepted", first.model_run_id)
    assert db.execute("SELECT count(*) FROM model_runs WHERE id = ?", [first.model_run_id]).fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM suggestions WHERE status = 'pending' AND model_run_id = ?",
                      [first.model_run_id]).fetchone()[0] == 0
