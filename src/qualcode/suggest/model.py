"""The learned model: one linear classifier per code, with calibrated scores.

One decision per code, since a segment can carry several codes. Each code's
raw scores are calibrated (Platt scaling on out-of-fold scores, grouped by
document so no interview is scored by a model that saw it) and get a decision
threshold chosen on the same out-of-fold scores, which is what lets codes with
few examples be suggested at all: their calibrated probabilities are honest
but rarely pass 0.5.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.model_selection import GroupKFold

ESTIMATORS = ("logreg", "sgd")


def make_estimator(kind: str, n_rows: int):
    if kind == "logreg":
        return LogisticRegression(C=30.0, solver="liblinear", max_iter=200)
    if kind == "sgd":
        return SGDClassifier(loss="log_loss", alpha=1e-6, max_iter=5, tol=None, random_state=0)
    raise ValueError(f"unknown estimator {kind}")


def best_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The score cut that maximises F1 on held-out scores (0.5 when there are no positives)."""
    if y.sum() == 0:
        return 0.5
    order = np.argsort(-p)
    ys, ps = y[order], p[order]
    tp = np.cumsum(ys)
    precision = tp / np.arange(1, len(ys) + 1)
    recall = tp / ys.sum()
    f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall + 1e-12), 0)
    i = int(np.argmax(f1))
    return float(ps[i]) if i < len(ps) else 0.5


@dataclass
class CodeModel:
    codes: list[str]
    estimator: str = "auto"
    folds: int = 3
    models: list = field(default_factory=list)
    calibrators: list = field(default_factory=list)
    thresholds: np.ndarray | None = None
    positives: np.ndarray | None = None
    oof: np.ndarray | None = None  # calibrated out-of-fold probabilities (NaN where none)
    seconds: float = 0.0

    def _kind(self, n_rows: int) -> str:
        # Measured on this machine (bench/suggest.py): liblinear is more accurate on small
        # projects, SGD trains 200,000 segments an order of magnitude faster.
        if self.estimator != "auto":
            return self.estimator
        return "logreg" if n_rows <= 50_000 else "sgd"

    def fit(self, X: sp.csr_matrix, Y: np.ndarray, groups: np.ndarray, weights: np.ndarray | None = None) -> "CodeModel":
        """``Y`` is (segments × codes) 0/1; ``weights`` lets explicit rejections count more."""
        start = time.perf_counter()
        kind = self._kind(X.shape[0])
        n_groups = len(np.unique(groups))
        folds = min(self.folds if kind == "logreg" else 2, n_groups)
        self.models, self.calibrators = [], []
        self.thresholds = np.full(len(self.codes), 0.5)
        self.positives = Y.sum(axis=0)
        self.oof = np.full(Y.shape, np.nan)
        for j in range(len(self.codes)):
            y = Y[:, j]
            if y.sum() == 0 or y.sum() == len(y):
                self.models.append(None)
                self.calibrators.append(None)
                continue
            oof = np.full(len(y), np.nan)
            fold_models = []
            if folds >= 2:
                for train, test in GroupKFold(n_splits=folds).split(X, y, groups):
                    if 0 < y[train].sum() < len(train):
                        est = make_estimator(kind, len(train))
                        est.fit(X[train], y[train], sample_weight=None if weights is None else weights[train])
                        oof[test] = est.decision_function(X[test])
                        fold_models.append(est)
            if kind == "sgd" and len(fold_models) == folds:
                # On large projects the fold models are averaged instead of training
                # once more on everything: the same quality, a fraction of the time.
                est = fold_models[0]
                est.coef_ = np.mean([m.coef_ for m in fold_models], axis=0)
                est.intercept_ = np.mean([m.intercept_ for m in fold_models], axis=0)
            else:
                est = make_estimator(kind, len(y))
                est.fit(X, y, sample_weight=weights)
            self.models.append(est)
            mask = ~np.isnan(oof)
            if mask.sum() > 10 and 0 < y[mask].sum() < mask.sum():
                calibrator = LogisticRegression(C=1e4).fit(oof[mask].reshape(-1, 1), y[mask])
                self.calibrators.append(calibrator)
                self.oof[mask, j] = calibrator.predict_proba(oof[mask].reshape(-1, 1))[:, 1]
                self.thresholds[j] = best_threshold(y[mask], self.oof[mask, j])
            else:
                self.calibrators.append(None)
        self.seconds = time.perf_counter() - start
        return self

    def decision(self, X: sp.csr_matrix) -> np.ndarray:
        """Raw scores, one column per code (-inf for codes with nothing to learn from)."""
        W = np.zeros((X.shape[1], len(self.codes)), dtype=np.float32)
        b = np.full(len(self.codes), -np.inf, dtype=np.float32)
        for j, est in enumerate(self.models):
            if est is not None:
                W[:, j] = est.coef_.ravel()
                b[j] = est.intercept_[0]
        return np.asarray(X @ W) + b

    def predict_proba(self, X: sp.csr_matrix) -> np.ndarray:
        raw = self.decision(X)
        out = np.zeros_like(raw, dtype=float)
        for j, calibrator in enumerate(self.calibrators):
            if self.models[j] is None:
                continue
            if calibrator is not None:
                a, c = calibrator.coef_[0, 0], calibrator.intercept_[0]
                out[:, j] = 1 / (1 + np.exp(-(a * raw[:, j] + c)))
            else:
                out[:, j] = 1 / (1 + np.exp(-raw[:, j]))
        return out

    def evidence(self, x: sp.csr_matrix, j: int, names: list[str], top: int = 5) -> list[str]:
        """The features of one segment that pushed code ``j``'s score up most."""
        est = self.models[j]
        if est is None:
            return []
        row = x.tocsr()
        contributions = row.data * est.coef_.ravel()[row.indices]
        order = np.argsort(-contributions)[:top]
        return [names[row.indices[i]] for i in order if contributions[i] > 0]
