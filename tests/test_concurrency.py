"""Several writers at once: each waits its turn, none fails, nothing is lost."""

import shutil
import subprocess
import sys
import threading
import urllib.request

from qualcode import open_project

from .conftest import CORPORA, ROOT, running_server

# One coder's 1,000 decisions, each its own unit of work that reads (finds the segment,
# code and coder) before it writes: the kind of transaction that failed at once when begun DEFERRED.
WRITER = """
import sys
from qualcode import open_project
from qualcode.coding import apply_code
db = open_project(sys.argv[1], create=False)
coder, offset = sys.argv[2], int(sys.argv[3])
segments = [r["id"] for r in db.query("SELECT id FROM segments ORDER BY id")]
codes = [r["id"] for r in db.query("SELECT id FROM codes WHERE depth = 1 ORDER BY id")]
for k in range(1000):
    apply_code(db, segments[(k + offset) % len(segments)], codes[k % len(codes)], coder, create_coder=True)
print("done")
"""


def test_writers_wait_their_turn(corpus_db, gold_db, tmp_path):
    path = tmp_path / "qualcode.db"
    shutil.copy(corpus_db, path)
    env_python = [sys.executable, "-c", WRITER, str(path)]
    procs = [
        subprocess.Popen([*env_python, "Writer One", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
        subprocess.Popen([*env_python, "Writer Two", "500"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
    ] + [
        subprocess.Popen([sys.executable, "-m", "qualcode", "code", "--batch", str(sheet), "--create-coder",
                          "--db", str(path)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for sheet in sorted((CORPORA / "coding").glob("*.csv"))
    ]
    reads, failures = [], []
    with running_server(path) as base:
        def read():
            while any(p.poll() is None for p in procs):
                try:
                    with urllib.request.urlopen(f"{base}/qualcode/codings.json?_size=5&_sort_desc=id", timeout=10) as r:
                        reads.append(r.status)
                except OSError as e:
                    failures.append(str(e))
        reader = threading.Thread(target=read)
        reader.start()
        outputs = [p.communicate(timeout=300) for p in procs]
        reader.join()
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err for _, err in outputs]
    assert all(err == "" for _, err in outputs), [err for _, err in outputs]
    assert failures == [] and reads and set(reads) == {200}

    db = open_project(path, create=False)
    gold = open_project(gold_db, create=False)
    per_coder = dict(db.execute("SELECT c.name, count(*) FROM codings JOIN coders c ON c.id = coder_id GROUP BY 1").fetchall())
    expected = dict(gold.execute("SELECT c.name, count(*) FROM codings JOIN coders c ON c.id = coder_id GROUP BY 1").fetchall())
    assert per_coder == {**expected, "Writer One": 1000, "Writer Two": 1000}
    db.close()
    gold.close()


def test_a_lock_held_too_long_says_who_holds_it(corpus_db, tmp_path):
    path = tmp_path / "qualcode.db"
    shutil.copy(corpus_db, path)
    db = open_project(path, create=False)
    segment = db.execute("SELECT document_id || ':' || seq FROM segments LIMIT 1").fetchone()[0]
    with db.atomic():
        db.execute("UPDATE documents SET title = title")  # hold the write lock
        result = subprocess.run(
            [sys.executable, "-m", "qualcode", "code", segment, "support.coaching", "--coder", "Ana", "--create-coder",
             "--db", str(path)],
            cwd=ROOT, capture_output=True, text=True, env={**_env(), "QUALCODE_BUSY_TIMEOUT_MS": "300"})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    import os
    assert "the project is busy" in lines[0] and f"process {os.getpid()}" in lines[0] and "0.3 s" in lines[0]
    # The holder's note is gone once its transaction ends, and the waiting command now succeeds.
    assert not (tmp_path / "qualcode.db-writer").exists()
    assert db.execute("SELECT count(*) FROM codings").fetchone()[0] == 0
    retry = subprocess.run(result.args, cwd=ROOT, capture_output=True, text=True)
    assert retry.returncode == 0, retry.stderr
    db.close()


def _env() -> dict:
    import os

    return dict(os.environ)
