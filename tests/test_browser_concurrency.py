"""Two coders in the browser workspace and a command-line writer, all at once: nothing is lost.

The coders are HTTP clients doing what the page's script does (sign in through the form, take the
CSRF token the page hands its script, POST JSON to /-/code/api/apply and /-/code/api/suggestion);
the third writer is another process calling the library, one transaction per decision: 1,000
decisions each (QUALCODE_CONCURRENCY_DECISIONS to change it), about 20 s on two idle cores.
`python bench/writes.py` runs the same and prints the round trips.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from qualcode import open_project
from qualcode.logins import set_login

DECISIONS = int(os.environ.get("QUALCODE_CONCURRENCY_DECISIONS", "1000"))
PASSWORDS = {"Ana Browser": "ana-concurrency", "Ben Browser": "ben-concurrency"}
CLI_CODER = "Cleo Terminal"
SUGGESTION_SHARE = 0.2  # of each browser coder's decisions: accepting or rejecting a suggestion

# The command-line writer: each decision its own unit of work, as `qualcode code` makes it.
LOOP = """
import json, sys
from qualcode import open_project
from qualcode.coding import apply_code
db = open_project(sys.argv[1], create=False)
pairs = json.loads(open(sys.argv[3]).read())
for segment, code in pairs:
    apply_code(db, segment, code, sys.argv[2], create_coder=True)
print(len(pairs))
"""


class BrowserCoder:
    """One signed-in browser session, speaking to the server as workspace.js does."""

    def __init__(self, base: str, name: str, password: str, document: str) -> None:
        self.name = name
        self.client = httpx.Client(base_url=base, timeout=120)
        form = self.client.get("/-/code/login").text
        token = re.search(r'name="csrftoken" value="([^"]+)"', form)[1]
        self.client.post("/-/code/login", data={"coder": name, "password": password, "csrftoken": token})
        page = self.client.get(f"/-/code/{document}").text
        assert f"Coding as <b>{name}</b>" in page, page[:500]
        self.csrf = re.search(r'data-csrf="([^"]+)"', page)[1]

    def post(self, action: str, body: dict) -> tuple[int, dict, float]:
        start = time.perf_counter()
        response = self.client.post(f"/-/code/api/{action}", json=body, headers={"x-csrftoken": self.csrf})
        elapsed = (time.perf_counter() - start) * 1000
        try:
            data = response.json()
        except ValueError:
            data = {"ok": False, "error": response.text[:200]}
        return response.status_code, data, elapsed


@dataclass
class Plan:
    """Who does what: disjoint work, so every decision must leave exactly one trace."""
    ops: dict[str, list[tuple[str, dict]]]  # browser coder -> (action, body) in order
    cli_pairs: list[tuple[int, str]]


@dataclass
class Outcome:
    plan: Plan
    times: dict[str, list[float]] = field(default_factory=dict)  # action -> round trips, ms
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cli: subprocess.CompletedProcess | None = None


def prepare(path: Path) -> None:
    """Logins for the two browser coders, and pending suggestions to decide."""
    from qualcode.coding import add_coder
    from qualcode.suggest import suggest

    db = open_project(path, create=False)
    for name in PASSWORDS:
        add_coder(db, name)
    suggest(db)
    db.close()
    for name, password in PASSWORDS.items():
        set_login(path, name, password)


def plan(path: Path, decisions: int, seed: int = 5) -> Plan:
    rng = random.Random(seed)
    db = open_project(path, create=False)
    segments = {r["id"]: (r["start_char"], r["end_char"]) for r in db.query("SELECT id, start_char, end_char FROM segments")}
    codes = [r["id"] for r in db.query("SELECT id FROM codes WHERE depth = 1 ORDER BY id")]
    pending = [(r["id"], r["segment_id"], r["code_id"]) for r in
               db.query("SELECT id, segment_id, code_id FROM suggestions WHERE status = 'pending' ORDER BY id")]
    db.close()
    rng.shuffle(pending)
    per_coder = round(decisions * SUGGESTION_SHARE)
    assert len(pending) >= 2 * per_coder, f"only {len(pending)} pending suggestions"
    taken = {(s, c) for _, s, c in pending}
    pairs = [(s, c) for s in segments for c in codes if (s, c) not in taken]
    rng.shuffle(pairs)
    ops: dict[str, list[tuple[str, dict]]] = {}
    for i, name in enumerate(PASSWORDS):
        mine = [("suggestion", {"suggestion_id": sid, "accept": k % 2 == 0})
                for k, (sid, _, _) in enumerate(pending[i * per_coder:(i + 1) * per_coder])]
        for segment, code in pairs[:decisions - len(mine)]:
            start, end = segments[segment]
            body = {"segment_id": segment, "code_id": code}
            if rng.random() < 0.5 and end - start > 1:  # a selection of words, as document offsets
                body["start"], body["end"] = start, start + (end - start) // 2
            mine.append(("apply", body))
        del pairs[:decisions - per_coder]
        rng.shuffle(mine)
        ops[name] = mine
    return Plan(ops, pairs[:decisions])


def write_at_once(path: Path, base: str, work: Plan) -> Outcome:
    """Both browser coders and the command-line loop, started together; every answer recorded."""
    outcome = Outcome(work, {"apply": [], "suggestion": []})
    document = open_project(path, create=False).execute("SELECT id FROM documents ORDER BY id LIMIT 1").fetchone()[0]
    coders = [BrowserCoder(base, name, password, document) for name, password in PASSWORDS.items()]
    pairs_file = path.with_name("cli-pairs.json")
    pairs_file.write_text(json.dumps(work.cli_pairs))
    lock = threading.Lock()

    def run(coder: BrowserCoder) -> None:
        for action, body in work.ops[coder.name]:
            status, data, elapsed = coder.post(action, body)
            with lock:
                outcome.times[action].append(elapsed)
                if status != 200 or not data.get("ok") or (action == "apply" and not data.get("added")):
                    outcome.errors.append(f"{coder.name} {action} {body}: {status} {data.get('error') or data}")

    start = time.perf_counter()
    cli = subprocess.Popen([sys.executable, "-c", LOOP, str(path), CLI_CODER, str(pairs_file)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    threads = [threading.Thread(target=run, args=(c,)) for c in coders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out, err = cli.communicate(timeout=600)
    outcome.seconds = time.perf_counter() - start
    outcome.cli = subprocess.CompletedProcess(cli.args, cli.returncode, out, err)
    return outcome


def check(path: Path, outcome: Outcome) -> int:
    """Every decision is in the database exactly as made, and nothing else is; returns how many."""
    from .conftest import assert_excerpts_current

    db = open_project(path, create=False)
    seen = 0
    for name, ops in outcome.plan.ops.items():
        expected, decided = set(), {}
        for action, body in ops:
            if action == "apply":
                expected.add((body["segment_id"], body["code_id"], body.get("start"), body.get("end")))
            else:
                decided[body["suggestion_id"]] = "accepted" if body["accept"] else "rejected"
        accepted = {sid for sid, status in decided.items() if status == "accepted"}
        expected |= {(s, c, None, None) for s, c in db.execute(
            f"SELECT segment_id, code_id FROM suggestions WHERE id IN ({', '.join(map(str, accepted)) or 'NULL'})")}
        stored = set(db.execute("SELECT g.segment_id, g.code_id, g.start_char, g.end_char FROM codings g "
                                "JOIN coders c ON c.id = g.coder_id WHERE c.name = ?", [name]).fetchall())
        assert stored == expected, (name, len(stored), len(expected))
        marks = ", ".join(map(str, decided))
        statuses = dict(db.execute(f"SELECT x.id, x.status FROM suggestions x JOIN coders c ON c.id = x.decided_by "
                                   f"WHERE x.id IN ({marks}) AND c.name = ?", [name]).fetchall())
        assert statuses == decided, name
        seen += len(ops)
    cli = set(db.execute("SELECT g.segment_id, g.code_id FROM codings g JOIN coders c ON c.id = g.coder_id "
                         "WHERE c.name = ? AND g.start_char IS NULL", [CLI_CODER]).fetchall())
    assert cli == {tuple(p) for p in outcome.plan.cli_pairs}
    seen += len(cli)
    assert_excerpts_current(db.conn)
    db.close()
    return seen


def test_two_browser_coders_and_the_cli_write_at_once(corpus_db, tmp_path):
    import shutil

    from .conftest import running_server

    path = tmp_path / "qualcode.db"
    shutil.copy(corpus_db, path)
    prepare(path)
    work = plan(path, DECISIONS)
    # No retraining: a retrain replaces the pending suggestions the coders are about to decide.
    with running_server(path, "--retrain-every", "0") as base:
        outcome = write_at_once(path, base, work)
    assert outcome.errors == []
    assert outcome.cli.returncode == 0 and outcome.cli.stderr == "", outcome.cli.stderr
    assert outcome.cli.stdout.strip() == str(DECISIONS)
    assert check(path, outcome) == 3 * DECISIONS


@pytest.mark.parametrize("args, settings", [
    ([], {"retrain_every": 0, "read": "anyone"}),
    (["--retrain-every", "3"], {"retrain_every": 3, "read": "anyone"}),
])
def test_serve_takes_workspace_settings_from_the_metadata_and_options(corpus_db, tmp_path, args, settings):
    """`retrain_every` from --metadata reaches the workspace; --retrain-every and --read win over it."""
    import shutil

    from .conftest import running_server

    path = tmp_path / "qualcode.db"
    shutil.copy(corpus_db, path)
    metadata = tmp_path / "metadata.yml"
    metadata.write_text("plugins:\n  qualcode:\n    retrain_every: 0\n    read: coders\n", encoding="utf-8")
    with running_server(path, "--metadata", str(metadata), *args) as base:
        served = httpx.get(f"{base}/-/metadata.json").json()
    assert served["plugins"]["qualcode"] == settings


def test_serve_refuses_a_negative_retrain_every(corpus_db):
    from click.testing import CliRunner

    from qualcode import cli

    result = CliRunner().invoke(cli.cli, ["serve", "--db", str(corpus_db), "--retrain-every", "-1"])
    assert result.exit_code == 2
    assert "Invalid value for '--retrain-every': -1 is not in the range x>=0" in result.output
