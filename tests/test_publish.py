import os
import sqlite3

import pytest
from click.testing import CliRunner

from qualcode import cli, open_project
from qualcode.publish import publish, read_names

from .conftest import assert_excerpts_current, dump


@pytest.fixture
def project(gold_copy):
    """A copy of the coded corpus with one unpublished document and a coded span."""
    path = gold_copy
    db = open_project(path)
    with db.atomic():
        db.execute("UPDATE documents SET published = 0 WHERE id = 'cedar-07-site-visit-notes'")
        seg = db.execute("SELECT id, start_char, text FROM segments WHERE document_id = 'harbor-03-coach-seacliff' "
                         "AND text LIKE '%Jonah%' LIMIT 1").fetchone()
        offset = seg[2].index("Jonah")
        db.execute("""INSERT INTO codings (segment_id, code_id, coder_id, start_char, end_char, origin, created_at)
                      VALUES (?, 'support.coaching', 1, ?, ?, 'manual', 'now')""",
                   [seg[0], seg[1] + offset, seg[1] + offset + 40])
    db.close()
    return path


def test_published_copy_exposes_no_listed_name(project, tmp_path):
    names_file = tmp_path / "names.txt"
    names_file.write_text("# people and places\nSeacliff Middle School = a middle school\nDaniela = a student\nFeld\n")
    out = tmp_path / "shared.db"
    before = dump(project)
    result = publish(project, out, pseudonymise=True, names=read_names(names_file))
    assert dump(project) == before  # the working database is untouched
    assert result["dropped_documents"] == 1 and result["documents"] == 21
    conn = sqlite3.connect(out)
    speakers = {r[0] for r in sqlite3.connect(project).execute("SELECT DISTINCT speaker FROM segments")}
    named = {s for s in speakers if s and " " in s} | {"Seacliff Middle School", "Daniela", "Feld", "Natarajan"}
    # Tables, indexes, FTS index and free pages alike, read as UTF-8 (latin-1 cannot see 'é'), folded.
    raw = out.read_bytes().decode("utf-8", "replace")
    folded = fold(raw)
    for name in named:
        assert fold(name) not in folded, name
    assert "Participant 1" in raw and "a middle school" in raw
    texts = dict(conn.execute("SELECT id, text FROM documents"))
    for doc, start, end, text in conn.execute("SELECT document_id, start_char, end_char, text FROM segments"):
        assert texts[doc][start:end] == text
    for doc, start, end, text in conn.execute(
            "SELECT s.document_id, g.start_char, g.end_char, s.text FROM codings g JOIN segments s ON s.id = g.segment_id "
            "WHERE g.start_char IS NOT NULL"):
        assert texts[doc][start:end] in text
    assert conn.execute("SELECT count(*) FROM segments_fts WHERE segments_fts MATCH 'natarajan'").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM segments_fts WHERE segments_fts MATCH 'participant'").fetchone()[0] > 0
    assert_excerpts_current(conn)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert not os.access(out, os.W_OK) or os.geteuid() == 0
    assert oct(out.stat().st_mode & 0o777) == "0o444"


def test_publish_cli_and_refusals(project, tmp_path):
    out = tmp_path / "shared.db"
    runner = CliRunner()
    result = runner.invoke(cli.cli, ["publish", str(out), "--db", str(project)])
    assert result.exit_code == 0 and "21 documents" in result.output and "1 unpublished dropped" in result.output
    result = runner.invoke(cli.cli, ["publish", str(out), "--db", str(project)])
    assert result.exit_code == 1 and "file exists" in result.output
    assert runner.invoke(cli.cli, ["publish", str(out), "--force", "--include-unpublished", "--db", str(project)]).exit_code == 0
    assert sqlite3.connect(out).execute("SELECT count(*) FROM documents").fetchone()[0] == 22
    result = runner.invoke(cli.cli, ["publish", str(project), "--db", str(project)])
    assert result.exit_code == 1 and "different file" in result.output
    bad = tmp_path / "names.txt"
    bad.write_text("Jonah\n= nobody\n")
    result = runner.invoke(cli.cli, ["publish", str(tmp_path / "x.db"), "--names", str(bad), "--db", str(project)])
    assert result.exit_code == 1 and f"{bad}:2: a line with a replacement but no name" in result.output
    assert not (tmp_path / "x.db").exists()


# --- names planted in every field: nothing survives ------------------------------------------------

import json
import re
import subprocess
import sys
import textwrap

from qualcode.codebook import load_codebook, sync_codebook
from qualcode.ingest import IngestOptions, ingest_paths
from qualcode.privacy import (FIELDS, SAFE, LeakError, Pseudonymiser, field_for, fold, scan_database, scan_file)

INTERVIEW = """---
title: Interview with Ana Ruiz at Seacliff
kind: interview
site: Seacliff
district: Núñez County
role: teacher in Ana Ruiz's class
team: [Ana Ruiz, Dr. Feld]
contact: {name: José Núñez, note: ask Ms. Li}
---
Rosa Delgado: Thanks for meeting, Ana. Jose Nunez told me about you and the cycle.

Ana Ruiz: Sure. Ms. Li said the cycle works. RUIZ is my name on the roster; ana-ruiz is my login.

José Núñez: I agree with Ruiz, and Sam Okonjo does too. NÚÑEZ here.

Ms. Li: Fine. Feld agrees.
"""

CODEBOOK = """name: Codebook by Ana Ruiz
version: "1"
description: Drafted with José Núñez.
codes:
  - id: theme
    name: Ruiz's theme
    definition: What Ms. Li calls the cycle.
    include: When Feld talks about it.
    exclude: Anything Sam Okonjo said.
    examples: ["Ana said so"]
    terms: [nunez, cycle]
"""

#: Every form of every name planted above, as a reader would search for it.
FORMS = ["Ana Ruiz", "Ana", "Ruiz", "José Núñez", "Jose Nunez", "Núñez", "Nunez", "José", "Ms. Li", "Li",
         "Rosa Delgado", "Rosa", "Delgado", "Sam Okonjo", "Okonjo", "Seacliff", "Feld", "interview-ana-ruiz"]


def planted_project(tmp_path):
    """Names in document text, title, site, district, role, list and dict attributes, the file name (so the
    document id and source path), the codebook, a coder who is also a speaker, a coder who is not, consensus
    decisions, memos, coding memos, model-run parameters (JSON-escaped), metrics and suggestion evidence;
    plus one document unpublished in its front matter and one in the manifest."""
    folder = tmp_path / "corpus"
    (folder / "notes").mkdir(parents=True)
    (folder / "interview-ana-ruiz.txt").write_text(INTERVIEW, encoding="utf-8")
    (folder / "hidden.txt").write_text("---\npublished: false\n---\nNotes about Ana Ruiz.\n", encoding="utf-8")
    (folder / "notes" / "visit.md").write_text("Visit notes naming Rosa.\n", encoding="utf-8")
    (folder / "notes" / "kept.md").write_text("Kept notes.\n", encoding="utf-8")
    (folder / "manifest.csv").write_text("path,published\nnotes/visit.md,no\nnotes/kept.md,yes\n", encoding="utf-8")
    (tmp_path / "book.yml").write_text(CODEBOOK, encoding="utf-8")
    path = tmp_path / "project.db"
    db = open_project(path)
    sync_codebook(db, load_codebook(tmp_path / "book.yml"))
    assert not ingest_paths(db, [folder / "interview-ana-ruiz.txt", folder / "hidden.txt"], IngestOptions()).errors
    assert not ingest_paths(db, [], IngestOptions(manifest=folder / "manifest.csv")).errors
    doc = "interview-ana-ruiz"
    segs = {r["speaker"]: r for r in db.query("SELECT id, speaker, start_char FROM segments WHERE document_id = ?", [doc])}
    text = db.execute("SELECT text FROM documents WHERE id = ?", [doc]).fetchone()[0]
    inside = text.index("Nunez told") + 2  # a span that starts inside a name
    with db.atomic():
        db.execute("INSERT INTO coders (id, name, created_at) VALUES (1, 'Rosa Delgado', 'now'), (2, 'Sam Okonjo', 'now')")
        db.execute("INSERT INTO coders (id, name, consensus, created_at) VALUES (3, 'Consensus', 1, 'now')")
        db.execute("INSERT INTO codings (segment_id, code_id, coder_id, start_char, end_char, origin, memo, created_at) "
                   "VALUES (?, 'theme', 1, ?, ?, 'manual', 'Ana Ruiz was candid', 'now')",
                   [segs["Rosa Delgado"]["id"], inside, text.index(" and the cycle")])
        db.execute("INSERT INTO codings (segment_id, code_id, coder_id, origin, memo, created_at) "
                   "VALUES (?, 'theme', 2, 'manual', 'Check with Li', 'now')", [segs["Ms. Li"]["id"]])
        db.execute("INSERT INTO consensus_decisions (segment_id, code_id, coder_id, decision, between_coders, memo, decided_at) "
                   "VALUES (?, 'theme', 3, 'apply', 'Rosa Delgado, Sam Okonjo', 'Rosa and Sam agreed; Ana confirmed', 'now')",
                   [segs["Ana Ruiz"]["id"]])
        db.execute("INSERT INTO memos (coder_id, document_id, text, created_at) VALUES (2, ?, 'Follow up with Ms. Li and José', 'now')", [doc])
        db.execute("INSERT INTO model_runs (id, created_at, method, parameters, metrics) VALUES (1, 'now', 'combined', ?, ?)",
                   [json.dumps({"coders": ["Rosa Delgado", "Sam Okonjo"], "note": "José Núñez"}),  # escaped: Jos\u00e9
                    json.dumps({"per_coder": {"Rosa Delgado": {"f1": 0.5}}}, ensure_ascii=False)])
        db.execute("INSERT INTO suggestions (segment_id, code_id, score, method, evidence, model_run_id, status, decided_by, created_at) "
                   "VALUES (?, 'theme', 0.9, 'model', ?, 1, 'rejected', 2, 'now')",
                   [segs["José Núñez"]["id"], json.dumps({"terms": ["nunez"], "features": ["…Ana Ruiz…"]}, ensure_ascii=False)])
        db.execute("INSERT INTO assignments (document_id, coder_id, assigned_at) VALUES (?, 2, 'now')", [doc])
    db.close()
    names = tmp_path / "names.txt"
    names.write_text("Seacliff = a school\nFeld\n", encoding="utf-8")
    return path, read_names(names), text, inside


def survivors_in_bytes(path) -> list[str]:
    """An independent check of the raw bytes, read as UTF-8, folded (case and accents) for long names."""
    raw = path.read_bytes().decode("utf-8", "replace")
    folded = fold(raw)
    found = []
    for form in FORMS:
        if len(form) > 3:
            if re.search(rf"(?<![a-z0-9]){re.escape(fold(form))}(?![a-z0-9])", folded):
                found.append(form)
        elif re.search(rf"(?<![A-Za-z]){re.escape(form)}(?![A-Za-z])", raw):
            found.append(form)
    return found


def test_planted_names_survive_nowhere(tmp_path):
    project, names, original, inside = planted_project(tmp_path)
    db = open_project(project)
    alias = Pseudonymiser.for_project(db, names)
    planted = scan_database(db.conn, project, alias.scan)
    db.close()
    places = {s.where for s in planted if not s.where.startswith("page ")}
    assert len(places) >= 25, sorted(places)  # the scan sees names in that many table.column places
    out = tmp_path / "shared.db"
    result = publish(project, out, pseudonymise=True, names=names)
    assert result["dropped_documents"] == 2  # published: false in front matter, and in the manifest
    conn = sqlite3.connect(out)
    assert scan_database(conn, out, alias.scan) == []
    assert survivors_in_bytes(out) == []
    assert survivors_in_bytes(project)  # the check can fail: the working project is full of them
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert_excerpts_current(conn)
    ids = [r[0] for r in conn.execute("SELECT id FROM documents ORDER BY id")]
    assert ids[0].startswith("doc-") and "kept" in ids[1] and len(ids) == 2
    assert dict(conn.execute("SELECT id, name FROM coders")) == {1: "Participant 1", 2: "Coder 1", 3: "Consensus"}
    assert conn.execute("SELECT source_path FROM documents WHERE id = ?", [ids[0]]).fetchone()[0].endswith(f"{ids[0]}.txt")
    # The span began inside "Nunez": it now covers the whole pseudonym and the text after it.
    text = conn.execute("SELECT text FROM documents WHERE id = ?", [ids[0]]).fetchone()[0]
    start, end = conn.execute("SELECT start_char, end_char FROM codings WHERE start_char IS NOT NULL").fetchone()
    expanded = original.index("Jose Nunez")
    assert text[start:end] == alias.text(original[expanded:original.index(" and the cycle")])
    assert text[start:end].startswith(alias.names["José Núñez"]) and text[start:end].endswith("told me about you")
    for doc, start, end, seg_text in conn.execute("SELECT document_id, start_char, end_char, text FROM segments"):
        assert dict(conn.execute("SELECT id, text FROM documents"))[doc][start:end] == seg_text
    parameters = json.loads(conn.execute("SELECT parameters FROM model_runs").fetchone()[0])
    assert parameters["coders"] == ["Participant 1", "Coder 1"] and parameters["note"] == alias.names["José Núñez"]


@pytest.mark.parametrize("text,expected", [
    ("Ms. Li said so", "P4 said so"),
    ("Jose Nunez and JOSÉ NÚÑEZ", "P3 and P3"),
    ("Ruiz, ana-ruiz and RUIZ", "P2, P2 and P2"),
    ("Ana agreed; an analysis of li", "P2 agreed; an analysis of li"),  # short parts only as written or capitalised
    ("Delgado's notes", "P1's notes"),
])
def test_name_matching(text, expected):
    alias = Pseudonymiser(["Rosa Delgado", "Ana Ruiz", "José Núñez", "Ms. Li"])
    assert alias.text(text).replace("Participant ", "P") == expected


def test_every_text_column_is_walked_or_declared(tmp_path):
    """A migration that adds a text column fails here until privacy.FIELDS says how publish treats it."""
    conn = open_project(tmp_path / "fresh.db").conn
    seen = set()
    for name, in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"):
        for column in conn.execute(f"PRAGMA table_info([{name}])"):
            if column[2].upper() in ("TEXT", ""):
                field = field_for(name, column[1])
                assert field is not None, f"{name}.{column[1]} is not in qualcode.privacy.FIELDS"
                assert field.kind != SAFE or field.reason, f"{name}.{column[1]} is declared safe without a reason"
                seen.add((name, column[1]))
    assert set(FIELDS) <= seen  # and nothing listed that the schema no longer has


def test_verification_failure_leaves_no_file(tmp_path):
    project, names, _, _ = planted_project(tmp_path)
    db = open_project(project)
    with db.atomic():  # a column publish does not rewrite (it is declared safe) holding a name anyway
        db.execute("UPDATE documents SET format = 'Ana Ruiz' WHERE id = 'interview-ana-ruiz'")
    db.close()
    out = tmp_path / "shared.db"
    with pytest.raises(LeakError, match=r"'Ana Ruiz' in documents\.format"):
        publish(project, out, pseudonymise=True, names=names)
    assert not out.exists() and list(tmp_path.glob(".shared.db*")) == []
    out.write_text("the previous copy")  # with --force, the file that was there stays until a good one replaces it
    result = CliRunner().invoke(cli.cli, ["publish", str(out), "--force", "--pseudonymise", "--db", str(project)])
    assert result.exit_code == 1 and "documents.format" in result.output and "Traceback" not in result.output
    assert out.read_text() == "the previous copy"


@pytest.mark.parametrize("command", ["publish", "clone"])
def test_killed_before_the_file_is_in_place_leaves_nothing_there(tmp_path, command):
    project, names, _, _ = planted_project(tmp_path)
    out = tmp_path / "copy.db"
    call = (f"from qualcode.publish import publish; publish({str(project)!r}, {str(out)!r}, pseudonymise=True)"
            if command == "publish" else
            f"from qualcode import open_project; from qualcode.sync import clone; clone(open_project({str(project)!r}), {str(out)!r})")
    # The process dies at the worst moment: the copy complete, not yet moved into place.
    script = f"import os\nos.replace = lambda *a: os._exit(9)\n{call}\n"
    assert subprocess.run([sys.executable, "-c", script]).returncode == 9
    assert not out.exists()
    [partial] = tmp_path.glob(".copy.db.partial-*")
    assert oct(partial.stat().st_mode & 0o777) == "0o700"  # what it left, nobody else can read
    if command == "publish":
        publish(project, out, pseudonymise=True)
    else:
        from qualcode.sync import clone
        clone(open_project(project), out)
    assert out.exists() and list(tmp_path.glob(".copy.db.partial-*")) == []


def test_pseudonymised_exports_carry_no_name(tmp_path):
    project, _, _, _ = planted_project(tmp_path)
    alias = Pseudonymiser.for_project(open_project(project))
    runner = CliRunner()
    for command, name in [("quotes", "q.csv"), ("json", "q.json"), ("report", "r.docx"),
                          ("report", "r.md"), ("matrix", "m.csv"), ("memos", "m.md")]:
        out = tmp_path / name
        result = runner.invoke(cli.cli, ["export", command, str(out), "--pseudonymise", "--all-coders", "--db", str(project)]
                               if command != "memos" else ["export", command, str(out), "--pseudonymise", "--db", str(project)])
        assert result.exit_code == 0, result.output
        assert scan_file(out, alias.scan) == [], name
        plain = tmp_path / f"plain-{name}"
        runner.invoke(cli.cli, ["export", command, str(plain), "--db", str(project)])
        assert scan_file(plain, alias.scan) or command == "matrix", name  # without --pseudonymise, names are there


@pytest.mark.parametrize("front,manifest,published", [
    ("published: false\n", None, 0), ("published: no\n", None, 0), ("", "no", 0), ("", "yes", 1),
    ("published: true\n", "false", 0), ("", None, 1)])
def test_published_attribute(tmp_path, front, manifest, published):
    doc = tmp_path / "a.txt"
    doc.write_text(f"---\n{front}title: A\n---\nSome text.\n" if front else "Some text.\n")
    options = IngestOptions()
    if manifest is not None:
        (tmp_path / "m.csv").write_text(f"path,published\na.txt,{manifest}\n")
        options = IngestOptions(manifest=tmp_path / "m.csv")
    db = open_project(tmp_path / "p.db")
    assert not ingest_paths(db, [] if manifest is not None else [doc], options).errors
    assert db.execute("SELECT published FROM documents").fetchone()[0] == published
    assert "published" not in db.execute("SELECT attributes FROM documents").fetchone()[0]


def test_published_attribute_must_be_true_or_false(tmp_path):
    doc = tmp_path / "a.txt"
    doc.write_text("---\npublished: maybe\n---\nSome text.\n")
    result = ingest_paths(open_project(tmp_path / "p.db"), [doc], IngestOptions())
    assert "published 'maybe' is not true or false" in result.errors[0].error
