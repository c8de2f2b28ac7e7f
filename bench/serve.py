"""Datasette response times on a large project, with a real server on 127.0.0.1.

Builds a project of --segments segments (synthetic transcripts, ingested with
qualcode, the lessons codebook loaded and about a third of segments coded by
two coders), starts `qualcode serve`, and times table pages with facets and
full-text searches. Target: median under 100 ms, 95th percentile under 300 ms.

    python bench/serve.py [--segments 1000000] [--requests 40]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import shutil
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from qualcode import open_project
from qualcode.codebook import load_codebook, sync_codebook
from qualcode.ingest import IngestOptions, ingest_paths
from qualcode.publish import load_metadata

ROOT = Path(__file__).resolve().parent.parent

# A Zipf-like vocabulary: a few common words, a long tail of rare ones, as in real talk,
# with the domain words searched for at realistic ranks.
COMMON = "the and to of a i we that it in is you was they so but for on have like just know".split()
DOMAIN = ["coach", "district", "teacher", "cycle", "meeting", "students", "principal", "data"]
TAIL = [f"w{i}" for i in range(20000)]
VOCABULARY = COMMON + DOMAIN + TAIL
CUMULATIVE = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(VOCABULARY))))


def transcript(rng: random.Random, turns: int) -> str:
    lines = ["---", "title: Synthetic interview", "kind: interview", "site: Bench School", "---", ""]
    for i in range(turns):
        words = rng.choices(VOCABULARY, cum_weights=CUMULATIVE, k=rng.randint(15, 80))
        lines.append(f"{'Interviewer' if i % 2 == 0 else 'Respondent'}: {' '.join(words).capitalize()}.\n")
    return "\n".join(lines)

SITES = ["Bayview Elementary", "Seacliff Middle School", "Millbrook Elementary", "Ridgeview Middle School",
         "Eastgate K-8 Academy", "Northside Middle School"]
ROLES = ["principal", "teacher", "instructional coach", "district leader"]


def build(tmp: Path, segments: int) -> Path:
    rng = random.Random(3)
    folder = tmp / "corpus"
    folder.mkdir()
    per_doc = 50
    for i in range(segments // per_doc):
        text = transcript(rng, 50).replace("site: Bench School", f"site: {rng.choice(SITES)}\nrole: {rng.choice(ROLES)}")
        (folder / f"t{i:06d}.md").write_text(text)
    path = tmp / "qualcode.db"
    db = open_project(path)
    sync_codebook(db, load_codebook(ROOT / "codebooks" / "lessons.yml"))
    start = time.perf_counter()
    result = ingest_paths(db, [folder], IngestOptions())
    print(f"built {result.segments:,} segments in {time.perf_counter() - start:.0f} s")
    codes = [r["id"] for r in db.query("SELECT id FROM codes WHERE depth = 1")]
    with db.atomic():
        db.execute("INSERT INTO coders (name, created_at) VALUES ('A', 'x'), ('B', 'x')")
        ids = [r[0] for r in db.execute("SELECT id FROM segments")]
        rows = [(sid, rng.choice(codes), coder, "import", "x") for sid in ids if rng.random() < 0.33 for coder in (1, 2)]
        db.conn.executemany("INSERT OR IGNORE INTO codings (segment_id, code_id, coder_id, origin, created_at) "
                            "VALUES (?, ?, ?, ?, ?)", rows)
    db.execute("ANALYZE")
    print(f"codings: {len(rows):,}")
    db.close()
    return path


def build_or_keep(tmp: Path, size: int, keep: Path | None, builder=None, companions: tuple[str, ...] = ()) -> Path:
    """The project at ``keep`` if it exists; else a new build (this file's ``build`` unless another
    ``builder`` is given), moved to ``keep`` with its ``companions`` (e.g. ``.logins``) when given."""
    if keep and keep.exists():
        return keep
    path = (builder or build)(tmp, size)
    if keep:
        for suffix in ("", *companions):
            shutil.move(f"{path}{suffix}", f"{keep}{suffix}")
        return keep
    return path


class Server:
    """A running `qualcode serve`: its base URL, and the CPU time it has used (which, unlike the
    time a request takes, does not grow when other programs share the machine)."""

    def __init__(self, url: str, process: subprocess.Popen) -> None:
        self.url, self.process = url, process

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def settle(self, timeout: float = 60) -> None:
        """Wait until the server is idle (done with what it does at start), as it is by the
        time a coder opens a page."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = self.cpu_seconds()
            time.sleep(0.5)
            if self.cpu_seconds() - before < 0.02:
                return


@contextlib.contextmanager
def serving(path: Path, *args: str):
    """A real `qualcode serve` of ``path`` on a free port of 127.0.0.1, yielded once it answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "qualcode", "serve", "--db", str(path), "--port", str(port), *args],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/-/versions.json", timeout=5).read()
                break
            except OSError:
                if process.poll() is not None:
                    raise SystemExit(f"qualcode serve --db {path} exited with status {process.returncode}")
                time.sleep(0.5)
        yield Server(base, process)
    finally:
        process.terminate()
        process.wait(10)


def time_pages(base: str, pages: dict[str, tuple[str, list[str]]], requests: int) -> list[float]:
    """Print median and 95th percentile per page; return every time measured."""
    every = []
    for label, (url, words) in pages.items():
        times = []
        for i in range(requests):
            target = base + url.format(w=urllib.parse.quote(words[i % len(words)]))
            start = time.perf_counter()
            with urllib.request.urlopen(target, timeout=60) as r:
                r.read()
            times.append((time.perf_counter() - start) * 1000)
        every += times
        p95 = statistics.quantiles(times, n=20)[-1]
        print(f"{label:<26} {statistics.median(times):>9.0f} {p95:>7.0f}")
    return every


def dashboard_charts(path: Path) -> dict[str, tuple[str, list[str]]]:
    """The findings dashboard's chart queries, as datasette-dashboards sends them with no filter set."""
    charts = load_metadata(ROOT / "datasette-metadata.yml", path)["plugins"]["datasette-dashboards"]["findings"]["charts"]
    return {f"chart {name}": (".json?_shape=array&sql=" + urllib.parse.quote(re.sub(r"\[\[.*?\]\]", "", c["query"], flags=re.S))
                              .replace("{", "{{").replace("}", "}}"), [""])
            for name, c in charts.items() if "query" in c}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=40, help="requests per page")
    parser.add_argument("--keep", type=Path, metavar="PATH",
                        help="build the project at PATH once and reuse it on later runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = build_or_keep(Path(tmp), args.segments, args.keep)
        with serving(path) as server:
            base = f"{server.url}/{path.stem}"
            # Pages as a researcher opens them: each table with the facets its metadata
            # configures, excerpts for one code, and searches for words of three frequencies.
            bands = {"common": DOMAIN,                                  # each in ~18% of segments
                     "mid": [f"w{i}" for i in range(195, 205)],         # ~2%
                     "rare": [f"w{i}" for i in range(1995, 2005)]}      # ~0.2%
            codes = ["support.coaching", "scaling.spread", "context.relationships", "purpose.shared-aim"]
            pages = {
                "segments (speaker facet)": ("/segments?_size=50", [""]),
                "documents (4 facets)": ("/documents", [""]),
                "codings (2 facets)": ("/codings", [""]),
                "excerpts of one code": ("/excerpts?code_id={w}", codes),
                "excerpts, all (5 facets)": ("/excerpts", [""]),
                **{f"search, {band} word": ("/segments?_search={w}", words) for band, words in bands.items()},
                "search + speaker filter": ("/segments?_search={w}&speaker=Respondent", bands["mid"]),
                "excerpts search": ("/excerpts?_search={w}", bands["mid"]),
            }
            print(f"{'page':<26} {'median ms':>9} {'p95 ms':>7}")
            every = time_pages(base, pages, args.requests)
            print(f"{'all':<26} {statistics.median(every):>9.0f} {statistics.quantiles(every, n=20)[-1]:>7.0f}")
            print("\nDashboard charts (each chart's query through the JSON API, no filter chosen)")
            time_pages(base, dashboard_charts(path), args.requests)


if __name__ == "__main__":
    main()
