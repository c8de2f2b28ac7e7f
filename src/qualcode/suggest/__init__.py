"""Suggestions: the lexicon and the learned model, combined, with their evidence.

Every suggestion row names its method and the model run that made it, so a
coder (and a reviewer of the study) can see why a code was suggested and by
what. Human codings are the training data; rejected suggestions are training
data too, as explicit, double-weighted negatives.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field

import numpy as np
import sqlite_utils

from ..coding import CodingError, find_code, find_coder
from ..db import now
from .features import Featurizer, Item
from .lexicon import Lexicon
from .combine import Combiner
from .model import CodeModel

#: Labels that mark the interviewer's or facilitator's turns.
INTERVIEWER = re.compile(r"^(?:I|Q|Interviewer|Facilitator|Moderator)$", re.I)
REJECTION_WEIGHT = 2.0
PROTOTYPES = True


@dataclass
class Dataset:
    segment_ids: np.ndarray
    items: list[Item]
    documents: np.ndarray
    codes: list[str]
    Y: np.ndarray  # segments × codes, 1 where a (gold) coder applied the code
    labelled: np.ndarray  # segments whose document a gold coder has coded
    rejected: dict[int, list[int]] = field(default_factory=dict)  # code index -> rows rejected for it

    def subset(self, rows: np.ndarray) -> "Dataset":
        position = {int(r): i for i, r in enumerate(rows)}
        return Dataset(self.segment_ids[rows], [self.items[i] for i in rows], self.documents[rows], self.codes,
                       self.Y[rows], self.labelled[rows],
                       {j: [position[r] for r in rs if r in position] for j, rs in self.rejected.items()})


def model_codes(db: sqlite_utils.Database, codes: list[str] | None = None) -> list[dict]:
    """The codes suggestions are made for: active codes without sub-codes."""
    rows = list(db.query(
        """SELECT id, name, definition, include, terms, examples, lesson_id FROM codes c
           WHERE archived = 0 AND NOT EXISTS (SELECT 1 FROM codes k WHERE k.parent_id = c.id AND k.archived = 0)
           ORDER BY codebook_id, sort_order"""))
    if codes:
        wanted = {find_code(db, c) for c in codes}
        rows = [r for r in rows if r["id"] in wanted or r["lesson_id"] in wanted]
    for r in rows:
        r["terms"], r["examples"] = json.loads(r["terms"]), json.loads(r["examples"])
    return rows


def load_dataset(db: sqlite_utils.Database, codes: list[str], coders: list[str] | None = None,
                 documents: list[str] | None = None) -> Dataset:
    """Every segment (in document order) with what the gold coders decided about it."""
    doc_sql, params = "", []
    if documents:
        doc_sql = f"WHERE s.document_id IN ({', '.join('?' * len(documents))})"
        params = list(documents)
    rows = list(db.query(
        f"""SELECT s.id, s.document_id, s.seq, s.speaker, s.text, d.role,
                   json_extract(d.attributes, '$.interviewer') AS interviewer
            FROM segments s JOIN documents d ON d.id = s.document_id {doc_sql}
            ORDER BY s.document_id, s.seq""", params))
    index = {r["id"]: i for i, r in enumerate(rows)}
    column = {c: j for j, c in enumerate(codes)}
    coder_sql, coder_params = "", []
    if coders:
        ids = [find_coder(db, c) for c in coders]
        coder_sql = f" AND g.coder_id IN ({', '.join('?' * len(ids))})"
        coder_params = ids
    Y = np.zeros((len(rows), len(codes)), dtype=np.int8)
    coded_documents = set()
    for r in db.query(f"""SELECT g.segment_id, g.code_id, s.document_id FROM codings g
                          JOIN segments s ON s.id = g.segment_id WHERE 1 = 1 {coder_sql}""", coder_params):
        coded_documents.add(r["document_id"])
        if r["segment_id"] in index and r["code_id"] in column:
            Y[index[r["segment_id"]], column[r["code_id"]]] = 1
    rejected: dict[int, list[int]] = {}
    for r in db.query("SELECT segment_id, code_id FROM suggestions WHERE status = 'rejected'"):
        if r["segment_id"] in index and r["code_id"] in column:
            rejected.setdefault(column[r["code_id"]], []).append(index[r["segment_id"]])
    rejected_rows = {i for rs in rejected.values() for i in rs}
    items = [Item(r["text"], r["document_id"], r["seq"], r["role"] or "",
                  bool(r["speaker"] and (INTERVIEWER.match(r["speaker"]) or r["speaker"] == r["interviewer"])))
             for r in rows]
    labelled = np.array([r["document_id"] in coded_documents or i in rejected_rows for i, r in enumerate(rows)])
    return Dataset(np.array([r["id"] for r in rows]), items, np.array([r["document_id"] for r in rows]),
                   codes, Y, labelled, rejected)


@dataclass
class Suggester:
    """A trained (or untrained: lexicon only) suggester for a set of codes."""

    codes: list[dict]
    lexicon: Lexicon
    featurizer: Featurizer | None = None
    model: CodeModel | None = None
    lesson_model: CodeModel | None = None
    lesson_of: list[int] = field(default_factory=list)  # code index -> lesson column
    combiner: Combiner | None = None
    training_size: int = 0
    train_seconds: float = 0.0
    oof_metrics: dict = field(default_factory=dict)

    @property
    def code_ids(self) -> list[str]:
        return [c["id"] for c in self.codes]

    @property
    def thresholds(self) -> np.ndarray:
        return self.combiner.thresholds if self.combiner else np.full(len(self.codes), 0.5)

    def lesson_scores(self, X, P: np.ndarray) -> np.ndarray:
        """The model's score for each code's lesson (its own score where there are no lessons)."""
        if self.lesson_model is None:
            return P
        return self.lesson_model.predict_proba(X)[:, self.lesson_of]

    def lexicon_scores(self, items: list[Item]) -> tuple[np.ndarray, list[dict]]:
        hits = self.lexicon.score([it.text for it in items]) if not self.lexicon.empty else [{} for _ in items]
        L = np.zeros((len(items), len(self.codes)))
        for i, found in enumerate(hits):
            for j, code in enumerate(self.code_ids):
                if code in found:
                    L[i, j] = found[code].score
        return L, hits

    def score(self, items: list[Item]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict], object]:
        """(combined, model, lexicon) scores, lexicon hits, and the feature matrix."""
        L, hits = self.lexicon_scores(items)
        if self.model is None:
            return L, np.zeros_like(L), L, hits, None
        X = self.featurizer.transform(items)
        P = self.model.predict_proba(X)
        return self.combiner.combine(P, L, self.lesson_scores(X, P)), P, L, hits, X


def train(data: Dataset, codes: list[dict], estimator: str = "auto") -> Suggester:
    """Fit the model on the labelled rows of ``data``; with no codings, a lexicon-only suggester."""
    start = time.perf_counter()
    suggester = Suggester(codes, Lexicon(codes))
    rows = np.flatnonzero(data.labelled)
    if len(rows) == 0 or data.Y[rows].sum() == 0:
        return suggester
    train_data = data.subset(rows)
    prototypes = {c["id"]: " ".join([c.get("name") or "", c.get("definition") or "", c.get("include") or "",
                                     *c.get("examples", []), *c.get("terms", [])]) for c in codes}
    featurizer = Featurizer().fit(train_data.items, prototypes if PROTOTYPES else None)
    X = featurizer.transform(train_data.items)
    model = CodeModel([c["id"] for c in codes], estimator=estimator)
    weights = None
    if train_data.rejected:
        # Rejections are per code; the model takes one weight per row, so a rejected row
        # counts double for every code (it was looked at carefully by a person).
        weights = np.ones(len(rows))
        for rs in train_data.rejected.values():
            weights[rs] = REJECTION_WEIGHT
    model.fit(X, train_data.Y, train_data.documents, weights)
    suggester.featurizer, suggester.model = featurizer, model
    suggester.training_size = len(rows)
    lessons = sorted({c["lesson_id"] for c in codes})
    lesson_oof = model.oof
    if any(c["lesson_id"] != c["id"] for c in codes):
        # Lessons have several times the examples of their sub-codes; their scores help the rare ones.
        suggester.lesson_of = [lessons.index(c["lesson_id"]) for c in codes]
        Y_lesson = np.zeros((len(rows), len(lessons)), dtype=np.int8)
        for j, k in enumerate(suggester.lesson_of):
            Y_lesson[:, k] |= train_data.Y[:, j]
        suggester.lesson_model = CodeModel(lessons, estimator=estimator).fit(X, Y_lesson, train_data.documents, weights)
        lesson_oof = suggester.lesson_model.oof[:, suggester.lesson_of]
    L, _ = suggester.lexicon_scores(train_data.items)
    suggester.combiner = Combiner(model.positives, not suggester.lexicon.empty).fit(model.oof, L, lesson_oof, train_data.Y)
    combined = suggester.combiner.combine(np.nan_to_num(model.oof), L, np.nan_to_num(lesson_oof))
    suggester.train_seconds = time.perf_counter() - start
    from ..evaluate import binary_metrics

    per_code = {c["id"]: binary_metrics(train_data.Y[:, j], combined[:, j] >= suggester.thresholds[j])
                for j, c in enumerate(codes)}
    suggester.oof_metrics = {"out_of_fold": per_code,
                             "macro_f1": float(np.mean([m["f1"] for m in per_code.values()]))}
    return suggester


def _readable(feature: str) -> str:
    if feature.startswith("previous:"):
        return "previous turn: " + _readable(feature[len("previous:"):])
    kind, _, value = feature.partition(":")
    if kind in ("w", "b"):
        return value
    if kind == "c":  # a character n-gram: show it as part of a word
        return ("" if value.startswith("<") else "…") + value.strip("<>") + ("" if value.endswith(">") else "…")
    if kind == "codebook":
        return f"close to the codebook's {value}"
    return feature


def readable_evidence(features: list[str], code: str, top: int = 5) -> list[str]:
    """Words and phrases first (what a coder can check in the text), then the codebook match."""
    words = [f for f in features if not f.startswith(("codebook:", "role:", "speaker:"))]
    rest = [f for f in features if f == f"codebook:{code}" or f.startswith(("role:", "speaker:"))]
    shown = list(dict.fromkeys(_readable(f) for f in words))[:top]  # "at" as a word and as a padded n-gram
    return shown + [_readable(f) for f in rest][:1]


@dataclass
class SuggestResult:
    model_run_id: int
    method: str
    suggestions: int
    segments: int
    training_size: int
    seconds: float
    metrics: dict


def suggest(db: sqlite_utils.Database, codes: list[str] | None = None, documents: list[str] | None = None,
            coders: list[str] | None = None, min_score: float = 0.2, estimator: str = "auto") -> SuggestResult:
    """Train on the project's codings, score segments, and replace the pending suggestions.

    Segments a person has already coded with a code, or already decided a
    suggestion for, get no new suggestion for it.
    """
    start = time.perf_counter()
    code_rows = model_codes(db, codes)
    if not code_rows:
        raise CodingError("there are no codes to suggest", hint="load a codebook with `qualcode codebook load`")
    ids = [c["id"] for c in code_rows]
    everything = load_dataset(db, ids, coders)
    suggester = train(everything, code_rows, estimator)
    target = everything if not documents else load_dataset(db, ids, coders, documents)
    if documents and len(set(target.documents)) < len(set(documents)):
        missing = sorted(set(documents) - set(target.documents))
        raise CodingError(f"unknown document '{missing[0]}'", hint="see `qualcode status` or the documents table")
    combined, P, L, hits, X = suggester.score(target.items)
    method = "combined" if suggester.model is not None and not suggester.lexicon.empty else (
        "model" if suggester.model is not None else "lexicon")
    names = suggester.featurizer.feature_names() if suggester.featurizer else []
    decided = {(r["segment_id"], r["code_id"]) for r in db.query(
        "SELECT segment_id, code_id FROM codings UNION SELECT segment_id, code_id FROM suggestions WHERE status != 'pending'")}
    parameters = {"estimator": suggester.model._kind(suggester.training_size) if suggester.model else None,
                  "min_score": min_score, "codes": ids,
                  "stacked_codes": [c for c, st in zip(ids, suggester.combiner.stackers) if st is not None]
                  if suggester.combiner else [],
                  "coders": coders or "all", "thresholds": dict(zip(ids, map(float, suggester.thresholds)))
                  if suggester.thresholds is not None else None}
    stamp = now()
    rows = []
    for i, seg_id in enumerate(target.segment_ids):
        for j, code in enumerate(ids):
            score = float(combined[i, j])
            if score < min_score or (int(seg_id), code) in decided:
                continue
            evidence = {"terms": hits[i][code].evidence if code in hits[i] else []}
            if X is not None and P[i, j] > 0:
                evidence["features"] = readable_evidence(suggester.model.evidence(X[i], j, names, top=12), code)
            evidence["model"] = round(float(P[i, j]), 4)
            evidence["lexicon"] = round(float(L[i, j]), 4)
            rows.append((int(seg_id), code, score, method, json.dumps(evidence, ensure_ascii=False), stamp))
    with db.atomic():
        run_id = db.execute(
            "INSERT INTO model_runs (created_at, method, training_size, parameters, metrics) VALUES (?, ?, ?, ?, ?)",
            [stamp, method, suggester.training_size, json.dumps(parameters), json.dumps(suggester.oof_metrics)],
        ).lastrowid
        marks = ", ".join("?" * len(ids))
        seg_filter = ""
        params: list = list(ids)
        if documents:
            seg_filter = f" AND segment_id IN (SELECT id FROM segments WHERE document_id IN ({', '.join('?' * len(documents))}))"
            params += list(documents)
        db.execute(f"DELETE FROM suggestions WHERE status = 'pending' AND code_id IN ({marks}){seg_filter}", params)
        db.conn.executemany(
            """INSERT INTO suggestions (segment_id, code_id, score, method, evidence, model_run_id, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            [(s, c, sc, m, e, run_id, t) for s, c, sc, m, e, t in rows],
        )
    return SuggestResult(run_id, method, len(rows), len(target.items), suggester.training_size,
                         time.perf_counter() - start, suggester.oof_metrics)
