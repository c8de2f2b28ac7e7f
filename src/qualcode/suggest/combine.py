"""Merging the model's and the lexicon's scores into one score per segment and code.

With few codings the lexicon weighs more and with many the model does: the
weight of the model is n / (n + 20) for a code with n coded examples. Once a
code has enough examples (MIN_STACK positives), the mix is learned instead — a
small logistic regression per code on out-of-fold scores (the model's, the
lexicon's, and the model's for the code's lesson, which has more examples to
learn from) — so the combined score is itself a calibrated probability.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from .model import best_threshold

LEXICON_PRIOR = 20
MIN_STACK = 10


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


class Combiner:
    def __init__(self, positives: np.ndarray, has_lexicon: bool) -> None:
        n = positives.astype(float)
        self.weights = n / (n + LEXICON_PRIOR) if has_lexicon else np.ones_like(n)
        self.stackers: list[LogisticRegression | None] = [None] * len(n)
        self.positives = positives
        self.thresholds = np.full(len(n), 0.5)

    def _features(self, j: int, P: np.ndarray, L: np.ndarray, lesson: np.ndarray) -> np.ndarray:
        return np.column_stack([_logit(P[:, j]), L[:, j], _logit(lesson[:, j])])

    def combine(self, P: np.ndarray, L: np.ndarray, lesson: np.ndarray) -> np.ndarray:
        out = self.weights * P + (1 - self.weights) * L
        for j, stacker in enumerate(self.stackers):
            if stacker is not None:
                out[:, j] = stacker.predict_proba(self._features(j, P, L, lesson))[:, 1]
        return out

    def fit(self, P: np.ndarray, L: np.ndarray, lesson: np.ndarray, Y: np.ndarray) -> "Combiner":
        """Learn the mix and the decision thresholds from out-of-fold scores (NaN rows are skipped)."""
        combined = self.combine(np.nan_to_num(P), L, np.nan_to_num(lesson))
        for j in range(Y.shape[1]):
            # Rows without an out-of-fold score for this code (a code nobody used has none)
            # are left out of its fit; a code with no model at all is thresholded on the lexicon.
            ok = ~np.isnan(P[:, j]) & ~np.isnan(lesson[:, j])
            if not ok.any():
                self.thresholds[j] = best_threshold(Y[:, j], combined[:, j])
                continue
            y = Y[ok, j]
            if y.sum() >= MIN_STACK and y.sum() < len(y):
                self.stackers[j] = LogisticRegression(C=1.0).fit(self._features(j, P[ok], L[ok], lesson[ok]), y)
                combined[:, j] = self.stackers[j].predict_proba(
                    self._features(j, np.nan_to_num(P), L, np.nan_to_num(lesson)))[:, 1]
            # A per-code cut on out-of-fold scores. (A single cut pooled over the calibrated
            # codes measured worse on the sample corpus: macro-F1 0.400 against 0.412.)
            self.thresholds[j] = best_threshold(Y[ok, j], combined[ok, j])
        return self


#: The share of the first stage's held-out log loss the second must stay under to be used.
GAIN_NEEDED = 0.97


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


#: A dozen features need no more rows than this to fit; above it, a fixed random sample is used.
MAX_SECOND_STAGE_ROWS = 50_000


def _sample(rows: np.ndarray) -> np.ndarray:
    if len(rows) <= MAX_SECOND_STAGE_ROWS:
        return rows
    return np.sort(np.random.default_rng(0).choice(rows, MAX_SECOND_STAGE_ROWS, replace=False))


class PreviousCodes:
    """The previous turn's codes as evidence for this turn's: a second stage.

    Many moves are defined by what they follow (an answer follows a probe, an
    agreement follows another participant's point). Gold codes of the previous
    turn are unknown where suggestions are needed, so both in training and in
    scoring this stage reads the first stage's scores for the previous turn —
    held-out scores in training, so it learns how far they can be trusted. Per
    code, a small logistic regression on the turn's own score and the previous
    turn's scores for every code, kept only for the codes whose held-out log loss
    it lowers by 3% or more; its own held-out scores (grouped by document) then
    choose those codes' operating points, as the first stage's do.
    """

    def __init__(self, n_codes: int) -> None:
        self.models: list[LogisticRegression | None] = [None] * n_codes

    @staticmethod
    def previous(S: np.ndarray, before: np.ndarray) -> np.ndarray:
        """The previous turn's scores for every code, as logits (0 where there is none)."""
        previous = np.zeros_like(S)
        ok = before >= 0
        previous[ok] = S[before[ok]]
        return _logit(previous)

    @staticmethod
    def features(S: np.ndarray, previous: np.ndarray, j: int) -> np.ndarray:
        return np.column_stack([_logit(S[:, j]), previous])

    def fit(self, S: np.ndarray, before: np.ndarray, Y: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """``S``: held-out first-stage scores (NaN out of scope); returns this stage's held-out scores."""
        from sklearn.model_selection import GroupKFold

        filled = np.nan_to_num(S)
        previous = self.previous(filled, before)
        out = S.copy()
        for j in range(S.shape[1]):
            rows = np.flatnonzero(~np.isnan(S[:, j]))
            y = Y[rows, j]
            folds = min(3, len(np.unique(groups[rows])))
            if y.sum() < MIN_STACK or y.sum() == len(y) or folds < 2:
                continue
            X = self.features(filled, previous, j)[rows]
            held = np.full(len(rows), np.nan)
            for train, test in GroupKFold(n_splits=folds).split(X, y, groups[rows]):
                train = _sample(train)
                if 0 < y[train].sum() < len(train):
                    held[test] = LogisticRegression(C=1.0, max_iter=1000).fit(X[train], y[train]).predict_proba(X[test])[:, 1]
            if np.isnan(held).any() or _log_loss(y, held) > GAIN_NEEDED * _log_loss(y, S[rows, j]):
                continue  # kept only for a code whose held-out scores it makes better
            every = _sample(np.arange(len(y)))
            self.models[j] = LogisticRegression(C=1.0, max_iter=1000).fit(X[every], y[every])
            out[rows, j] = held
        return out

    def apply(self, S: np.ndarray, before: np.ndarray) -> np.ndarray:
        out = S.copy()
        previous = self.previous(S, before)
        for j, model in enumerate(self.models):
            if model is not None:
                out[:, j] = model.predict_proba(self.features(S, previous, j))[:, 1]
        return out
