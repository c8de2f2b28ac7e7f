"""Learning curve and active learning on the facilitation corpus (fictional, generated).

How good are the suggestions after a coder has coded 50, 100, 200, 500 and
1,000 turns for each code set (the facilitator's moves, the participants'
moves), taken in random order or in the review queue's uncertainty order
(`qualcode review --order uncertain`: the turns whose most probable two
answers are closest, the model retrained after each batch)? And with none at
all: the codebook's terms and examples alone (cold start).

Train on the corpus's `split=train` groups, test on its 12 `split=test` groups,
with Rosa Delgado's coding as the truth. Figures: macro-F1 over each set's
classes ("none" included) and Cohen's kappa, averaged over the two sets, at the
model's own operating point; random order is the mean of --seeds runs.

    python bench/learning.py [--seeds 3] [--budgets 50,100,200,500,1000]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np

from qualcode import open_project
from qualcode.codebook import load_codebook, sync_codebook
from qualcode.evaluate import group_labels, label_metrics, NONE
from qualcode.ingest import IngestOptions, TableMapping, ingest_paths
from qualcode.suggest import Dataset, load_dataset, model_codes, scope_mask, train

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpora" / "facilitation" / "focus-groups.csv"
SEED_SIZE = 25  # turns per set coded at random before the queue takes over


def build(tmp: Path):
    db = open_project(tmp / "facilitation.db")
    sync_codebook(db, load_codebook(ROOT / "codebooks" / "facilitation.yml"))
    result = ingest_paths(db, [CORPUS], IngestOptions(table=TableMapping(
        text="text", document="document", speaker="speaker", order="seq", codes=[("codes", "Rosa Delgado")])))
    assert not result.errors, result.errors[0].error
    with CORPUS.open(newline="") as f:
        split = {row["document"]: row["split"] for row in csv.DictReader(f)}
    return db, split


class Bench:
    def __init__(self, db, split: dict[str, str]) -> None:
        self.codes = model_codes(db)
        self.ids = [c["id"] for c in self.codes]
        self.data = load_dataset(db, self.ids)
        docs = self.data.documents
        known = {d for d, s in split.items()}
        self.test = np.array([split.get(d) == "test" for d in docs])
        assert set(docs) <= known
        self.sets: dict[str, list[int]] = {}
        for j, c in enumerate(self.codes):
            self.sets.setdefault(c["exclusive_group"], []).append(j)
        assert None not in self.sets, "the facilitation codebook declares every code in an exclusive set"
        # Which turns each set is about (its codes' role scope), by the codebook.
        scope = scope_mask(self.codes, self.data.items)
        self.member = {g: scope[:, cols[0]] for g, cols in self.sets.items()}

    def fit(self, labelled: np.ndarray):
        d = self.data
        data = Dataset(d.segment_ids, d.items, d.documents, d.codes, d.Y, labelled & ~self.test, {})
        return train(data, self.codes)

    def measure(self, suggester) -> tuple[float, float, np.ndarray]:
        combined, *_ = suggester.score(self.data.items)
        decided = suggester.decide(combined)
        f1s, kappas = [], []
        for g, cols in self.sets.items():
            rows = self.test & self.member[g]
            truth, predicted = group_labels(self.data.Y[rows], decided[rows], cols, self.ids)
            m = label_metrics(truth, predicted, [NONE] + [self.ids[j] for j in cols])
            f1s.append(m["macro_f1"])
            kappas.append(m["kappa"])
        return float(np.mean(f1s)), float(np.mean(kappas)), combined

    def uncertainty(self, combined: np.ndarray, cols: list[int]) -> np.ndarray:
        """How close the two most probable answers of a set are (smaller: less sure)."""
        p = np.column_stack([np.clip(1 - combined[:, cols].sum(axis=1), 0, 1), combined[:, cols]])
        top = np.sort(p, axis=1)[:, -2:]
        return top[:, 1] - top[:, 0]

    def random_curve(self, budgets: list[int], seed: int) -> list[tuple[int, float, float]]:
        rng = np.random.default_rng(seed)
        order = {g: rng.permutation(np.flatnonzero(self.member[g] & ~self.test)) for g in self.sets}
        out = []
        for n in budgets:
            labelled = np.zeros(len(self.data.items), dtype=bool)
            for g in self.sets:
                labelled[order[g][:n]] = True
            out.append((n, *self.measure(self.fit(labelled))[:2]))
        return out

    def uncertainty_curve(self, budgets: list[int], seed: int) -> list[tuple[int, float, float]]:
        """Measured after every retraining, so the coded turns needed for a kappa can be read off.
        The queue grows by a quarter each time (as a coder's session of review would), through
        every budget."""
        rng = np.random.default_rng(seed)
        labelled = np.zeros(len(self.data.items), dtype=bool)
        for g in self.sets:
            labelled[rng.permutation(np.flatnonzero(self.member[g] & ~self.test))[:SEED_SIZE]] = True
        steps = sorted(set(budgets) | {round(SEED_SIZE * 1.25 ** k) for k in range(40)
                                       if SEED_SIZE * 1.25 ** k <= max(budgets)})
        n, out = SEED_SIZE, []
        for target in [s for s in steps if s > SEED_SIZE] + [None]:
            f1, kappa, combined = self.measure(self.fit(labelled))
            out.append((n, f1, kappa))
            if target is None:
                break
            for g, cols in self.sets.items():
                pool = np.flatnonzero(self.member[g] & ~self.test & ~labelled)
                margin = self.uncertainty(combined[pool], cols)
                labelled[pool[np.argsort(margin, kind="stable")[: target - n]]] = True
            n = target
        return out


def needed(curve: list[tuple[int, float, float]], kappa: float) -> int | None:
    """The fewest coded turns per set at which a curve reaches a kappa."""
    return next((n for n, _, k in curve if k >= kappa), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budgets", default="50,100,200,500,1000")
    args = parser.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        db, split = build(Path(tmp))
        bench = Bench(db, split)
        pool = {g: int((bench.member[g] & ~bench.test).sum()) for g in bench.sets}
        print(f"facilitation corpus: {len(bench.data.items):,} turns; training pool per set {pool}; "
              f"test {int(bench.test.sum()):,} turns in the split=test groups")
        start = time.perf_counter()
        cold = bench.measure(bench.fit(np.zeros(len(bench.data.items), dtype=bool)))
        print(f"cold start (codebook terms and examples only, no codings): macro-F1 {cold[0]:.3f}, kappa {cold[1]:.3f}")
        runs = [bench.random_curve(budgets, seed) for seed in range(args.seeds)]
        rand = [(n, float(np.mean([r[i][1] for r in runs])), float(np.mean([r[i][2] for r in runs])))
                for i, n in enumerate(budgets)]
        unc_runs = [bench.uncertainty_curve(budgets, seed) for seed in range(args.seeds)]
        steps = [n for n, _, _ in unc_runs[0]]
        unc = [(n, float(np.mean([r[i][1] for r in unc_runs])), float(np.mean([r[i][2] for r in unc_runs])))
               for i, n in enumerate(steps)]
        by_n = {n: (f, k) for n, f, k in unc}
        print()
        print("coded turns per set   random: macro-F1  kappa   uncertainty: macro-F1  kappa   uncertainty needs for random's kappa")
        for n, f, k in rand:
            uf, uk = by_n.get(n, (float("nan"), float("nan")))
            need = needed(unc, k)
            saving = f"{need} turns ({100 * (1 - need / n):.0f}% fewer)" if need is not None and need < n else (
                f"{need} turns" if need is not None else "not reached")
            print(f"{n:>20}   {f:>16.3f} {k:>6.3f}   {uf:>21.3f} {uk:>6.3f}   {saving}")
        print(f"\n({args.seeds} seeds each; {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
