"""REFI-QDA exchange on a large project: how long `qualcode export qdpx` and `qualcode import` take.

Builds a synthetic project (1,000 interviews of 50 speaker turns, ingested through the library;
the lessons codebook; 100,000 codings by three coders, half of them spans, inserted in bulk), then
times exporting it to a .qdpx, and importing that into a fresh project. Target: under 30 s each.

    python bench/refi.py [--documents 1000] [--codings 100000] [--pseudonymise]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from qualcode import open_project
from qualcode.codebook import load_codebook, resolve_codebook, sync_codebook
from qualcode.db import now
from qualcode.ingest import IngestOptions, ingest_paths
from qualcode.refi import export_project, import_project

#: 100 participants, so --pseudonymise has people to replace.
PEOPLE = [f"{first} {last}" for first in ("Ana", "Bo", "Chidi", "Dana", "Eli", "Farah", "Gus", "Hana", "Ivo", "Jun")
          for last in ("Ruiz", "Okafor", "Lund", "Meyer", "Park", "Quinn", "Sato", "Tran", "Vega", "Wolfe")]
WORDS = ("coaching district teachers principal data cycle improvement trust time planning students math "
         "reading network leadership board union structure collaboration spread practice evidence goal").split()


def build(folder: Path, documents: int, codings: int) -> Path:
    rng = random.Random(16)
    corpus = folder / "corpus"
    corpus.mkdir()
    for i in range(documents):
        turns = []
        for t in range(50):
            speaker = "Interviewer" if t % 2 == 0 else PEOPLE[i % len(PEOPLE)]
            turns.append(f"{speaker}: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(12, 40))) + ".")
        (corpus / f"interview-{i:04d}.txt").write_text(
            f"---\nkind: interview\nsite: School {i % 40}\nrole: teacher\ndate: 2024-{1 + i % 12:02d}-15\n"
            f"cohort: {i % 5}\n---\n" + "\n\n".join(turns) + "\n", encoding="utf-8")
    path = folder / "big.db"
    db = open_project(path)
    sync_codebook(db, load_codebook(resolve_codebook("lessons")))
    result = ingest_paths(db, [corpus], IngestOptions())
    assert not result.errors, result.errors[:3]
    codes = [r[0] for r in db.execute("SELECT id FROM codes WHERE depth = 1")]
    segments = db.execute("SELECT id, start_char, end_char FROM segments").fetchall()
    with db.atomic():
        coders = [db.execute("INSERT INTO coders (name, created_at) VALUES (?, ?)", [name, now()]).lastrowid
                  for name in ("Rosa Delgado", "Sam Okonjo", "Lee Park")]
        rows, seen = [], set()
        while len(rows) < codings:
            seg_id, start, end = rng.choice(segments)
            code, coder = rng.choice(codes), rng.choice(coders)
            span = (None, None)
            if rng.random() < 0.5 and end - start > 20:
                a = rng.randint(start, end - 10)
                span = (a, rng.randint(a + 5, end))
            key = (seg_id, code, coder, span)
            if key not in seen:
                seen.add(key)
                rows.append((seg_id, code, coder, *span, "manual", None, now()))
        db.conn.executemany("INSERT INTO codings (segment_id, code_id, coder_id, start_char, end_char, origin, memo, "
                            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.close()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--codings", type=int, default=100_000)
    parser.add_argument("--pseudonymise", action="store_true", help="also time a pseudonymised export (slower)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        path = build(folder, args.documents, args.codings)
        print(f"built {args.documents:,} documents and {args.codings:,} codings in {time.perf_counter() - start:.1f} s")
        db = open_project(path)
        start = time.perf_counter()
        result = export_project(db, folder / "big.qdpx")
        size = (folder / "big.qdpx").stat().st_size / 2**20
        print(f"export qdpx: {time.perf_counter() - start:.1f} s ({result.summary()}; {size:.1f} MB)")
        if args.pseudonymise:
            start = time.perf_counter()
            export_project(db, folder / "pseudonymised.qdpx", pseudonymise=True)
            print(f"export qdpx --pseudonymise: {time.perf_counter() - start:.1f} s")
        fresh = open_project(folder / "fresh.db")
        start = time.perf_counter()
        back = import_project(fresh, folder / "big.qdpx")
        print(f"import: {time.perf_counter() - start:.1f} s ({back.summary()})")


if __name__ == "__main__":
    main()
