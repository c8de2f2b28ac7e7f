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


#: Up to this many training segments logistic regression, above it SGD.
LOGREG_ROWS = 50_000


def estimator_kind(estimator: str, n_rows: int) -> str:
    """``estimator`` itself, or for "auto" the learner for a training set of ``n_rows``.

    Measured on this machine (bench/suggest.py): logistic regression is more accurate on
    small projects, SGD trains 200,000 segments an order of magnitude faster."""
    if estimator != "auto":
        return estimator
    return "logreg" if n_rows <= LOGREG_ROWS else "sgd"


def make_estimator(kind: str, n_rows: int):
    if kind == "logreg":
        return LogisticRegression(C=30.0, solver="liblinear", max_iter=200, random_state=0)
    if kind == "sgd":
        return SGDClassifier(loss="log_loss", alpha=1e-6, max_iter=5, tol=None, random_state=0)
    raise ValueError(f"unknown estimator {kind}")


def precision_threshold(y: np.ndarray, p: np.ndarray, target: float, min_predicted: int = 5) -> float:
    """The lowest score cut whose held-out precision is at least ``target`` (inf when none is).

    Precision is measured over everything at or above the cut, so the cut
    is the point from which a team can trust the suggestions that far."""
    order = np.argsort(-p)
    ys, ps = y[order], p[order]
    precision = np.cumsum(ys) / np.arange(1, len(ys) + 1)
    ok = np.flatnonzero((precision >= target) & (np.arange(1, len(ys) + 1) >= min_predicted))
    return float(ps[ok[-1]]) if len(ok) else float("inf")


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
        return estimator_kind(self.estimator, n_rows)

    def fit(self, X: sp.csr_matrix, Y: np.ndarray, groups: np.ndarray, weights: np.ndarray | None = None,
            masks: np.ndarray | None = None) -> "CodeModel":
        """``Y`` is (segments × codes) 0/1; ``weights`` lets explicit rejections count more;
        ``masks`` (segments × codes) keeps each code to the segments in its role scope."""
        start = time.perf_counter()
        kind = self._kind(X.shape[0])
        folds = self.folds if kind == "logreg" else 2
        self.models, self.calibrators = [], []
        self.thresholds = np.full(len(self.codes), 0.5)
        self.positives = Y.sum(axis=0)
        self.oof = np.full(Y.shape, np.nan)
        everything = np.arange(len(Y))
        for j in range(len(self.codes)):
            if masks is None or masks[:, j].all():
                # No copy of the matrix when a code's scope is every row (the usual case).
                self._fit_code(j, X, Y[:, j], groups, weights, kind, folds, everything)
                continue
            scope = np.flatnonzero(masks[:, j])
            self._fit_code(j, X[scope], Y[scope, j], groups[scope], None if weights is None else weights[scope],
                           kind, folds, scope)
        self.seconds = time.perf_counter() - start
        return self

    def _fit_code(self, j: int, X, y, groups, weights, kind: str, folds: int, scope: np.ndarray) -> None:
        if y.sum() == 0 or y.sum() == len(y):
            self.models.append(None)
            self.calibrators.append(None)
            return
        oof = np.full(len(y), np.nan)
        fold_models = []
        folds = min(folds, len(np.unique(groups)))
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
            self.oof[scope[mask], j] = calibrator.predict_proba(oof[mask].reshape(-1, 1))[:, 1]
            self.thresholds[j] = best_threshold(y[mask], self.oof[scope[mask], j])
        else:
            self.calibrators.append(None)

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


def softmax(Z: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    Z = Z / temperature
    Z = Z - Z.max(axis=1, keepdims=True)
    E = np.exp(Z)
    return E / E.sum(axis=1, keepdims=True)


def fit_temperature(Z: np.ndarray, y: np.ndarray) -> float:
    """The one temperature that makes held-out softmax scores honest probabilities (least log loss)."""
    from scipy.optimize import minimize_scalar

    def loss(log_t: float) -> float:
        P = softmax(Z, float(np.exp(log_t)))
        return float(-np.mean(np.log(np.clip(P[np.arange(len(y)), y], 1e-12, None))))

    return float(np.exp(minimize_scalar(loss, bounds=(-3, 3), method="bounded").x))


@dataclass
class GroupModel:
    """One multi-class model for a group of mutually exclusive codes, with "none" as a class.

    Scored one by one, two codes of such a set can both pass their thresholds and
    "none" is never learned; here the classes compete, the most probable one is the
    model's own decision, and a temperature fitted on out-of-fold scores (grouped by
    document) makes the class probabilities calibrated.
    """

    group: str
    codes: list[str]
    estimator: str = "auto"
    folds: int = 3
    model: object = None
    temperature: float = 1.0
    oof: np.ndarray | None = None  # rows × (1 + codes) calibrated held-out probabilities; NaN where none
    positives: np.ndarray | None = None
    present: np.ndarray | None = None  # which classes (none first) the training data holds

    def _estimator(self, n_rows: int):
        if estimator_kind(self.estimator, n_rows) == "logreg":
            # newton-cg: the same fit as lbfgs (macro-F1 0.901 against 0.902 on the facilitation
            # corpus, bench/learning.py) in a quarter of the time, as lbfgs needs hundreds of steps
            # on tens of thousands of sparse features.
            return LogisticRegression(C=10.0, solver="newton-cg", max_iter=100)
        return SGDClassifier(loss="log_loss", alpha=1e-6, max_iter=5, tol=None, random_state=0)

    def _scores(self, est, X: sp.csr_matrix) -> np.ndarray:
        """Raw class scores in the group's full class order (absent classes get -inf)."""
        out = np.full((X.shape[0], len(self.codes) + 1), -np.inf)
        raw = est.decision_function(X)
        if raw.ndim == 1:  # two classes: sklearn gives one column for the second
            raw = np.column_stack([-raw / 2, raw / 2])
        out[:, est.classes_] = raw
        return out

    def fit(self, X: sp.csr_matrix, y: np.ndarray, groups: np.ndarray, weights: np.ndarray | None = None) -> "GroupModel":
        """``y``: the class of each row, 0 for none and j + 1 for ``codes[j]``."""
        self.positives = np.bincount(y, minlength=len(self.codes) + 1)[1:]
        self.present = np.bincount(y, minlength=len(self.codes) + 1) > 0
        self.oof = np.full((len(y), len(self.codes) + 1), np.nan)
        if self.present.sum() < 2:
            return self
        folds = min(self.folds, len(np.unique(groups)))
        Z = np.full(self.oof.shape, np.nan)
        if folds >= 2:
            for train, test in GroupKFold(n_splits=folds).split(X, y, groups):
                if len(np.unique(y[train])) >= 2:
                    est = self._estimator(len(train))
                    est.fit(X[train], y[train], sample_weight=None if weights is None else weights[train])
                    Z[test] = self._scores(est, X[test])
        self.model = self._estimator(len(y)).fit(X, y, sample_weight=weights)
        done = ~np.isnan(Z).any(axis=1)
        if done.sum() > 10:
            Zd = np.where(np.isinf(Z[done]), -1e4, Z[done])
            self.temperature = fit_temperature(Zd, y[done])
            self.oof[done] = softmax(Zd, self.temperature)
        return self

    def predict_proba(self, X: sp.csr_matrix) -> np.ndarray:
        """Calibrated probabilities, none first; all "none" when the group had nothing to learn."""
        if self.model is None:
            out = np.zeros((X.shape[0], len(self.codes) + 1))
            out[:, 0] = 1.0
            return out
        Z = self._scores(self.model, X)
        return softmax(np.where(np.isinf(Z), -1e4, Z), self.temperature)

    def weights_for(self, j: int) -> np.ndarray:
        """Feature weights for ``codes[j]`` against "none": what evidence explains."""
        est = self.model
        coef = est.coef_
        classes = list(est.classes_)
        if coef.shape[0] == 1:  # binary
            sign = 1.0 if classes[1] == j + 1 else -1.0
            return sign * coef[0]
        if j + 1 not in classes:
            return np.zeros(coef.shape[1])
        row = coef[classes.index(j + 1)]
        return row - coef[classes.index(0)] if 0 in classes else row
