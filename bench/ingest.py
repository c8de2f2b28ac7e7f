"""Ingest throughput: a synthetic corpus of ~2,000 transcripts (~5 million words).

Prints words/s and segments/s end to end: parse, segment, insert, full-text
index. Target on a 2-core machine: 500,000 words/s or more. Then a coded
spreadsheet of --rows rows (one segment and one code per row), as teams bring
from Excel, and its rows/s.

    python bench/ingest.py [--documents 2000] [--words 2500] [--rows 100000]
"""

from __future__ import annotations

import argparse
import csv
import random
import tempfile
import time
from pathlib import Path

from qualcode import open_project
from qualcode.ingest import IngestOptions, TableMapping, ingest_paths

WORDS = ("we the district coach teacher principal time cycle data meeting students math plan "
         "change support learning school team board union year goal focus week grade lesson "
         "really think know just kind people work started because about would could").split()
SPEAKERS = ["Interviewer", "Respondent", "P1", "P2", "P3", "Facilitator"]


def sentence(rng: random.Random) -> str:
    n = rng.randint(6, 22)
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + rng.choice(".?!")


def transcript(rng: random.Random, words: int) -> str:
    parts, total = ["---", "title: Synthetic interview", "kind: interview", "site: Bench School", "---", ""], 0
    while total < words:
        speaker = rng.choice(SPEAKERS)
        turn = " ".join(sentence(rng) for _ in range(rng.randint(1, 6)))
        if rng.random() < 0.2:
            turn += "\n\n" + sentence(rng)  # an unlabelled paragraph continues the turn
        parts.append(f"{speaker}: {turn}\n")
        total += len(turn.split())
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--words", type=int, default=2500, help="words per document")
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the coded spreadsheet")
    args = parser.parse_args()
    rng = random.Random(42)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "corpus"
        folder.mkdir()
        for i in range(args.documents):
            (folder / f"t{i:05d}.md").write_text(transcript(rng, args.words))
        db = open_project(Path(tmp) / "bench.db")
        start = time.perf_counter()
        result = ingest_paths(db, [folder], IngestOptions())
        elapsed = time.perf_counter() - start
        assert not result.errors, result.errors[0].error
        fts = db.execute("SELECT count(*) FROM segments_fts WHERE segments_fts MATCH 'coach'").fetchone()[0]
        assert fts > 0
        print(f"documents:   {result.count('added'):,}")
        print(f"words:       {result.words:,}")
        print(f"segments:    {result.segments:,}")
        print(f"seconds:     {elapsed:.2f}")
        print(f"words/s:     {result.words / elapsed:,.0f}")
        print(f"segments/s:  {result.segments / elapsed:,.0f}")
        spreadsheet(rng, Path(tmp), args.rows)


def spreadsheet(rng: random.Random, tmp: Path, rows: int) -> None:
    path = tmp / "coded.csv"
    labels = ["praise", "question", "instruction", "feedback", "rare_code", "", "", "", ""]
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["doc", "order", "speaker", "text", "code"])
        for i in range(rows):
            writer.writerow([f"doc{i // 100}", i % 100, rng.choice(SPEAKERS), sentence(rng), rng.choice(labels)])
    db = open_project(tmp / "sheet.db")
    mapping = TableMapping(text="text", document="doc", speaker="speaker", order="order",
                           codes=[("code", "External coder")])
    start = time.perf_counter()
    result = ingest_paths(db, [path], IngestOptions(table=mapping, create_codes=True))
    elapsed = time.perf_counter() - start
    assert not result.errors, result.errors[0].error
    print(f"spreadsheet rows:      {rows:,} ({len(result.files[0].documents):,} documents, {result.codings:,} codings)")
    print(f"spreadsheet seconds:   {elapsed:.2f}")
    print(f"spreadsheet rows/s:    {rows / elapsed:,.0f}")


if __name__ == "__main__":
    main()
