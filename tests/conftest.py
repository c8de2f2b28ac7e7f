import contextlib
import sqlite3
from pathlib import Path

import pytest

from qualcode import open_project
from qualcode.codebook import load_codebook, sync_codebook

ROOT = Path(__file__).resolve().parent.parent
LESSONS = ROOT / "codebooks" / "lessons.yml"
CORPORA = ROOT / "corpora"


def dump(path) -> list[str]:
    """Every schema statement and row of a database, for before/after comparisons."""
    conn = sqlite3.connect(str(path))
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "project.db"


@pytest.fixture
def db(db_path):
    db = open_project(db_path)
    yield db
    db.close()


@pytest.fixture
def coded_db(db):
    """A project with the lessons codebook loaded."""
    sync_codebook(db, load_codebook(LESSONS))
    return db


@pytest.fixture(scope="session")
def corpus_db(tmp_path_factory):
    """The whole sample corpus ingested with its manifest, and the codebook loaded."""
    from qualcode.ingest import IngestOptions, ingest_paths

    path = tmp_path_factory.mktemp("corpus") / "qualcode.db"
    db = open_project(path)
    sync_codebook(db, load_codebook(LESSONS))
    result = ingest_paths(db, [], IngestOptions(manifest=CORPORA / "manifest.csv"))
    assert not result.errors, [f.error for f in result.errors]
    db.close()
    return path


@pytest.fixture(scope="session")
def gold_db(corpus_db, tmp_path_factory):
    """The corpus with both coders' gold coding applied (a copy; the corpus fixture stays uncoded)."""
    import shutil

    from qualcode.coding import apply_batch

    path = tmp_path_factory.mktemp("gold") / "qualcode.db"
    shutil.copy(corpus_db, path)
    db = open_project(path)
    for sheet in sorted((CORPORA / "coding").glob("*.csv")):
        apply_batch(db, sheet, create_coders=True)
    db.close()
    return path


@pytest.fixture
def gold_copy(gold_db, tmp_path):
    """A private copy of the gold project, for tests that change it."""
    import shutil

    source = open_project(gold_db)
    source.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    source.close()
    path = tmp_path / "qualcode.db"
    shutil.copy(gold_db, path)
    return path


def gold_rows() -> list[dict]:
    """The coding spreadsheets, read independently of qualcode."""
    import csv

    rows = []
    for sheet in sorted((CORPORA / "coding").glob("*.csv")):
        with sheet.open(newline="") as f:
            rows.extend(csv.DictReader(f))
    return rows


def assert_excerpts_current(conn) -> None:
    """The excerpts table, kept by triggers, matches the view it is copied from."""
    table = conn.execute("SELECT * FROM excerpts ORDER BY excerpt_id").fetchall()
    source = conn.execute("SELECT * FROM excerpt_source ORDER BY excerpt_id").fetchall()
    assert table == source
    assert len(table) == conn.execute("SELECT count(*) FROM codings").fetchone()[0]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(db_path, *args: str, cwd=ROOT):
    """A real `qualcode serve` on 127.0.0.1, polled until it answers; yields its base URL."""
    import subprocess
    import sys
    import time
    import urllib.request

    import tempfile

    port = free_port()
    # The log goes to a file: a pipe nobody reads fills after a few thousand requests' access
    # lines, and the server then stops, blocked on writing the next one.
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [sys.executable, "-m", "qualcode", "serve", "--db", str(db_path), "--port", str(port), *args],
        cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{base}/-/versions.json", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    proc.kill()
                    proc.wait()
                    log.seek(0)
                    raise AssertionError(log.read().decode() or "server did not answer")
                time.sleep(0.3)
        try:
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    finally:
        log.close()
