"""Suggestions: the lexicon and the learned model, combined, with their evidence.

Every suggestion row names its method and the model run that made it, so a
coder (and a reviewer of the study) can see why a code was suggested and by
what. Human codings are the training data; rejected suggestions are training
data too, as explicit, double-weighted negatives.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import sqlite_utils

from ..coding import CodingError, find_code, find_coder
from ..db import now
from .features import CHAR_NGRAM_ROWS, Featurizer, Item
from .lexicon import Lexicon
from .combine import Combiner, PreviousCodes
from .model import CodeModel, GroupModel, best_threshold, estimator_kind, precision_threshold

#: The roles that ask rather than answer: codes not scoped to roles are not suggested on their turns.
ASKING_ROLES = frozenset({"interviewer", "facilitator", "moderator"})
REJECTION_WEIGHT = 2.0
LEXICON_FEATURE_WEIGHT = 1.0
PROTOTYPES = True
#: Read the previous turn's (first-stage) scores as evidence: see combine.PreviousCodes.
PREVIOUS_CODES = True


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
    """The codes suggestions are made for: active codes without sub-codes, with their role
    scope and, for a code in an exclusive set, the set (its parent)."""
    rows = list(db.query(
        """SELECT id, name, definition, include, terms, examples, lesson_id, roles,
                  (SELECT p.id FROM codes p WHERE p.id = c.parent_id AND p.exclusive = 1) AS exclusive_group
           FROM codes c
           WHERE archived = 0 AND NOT EXISTS (SELECT 1 FROM codes k WHERE k.parent_id = c.id AND k.archived = 0)
           ORDER BY codebook_id, sort_order"""))
    if codes:
        wanted = {find_code(db, c) for c in codes}
        rows = [r for r in rows if r["id"] in wanted or r["lesson_id"] in wanted]
    for r in rows:
        r["terms"], r["examples"] = json.loads(r["terms"]), json.loads(r["examples"])
        r["roles"] = json.loads(r["roles"]) if r["roles"] else None
    return rows


def in_scope(code: dict, speaker_role: str) -> bool:
    """Whether a code may be suggested for a turn: the codebook's roles, or, when it names none,
    any turn but an interviewer's or facilitator's (their questions are not findings)."""
    if code.get("roles"):
        return speaker_role in code["roles"]
    return speaker_role not in ASKING_ROLES


def scope_mask(codes: list[dict], items: list[Item]) -> np.ndarray:
    """Segments × codes: whether each code may be suggested on each turn (by its speaker role)."""
    roles: dict[str, int] = {}
    which = np.array([roles.setdefault(it.speaker_role, len(roles)) for it in items], dtype=np.int64)
    table = np.array([[in_scope(c, role) for c in codes] for role in roles], dtype=bool)
    return table.reshape(len(roles), len(codes))[which] if len(items) else np.zeros((0, len(codes)), bool)


def exclusive_columns(codes: list[dict]) -> dict[str, list[int]]:
    """Each exclusive set and the indexes of its codes in ``codes``."""
    groups: dict[str, list[int]] = {}
    for j, c in enumerate(codes):
        if c.get("exclusive_group"):
            groups.setdefault(c["exclusive_group"], []).append(j)
    return groups


def operating_point_name(precision: float | None) -> str:
    return f"held-out precision >= {precision:g}" if precision else "best held-out F1"


def document_filter(db: sqlite_utils.Database, documents: list[str] | None = None,
                    where: dict[str, list[str]] | None = None) -> list[str] | None:
    """The ids of the documents named or matching ``-w ATTR=VALUE`` filters (None: every document)."""
    from ..queries import where_sql

    if not documents and not where:
        return None
    chosen = None
    if documents:
        known = {r["id"] for r in db.query(
            f"SELECT id FROM documents WHERE id IN ({', '.join('?' * len(documents))})", list(documents))}
        missing = [d for d in documents if d not in known]
        if missing:
            raise CodingError(f"unknown document '{missing[0]}'", hint="see `qualcode status` or the documents table")
        chosen = [d for d in dict.fromkeys(documents)]
    if where:
        clauses, params = where_sql(where)
        matching = [r["id"] for r in db.query(f"SELECT d.id FROM documents d WHERE {' AND '.join(clauses)}", params)]
        chosen = matching if chosen is None else [d for d in chosen if d in set(matching)]
        if not chosen:
            raise CodingError("no document matches " + " and ".join(f"{k}={'|'.join(v)}" for k, v in where.items()),
                              hint="check the attribute and value with `qualcode status` or the documents table")
    return chosen


def load_dataset(db: sqlite_utils.Database, codes: list[str], coders: list[str] | None = None,
                 documents: list[str] | None = None) -> Dataset:
    """Every segment (in document order) with what the gold coders decided about it."""
    doc_sql, params = "", []
    if documents:
        doc_sql = f"WHERE s.document_id IN ({', '.join('?' * len(documents))})"
        params = list(documents)
    rows = list(db.query(
        f"""SELECT s.id, s.document_id, s.seq, s.speaker, s.text, d.role, s.speaker_role
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
    # Every write path sets the roles (roles.apply_roles); a turn with no speaker has none.
    items = [Item(r["text"], r["document_id"], r["seq"], r["role"] or "", r["speaker"] or "", r["speaker_role"] or "")
             for r in rows]
    labelled = np.array([r["document_id"] in coded_documents or i in rejected_rows for i, r in enumerate(rows)])
    return Dataset(np.array([r["id"] for r in rows]), items, np.array([r["document_id"] for r in rows]),
                   codes, Y, labelled, rejected)


@dataclass
class Suggester:
    """A trained (or untrained: lexicon only) suggester for a set of codes.

    Codes in an exclusive set share one multi-class model (with "none" as a
    class); every other code has its own binary model. Each code is trained and
    scored only on the turns its role scope allows.
    """

    codes: list[dict]
    lexicon: Lexicon
    featurizer: Featurizer | None = None
    model: CodeModel | None = None  # the binary codes
    binary: list[int] = field(default_factory=list)  # code index of each binary model column
    groups: dict[str, GroupModel] = field(default_factory=dict)
    group_columns: dict[str, list[int]] = field(default_factory=dict)  # group -> code indexes
    lesson_model: CodeModel | None = None
    lesson_of: list[int] = field(default_factory=list)  # binary column -> lesson column
    combiner: Combiner | None = None
    thresholds: np.ndarray | None = None
    operating_point: str = "best F1"
    training_size: int = 0
    train_seconds: float = 0.0
    oof_metrics: dict = field(default_factory=dict)
    oof: np.ndarray | None = None  # held-out scores of the training rows, segments × codes
    previous_codes: PreviousCodes | None = None

    @property
    def code_ids(self) -> list[str]:
        return [c["id"] for c in self.codes]

    def scope_mask(self, items: list[Item]) -> np.ndarray:
        return scope_mask(self.codes, items)

    def lexicon_scores(self, items: list[Item]) -> tuple[np.ndarray, list[dict]]:
        hits = self.lexicon.score([it.text for it in items]) if not self.lexicon.empty else [{} for _ in items]
        L = np.zeros((len(items), len(self.codes)))
        for i, found in enumerate(hits):
            for j, code in enumerate(self.code_ids):
                if code in found:
                    L[i, j] = found[code].score
        return L, hits

    def group_matrix(self, X, L: np.ndarray, group: str):
        """The features a group's model reads: the segment's, and the lexicon's scores for the group's codes."""
        columns = self.group_columns[group]
        return sp.hstack([X, sp.csr_matrix(L[:, columns] * LEXICON_FEATURE_WEIGHT)], format="csr")

    def score(self, items: list[Item]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict], object]:
        """(combined, model, lexicon) scores, lexicon hits, and the feature matrix.

        Scores are calibrated probabilities; a code out of a turn's role scope scores 0."""
        L, hits = self.lexicon_scores(items)
        scope = self.scope_mask(items)
        if self.featurizer is None:
            return L * scope, np.zeros_like(L), L, hits, None
        neighbours = Featurizer.previous_rows(items)
        X = self.featurizer.transform(items, neighbours)
        P = np.zeros_like(L)
        combined = L.copy()
        if self.model is not None and self.binary:
            Pb = self.model.predict_proba(X)
            lesson = self.lesson_model.predict_proba(X)[:, self.lesson_of] if self.lesson_model is not None else Pb
            P[:, self.binary] = Pb
            combined[:, self.binary] = self.combiner.combine(Pb, L[:, self.binary], lesson)
        for group, model in self.groups.items():
            columns = self.group_columns[group]
            probabilities = model.predict_proba(self.group_matrix(X, L, group))[:, 1:]
            P[:, columns] = probabilities
            if model.model is not None:
                combined[:, columns] = probabilities
        combined = combined * scope
        if self.previous_codes is not None:
            combined = self.previous_codes.apply(combined, neighbours[0]) * scope
        return combined, P, L, hits, X

    def decide(self, combined: np.ndarray, min_score: float | None = None) -> np.ndarray:
        """Which (segment, code) pairs are suggested: at or above each code's operating point (or
        ``min_score``), and at most one code of an exclusive set per segment, the most probable."""
        cut = self.thresholds if min_score is None else np.full(len(self.codes), min_score)
        chosen = (combined >= cut) & (combined > 0)
        for columns in self.group_columns.values():
            block = combined[:, columns]
            best = np.argmax(block, axis=1)
            keep = np.zeros_like(block, dtype=bool)
            keep[np.arange(len(block)), best] = True
            chosen[:, columns] &= keep
        return chosen

    def explain(self, items: list[Item], X, i: int, j: int) -> list[str]:
        """Readable evidence for code ``j`` on row ``i`` (whole words, phrases, the conversation)."""
        code = self.codes[j]
        group = code.get("exclusive_group")
        if group in self.groups and self.groups[group].model is not None:
            weights = self.groups[group].weights_for(self.group_columns[group].index(j))[: X.shape[1]]
        elif self.model is not None and j in self.binary:
            est = self.model.models[self.binary.index(j)]
            if est is None:
                return []
            weights = est.coef_.ravel()
        else:
            return []
        previous = items[i - 1] if i > 0 and items[i - 1].document == items[i].document else None
        return self.featurizer.explain(items[i], previous, X[i], weights, code["id"])


def train(data: Dataset, codes: list[dict], estimator: str = "auto", precision: float | None = None) -> Suggester:
    """Fit the models on the labelled rows of ``data``; with no codings, a lexicon-only suggester.

    ``precision``: choose each code's operating point as the lowest score whose held-out
    precision reaches it, instead of the score that maximises held-out F1."""
    start = time.perf_counter()
    suggester = Suggester(codes, Lexicon(codes))
    suggester.thresholds = np.full(len(codes), 0.5)
    rows = np.flatnonzero(data.labelled)
    if len(rows) == 0 or data.Y[rows].sum() == 0:
        suggester.train_seconds = time.perf_counter() - start
        return suggester
    train_data = data.subset(rows)
    prototypes = {c["id"]: " ".join([c.get("name") or "", c.get("definition") or "", c.get("include") or "",
                                     *c.get("examples", []), *c.get("terms", [])]) for c in codes}
    featurizer = Featurizer(char=(3, 5) if len(rows) <= CHAR_NGRAM_ROWS else None).fit(
        train_data.items, prototypes if PROTOTYPES else None)
    neighbours = Featurizer.previous_rows(train_data.items)
    if len(rows) == len(data.items):
        X = featurizer.transform(train_data.items, neighbours)
    else:
        # Read each coded turn in its whole conversation: the turns around it may be uncoded.
        X = featurizer.transform(data.items)[rows]
    suggester.featurizer = featurizer
    suggester.training_size = len(rows)
    weights = None
    if train_data.rejected:
        # Rejections are per code; the model takes one weight per row, so a rejected row
        # counts double for every code (it was looked at carefully by a person).
        weights = np.ones(len(rows))
        for rs in train_data.rejected.values():
            weights[rs] = REJECTION_WEIGHT
    scope = suggester.scope_mask(train_data.items)
    L, _ = suggester.lexicon_scores(train_data.items)
    oof = np.full((len(rows), len(codes)), np.nan)
    suggester.group_columns = exclusive_columns(codes)
    grouped = {j for columns in suggester.group_columns.values() for j in columns}
    suggester.binary = [j for j in range(len(codes)) if j not in grouped]
    for group, columns in suggester.group_columns.items():
        # A set's turns are those in scope for any of its codes; a turn with two of its
        # codes (coders slip) counts for the first, as the codebook orders them.
        member = scope[:, columns].any(axis=1)
        labels = np.zeros(len(rows), dtype=int)
        for k in reversed(range(len(columns))):
            labels[train_data.Y[:, columns[k]] == 1] = k + 1
        picked = np.flatnonzero(member)
        model = GroupModel(group, [codes[j]["id"] for j in columns], estimator=estimator)
        model.fit(suggester.group_matrix(X[picked], L[picked], group), labels[picked], train_data.documents[picked],
                  None if weights is None else weights[picked])
        suggester.groups[group] = model
        if model.model is not None:
            oof[picked[:, None], np.array(columns)[None, :]] = model.oof[:, 1:]
        else:
            oof[picked[:, None], np.array(columns)[None, :]] = L[picked][:, columns]
    if suggester.binary:
        b = suggester.binary
        binary_codes = [codes[j] for j in b]
        model = CodeModel([c["id"] for c in binary_codes], estimator=estimator)
        model.fit(X, train_data.Y[:, b], train_data.documents, weights, scope[:, b])
        suggester.model = model
        lesson_oof = model.oof
        if any(c["lesson_id"] != c["id"] for c in binary_codes):
            # Lessons have several times the examples of their sub-codes; their scores help the rare ones.
            lessons = sorted({c["lesson_id"] for c in binary_codes})
            suggester.lesson_of = [lessons.index(c["lesson_id"]) for c in binary_codes]
            Y_lesson = np.zeros((len(rows), len(lessons)), dtype=np.int8)
            lesson_scope = np.zeros((len(rows), len(lessons)), dtype=bool)
            for j, k in enumerate(suggester.lesson_of):
                Y_lesson[:, k] |= train_data.Y[:, b[j]]
                lesson_scope[:, k] |= scope[:, b[j]]
            suggester.lesson_model = CodeModel(lessons, estimator=estimator).fit(
                X, Y_lesson, train_data.documents, weights, lesson_scope)
            lesson_oof = suggester.lesson_model.oof[:, suggester.lesson_of]
        suggester.combiner = Combiner(model.positives, not suggester.lexicon.empty).fit(
            model.oof, L[:, b], lesson_oof, train_data.Y[:, b])
        oof[:, b] = suggester.combiner.combine(np.nan_to_num(model.oof), L[:, b], np.nan_to_num(lesson_oof))
        oof[:, b] = np.where(np.isnan(model.oof), np.nan, oof[:, b])
    suggester.oof = oof * np.where(scope, 1.0, np.nan)
    if PREVIOUS_CODES:
        suggester.previous_codes = PreviousCodes(len(codes))
        suggester.oof = suggester.previous_codes.fit(suggester.oof, neighbours[0], train_data.Y, train_data.documents)
    suggester.thresholds = operating_points(suggester, train_data.Y, precision)
    suggester.operating_point = operating_point_name(precision)
    suggester.train_seconds = time.perf_counter() - start
    suggester.oof_metrics = held_out_metrics(suggester, train_data.Y)
    return suggester


def operating_points(suggester: Suggester, Y: np.ndarray, precision: float | None) -> np.ndarray:
    """Each code's score cut, chosen on held-out scores: best F1, or the lowest with enough precision.

    For a code in an exclusive set, only the turns where it is the set's most
    probable code compete, since only there can it be suggested."""
    thresholds = np.full(Y.shape[1], 0.5)
    candidates = suggester.decide(np.nan_to_num(suggester.oof), min_score=0.0)
    for j in range(Y.shape[1]):
        ok = ~np.isnan(suggester.oof[:, j])
        if suggester.codes[j].get("exclusive_group"):
            ok &= candidates[:, j]
        if not ok.any():
            continue
        y, p = Y[ok, j], suggester.oof[ok, j]
        thresholds[j] = precision_threshold(y, p, precision) if precision else best_threshold(y, p)
    return thresholds


def held_out_metrics(suggester: Suggester, Y: np.ndarray) -> dict:
    from ..evaluate import binary_metrics

    decided = suggester.decide(np.nan_to_num(suggester.oof))
    per_code = {c["id"]: binary_metrics(Y[:, j], decided[:, j]) for j, c in enumerate(suggester.codes)}
    return {"out_of_fold": per_code, "macro_f1": float(np.mean([m["f1"] for m in per_code.values()])),
            "operating_point": suggester.operating_point}


@dataclass
class SuggestResult:
    model_run_id: int
    method: str
    suggestions: int
    segments: int
    training_size: int
    seconds: float
    metrics: dict
    train_seconds: float = 0.0
    operating_point: str = ""


def suggest(db: sqlite_utils.Database, codes: list[str] | None = None, documents: list[str] | None = None,
            coders: list[str] | None = None, min_score: float | None = None, estimator: str = "auto",
            where: dict[str, list[str]] | None = None, precision: float | None = None) -> SuggestResult:
    """Train on the project's codings, score segments, and replace the pending suggestions.

    By default a code is suggested where the model itself decides it applies
    (its held-out operating point); ``precision`` raises each code's cut to where
    held-out precision reaches that figure, and ``min_score`` replaces the cuts
    by one score for every code. Segments a person has already coded with a
    code, or already decided a suggestion for, get no new suggestion for it.
    """
    start = time.perf_counter()
    if precision is not None and not 0 < precision < 1:
        raise CodingError(f"--precision must be between 0 and 1, not {precision:g}")
    code_rows = model_codes(db, codes)
    if not code_rows:
        raise CodingError("there are no codes to suggest", hint="load a codebook with `qualcode codebook load`")
    ids = [c["id"] for c in code_rows]
    chosen = document_filter(db, documents, where)
    everything = load_dataset(db, ids, coders)
    suggester = train(everything, code_rows, estimator, precision)
    target = everything if chosen is None else load_dataset(db, ids, coders, chosen)
    combined, P, L, hits, X = suggester.score(target.items)
    method = "combined" if suggester.featurizer is not None and not suggester.lexicon.empty else (
        "model" if suggester.featurizer is not None else "lexicon")
    decided = {(r["segment_id"], r["code_id"]) for r in db.query(
        "SELECT segment_id, code_id FROM codings UNION SELECT segment_id, code_id FROM suggestions WHERE status != 'pending'")}
    thresholds = dict(zip(ids, (None if np.isinf(t) else float(t) for t in suggester.thresholds)))
    parameters = {"estimator": estimator_kind(estimator, suggester.training_size)
                  if suggester.model or suggester.groups else None,
                  "min_score": min_score, "precision": precision, "operating_point": suggester.operating_point
                  if min_score is None else f"score >= {min_score:g}", "codes": ids,
                  "exclusive_groups": {g: [ids[j] for j in cols] for g, cols in suggester.group_columns.items()},
                  "roles": {c["id"]: c["roles"] for c in code_rows if c.get("roles")},
                  "stacked_codes": [ids[suggester.binary[k]] for k, st in enumerate(suggester.combiner.stackers)
                                    if st is not None] if suggester.combiner else [],
                  "coders": coders or "all", "thresholds": thresholds,
                  "train_seconds": round(suggester.train_seconds, 3)}
    if where:
        parameters["where"] = where
    stamp = now()
    rows = []
    chosen_pairs = suggester.decide(combined, min_score)
    for i, j in zip(*np.nonzero(chosen_pairs)):
        seg_id, code = int(target.segment_ids[i]), ids[j]
        if (seg_id, code) in decided:
            continue
        evidence = {"terms": hits[i][code].evidence if code in hits[i] else []}
        if X is not None and P[i, j] > 0:
            evidence["features"] = suggester.explain(target.items, X, int(i), int(j))
        evidence["model"] = round(float(P[i, j]), 4)
        evidence["lexicon"] = round(float(L[i, j]), 4)
        rows.append((seg_id, code, float(combined[i, j]), method, json.dumps(evidence, ensure_ascii=False), stamp))
    with db.atomic():
        run_id = db.execute(
            "INSERT INTO model_runs (created_at, method, training_size, parameters, metrics) VALUES (?, ?, ?, ?, ?)",
            [stamp, method, suggester.training_size, json.dumps(parameters), json.dumps(suggester.oof_metrics)],
        ).lastrowid
        marks = ", ".join("?" * len(ids))
        seg_filter = ""
        params: list = list(ids)
        if chosen is not None:
            seg_filter = f" AND segment_id IN (SELECT id FROM segments WHERE document_id IN ({', '.join('?' * len(chosen))}))"
            params += list(chosen)
        db.execute(f"DELETE FROM suggestions WHERE status = 'pending' AND code_id IN ({marks}){seg_filter}", params)
        db.conn.executemany(
            """INSERT INTO suggestions (segment_id, code_id, score, method, evidence, model_run_id, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            [(s, c, sc, m, e, run_id, t) for s, c, sc, m, e, t in rows],
        )
    return SuggestResult(run_id, method, len(rows), len(target.items), suggester.training_size,
                         time.perf_counter() - start, suggester.oof_metrics, suggester.train_seconds,
                         parameters["operating_point"])
