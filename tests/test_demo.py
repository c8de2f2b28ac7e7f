"""`make demo` — the first thing a new user runs — ends with the server answering."""

import json
import os
import signal
import subprocess
import time
import urllib.request

from .conftest import ROOT
from .conftest import free_port


def test_make_demo_ends_with_the_server_answering(tmp_path):
    port = free_port()
    db = tmp_path / "qualcode.db"
    proc = subprocess.Popen(["make", "demo", f"DB={db}", f"PORT={port}"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/qualcode/suggestions.json?_shape=array", timeout=2) as r:
                    suggestions = json.loads(r.read())
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(proc.stdout.read().decode()[-3000:])
                time.sleep(1)
        assert suggestions and all(s["model_run_id"] for s in suggestions)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/qualcode/codings.json?_shape=array&_size=1", timeout=5) as r:
            assert json.loads(r.read())
        # The demo's two coders give agreement figures in the agreement view.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/qualcode/agreement.json?_shape=array&level=0", timeout=5) as r:
            lessons = json.loads(r.read())
        assert {a["code_id"] for a in lessons} == {"purpose", "support", "scaling", "context"}
        assert all(0.7 < a["cohen_kappa"] < 1 for a in lessons)
        # The sample says what it is: its title and licence come from the project the demo built.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            page = r.read().decode()
        assert "three school districts (fictional sample)</h1>" in page and "sample corpus CC BY 4.0" in page
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    output = proc.stdout.read().decode()
    assert "run it as .venv/bin/qualcode" in output and "source .venv/bin/activate" in output
