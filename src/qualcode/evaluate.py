"""How good are the suggestions? Measured against human coders, on documents the model never saw.

Cross-validation is grouped by document: no interview has turns in both the
training and the test set, since neighbouring turns share words and would
flatter the model. A held-out mode trains on one set of documents and tests on
another chosen by attribute (``split=test``). Besides the combined suggester,
the lexicon alone and a plain baseline (TF-IDF and logistic regression on the
segment text alone, threshold 0.5; and the same with balanced class weights,
a fairer rival, since the plain one rarely predicts a rare code at all) are scored on the same folds, so the gain
is visible.
"""

from __future__ import annotations

import time

import numpy as np
import sqlite_utils
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import cohen_kappa_score
from sklearn.model_selection import GroupKFold

from .coding import CodingError
from .queries import where_sql

METHODS = ("combined", "model", "lexicon", "baseline", "baseline_balanced")


def binary_metrics(y: np.ndarray, predicted: np.ndarray) -> dict:
    y, predicted = np.asarray(y).astype(int), np.asarray(predicted).astype(int)
    tp = int((y & predicted).sum())
    fp = int(((1 - y) & predicted).sum())
    fn = int((y & (1 - predicted)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    if len(set(y)) < 2 and len(set(predicted)) < 2:
        kappa = 1.0 if (y == predicted).all() else 0.0
    else:
        kappa = float(cohen_kappa_score(y, predicted))
    return {"precision": precision, "recall": recall, "f1": f1, "kappa": kappa,
            "support": int(y.sum()), "predicted": int(predicted.sum())}


def _baseline(train_texts: list[str], Y_train: np.ndarray, test_texts: list[str], balanced: bool) -> np.ndarray:
    vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=2)
    X_train = vectorizer.fit_transform(train_texts)
    X_test = vectorizer.transform(test_texts)
    out = np.zeros((len(test_texts), Y_train.shape[1]), dtype=int)
    for j in range(Y_train.shape[1]):
        if 0 < Y_train[:, j].sum() < len(Y_train):
            model = LogisticRegression(max_iter=1000, class_weight="balanced" if balanced else None)
            out[:, j] = model.fit(X_train, Y_train[:, j]).predict(X_test)
    return out


def _fold(data, codes, train_rows, test_rows, estimator, precision=None):
    from .suggest import train

    train_data = data.subset(train_rows)
    test_data = data.subset(test_rows)
    suggester = train(train_data, codes, estimator, precision)
    combined, P, L, _, _ = suggester.score(test_data.items)
    scope = suggester.scope_mask(test_data.items)
    predictions = {"lexicon": suggester.decide(L * scope, min_score=0.5)}
    if suggester.featurizer is not None:
        predictions["combined"] = suggester.decide(combined)
        predictions["model"] = suggester.decide(P * scope)
    else:
        predictions["combined"] = predictions["model"] = predictions["lexicon"]
    keep = train_data.labelled
    texts = [it.text for it, k in zip(train_data.items, keep) if k]
    for name, balanced in (("baseline", False), ("baseline_balanced", True)):
        predictions[name] = _baseline(texts, train_data.Y[keep], [it.text for it in test_data.items], balanced)
    return (test_data.Y, {k: np.asarray(v, dtype=int) for k, v in predictions.items()}, suggester.train_seconds,
            combined if suggester.featurizer is not None else L * scope)


#: The class of a segment that has none of an exclusive set's codes.
NONE = "none"


def label_metrics(truth: list[str], predicted: list[str], classes: list[str]) -> dict:
    """A single-label task ("none" is a class): per class precision, recall and F1, macro-F1 over
    every class, accuracy and Cohen's kappa."""
    truth_a, predicted_a = np.asarray(truth, dtype=object), np.asarray(predicted, dtype=object)
    per_class = {}
    for c in classes:
        per_class[c] = binary_metrics(truth_a == c, predicted_a == c)
        per_class[c].pop("kappa")
    kappa = float(cohen_kappa_score(truth_a, predicted_a)) if len(set(truth) | set(predicted)) > 1 else 1.0
    return {"segments": len(truth), "per_class": per_class,
            "macro_f1": float(np.mean([m["f1"] for m in per_class.values()])) if classes else 0.0,
            "accuracy": float(np.mean(truth_a == predicted_a)) if len(truth) else 0.0, "kappa": kappa}


def group_labels(Y: np.ndarray, decided: np.ndarray, columns: list[int], codes: list[str]) -> tuple[list[str], list[str]]:
    """Each segment's code of an exclusive set ("none" if it has none), in truth and as predicted.
    A segment a coder gave two codes of the set counts for the first, as the model is trained."""
    def label(row: np.ndarray) -> str:
        hits = [codes[j] for j in columns if row[j]]
        return hits[0] if hits else NONE

    return [label(r) for r in Y], [label(r) for r in decided]



def reliability(scores: np.ndarray, truth: np.ndarray, bins: int = 10) -> dict:
    """Do scores mean what they say? Per score band, how often the code really applied; and the Brier score."""
    table = []
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(scores, edges[1:-1]), 0, bins - 1)
    for b in range(bins):
        inside = which == b
        if inside.any():
            table.append({"from": float(edges[b]), "to": float(edges[b + 1]), "pairs": int(inside.sum()),
                          "mean_score": float(scores[inside].mean()), "observed": float(truth[inside].mean())})
    return {"brier": float(np.mean((scores - truth) ** 2)) if len(scores) else None, "pairs": int(len(scores)),
            "table": table}


def evaluate(db: sqlite_utils.Database, codes: list[str] | None = None, coders: list[str] | None = None,
             folds: int = 5, test_where: dict[str, list[str]] | None = None, estimator: str = "auto",
             precision: float | None = None, keep_predictions: bool = False) -> dict:
    """Per-code and macro precision, recall, F1 and kappa for every method; exclusive sets as
    single-label tasks; figures per speaker role; the reliability of the scores.

    ``keep_predictions`` adds every held-out decision at the operating point (``predictions``),
    so a study can audit them."""
    from .suggest import exclusive_columns, load_dataset, model_codes, operating_point_name, scope_mask

    start = time.perf_counter()
    code_rows = model_codes(db, codes)
    ids = [c["id"] for c in code_rows]
    data = load_dataset(db, ids, coders)
    rows = np.flatnonzero(data.labelled)
    if len(rows) == 0:
        raise CodingError("nothing to evaluate against: no document has been coded",
                          hint="code some documents, or import a coded spreadsheet")
    data = data.subset(rows)
    if test_where:
        clauses, params = where_sql(test_where)
        test_docs = {r["id"] for r in db.query(f"SELECT d.id FROM documents d WHERE {' AND '.join(clauses)}", params)}
        is_test = np.array([d in test_docs for d in data.documents])
        if not is_test.any() or is_test.all():
            raise CodingError("the test set is empty" if not is_test.any() else "no documents are left to train on",
                              hint="check the --test-where attribute and value")
        splits = [(np.flatnonzero(~is_test), np.flatnonzero(is_test))]
        mode = {"mode": "held-out", "test_where": test_where, "test_documents": len(test_docs & set(data.documents))}
    else:
        n_docs = len(set(data.documents))
        if n_docs < 2:
            raise CodingError("cross-validation needs at least two coded documents")
        k = min(folds, n_docs)
        splits = list(GroupKFold(n_splits=k).split(data.items, groups=data.documents))
        mode = {"mode": "grouped cross-validation", "folds": k}
    order, truth_parts, score_parts, seconds = [], [], [], []
    predicted_parts: dict[str, list] = {m: [] for m in METHODS}
    for train_rows, test_rows in splits:
        truth, predicted, secs, scores = _fold(data, code_rows, train_rows, test_rows, estimator, precision)
        order.append(test_rows)
        truth_parts.append(truth)
        score_parts.append(scores)
        seconds.append(secs)
        for m in METHODS:
            predicted_parts[m].append(predicted[m])
    tested = np.concatenate(order)
    truth = np.vstack(truth_parts)
    scores = np.vstack(score_parts)
    items = [data.items[i] for i in tested]
    scope = scope_mask(code_rows, items)
    result = {**mode, "segments": int(len(truth)), "documents": int(len(set(data.documents))),
              "codes": ids, "coders": coders or "all", "operating_point":
              operating_point_name(precision), "methods": {}}
    decided = {}
    for m in METHODS:
        predicted = np.vstack(predicted_parts[m])
        decided[m] = predicted
        per_code = {code: binary_metrics(truth[:, j], predicted[:, j]) for j, code in enumerate(ids)}
        result["methods"][m] = {
            "per_code": per_code,
            "macro": {k: float(np.mean([pc[k] for pc in per_code.values()])) for k in ("precision", "recall", "f1", "kappa")},
        }
    groups = exclusive_columns(code_rows)
    result["groups"] = {}
    for group, columns in groups.items():
        member = scope[:, columns].any(axis=1)
        classes = [NONE] + [ids[j] for j in columns]
        entry = {"codes": classes[1:], "methods": {}}
        for m in ("combined", "lexicon", "baseline_balanced"):
            t, p = group_labels(truth[member], decided[m][member], columns, ids)
            entry["methods"][m] = label_metrics(t, p, classes)
        result["groups"][group] = entry
    roles = sorted({it.speaker_role for it in items})
    role_of = np.array([it.speaker_role for it in items], dtype=object)
    result["roles"] = {}
    for role in roles:
        here = role_of == role
        per_code = {ids[j]: binary_metrics(truth[here, j], decided["combined"][here, j])
                    for j in range(len(ids)) if scope[here, j].any()}
        entry = {"segments": int(here.sum()), "codes": len(per_code),
                 "macro_f1": float(np.mean([v["f1"] for v in per_code.values()])) if per_code else None,
                 "macro_kappa": float(np.mean([v["kappa"] for v in per_code.values()])) if per_code else None,
                 "groups": {}}
        for group, columns in groups.items():
            member = here & scope[:, columns].any(axis=1)
            if member.any():
                t, p = group_labels(truth[member], decided["combined"][member], columns, ids)
                metrics = label_metrics(t, p, [NONE] + [ids[j] for j in columns])
                entry["groups"][group] = {"macro_f1": metrics["macro_f1"], "kappa": metrics["kappa"],
                                          "segments": metrics["segments"]}
        result["roles"][role or "(no speaker)"] = entry
    pairs = scope & ~np.isnan(scores)
    result["calibration"] = reliability(scores[pairs], truth[pairs].astype(float))
    if keep_predictions:
        result["predictions"] = predictions_rows(items, data.segment_ids[tested], truth, decided["combined"],
                                                 scores, scope, code_rows, groups)
    result["seconds"] = time.perf_counter() - start
    result["train_seconds_per_fold"] = float(np.mean(seconds))
    return result


def predictions_rows(items, segment_ids, truth, decided, scores, scope, code_rows, groups) -> list[dict]:
    """One row per segment and exclusive set (or co-occurring code) in scope: the decision at the
    operating point, its score, and what the coders decided."""
    ids = [c["id"] for c in code_rows]
    grouped = {j for cols in groups.values() for j in cols}
    out = []
    for i, item in enumerate(items):
        ref = {"segment": f"{item.document}:{item.seq}", "segment_id": int(segment_ids[i]),
               "speaker_role": item.speaker_role}
        for group, columns in groups.items():
            if not scope[i, columns].any():
                continue
            chosen = [j for j in columns if decided[i, j]]
            coded = [ids[j] for j in columns if truth[i, j]]
            best = max(columns, key=lambda j: scores[i, j])
            out.append({**ref, "group": group, "predicted": ids[chosen[0]] if chosen else "",
                        "score": round(float(scores[i, chosen[0] if chosen else best]), 4),
                        "coded": coded[0] if coded else ""})
        for j, code in enumerate(ids):
            if j in grouped or not scope[i, j]:
                continue
            out.append({**ref, "group": code, "predicted": code if decided[i, j] else "",
                        "score": round(float(scores[i, j]), 4), "coded": code if truth[i, j] else ""})
    return out


def held_out_decisions(db: sqlite_utils.Database, documents: list[str], codes: list[str] | None = None,
                       folds: int = 5, estimator: str = "auto") -> dict[int, set[str]]:
    """The model as a coder: what it decides for each segment of ``documents``, every document
    scored by a model trained without it (grouped folds over all coded documents)."""
    from .suggest import load_dataset, model_codes

    code_rows = model_codes(db, codes)
    ids = [c["id"] for c in code_rows]
    data = load_dataset(db, ids)
    wanted = set(documents)
    rows = np.flatnonzero(data.labelled | np.array([d in wanted for d in data.documents]))
    data = data.subset(rows)
    n_docs = len(set(data.documents))
    if n_docs < 2:
        raise CodingError("the model needs at least two coded documents to be scored on documents it never saw")
    out: dict[int, set[str]] = {}
    for train_rows, test_rows in GroupKFold(n_splits=min(folds, n_docs)).split(data.items, groups=data.documents):
        test_rows = np.array([r for r in test_rows if data.documents[r] in wanted], dtype=int)
        if len(test_rows) == 0:
            continue
        _, predicted, _, _ = _fold(data, code_rows, train_rows[data.labelled[train_rows]], test_rows, estimator)
        combined = predicted["combined"]
        for k, r in enumerate(test_rows):
            out[int(data.segment_ids[r])] = {ids[j] for j in np.flatnonzero(combined[k])}
    return out


PREDICTION_COLUMNS = ["segment", "segment_id", "speaker_role", "group", "predicted", "score", "coded"]


def format_table(result: dict) -> str:
    """A readable summary: macro figures per method, exclusive sets, roles, calibration, per-code F1."""
    methods = result["methods"]
    lines = [f"{result['mode']}: {result['segments']:,} segments, {result['documents']} documents, coders: "
             f"{result['coders'] if isinstance(result['coders'], str) else ', '.join(result['coders'])}; "
             f"operating point: {result['operating_point']}", "",
             f"{'method':<17} {'precision':>9} {'recall':>7} {'F1':>6} {'kappa':>6}"]
    for m in METHODS:
        macro = methods[m]["macro"]
        lines.append(f"{m:<17} {macro['precision']:>9.3f} {macro['recall']:>7.3f} {macro['f1']:>6.3f} {macro['kappa']:>6.3f}")
    for group, entry in result.get("groups", {}).items():
        best = entry["methods"]["combined"]
        lines += ["", f"exclusive set {group} ({best['segments']:,} segments, one label each, none included)",
                  f"{'method':<17} {'macro-F1':>8} {'kappa':>6} {'accuracy':>8}"]
        for m, metrics in entry["methods"].items():
            lines.append(f"{m:<17} {metrics['macro_f1']:>8.3f} {metrics['kappa']:>6.3f} {metrics['accuracy']:>8.3f}")
        lines.append("  " + "  ".join(f"{c} F1 {v['f1']:.3f}" for c, v in best["per_class"].items()))
    if result.get("roles"):
        lines += ["", f"{'speaker role':<17} {'segments':>8} {'codes':>5} {'macro-F1':>8} {'kappa':>6}"]
        for role, entry in result["roles"].items():
            f1 = "-" if entry["macro_f1"] is None else f"{entry['macro_f1']:.3f}"
            kappa = "-" if entry["macro_kappa"] is None else f"{entry['macro_kappa']:.3f}"
            sets = "".join(f"; {g} macro-F1 {v['macro_f1']:.3f}" for g, v in entry["groups"].items())
            lines.append(f"{role:<17} {entry['segments']:>8,} {entry['codes']:>5} {f1:>8} {kappa:>6}{sets}")
    cal = result.get("calibration")
    if cal and cal["pairs"]:
        lines += ["", f"calibration: Brier score {cal['brier']:.4f} over {cal['pairs']:,} segment-code pairs",
                  f"{'score':<9} {'pairs':>7} {'mean score':>10} {'observed':>8}"]
        for band in cal["table"]:
            lines.append(f"{band['from']:.1f}-{band['to']:.1f}   {band['pairs']:>7,} {band['mean_score']:>10.3f} "
                         f"{band['observed']:>8.3f}")
    width = max(len(c) for c in result["codes"])
    lines += ["", f"{'code':<{width}} {'n':>5} " + " ".join(f"{m[:8]:>8}" for m in METHODS[:4]) + " balanced   (F1)"]
    for code in result["codes"]:
        support = methods["combined"]["per_code"][code]["support"]
        lines.append(f"{code:<{width}} {support:>5} " + " ".join(
            f"{methods[m]['per_code'][code]['f1']:>8.3f}" for m in METHODS))
    return "\n".join(lines)
