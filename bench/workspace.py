"""The coding workspace on a long interview: server time, time to interactive, scrolling.

Builds the sample project (corpus, lessons codebook, both coders' gold coding) plus one
synthetic 50,000-word interview — two speakers, timed WebVTT cues, sentences recombined from the
sample corpus — with codings by both coders and a `qualcode suggest` run, then serves it with
`qualcode serve` on 127.0.0.1 and, signed in as a coder:

- times GET /-/code/{document} (``--requests`` of them) through HTTP;
- loads the page in headless Chromium ``--loads`` times: navigation start to DOMContentLoaded and
  to the workspace script's ready marker (``#qc[data-ready]``);
- scrolls the whole transcript: a jump to the end, and page by page, one page per frame.

Targets: server under 300 ms, interactive under 1 s.

    python bench/workspace.py [--words 50000] [--requests 20] [--loads 5] [--keep PATH]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from serve import ROOT, build_or_keep, serving  # bench/serve.py, next to this file

from qualcode import open_project
from qualcode.codebook import load_codebook, sync_codebook
from qualcode.coding import apply_batch, apply_code
from qualcode.ingest import IngestOptions, ingest_paths
from qualcode.logins import set_login
from qualcode.memos import add_memo
from qualcode.suggest import suggest

CORPORA = ROOT / "corpora"
CODERS = {"Rosa Delgado": "rosa-bench-secret", "Sam Okonjo": "sam-bench-secret"}
INTERVIEWER, RESPONDENT = "Dana Whitfield", "Marcus Bell"
CHROMIUM = dict(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
DOCUMENT = "bench-long-interview"


def percentiles(times: list[float]) -> tuple[float, float]:
    """Median and 95th percentile."""
    return statistics.median(times), statistics.quantiles(times, n=20, method="inclusive")[-1]


def sentence_pools(db) -> tuple[list[str], list[str]]:
    """Questions and answers from the sample corpus's interviews, to recombine into a new one."""
    questions, answers = [], []
    for (text,) in db.execute("SELECT s.text FROM segments s JOIN documents d ON d.id = s.document_id "
                              "WHERE d.kind IN ('interview', 'focus_group') AND s.speaker IS NOT NULL"):
        for sentence in re.split(r"(?<=[.?!])\s+", " ".join(text.split())):
            if len(sentence.split()) >= 3:
                (questions if sentence.endswith("?") else answers).append(sentence)
    return questions, answers


def clock(seconds: float) -> str:
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{int(h):02d}:{int(m):02d}:{s:06.3f}"


def interview_vtt(rng: random.Random, questions: list[str], answers: list[str], words: int) -> str:
    """A timed two-person interview of about ``words`` words: short questions, answers of one
    sentence to a long story, each turn cut into cues of a dozen words or so, as captioning tools do."""
    lines = ["WEBVTT", "", "NOTE Synthetic interview for bench/workspace.py, recombined from the fictional sample corpus.", ""]
    at, total, turn = 3.0, 0, 0
    while total < words:
        speaker = INTERVIEWER if turn % 2 == 0 else RESPONDENT
        if speaker == INTERVIEWER:
            text = " ".join(rng.sample(answers, rng.choice([0, 0, 1])) + [rng.choice(questions)])
        else:
            text = " ".join(rng.choice(answers) for _ in range(min(30, max(1, int(rng.lognormvariate(1.5, 0.7))))))
        tokens = text.split()
        total += len(tokens)
        for i in range(0, len(tokens), 12):
            cue = tokens[i:i + 12]
            length = len(cue) / 2.6  # about 155 words a minute
            lines += [f"{clock(at)} --> {clock(at + length)}", f"<v {speaker}>{' '.join(cue)}", ""]
            at += length + 0.05
        at += rng.uniform(0.3, 1.8)
        turn += 1
    return "\n".join(lines)


def build(tmp: Path, words: int) -> Path:
    """The sample project plus the long interview, coded in part by both coders, with suggestions."""
    rng = random.Random(14)
    path = tmp / "qualcode.db"
    db = open_project(path)
    sync_codebook(db, load_codebook(ROOT / "codebooks" / "lessons.yml"))
    ingest_paths(db, [], IngestOptions(manifest=CORPORA / "manifest.csv"))
    for sheet in sorted((CORPORA / "coding").glob("*.csv")):
        apply_batch(db, sheet, create_coders=True)
    questions, answers = sentence_pools(db)
    vtt = tmp / f"{DOCUMENT}.vtt"
    vtt.write_text(interview_vtt(rng, questions, answers, words), encoding="utf-8")
    result = ingest_paths(db, [vtt], IngestOptions(attributes={
        "title": "A long interview with a Bayview teacher (synthetic)", "kind": "interview",
        "site": "Bayview Elementary", "role": "teacher", "date": "2024-11-05"}))
    assert not result.errors, [f.error for f in result.errors]
    turns = [r for r in db.query("SELECT id, speaker, text FROM segments WHERE document_id = ? ORDER BY seq", [DOCUMENT])]
    codes = [r["id"] for r in db.query("SELECT id FROM codes WHERE depth = 1")]
    codings = 0
    for t in turns:
        if t["speaker"] != RESPONDENT or rng.random() > 0.3:
            continue
        first = rng.choice(codes)
        for coder in CODERS:
            code = first if coder == "Rosa Delgado" or rng.random() < 0.6 else rng.choice(codes)
            if rng.random() < 0.35:  # a span: one sentence of the turn
                bounds = [(m.start(), m.end()) for m in re.finditer(r"[^.?!]+[.?!]", t["text"])]
                a, b = rng.choice(bounds) if bounds else (0, len(t["text"]))
                while a < b and t["text"][a].isspace():
                    a += 1
                codings += apply_code(db, t["id"], code, coder, span=f"{a}:{b}").added
            else:
                codings += apply_code(db, t["id"], code, coder).added
    for t in rng.sample(turns, 12):
        add_memo(db, "Follow up on this in the second interview.", rng.choice(list(CODERS)), segment=str(t["id"]))
    add_memo(db, "Long interview; the second half covers the district's PLC schedule.", "Rosa Delgado", document=DOCUMENT)
    start = time.perf_counter()
    run = suggest(db, min_score=0.1)  # as `qualcode suggest --min-score 0.1`: a page with more to review
    pending = db.execute("SELECT count(*) FROM suggestions x JOIN segments s ON s.id = x.segment_id "
                         "WHERE s.document_id = ? AND x.status = 'pending'", [DOCUMENT]).fetchone()[0]
    words_stored = db.execute("SELECT word_count FROM documents WHERE id = ?", [DOCUMENT]).fetchone()[0]
    print(f"built {DOCUMENT}: {words_stored:,} words, {len(turns):,} turns, {codings:,} codings by 2 coders, "
          f"{pending:,} pending suggestions ({run.method}, {time.perf_counter() - start:.0f} s to suggest)")
    db.execute("ANALYZE")
    db.close()
    for coder, password in CODERS.items():
        set_login(path, coder, password)
    return path


def sign_in(base: str, coder: str, password: str) -> httpx.Client:
    """An HTTP client signed in as ``coder`` through the login form, as a browser would be."""
    client = httpx.Client(base_url=base, timeout=60)
    form = client.get("/-/code/login").text
    token = re.search(r'name="csrftoken" value="([^"]+)"', form)[1]
    response = client.post("/-/code/login", data={"coder": coder, "password": password, "csrftoken": token})
    if "ds_actor" not in client.cookies:
        raise SystemExit(f"signing in as {coder} failed: {response.status_code}")
    return client


def page_csrf(html: str) -> str:
    """The CSRF token the page hands its script (``#qc[data-csrf]``), which it sends with every write."""
    return re.search(r'data-csrf="([^"]+)"', html)[1]


def time_server(server, requests: int) -> None:
    client = sign_in(server.url, "Rosa Delgado", CODERS["Rosa Delgado"])
    times, reading, size = [], [], 0
    client.get(f"/-/code/{DOCUMENT}")  # the first request compiles the templates
    cpu = server.cpu_seconds()
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(f"/-/code/{DOCUMENT}")
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200 and "Coding as <b>Rosa Delgado</b>" in response.text
        reading.append(int(re.search(r'data-server-ms="(\d+)"', response.text)[1]))
        size = len(response.content)
    cpu = (server.cpu_seconds() - cpu) * 1000 / requests
    median, p95 = percentiles(times)
    print(f"\nGET /-/code/{DOCUMENT} signed in, {requests} requests, {size / 1e6:.1f} MB of HTML "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"  request (HTTP, whole page)       median {median:5.0f} ms   p95 {p95:5.0f} ms   target < 300 ms"
          f"   {'ok' if p95 < 300 else 'MISSED'}")
    median, p95 = percentiles(reading)
    print(f"  of which reading and the turns   median {median:5.0f} ms   p95 {p95:5.0f} ms")
    print(f"  server CPU per request           {cpu:5.0f} ms")


READY = "() => document.getElementById('qc') && document.getElementById('qc').dataset.ready"

# Scroll page by page, one page a frame, to the end; each frame's interval is how long it took to draw.
SCROLL = """async () => {
  window.scrollTo(0, 0);
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const frames = [];
  let last = performance.now();
  const started = last;
  while (window.scrollY + window.innerHeight < document.documentElement.scrollHeight - 1) {
    window.scrollBy(0, window.innerHeight);
    await new Promise((r) => requestAnimationFrame(r));
    const now = performance.now();
    frames.push(now - last);
    last = now;
  }
  return { frames, total: performance.now() - started, height: document.documentElement.scrollHeight };
}"""

JUMP = """async () => {
  window.scrollTo(0, 0);
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const started = performance.now();
  window.scrollTo(0, document.documentElement.scrollHeight);
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  return performance.now() - started;
}"""


def time_browser(server, loads: int) -> None:
    base = server.url
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("\nplaywright is not installed (pip install playwright): the browser figures are skipped")
        return
    if not Path(CHROMIUM["executable_path"]).exists():
        print(f"\n{CHROMIUM['executable_path']} is missing (apt-get install chromium): the browser figures are skipped")
        return

    with sync_playwright() as p:
        browser = p.chromium.launch(**CHROMIUM)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{base}/-/code/login")
        page.fill("input[name=coder]", "Sam Okonjo")
        page.fill("input[name=password]", CODERS["Sam Okonjo"])
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/-/code")
        rows = []
        for i in range(loads + 1):
            page.goto(f"{base}/-/code/{DOCUMENT}", wait_until="domcontentloaded")
            page.wait_for_function(READY)
            timing = page.evaluate("""() => { const n = performance.getEntriesByType('navigation')[0];
                const paint = performance.getEntriesByName('first-contentful-paint')[0];
                return { response: n.responseEnd, dcl: n.domContentLoadedEventEnd,
                         paint: paint ? paint.startTime : null,
                         ready: +document.getElementById('qc').dataset.ready,
                         turns: document.querySelectorAll('.qc-turn').length,
                         nodes: document.getElementsByTagName('*').length }; }""")
            if i:  # the first load fills the browser's cache of the script and stylesheets
                rows.append(timing)
        print(f"\nheadless Chromium, signed in, {loads} loads of the page ({rows[0]['turns']:,} turns, "
              f"{rows[0]['nodes']:,} elements), from navigation start:")
        for label, key in [("HTML received", "response"), ("first contentful paint", "paint"),
                           ("DOMContentLoaded", "dcl"), ("interactive (script ready)", "ready")]:
            values = [r[key] for r in rows if r[key] is not None]
            if values:
                median, p95 = percentiles(values)
                print(f"  {label:<28} median {median:5.0f} ms   max {max(values):5.0f} ms")
        ready = max(r["ready"] for r in rows)
        print(f"  target: interactive < 1000 ms   {'ok' if ready < 1000 else 'MISSED'} (slowest of {loads})")
        jumps = [page.evaluate(JUMP) for _ in range(5)]
        print(f"  jump to the end (scrollTo + 2 frames)   median {statistics.median(jumps):5.0f} ms")
        scroll = page.evaluate(SCROLL)
        frames = scroll["frames"]
        median, p95 = percentiles(frames)
        print(f"  scroll to the end page by page: {len(frames)} pages of {scroll['height']:,} px in "
              f"{scroll['total']:.0f} ms; frame median {median:.0f} ms, p95 {p95:.0f} ms, max {max(frames):.0f} ms, "
              f"{sum(f > 50 for f in frames)} frames over 50 ms")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=20, help="timed GETs of the page")
    parser.add_argument("--loads", type=int, default=5, help="timed page loads in Chromium")
    parser.add_argument("--keep", type=Path, metavar="PATH", help="build the project at PATH once and reuse it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = build_or_keep(Path(tmp), args.words, args.keep, builder=build, companions=(".logins",))
        with serving(path) as server:
            server.settle()
            time_server(server, args.requests)
            if args.loads:
                time_browser(server, args.loads)


if __name__ == "__main__":
    main()
