"""Fuzz every reader and count the outcomes: how many inputs were read, refused cleanly, or misbehaved.

Uses the harness of tests/test_fuzz.py (tests/fuzzing.py) with plans drawn
from a seeded random generator, so a run is repeatable and nothing stops at
the first failure. Also times 300 KB of spaces through the paragraph splitter.

    python bench/fuzz.py [--per-reader 50] [--seed 12]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.fuzzing

from qualcode.ingest.segment import paragraphs  # noqa: E402
from tests import fuzzing  # noqa: E402


def random_plan(rng: random.Random) -> list[tuple[int, int, int, int]]:
    return [(rng.randrange(fuzzing.OPS), rng.randrange(2**20), rng.randrange(2**10), rng.randrange(2**20))
            for _ in range(rng.randint(1, 6))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-reader", type=int, default=50, help="inputs per reader")
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    tally = fuzzing.Tally()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        template = fuzzing.template(Path(tmp))
        for name, target in sorted(fuzzing.TARGETS.items()):
            for _ in range(args.per_reader):
                raw = target.member is not None and rng.random() < 0.3
                tally.add(name, fuzzing.run_one(target, fuzzing.build(target, random_plan(rng), raw), template))
    elapsed = time.perf_counter() - started
    kinds = ["accepted", "refused", "traceback", "hang", "dirty", "unclear"]
    print(f"{'reader':14}" + "".join(f"{k:>10}" for k in kinds))
    for name, row in sorted(tally.counts.items()):
        print(f"{name:14}" + "".join(f"{row.get(k, 0):>10}" for k in kinds))
    total = {k: sum(row.get(k, 0) for row in tally.counts.values()) for k in kinds}
    tried = sum(total.values())
    bad = tried - total["accepted"] - total["refused"]
    print(f"{'all':14}" + "".join(f"{total[k]:>10}" for k in kinds))
    print(f"{tried} inputs in {elapsed:.1f} s: {total['accepted'] + total['refused']} handled cleanly "
          f"({total['accepted']} read, {total['refused']} refused in one line), {bad} misbehaved")
    for name, examples in sorted(tally.examples.items()):
        for example in examples[:5]:
            print(f"  {name}: {example}")
    text = "Hello.\n" + " " * 300_000 + "\nBye.\n"
    t = time.perf_counter()
    paragraphs(text)
    print(f"paragraphs() over a 300 KB line of spaces: {time.perf_counter() - t:.3f} s")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
