import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import json
import re

import pytest
from click.testing import CliRunner
from datasette.app import Datasette

from qualcode import cli
from qualcode.publish import is_loopback, load_metadata

from .conftest import ROOT, free_port, running_server
from .test_export import EVIL_LINES, assert_inert_csv, evil_db, unneutralised  # noqa: F401 (evil_db is a fixture)


@pytest.fixture
def datasette(corpus_db):
    return Datasette([str(corpus_db)], metadata=load_metadata(ROOT / "datasette-metadata.yml", corpus_db))


async def test_documents_table_with_facets(datasette):
    response = await datasette.client.get("/qualcode/documents.json?_shape=objects&_facet=district")
    assert response.status_code == 200
    data = response.json()
    districts = {f["value"] for f in data["facet_results"]["district"]["results"]}
    assert {"Harbor Unified (fictional)", "Cedar Valley Unified (fictional)", "Lakemont City Schools (fictional)"} == districts


async def test_full_text_search_stems(datasette):
    response = await datasette.client.get("/qualcode/segments.json?_search=coaching&_shape=array&_size=max")
    rows = response.json()
    assert rows and all("coach" in r["text"].lower() for r in rows)


async def test_metadata_is_served(datasette):
    response = await datasette.client.get("/qualcode/segments")
    assert response.status_code == 200
    assert "documents.text[start_char:end_char]" in response.text


def test_metadata_database_key_follows_file(tmp_path):
    data = load_metadata(ROOT / "datasette-metadata.yml", tmp_path / "study.db")
    assert "study" in data["databases"] and "qualcode" not in data["databases"]


@pytest.mark.parametrize("host,loopback", [("127.0.0.1", True), ("localhost", True), ("::1", True), ("0.0.0.0", False), ("192.168.1.5", False)])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


PROJECT_TITLE = "Coaching study, spring 2025 (test)"


@pytest.fixture(scope="module")
def server(gold_db, tmp_path_factory):
    """A real `qualcode serve` on 127.0.0.1 of a project with its own title, started from another folder."""
    from qualcode import open_project
    from qualcode.about import set_about

    path = tmp_path_factory.mktemp("served") / "qualcode.db"
    shutil.copy(gold_db, path)
    db = open_project(path)
    set_about(db, title=PROJECT_TITLE, license="internal use only")
    db.close()
    with running_server(path, cwd=path.parent) as base:
        yield base


def test_real_server_on_loopback(server):
    with urllib.request.urlopen(f"{server}/qualcode/documents.json?_shape=array&_size=100", timeout=5) as r:
        rows = json.loads(r.read())
    assert len(rows) >= 18
    with urllib.request.urlopen(f"{server}/", timeout=5) as r:
        page = r.read().decode()
    # A project that never set its title is served under its file name, never under the sample's words.
    assert f"<h1>{PROJECT_TITLE}</h1>" in page and "internal use only" in page and "fictional sample" not in page


CHROMIUM = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--window-size=1280,1000"]


@pytest.mark.parametrize(
    "name,path,expected",
    [
        ("home", "/", PROJECT_TITLE),
        ("documents", "/qualcode/documents?_facet=district", "Harbor Unified (fictional)"),
        ("excerpts", "/qualcode/excerpts?code_id=support.coaching", "Coaching"),
        ("search", "/qualcode/segments?_search=coaching", "coach"),
        ("transcript", "/qualcode/transcript?document=harbor-04-teacher-seacliff", "support.coaching"),
        ("codebook", "/qualcode/codebook_tree", "<strong>Use when:</strong>"),
    ],
)
def test_pages_render_in_chromium(server, tmp_path, name, path, expected):
    assert shutil.which("chromium"), "Debian's chromium is missing: `make test` installs it (apt-get install chromium)"
    profile = tmp_path / "profile"
    dom = subprocess.run([*CHROMIUM, f"--user-data-dir={profile}", "--dump-dom", server + path],
                         capture_output=True, text=True, timeout=90)
    assert expected.lower() in dom.stdout.lower(), dom.stderr[-2000:]
    shots = ROOT / "screenshots"
    shots.mkdir(exist_ok=True)
    png = shots / f"{name}.png"
    png.unlink(missing_ok=True)
    subprocess.run([*CHROMIUM, f"--user-data-dir={profile}", f"--screenshot={png}", server + path],
                   capture_output=True, timeout=90)
    assert png.exists() and png.stat().st_size > 10_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_dashboard_charts_render_in_chromium(server, tmp_path):
    """Vega draws each chart as an SVG with class "marks" once its query has answered."""
    dom = subprocess.run([*CHROMIUM, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000",
                          "--dump-dom", server + "/-/dashboards/findings"], capture_output=True, text=True, timeout=90)
    charts = re.findall(r'<svg[^>]*class="marks"', dom.stdout)
    assert len(charts) == 3, dom.stderr[-2000:]  # by site, by role, co-occurrence
    assert "Coaching fitted to the person" in dom.stdout  # an axis label: the data arrived
    png = ROOT / "screenshots" / "dashboard.png"
    png.parent.mkdir(exist_ok=True)
    subprocess.run([*CHROMIUM, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000",
                    "--window-size=1400,1800", f"--screenshot={png}", server + "/-/dashboards/findings"],
                   capture_output=True, timeout=90)
    assert png.stat().st_size > 50_000


def test_serve_refuses_missing_project(tmp_path):
    result = CliRunner().invoke(cli.cli, ["serve", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 1
    assert "none.db: no project database here — create one with `qualcode init`" in result.output


@pytest.fixture
def gold_datasette(gold_db):
    return Datasette([str(gold_db)], metadata=load_metadata(ROOT / "datasette-metadata.yml", gold_db))


async def test_excerpts_view_with_facets(gold_datasette):
    response = await gold_datasette.client.get(
        "/qualcode/excerpts.json?_shape=objects&_facet=coder&code_id=support.coaching&site=Bayview+Elementary")
    data = response.json()
    assert data["rows"] and all(r["lesson_id"] == "support" for r in data["rows"])
    assert {f["value"] for f in data["facet_results"]["coder"]["results"]} == {"Rosa Delgado", "Sam Okonjo"}


async def test_code_by_site_and_cooccurrence_views(gold_datasette, gold_db):
    from qualcode import open_project
    from qualcode.queries import cooccurrence, frequencies

    db = open_project(gold_db)
    response = await gold_datasette.client.get("/qualcode/code_by_site.json?_shape=array&_size=max&code_id=context")
    by_site = {}
    for r in response.json():  # the view splits by district too: "multiple sites" occurs in each
        by_site[r["site"]] = by_site.get(r["site"], 0) + r["segments"]
    expected = {r["value"]: r["segments"] for r in frequencies(db, "site", "lesson") if r["code_id"] == "context"}
    assert by_site == expected
    response = await gold_datasette.client.get("/qualcode/cooccurrence.json?_shape=array&_size=max&level=1")
    view = {(r["code_a"], r["code_b"]): r["n12"] for r in response.json()}
    assert view == {(r["code_a"], r["code_b"]): r["n12"] for r in cooccurrence(db, "code")}


async def test_canned_queries(gold_datasette, gold_db):
    from qualcode import open_project

    db = open_project(gold_db)
    ds = gold_datasette

    async def rows(query, **params):
        qs = "&".join(f"{k}={v}" for k, v in params.items())
        response = await ds.client.get(f"/qualcode/{query}.json?_shape=array&{qs}")
        assert response.status_code == 200, response.text
        return response.json()

    found = await rows("excerpts_for_code_at_site", code="support", site="Bayview+Elementary")
    expected = db.execute("SELECT count(*) FROM excerpts WHERE lesson_id = 'support' AND site = 'Bayview Elementary'").fetchone()[0]
    assert len(found) == expected > 0
    matrix = await rows("code_by_site_matrix")
    sites = [r[0] for r in db.execute("SELECT DISTINCT site FROM documents ORDER BY site")]
    assert len(matrix) == 17 and list(matrix[0])[2:] == [*sites, "total"]
    for row in matrix:
        assert row["total"] == sum(row[site] for site in sites) > 0
        for site in sites:
            assert row[site] == db.execute(
                "SELECT count(DISTINCT g.segment_id) FROM codings g JOIN segments s ON s.id = g.segment_id "
                "JOIN documents d ON d.id = s.document_id WHERE g.code_id = ? AND d.site = ?", [row["code_id"], site]).fetchone()[0]
    co = await rows("cooccurrence_for_code", code="scaling.spread")
    assert co[0]["other_code"] == "scaling.deepening"
    hits = await rows("search_lesson_excerpts", lesson="support", q="coaching")
    assert hits and all(r["code_id"].startswith("support.") and "coach" in r["text"].lower() for r in hits)
    turns = await rows("transcript", document="harbor-04-teacher-seacliff")
    assert [t["seq"] for t in turns] == list(range(1, len(turns) + 1))
    assert any(t["codes"] and "support.coaching" in t["codes"] for t in turns)


async def test_internal_tables_hidden(gold_datasette):
    response = await gold_datasette.client.get("/qualcode.json")
    tables = {t["name"]: t["hidden"] for t in response.json()["tables"]}
    assert tables["_sqlite_migrations"] and tables["segments_fts"] and tables["coding_removals"]
    assert not tables["segments"] and not tables["documents"]


def test_serve_refuses_remote_host_without_flag(corpus_db):
    result = CliRunner().invoke(cli.cli, ["serve", "--host", "0.0.0.0", "--db", str(corpus_db)])
    assert result.exit_code == 1 and "pass --allow-remote" in result.output


async def test_password_protected_serving(corpus_db, monkeypatch):
    import base64

    from datasette_auth_passwords.utils import hash_password

    from qualcode.publish import with_password

    monkeypatch.setenv("QUALCODE_PASSWORD_HASH", hash_password("s3cret-words"))
    metadata = with_password(load_metadata(ROOT / "datasette-metadata.yml", corpus_db), "evaluator")
    ds = Datasette([str(corpus_db)], metadata=metadata)

    def auth(user, password):
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    assert (await ds.client.get("/qualcode/segments.json")).status_code == 401
    assert (await ds.client.get("/qualcode/segments.json", headers=auth("evaluator", "wrong"))).status_code == 401
    response = await ds.client.get("/qualcode/documents.json?_shape=array", headers=auth("evaluator", "s3cret-words"))
    assert response.status_code == 200 and len(response.json()) >= 18


def test_password_needs_the_hash(corpus_db, monkeypatch):
    monkeypatch.delenv("QUALCODE_PASSWORD_HASH", raising=False)
    result = CliRunner().invoke(cli.cli, ["serve", "--user", "evaluator", "--db", str(corpus_db)])
    assert result.exit_code == 1 and "QUALCODE_PASSWORD_HASH is not set" in result.output


def test_hash_password_command():
    from datasette_auth_passwords.utils import verify_password

    result = CliRunner().invoke(cli.cli, ["hash-password", "--password", "abc123"])
    assert result.exit_code == 0 and verify_password("abc123", result.output.strip())
    result = CliRunner().invoke(cli.cli, ["hash-password"], input="abc\nabd\nabc\nabc\n")
    assert "do not match" in result.output.lower()


def dashboard():
    data = load_metadata(ROOT / "datasette-metadata.yml", ROOT / "qualcode.db")
    return data["plugins"]["datasette-dashboards"]["findings"]


async def chart_rows(ds, chart, **params):
    """Run a dashboard chart's query the way the plugin does: optional [[ ... ]] parts kept when their parameter is set."""
    sql = chart["query"]
    sql = re.sub(r"\[\[(.*?)\]\]", lambda m: m.group(1) if any(f":{p}" in m.group(1) for p in params) else "", sql)
    response = await ds.client.get("/qualcode.json", params={"sql": sql, "_shape": "array", **params})
    assert response.status_code == 200, response.text
    return response.json()


async def test_dashboard_is_listed_and_its_charts_answer(gold_datasette, gold_db):
    from qualcode import open_project
    from qualcode.queries import frequencies

    response = await gold_datasette.client.get("/-/dashboards/findings")
    assert response.status_code == 200 and "Findings at a glance" in response.text
    charts = dashboard()["charts"]
    db = open_project(gold_db)
    by_role = await chart_rows(gold_datasette, charts["by-role"])
    expected = {(r["code_id"], r["value"] or "unknown"): r["segments"] for r in frequencies(db, "role", "code")}
    names = {c["name"]: c["id"] for c in db["codes"].rows}
    assert {(names[r["code"]], r["role"]): r["segments"] for r in by_role} == expected
    one_district = await chart_rows(gold_datasette, charts["by-site"], lesson="support",
                                    district="Lakemont City Schools (fictional)")
    sites = {r["site"] for r in db["documents"].rows_where("district = ?", ["Lakemont City Schools (fictional)"])}
    assert one_district and {r["site"] for r in one_district} <= sites
    assert all(names[r["code"]].startswith("support.") for r in one_district)
    coded = await chart_rows(gold_datasette, charts["coded"])
    assert coded[0]["n"] == db.execute("SELECT count(DISTINCT segment_id) FROM codings").fetchone()[0]
    by_site = await chart_rows(gold_datasette, charts["by-site"])
    expected = {(r["code_id"], r["value"]): r["segments"] for r in frequencies(db, "site", "code")}
    assert {(names[r["code"]], r["site"]): r["segments"] for r in by_site} == expected
    matrix = await chart_rows(gold_datasette, charts["cooccurrence"])
    assert {(r["a"], r["b"]) for r in matrix} == {(r["b"], r["a"]) for r in matrix}  # symmetric
    view = {(r["code_a"], r["code_b"]): (r["n12"], r["coefficient"])
            for r in db.query("SELECT * FROM cooccurrence WHERE level = 1")}
    assert {(r["a"], r["b"]): (r["n12"], r["coefficient"]) for r in matrix if r["a"] < r["b"]} == view


def test_dashboard_follows_the_database_name(tmp_path):
    data = load_metadata(ROOT / "datasette-metadata.yml", tmp_path / "study.db")
    findings = data["plugins"]["datasette-dashboards"]["findings"]
    assert {c.get("db") for c in findings["charts"].values()} == {"study", None}  # None: the Markdown note


async def test_codebook_tree_reads_in_codebook_order(gold_datasette):
    from qualcode.codebook import load_codebook

    from .conftest import LESSONS

    def walk(codes):
        for code in codes:
            yield code.id
            yield from walk(code.children)

    response = await gold_datasette.client.get("/qualcode/codebook_tree.json?_shape=array&_size=max")
    rows = response.json()
    assert [r["code_id"] for r in rows] == list(walk(load_codebook(LESSONS).codes))
    lesson = next(r for r in rows if r["code_id"] == "support")
    children = [r for r in rows if r["lesson_id"] == "support" and r["depth"] == 1]
    assert lesson["coded_segments"] >= max(r["coded_segments"] for r in children) > 0
    assert all(r["code"].startswith("\u2003\u2003└ ") for r in children)
    page = await gold_datasette.client.get("/qualcode/codebook_tree?_layout=table")  # Datasette's table
    assert "<strong>Not when:</strong>" in page.text and "<blockquote>" in page.text  # Markdown rendered


async def test_suggestions_to_review_view(gold_copy):
    """Pending suggestions only, best first; a decided one leaves the view."""
    from qualcode import open_project
    from qualcode.suggest.review import decide

    db = open_project(gold_copy)
    segment = db.execute("SELECT id FROM segments ORDER BY id LIMIT 1").fetchone()[0]
    db["suggestions"].insert_all(
        [{"segment_id": segment + i, "code_id": code, "score": score, "method": "lexicon",
          "evidence": '{"terms": ["coach", "mentor"]}', "created_at": "2026-11-23T00:00:00+00:00"}
         for i, (code, score) in enumerate([("support.coaching", 0.9), ("scaling.spread", 0.4), ("context.relationships", 0.7)])])
    ds = Datasette([str(gold_copy)], metadata=load_metadata(ROOT / "datasette-metadata.yml", gold_copy))
    rows = (await ds.client.get("/qualcode/suggestions_to_review.json?_shape=array&_size=max")).json()
    assert [(r["code_id"], r["score"]) for r in rows] == [("support.coaching", 0.9), ("context.relationships", 0.7), ("scaling.spread", 0.4)]
    assert rows[0]["terms"] == "coach, mentor" and rows[0]["segment"].endswith(":1")
    decide(db, rows[0]["suggestion_id"], "Rosa Delgado", accept=False)
    rows = (await ds.client.get("/qualcode/suggestions_to_review.json?_shape=array&_size=max")).json()
    assert [r["code_id"] for r in rows] == ["context.relationships", "scaling.spread"]


async def test_search_modes(gold_datasette):
    """Segments take FTS5 syntax (raw); excerpts take words as typed, apostrophes and all."""
    near = (await gold_datasette.client.get(
        "/qualcode/segments.json", params={"_search": "NEAR(coach principal, 5)", "_shape": "array", "_size": "max"})).json()
    both = (await gold_datasette.client.get(
        "/qualcode/segments.json", params={"_search": "coach principal", "_shape": "array", "_size": "max"})).json()
    assert near and len(near) < len(both)
    prefix = (await gold_datasette.client.get(
        "/qualcode/segments.json", params={"_search": "scal*", "_shape": "array", "_size": "max"})).json()
    assert prefix and all("scal" in r["text"].lower() for r in prefix)
    response = await gold_datasette.client.get(
        "/qualcode/excerpts.json", params={"_search": "don't know", "_shape": "array", "_size": "max"})
    assert response.status_code == 200
    assert response.json() and all("know" in r["text"].lower() for r in response.json())


# --- Datasette's CSV, neutralised like our exports ---------------------------------------------


def test_real_server_csv_is_neutralised(server):
    """Through `qualcode serve`, so the plugin's entry point is what installs the hook."""
    import csv

    with urllib.request.urlopen(f"{server}/qualcode/excerpts.csv?_stream=on&_size=max", timeout=30) as r:
        rows = list(csv.DictReader(r.read().decode("utf-8").splitlines()))
    assert len(rows) == 1284
    assert_inert_csv(rows)
    assert sum(row["text"].startswith("'- ") for row in rows) == 12  # field-note bullet lists


@pytest.mark.parametrize("path", [
    "/evil/segments.csv",
    "/evil/segments.csv?_dl=1",
    "/evil/segments.csv?_stream=on&_size=2",  # several pages, one chunk per row
    "/evil/excerpts.csv?_labels=on",
    "/evil.csv?sql=select+text,+seq+from+segments+order+by+seq",
])
async def test_datasette_csv_has_no_formulas(evil_db, path):
    import csv

    ds = Datasette([str(evil_db)])
    response = await ds.client.get(path)
    assert response.status_code == 200
    rows = list(csv.DictReader(response.text.splitlines()))
    assert [unneutralised(r["text"]) for r in rows] == EVIL_LINES  # the text is otherwise intact
    assert [r["text"][0] for r in rows] == ["'", "'", "'", "'", "<"]
    assert_inert_csv(rows)
    assert [int(r["seq"]) for r in rows] == [1, 2, 3, 4, 5]
    if "_dl" in path:
        assert response.headers["content-type"].startswith("text/csv")


async def test_datasette_csv_keeps_numbers_and_other_formats(evil_db):
    import csv

    ds = Datasette([str(evil_db)])
    response = await ds.client.get("/evil.csv?sql=select+-3+as+n,+-0.5+as+x,+1e-5+as+e,+'-3+below'+as+t,+'%3D1%2B1'+as+f")
    assert list(csv.reader(response.text.splitlines())) == [["n", "x", "e", "t", "f"], ["-3", "-0.5", "1e-05", "'-3 below", "'=1+1"]]
    data = (await ds.client.get("/evil/segments.json?_shape=array")).json()
    assert [r["text"] for r in data] == EVIL_LINES  # JSON is left exactly as stored
    page = await ds.client.get("/evil/segments")
    assert "&lt;script&gt;" in page.text and "<script>alert(1)" not in page.text  # Datasette escapes its HTML itself


def test_csv_stream_rewrites_whatever_the_chunks():
    from qualcode.spreadsheet import SafeCsvStream

    source = 'id,text\r\n1,"=A1\r\n+quoted, newline ""inside"""\r\n2,café -2\r\n-3,@x\r\nété,ok\r\n'.encode()
    whole = SafeCsvStream().feed(source, final=True)
    assert whole == 'id,text\r\n1,"\'=A1\r\n+quoted, newline ""inside"""\r\n2,café -2\r\n-3,\'@x\r\nété,ok\r\n'.encode()
    stream = SafeCsvStream()
    assert b"".join([stream.feed(source[i:i + 1]) for i in range(len(source))] + [stream.feed(b"", final=True)]) == whole
    assert SafeCsvStream().feed(b"a,b\r\n=x,c\r\n") == b"a,b\r\n'=x,c\r\n"  # several records in one chunk
    for cut in range(len(source)):
        stream = SafeCsvStream()
        assert stream.feed(source[:cut]) + stream.feed(source[cut:]) + stream.feed(b"", final=True) == whole, cut
