"""Suggestion quality and speed.

1. Quality on the sample corpus's gold coding (both coders), grouped 5-fold
   cross-validation by document and the held-out split: macro-F1 over the
   lesson sub-codes of the combined suggester, the model, the lexicon alone
   and the baselines, and the lexicon's precision.
2. Speed on a synthetic coded spreadsheet of --rows segments (mutually
   exclusive codes, most rows uncoded, some rare codes): import, training,
   and scoring segments/s.

    python bench/suggest.py [--rows 200000] [--skip-quality]
"""

from __future__ import annotations

import argparse
import csv
import random
import tempfile
import time
from pathlib import Path

from qualcode import open_project
from qualcode.codebook import load_codebook, sync_codebook
from qualcode.coding import apply_batch
from qualcode.evaluate import evaluate, format_table
from qualcode.ingest import IngestOptions, TableMapping, ingest_paths
from qualcode.suggest import load_dataset, model_codes, train

ROOT = Path(__file__).resolve().parent.parent


def quality(tmp: Path) -> None:
    db = open_project(tmp / "corpus.db")
    sync_codebook(db, load_codebook(ROOT / "codebooks" / "lessons.yml"))
    ingest_paths(db, [], IngestOptions(manifest=ROOT / "corpora" / "manifest.csv"))
    for sheet in sorted((ROOT / "corpora" / "coding").glob("*.csv")):
        apply_batch(db, sheet, create_coders=True)
    for label, kwargs in (("grouped 5-fold", {"folds": 5}), ("held-out split=test", {"test_where": {"split": ["test"]}})):
        start = time.perf_counter()
        result = evaluate(db, **kwargs)
        print(f"== {label} ({time.perf_counter() - start:.1f} s)")
        print(format_table(result).split("\n\ncode")[0])
        methods = result["methods"]
        gain = methods["combined"]["macro"]["f1"] - methods["baseline"]["macro"]["f1"]
        gain_balanced = methods["combined"]["macro"]["f1"] - methods["baseline_balanced"]["macro"]["f1"]
        print(f"combined - baseline macro-F1: {gain:+.3f}; combined - balanced baseline: {gain_balanced:+.3f}")
        print(f"lexicon alone (no training): precision {methods['lexicon']['macro']['precision']:.3f}, "
              f"recall {methods['lexicon']['macro']['recall']:.3f}")
        print()


def synthetic_sheet(path: Path, rows: int, rng: random.Random) -> None:
    """Sentences with ten mutually exclusive codes (two rare, 2% each) and 53% uncoded rows; the cue
    words are noisy, so the task is learnable but far from perfect."""
    vocabulary = [f"word{i}" for i in range(5000)]
    codes = {"praise": 0.08, "question": 0.07, "instruction": 0.07, "feedback": 0.05, "checking": 0.05,
             "modelling": 0.04, "encouragement": 0.04, "summary": 0.03, "feedback_rare": 0.02, "redirect_rare": 0.02}
    cues = {c: [f"{c.split('_')[0]}{i}" for i in range(30)] for c in codes}
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["doc", "order", "speaker", "text", "code"])
        for i in range(rows):
            r, code, acc = rng.random(), "", 0.0
            for name, share in codes.items():
                acc += share
                if r < acc:
                    code = name
                    break
            words = [rng.choice(vocabulary) for _ in range(rng.randint(8, 25))]
            if code and rng.random() < 0.8:  # a fifth of coded rows carry no cue at all
                words.insert(rng.randrange(len(words)), rng.choice(cues[code]))
            if rng.random() < 0.15:  # and cues turn up where they mean nothing
                words.insert(rng.randrange(len(words)), rng.choice(cues[rng.choice(list(codes))]))
            writer.writerow([f"class{i // 400:04d}", i % 400, rng.choice(["T", "S1", "S2"]), " ".join(words), code])


def speed(tmp: Path, rows: int, evaluate_too: bool = False) -> None:
    rng = random.Random(7)
    sheet = tmp / "coded.csv"
    synthetic_sheet(sheet, rows, rng)
    db = open_project(tmp / "big.db")
    start = time.perf_counter()
    result = ingest_paths(db, [sheet], IngestOptions(
        table=TableMapping(text="text", document="doc", speaker="speaker", order="order", codes=[("code", "External")]),
        create_codes=True))
    assert not result.errors, result.errors[0].error
    print(f"import: {rows:,} rows, {result.codings:,} codings in {time.perf_counter() - start:.1f} s")
    codes = model_codes(db)
    start = time.perf_counter()
    data = load_dataset(db, [c["id"] for c in codes])
    print(f"load: {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    suggester = train(data, codes)
    print(f"train: {len(data.items):,} segments in {time.perf_counter() - start:.1f} s "
          f"(estimator {suggester.model._kind(len(data.items))}, train_seconds {suggester.train_seconds:.1f}, out-of-fold macro-F1 {suggester.oof_metrics['macro_f1']:.3f})")
    sample = data.items[:20000]
    start = time.perf_counter()
    combined, *_ = suggester.score(sample)
    elapsed = time.perf_counter() - start
    print(f"score: {len(sample):,} segments in {elapsed:.2f} s = {len(sample) / elapsed:,.0f} segments/s")
    import resource

    print(f"peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
    if not evaluate_too:
        return
    start = time.perf_counter()
    held = evaluate(db, folds=2)
    print(f"evaluate (2 grouped folds, all methods): {time.perf_counter() - start:.1f} s; "
          f"combined macro-F1 {held['methods']['combined']['macro']['f1']:.3f}, "
          f"rare codes F1 " + ", ".join(f"{c} {held['methods']['combined']['per_code'][c]['f1']:.3f}"
                                        for c in held["codes"] if "rare" in c))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--evaluate", action="store_true", help="also time a 2-fold evaluate at --rows")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_quality:
            quality(Path(tmp))
        speed(Path(tmp), args.rows, args.evaluate)


if __name__ == "__main__":
    main()
