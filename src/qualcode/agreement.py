"""Inter-coder agreement at the segment level, per code, per lesson and pooled.

The unit is a segment of a document that every coder in the comparison coded
(applied at least one code in it): for each code a coder either applied it to
the segment or not. Lessons count as applied when the lesson or any of its
sub-codes was. Most segments of a transcript carry no given code, so percent
agreement is high whatever the coders do; we report it with Cohen's kappa
(two coders), Krippendorff's alpha (nominal, any number of coders) and
positive agreement, which leaves the jointly uncoded segments out.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from itertools import combinations
from typing import Hashable, Sequence

import numpy as np
import sqlite_utils

from .coding import CodingError, find_code, find_coder

#: Below this many positive units a figure swings with one decision.
MIN_POSITIVES = 10


# --- the statistics -----------------------------------------------------------------------------


def percent_agreement(marks: np.ndarray) -> float | None:
    """Share of units (rows) on which every coder (column) made the same decision."""
    if len(marks) == 0:
        return None
    return float(np.mean(np.all(marks == marks[:, :1], axis=1)))


def positive_agreement(marks: np.ndarray) -> float | None:
    """2a / (2a + b + c), averaged over pairs of coders: agreement on where the code applies."""
    values = []
    for i, j in combinations(range(marks.shape[1]), 2):
        a = int(np.sum(marks[:, i] & marks[:, j]))
        disagree = int(np.sum(marks[:, i] ^ marks[:, j]))
        if 2 * a + disagree:
            values.append(2 * a / (2 * a + disagree))
    return float(np.mean(values)) if values else None


def cohen_kappa(x: Sequence[bool], y: Sequence[bool]) -> float | None:
    """Cohen's kappa for two coders' yes/no decisions: (po - pe) / (1 - pe), pe from each
    coder's own marginals (Cohen 1960), computed from the 2 × 2 counts.

    None when chance agreement is 1 (both coders made one and the same decision
    throughout): kappa is undefined there, not 0 or 1.
    """
    x, y = np.asarray(x, dtype=bool), np.asarray(y, dtype=bool)
    if len(x) == 0 or len(x) != len(y):
        return None
    px, py = x.mean(), y.mean()
    po = float(np.mean(x == y))
    pe = float(px * py + (1 - px) * (1 - py))
    if pe >= 1:
        return None
    return (po - pe) / (1 - pe)


def krippendorff_alpha(data: Sequence[Sequence[Hashable | None]]) -> float | None:
    """Krippendorff's alpha for nominal data: coders × units, None where a coder gave no value.

    alpha = 1 - (n - 1) * sum_{c != k} o_ck / sum_{c != k} n_c n_k, from the
    coincidence matrix o of pairable values (Krippendorff 2011, "Computing
    Krippendorff's alpha-reliability"). Units with fewer than two values drop out.
    """
    coincidence: Counter = Counter()
    for unit in zip(*data):
        values = [v for v in unit if v is not None]
        m = len(values)
        if m < 2:
            continue
        counts = Counter(values)
        for c, nc in counts.items():
            for k, nk in counts.items():
                coincidence[c, k] += (nc * (nc - 1) if c == k else nc * nk) / (m - 1)
    totals: Counter = Counter()
    for (c, _), o in coincidence.items():
        totals[c] += o
    n = sum(totals.values())
    expected = sum(totals[c] * totals[k] for c in totals for k in totals if c != k)
    if n <= 1 or expected == 0:
        return None
    observed = sum(o for (c, k), o in coincidence.items() if c != k)
    return 1 - (n - 1) * observed / expected


def binary_alpha(marks: np.ndarray) -> float | None:
    """krippendorff_alpha for units × coders of True/False with no missing values, vectorised."""
    m = marks.shape[1]
    ones = marks.sum(axis=1).astype(float)
    zeros = m - ones
    n1, n0 = ones.sum(), zeros.sum()
    if m < 2 or n1 == 0 or n0 == 0:
        return None
    observed = 2 * float(np.sum(ones * zeros)) / (m - 1)
    return float(1 - (n1 + n0 - 1) * observed / (2 * n1 * n0))


# --- the units ----------------------------------------------------------------------------------


def coder_ids(db: sqlite_utils.Database, names: list[str] | None) -> dict[str, int]:
    """The coders to compare: those named, or everyone but consensus coders."""
    if names:
        ids = {name: find_coder(db, name) for name in names}
    else:
        ids = {r["name"]: r["id"] for r in db.query(
            "SELECT c.name, c.id FROM coders c WHERE NOT c.consensus "
            "AND EXISTS (SELECT 1 FROM codings g WHERE g.coder_id = c.id) ORDER BY c.name")}
    if len(ids) < 2:
        raise CodingError("agreement needs at least two coders",
                          hint="name them with --coders A,B (see `qualcode coder list`)")
    return ids


def shared_documents(db: sqlite_utils.Database, coders: dict[str, int]) -> list[str]:
    """Documents in which every one of the coders applied at least one code."""
    ids = list(coders.values())
    return [r["document_id"] for r in db.query(
        f"""SELECT s.document_id FROM codings g JOIN segments s ON s.id = g.segment_id
            WHERE g.coder_id IN ({', '.join('?' * len(ids))})
            GROUP BY s.document_id HAVING count(DISTINCT g.coder_id) = ?
            ORDER BY s.document_id""", [*ids, len(ids)])]


@dataclass
class Units:
    """Every coder's decision on every (segment, code): marks[segment, code, coder]."""

    documents: list[str]
    segments: list[int]
    codes: list[str]
    coders: list[str]
    marks: np.ndarray


def units(db: sqlite_utils.Database, coders: dict[str, int], level: str = "code",
          codes: list[str] | None = None) -> Units:
    documents = shared_documents(db, coders)
    depth = 0 if level == "lesson" else 1
    if codes:
        code_ids = [find_code(db, c, allow_archived=True) for c in codes]
    else:
        code_ids = [r["id"] for r in db.query(
            "SELECT id FROM codes WHERE depth = ? AND NOT archived ORDER BY sort_order", [depth])]
    shared = set(documents)
    segments = [sid for sid, doc in db.execute("SELECT id, document_id FROM segments ORDER BY document_id, seq")
                if doc in shared]
    row = {s: i for i, s in enumerate(segments)}
    col = {c: j for j, c in enumerate(code_ids)}
    who = {cid: k for k, cid in enumerate(coders.values())}
    marks = np.zeros((len(segments), len(code_ids), len(coders)), dtype=bool)
    for segment, code, coder in db.execute("SELECT segment_id, code_id, coder_id FROM coded_segments"):
        if coder in who and code in col and segment in row:
            marks[row[segment], col[code], who[coder]] = True
    return Units(documents, segments, code_ids, list(coders), marks)


def _merged(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, disjoint intervals covering the same characters."""
    out: list[list[int]] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(a, b) for a, b in out]


def _intersection(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def character_overlap(db: sqlite_utils.Database, coders: dict[str, int], code_ids: list[str],
                      documents: list[str]) -> dict[str, tuple[int, int]]:
    """Per code, (Σ_d |A_d ∩ B_d ∩ …|, Σ_d |A_d ∪ B_d ∪ …|), A_d the characters of document d a
    coder coded with the code (its sub-codes included): whole segments, or the span when one
    was marked. The overlap is their ratio (a Jaccard index over characters)."""
    wanted, shared = set(code_ids), set(documents)
    who = {cid: k for k, cid in enumerate(coders.values())}
    coded: dict[tuple[str, str], list[list[tuple[int, int]]]] = {}
    for code, lesson, document, coder, start, end in db.execute(
            """SELECT g.code_id, k.lesson_id, s.document_id, g.coder_id,
                      coalesce(g.start_char, s.start_char), coalesce(g.end_char, s.end_char)
               FROM codings g JOIN segments s ON s.id = g.segment_id JOIN codes k ON k.id = g.code_id"""):
        if coder not in who or document not in shared:
            continue
        for key in {code, lesson} & wanted:
            coded.setdefault((key, document), [[] for _ in who])[who[coder]].append((start, end))
    totals = {code: (0, 0) for code in code_ids}
    for (code, _), by_coder in coded.items():
        merged = [_merged(intervals) for intervals in by_coder]
        common = merged[0]
        for other in merged[1:]:
            common = _intersection(common, other)
        either = _merged([iv for m in merged for iv in m])
        both, total = totals[code]
        totals[code] = (both + sum(b - a for a, b in common), total + sum(b - a for a, b in either))
    return totals


# --- figures ------------------------------------------------------------------------------------


@dataclass
class Figure:
    code_id: str
    coders: list[str]
    documents: int
    units: int
    positive_units: int
    positives: dict[str, int]
    percent: float | None
    positive: float | None
    kappa: float | None
    alpha: float | None
    overlap: float | None = None
    warnings: list[str] = field(default_factory=list)

    def row(self) -> dict:
        """Flat, for tables and CSV."""
        row = asdict(self)
        row["positives"] = ", ".join(f"{k} {v}" for k, v in self.positives.items())
        row["warnings"] = "; ".join(self.warnings)
        return row


def figure(code_id: str, marks: np.ndarray, coders: list[str], documents: int,
           min_positives: int = MIN_POSITIVES) -> Figure:
    """All statistics for one code (or a pool of codes): marks is units × coders."""
    positives = {name: int(marks[:, k].sum()) for k, name in enumerate(coders)}
    positive_units = int(np.any(marks, axis=1).sum())
    kappa = cohen_kappa(marks[:, 0], marks[:, 1]) if len(coders) == 2 else None
    alpha = binary_alpha(marks)
    warnings = []
    if positive_units < min_positives:
        warnings.append(f"only {positive_units} positive units: unstable")
    for name, n in positives.items():
        if n == 0:
            warnings.append(f"{name} never applied it")
    if len(coders) == 2 and kappa is None and len(marks):
        warnings.append("kappa undefined: no variation")
    return Figure(code_id, coders, documents, len(marks), positive_units, positives,
                  percent_agreement(marks), positive_agreement(marks), kappa, alpha, warnings=warnings)


@dataclass
class Report:
    coders: list[str]
    level: str
    documents: list[str]
    segments: int
    figures: list[Figure]
    pooled: Figure

    def to_dict(self) -> dict:
        return {"coders": self.coders, "level": self.level, "documents": self.documents, "segments": self.segments,
                "figures": [asdict(f) for f in self.figures], "pooled": asdict(self.pooled)}


#: The name the model goes by when it is compared as a coder.
MODEL = "model (held-out)"


def model_units(db: sqlite_utils.Database, coder: str, level: str = "code", codes: list[str] | None = None) -> Units:
    """One human coder and the model's held-out decisions on the documents that coder coded."""
    from .evaluate import held_out_decisions

    ids = {coder: find_coder(db, coder)}
    human = units(db, ids, level, codes)
    decisions = held_out_decisions(db, human.documents)
    lesson = dict(db.execute("SELECT id, lesson_id FROM codes").fetchall())
    col = {c: j for j, c in enumerate(human.codes)}
    marks = np.zeros((len(human.segments), len(human.codes), 2), dtype=bool)
    marks[:, :, 0] = human.marks[:, :, 0]
    for i, segment in enumerate(human.segments):
        for code in decisions.get(segment, ()):
            for key in {code, lesson.get(code, code)}:
                if key in col:
                    marks[i, col[key], 1] = True
    return Units(human.documents, human.segments, human.codes, [coder, MODEL], marks)


def agreement(db: sqlite_utils.Database, coders: list[str] | None = None, level: str = "code",
              codes: list[str] | None = None, min_positives: int = MIN_POSITIVES, model: bool = False) -> Report:
    """Agreement per code of one level (sub-codes, or lessons with their sub-codes rolled up)
    and pooled over those codes, each (segment, code) pair a unit.

    ``model``: compare one human coder with the model's held-out predictions, so a team reads
    the suggestions' reliability in the same terms as its own."""
    if model:
        if not coders or len(coders) != 1:
            raise CodingError("name the one coder to compare with the model",
                              hint='e.g. qualcode agreement --model --coders "Rosa Delgado"')
        u = model_units(db, coders[0], level, codes)
        if not u.documents:
            raise CodingError(f"{coders[0]} has not coded any document", hint="see `qualcode coder list`")
        figures = [figure(code_id, u.marks[:, j, :], u.coders, len(u.documents), min_positives)
                   for j, code_id in enumerate(u.codes)]
        pooled = figure("(pooled)", u.marks.reshape(-1, 2), u.coders, len(u.documents), min_positives)
        return Report(u.coders, level, u.documents, len(u.segments), figures, pooled)
    ids = coder_ids(db, coders)
    u = units(db, ids, level, codes)
    if not u.documents:
        raise CodingError(f"{' and '.join(ids)} have not coded any document in common",
                          hint="agreement is measured on documents every coder coded; see `qualcode assign`")
    figures = []
    both_total = either_total = 0
    overlaps = character_overlap(db, ids, u.codes, u.documents)
    for j, code_id in enumerate(u.codes):
        f = figure(code_id, u.marks[:, j, :], u.coders, len(u.documents), min_positives)
        both, either = overlaps[code_id]
        f.overlap = both / either if either else None
        both_total, either_total = both_total + both, either_total + either
        figures.append(f)
    pooled = figure("(pooled)", u.marks.reshape(-1, len(u.coders)), u.coders, len(u.documents), min_positives)
    pooled.overlap = both_total / either_total if either_total else None
    return Report(u.coders, level, u.documents, len(u.segments), figures, pooled)


COLUMNS = ["code_id", "units", "positive_units", "positives", "percent", "positive", "kappa", "alpha",
           "overlap", "warnings"]


def rows(report: Report) -> list[dict]:
    """One flat row per code and the pooled row, rounded for reading."""
    out = []
    for f in [*report.figures, report.pooled]:
        row = f.row()
        for key in ("percent", "positive", "kappa", "alpha", "overlap"):
            if row[key] is not None:
                row[key] = round(row[key], 3)
        out.append(row)
    return out
