"""Inter-coder agreement on a large project: how long `qualcode agreement` takes.

Builds (or reuses, with --keep) the synthetic project of bench/serve.py: two coders,
each coding about a third of the segments, then times agreement per sub-code and per
lesson, and the Datasette `agreement` view's query.

    python bench/agreement.py [--segments 1000000] [--keep PATH]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from serve import build_or_keep  # bench/serve.py, next to this file

from qualcode import open_project
from qualcode.agreement import agreement


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, metavar="PATH", help="build the project at PATH once and reuse it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = build_or_keep(Path(tmp), args.segments, args.keep)
        db = open_project(path)
        for level in ("code", "lesson"):
            start = time.perf_counter()
            report = agreement(db, ["A", "B"], level=level)
            print(f"agreement --level {level}: {time.perf_counter() - start:.1f} s "
                  f"({report.pooled.units:,} units, {len(report.documents):,} documents)")
        start = time.perf_counter()
        rows = db.execute("SELECT * FROM agreement").fetchall()
        print(f"agreement view: {time.perf_counter() - start:.1f} s ({len(rows)} rows)")


if __name__ == "__main__":
    main()
