"""Writing through the coding workspace's HTTP API: round trips on a large project, and three writers at once.

1. The 1,000,000-segment project of bench/serve.py (built, or reused with --keep; the writes go to
   a copy), with pending suggestions on one segment in ten, served with `qualcode serve`. Signed in
   as a coder, with the CSRF token the page hands its script: --actions codes applied (half of them
   to a selection, as document offsets) and --actions suggestions accepted, each a POST to
   /-/code/api/apply or /-/code/api/suggestion timed from request to parsed answer (which carries
   the re-rendered turn); then the page's reads there. Target: 95th percentile under 100 ms.
2. tests/test_browser_concurrency.py's scenario on the sample corpus: two browser coders over HTTP
   and a command-line loop, --decisions each at once, every one checked in the database after.

The server runs with --retrain-every 0: at this size one retrain in the server process ran for over
14 minutes in 12 GB, and it replaces the pending suggestions being accepted (see the README).

    python bench/writes.py [--segments 1000000] [--actions 200] [--decisions 1000] [--keep PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from serve import ROOT, build_or_keep, serving  # bench/serve.py, next to this file
from workspace import page_csrf, percentiles, sign_in  # bench/workspace.py

from qualcode import open_project
from qualcode.db import now
from qualcode.logins import set_login

sys.path.insert(0, str(ROOT))
from tests.test_browser_concurrency import check, plan, prepare, write_at_once  # noqa: E402

PASSWORD = "a-bench-secret"


def add_suggestions(path: Path, share: int = 10) -> int:
    """Pending suggestions, as `qualcode suggest` leaves them, on one segment in ``share``, for a
    code nobody has applied there; evidence is a domain word, as the lexicon reports it."""
    rng = random.Random(9)
    db = open_project(path, create=False)
    codes = [r[0] for r in db.execute("SELECT id FROM codes WHERE depth = 1")]
    coded = set(db.execute("SELECT segment_id, code_id FROM codings").fetchall())
    stamp = now()
    with db.atomic():
        run = db.execute("INSERT INTO model_runs (created_at, method, training_size, parameters) VALUES (?, 'lexicon', 0, ?)",
                         [stamp, json.dumps({"min_score": 0.2, "coders": "all"})]).lastrowid
        rows = []
        for (segment,) in db.execute(f"SELECT id FROM segments WHERE id % {share} = 3"):
            code = rng.choice(codes)
            if (segment, code) not in coded:
                evidence = {"terms": [rng.choice(["coach", "district", "teacher", "cycle", "data"])],
                            "lexicon": round(rng.random(), 4)}
                rows.append((segment, code, round(rng.uniform(0.2, 0.95), 4), "lexicon", json.dumps(evidence), run, stamp))
        db.conn.executemany("INSERT INTO suggestions (segment_id, code_id, score, method, evidence, model_run_id, "
                            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    db.execute("ANALYZE")
    db.close()
    return len(rows)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def line(label: str, times: list[float], cpu: float | None = None, target: float | None = None) -> None:
    median, p95 = percentiles(times)
    verdict = f"   target < {target:.0f} ms   {'ok' if p95 < target else 'MISSED'}" if target else ""
    print(f"  {label:<38} median {median:6.0f} ms   p95 {p95:6.0f} ms   max {max(times):6.0f} ms"
          + (f"   server CPU {cpu:4.0f} ms" if cpu is not None else "") + verdict)


def round_trips(path: Path, actions: int) -> None:
    rng = random.Random(4)
    db = open_project(path, create=False)
    segments = db.execute("SELECT count(*) FROM segments").fetchone()[0]
    codes = [r[0] for r in db.execute("SELECT id FROM codes WHERE depth = 1")]
    picked = rng.sample(range(1, segments + 1), actions)
    applies = []
    for sid in picked:
        start, end = db.execute("SELECT start_char, end_char FROM segments WHERE id = ?", [sid]).fetchone()
        taken = {r[0] for r in db.execute("SELECT code_id FROM codings WHERE segment_id = ? "
                                                "AND coder_id = (SELECT id FROM coders WHERE name = 'A')", [sid])}
        body = {"segment_id": sid, "code_id": rng.choice([c for c in codes if c not in taken])}
        if len(applies) % 2:
            body["start"], body["end"] = start, start + (end - start) // 2
        applies.append(body)
    pending = [r[0] for r in db.execute("SELECT id FROM suggestions WHERE status = 'pending'")]
    accepts = rng.sample(pending, actions)
    document = db.execute("SELECT document_id FROM segments WHERE id = ?", [picked[0]]).fetchone()[0]
    db.close()
    set_login(path, "A", PASSWORD)
    with serving(path, "--retrain-every", "0") as server:
        server.settle()
        client = sign_in(server.url, "A", PASSWORD)
        page = client.get(f"/-/code/{document}")
        headers = {"x-csrftoken": page_csrf(page.text)}
        print(f"\n{segments:,} segments, {len(pending):,} pending suggestions; signed in as coder A "
              f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
        for action, bodies in [("apply", applies), ("suggestion", [{"suggestion_id": i, "accept": True} for i in accepts])]:
            times, cpu = [], server.cpu_seconds()
            for body in bodies:
                def post():
                    answer = client.post(f"/-/code/api/{action}", json=body, headers=headers).json()
                    assert answer["ok"] and answer.get("added", True) and answer["turn_html"], answer
                times.append(timed(post))
            label = {"apply": f"apply a code ({actions}, half spans)", "suggestion": f"accept a suggestion ({actions})"}[action]
            line(label, times, (server.cpu_seconds() - cpu) * 1000 / len(bodies), target=100)
        print("  reads on the same project:")
        for label, url, count in [("the transcript page (50 turns)", f"/-/code/{document}", 20),
                                  ("next uncertain suggestion", "/-/code/api/next", 20),
                                  ("the document list /-/code", "/-/code", 5)]:
            cpu = server.cpu_seconds()
            times = [timed(lambda: client.get(url).raise_for_status()) for _ in range(count)]
            line(f"{label} ({count})", times, (server.cpu_seconds() - cpu) * 1000 / count)


def three_writers(decisions: int, folder: Path) -> None:
    from qualcode.codebook import load_codebook, sync_codebook
    from qualcode.ingest import IngestOptions, ingest_paths

    path = folder / "sample" / "qualcode.db"
    path.parent.mkdir()
    db = open_project(path)
    sync_codebook(db, load_codebook(ROOT / "codebooks" / "lessons.yml"))
    ingest_paths(db, [], IngestOptions(manifest=ROOT / "corpora" / "manifest.csv"))
    db.close()
    prepare(path)
    work = plan(path, decisions)
    with serving(path, "--retrain-every", "0") as server:
        server.settle()
        outcome = write_at_once(path, server.url, work)
    assert not outcome.errors, outcome.errors[:5]
    assert outcome.cli.returncode == 0 and not outcome.cli.stderr, outcome.cli.stderr
    stored = check(path, outcome)
    print(f"\nThree writers at once on the sample corpus: two browser coders over HTTP and a command-line loop, "
          f"{decisions:,} decisions each (load average {os.getloadavg()[0]:.1f})")
    print(f"  {stored:,} of {3 * decisions:,} decisions in the database, none lost, no errors; "
          f"{outcome.seconds:.1f} s in all ({3 * decisions / outcome.seconds:.0f} decisions/s)")
    for action, label in [("apply", "apply a code, under contention"), ("suggestion", "accept/reject, under contention")]:
        line(f"{label} ({len(outcome.times[action])})", outcome.times[action])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=1_000_000)
    parser.add_argument("--actions", type=int, default=200, help="timed applies, and timed accepts")
    parser.add_argument("--decisions", type=int, default=1000, help="per writer, in the three-writer run")
    parser.add_argument("--keep", type=Path, metavar="PATH",
                        help="build the large project at PATH once and reuse it (the writes go to a copy)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.keep.parent if args.keep else None) as tmp:
        folder = Path(tmp)
        built = build_or_keep(folder, args.segments, args.keep)
        path = folder / "writes.db"
        shutil.copy(built, path) if args.keep else shutil.move(built, path)
        start = time.perf_counter()
        added = add_suggestions(path)
        print(f"added {added:,} pending suggestions in {time.perf_counter() - start:.0f} s")
        round_trips(path, args.actions)
        three_writers(args.decisions, folder)


if __name__ == "__main__":
    main()
