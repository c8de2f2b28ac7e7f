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


def _fold(data, codes, train_rows, test_rows, estimator):
    from .suggest import train

    train_data = data.subset(train_rows)
    test_data = data.subset(test_rows)
    suggester = train(train_data, codes, estimator)
    combined, P, L, _, _ = suggester.score(test_data.items)
    predictions = {"lexicon": L >= 0.5}
    if suggester.model is not None:
        predictions["combined"] = combined >= suggester.thresholds
        predictions["model"] = P >= suggester.model.thresholds
    else:
        predictions["combined"] = predictions["model"] = L >= 0.5
    keep = train_data.labelled
    texts = [it.text for it, k in zip(train_data.items, keep) if k]
    for name, balanced in (("baseline", False), ("baseline_balanced", True)):
        predictions[name] = _baseline(texts, train_data.Y[keep], [it.text for it in test_data.items], balanced)
    return test_data.Y, {k: np.asarray(v, dtype=int) for k, v in predictions.items()}, suggester.train_seconds


def evaluate(db: sqlite_utils.Database, codes: list[str] | None = None, coders: list[str] | None = None,
             folds: int = 5, test_where: dict[str, list[str]] | None = None, estimator: str = "auto") -> dict:
    """Per-code and macro precision, recall, F1 and kappa for every method."""
    from .suggest import load_dataset, model_codes

    start = time.perf_counter()
    code_rows = model_codes(db, codes)
    ids = [c["id"] for c in code_rows]
    data = load_dataset(db, ids, coders)
    rows = np.flatnonzero(data.labelled)
    if len(rows) == 0:
        raise CodingError("nothing to evaluate against: no document has been coded",
                          hint="code some documents, or import a coded spreadsheet")
    data = data.subset(rows)
    truth_parts, predicted_parts, seconds = [], {m: [] for m in METHODS}, []
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
    for train_rows, test_rows in splits:
        truth, predicted, secs = _fold(data, code_rows, train_rows, test_rows, estimator)
        truth_parts.append(truth)
        seconds.append(secs)
        for m in METHODS:
            predicted_parts[m].append(predicted[m])
    truth = np.vstack(truth_parts)
    result = {**mode, "segments": int(len(truth)), "documents": int(len(set(data.documents))),
              "codes": ids, "coders": coders or "all", "methods": {}}
    for m in METHODS:
        predicted = np.vstack(predicted_parts[m])
        per_code = {code: binary_metrics(truth[:, j], predicted[:, j]) for j, code in enumerate(ids)}
        result["methods"][m] = {
            "per_code": per_code,
            "macro": {k: float(np.mean([pc[k] for pc in per_code.values()])) for k in ("precision", "recall", "f1", "kappa")},
        }
    result["seconds"] = time.perf_counter() - start
    result["train_seconds_per_fold"] = float(np.mean(seconds))
    return result


def format_table(result: dict) -> str:
    """A readable summary: macro figures per method, then per-code F1."""
    methods = result["methods"]
    lines = [f"{result['mode']}: {result['segments']:,} segments, {result['documents']} documents, coders: "
             f"{result['coders'] if isinstance(result['coders'], str) else ', '.join(result['coders'])}", "",
             f"{'method':<17} {'precision':>9} {'recall':>7} {'F1':>6} {'kappa':>6}"]
    for m in METHODS:
        macro = methods[m]["macro"]
        lines.append(f"{m:<17} {macro['precision']:>9.3f} {macro['recall']:>7.3f} {macro['f1']:>6.3f} {macro['kappa']:>6.3f}")
    width = max(len(c) for c in result["codes"])
    lines += ["", f"{'code':<{width}} {'n':>5} " + " ".join(f"{m[:8]:>8}" for m in METHODS[:4]) + " balanced   (F1)"]
    for code in result["codes"]:
        support = methods["combined"]["per_code"][code]["support"]
        lines.append(f"{code:<{width}} {support:>5} " + " ".join(
            f"{methods[m]['per_code'][code]['f1']:>8.3f}" for m in METHODS))
    return "\n".join(lines)
