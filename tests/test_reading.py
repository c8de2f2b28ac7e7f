"""Datasette's pages for reading: links to the passage in context, reading layouts, forgiving search."""

import csv
import html
import io
import re
import sqlite3
from urllib.parse import quote

import pytest
from datasette.app import Datasette
from markupsafe import escape

from qualcode import open_project
from qualcode.codebook import load_codebook, sync_codebook
from qualcode.coding import apply_code
from qualcode.ingest import IngestOptions, ingest_paths
from qualcode.publish import load_metadata
from qualcode.workspace.reading import around_matches, highlight, marked_ranges
from qualcode.workspace.search import fts_error, forgive

from .conftest import LESSONS, ROOT

ODD_ID = 'odd "doc" <ü> & 50%/x'
ODD = f"""---
id: {ODD_ID}
title: Odd <b>one</b> & "quotes"
site: Site <i>A</i>
role: teacher
---
Ana: I said <script>alert(1)</script><img src=x onerror=alert(2)> about the teacher's coaching.

Bo: Fine, scaling works, and the coaching too.
"""
EVIL = ("<script>alert(1)</script>", "<img src=x", "<b>one</b>", "<i>A</i>")


@pytest.fixture
def odd(tmp_path):
    """A project whose one document has an id with a space, quotes, markup, a non-ASCII letter, % and /,
    and markup in its title, site and text; both turns coded, one of them as a span."""
    source = tmp_path / "odd.txt"
    source.write_text(ODD, encoding="utf-8")
    path = tmp_path / "project.db"
    db = open_project(path)
    sync_codebook(db, load_codebook(LESSONS))
    assert not ingest_paths(db, [source], IngestOptions()).errors
    first, second = [r["id"] for r in db.query("SELECT id FROM segments ORDER BY seq")]
    apply_code(db, first, "support.coaching", "Rosa <Delgado>", create_coder=True, memo="<b onmouseover=x()>memo</b>")
    apply_code(db, second, "scaling.spread", "Rosa <Delgado>", span="4:8")  # "Fine"
    db.close()
    return Datasette([str(path)], metadata=load_metadata(None, path)), path


@pytest.fixture
def gold(gold_copy):
    return Datasette([str(gold_copy)], metadata=load_metadata(None, gold_copy)), gold_copy


def hrefs(page: str, css: str = "qc-context") -> list[str]:
    return [html.unescape(h) for h in re.findall(rf'<a class="{css}" href="([^"]*)"', page)]


def assert_no_markup_from_data(page: str) -> None:
    for bad in EVIL:
        assert bad not in page, bad
    assert "<b onmouseover" not in page


# --- view in context ------------------------------------------------------------------------------


async def test_every_excerpt_links_to_its_turn_and_the_turn_is_there(gold):
    ds, path = gold
    page = await ds.client.get("/qualcode/excerpts")
    assert page.status_code == 200 and 'class="qc-card qc-excerpt"' in page.text
    links = hrefs(page.text)
    assert len(links) == page.text.count('class="qc-card qc-excerpt"') == 25
    expected = [f"/-/code/{quote(d, safe='')}#turn-{s}" for d, s in
                sqlite3.connect(path).execute("SELECT document_id, seq FROM excerpts ORDER BY excerpt_id LIMIT 25")]
    assert links == expected
    for link in sorted(set(links)):
        url, anchor = link.split("#")
        transcript = await ds.client.get(url)
        assert transcript.status_code == 200 and f'id="{anchor}"' in transcript.text, link


async def test_documents_and_search_results_link_to_the_transcript(gold):
    ds, path = gold
    documents = (await ds.client.get("/qualcode/documents?_size=max")).text
    ids = [r[0] for r in sqlite3.connect(path).execute("SELECT id FROM documents ORDER BY id")]
    assert hrefs(documents) == [f"/-/code/{quote(i, safe='')}" for i in ids]
    results = (await ds.client.get("/qualcode/segments?_search=coaching")).text
    links = hrefs(results)
    assert links and all(re.fullmatch(r"/-/code/[^/#]+#turn-\d+", link) for link in links)
    first = await ds.client.get(links[0].split("#")[0])
    assert f'id="{links[0].split("#")[1]}"' in first.text


async def test_datasette_tables_link_cells_to_the_passage(gold):
    ds, _ = gold
    excerpts = (await ds.client.get("/qualcode/excerpts?_layout=table")).text
    assert '<table class="rows-and-columns">' in excerpts and 'class="qc-card' not in excerpts
    assert re.search(r'<td class="col-seq[^"]*"><a class="qc-context" href="/-/code/[^"#]+#turn-\d+"', excerpts)
    documents = (await ds.client.get("/qualcode/documents?_layout=table")).text
    assert re.search(r'<td class="col-title[^"]*"><a class="qc-context" href="/-/code/cedar-01-superintendent"', documents)
    db = open_project(ds.databases["qualcode"].path)
    db["suggestions"].insert({"segment_id": 1, "code_id": "support.coaching", "score": 0.9, "method": "lexicon",
                              "evidence": "{}", "created_at": "2026-11-23T00:00:00+00:00"})
    db.close()
    suggestions = (await ds.client.get("/qualcode/suggestions_to_review")).text
    assert re.search(r'<td class="col-segment[^"]*"><a class="qc-context" href="/-/code/[^"#]+#turn-1"', suggestions)
    query = (await ds.client.get("/qualcode/excerpts_for_code_at_site?code=support&site=Seacliff+Middle+School")).text
    assert re.search(r'<td class="col-segment[^"]*"><a class="qc-context" href="/-/code/[^"#]+#turn-\d+"', query)


async def test_odd_document_ids_are_quoted_and_reach_their_transcript(odd):
    ds, _ = odd
    quoted = "/-/code/" + quote(ODD_ID, safe="")
    assert quoted == "/-/code/odd%20%22doc%22%20%3C%C3%BC%3E%20%26%2050%25%2Fx"
    for table, expected in [("documents", [quoted]), ("excerpts", [quoted + "#turn-1", quoted + "#turn-2"]),
                            ("segments", [quoted + "#turn-1", quoted + "#turn-2"])]:
        page = (await ds.client.get(f"/project/{table}")).text
        assert sorted(hrefs(page)) == expected, table
        assert_no_markup_from_data(page)
        table_page = (await ds.client.get(f"/project/{table}?_layout=table")).text
        assert set(hrefs(table_page)) <= set(expected) and hrefs(table_page), table
        assert_no_markup_from_data(table_page)
    transcript = await ds.client.get(quoted)
    assert transcript.status_code == 200 and 'id="turn-1"' in transcript.text and 'id="turn-2"' in transcript.text
    assert "&lt;script&gt;alert(1)" in transcript.text


# --- reading layouts ------------------------------------------------------------------------------


@pytest.mark.parametrize("table,marker", [("excerpts", 'class="qc-card qc-excerpt"'), ("documents", 'class="qc-card qc-doc"'),
                                          ("segments", 'class="qc-result"'), ("codebook_tree", 'class="qc-entry'),
                                          ("codes", 'class="qc-entry')])
async def test_reading_tables_have_a_layout_and_keep_the_table_a_click_away(gold, table, marker):
    ds, _ = gold
    page = (await ds.client.get(f"/qualcode/{table}")).text
    assert marker in page and "qc-reading" in page and '<table class="rows-and-columns">' not in page
    assert f'href="/qualcode/{table}?_layout=table"' in page and "/-/static-plugins/qualcode/reading.css" in page
    as_table = (await ds.client.get(f"/qualcode/{table}?_layout=table")).text
    assert '<table class="rows-and-columns">' in as_table and marker not in as_table and "Show for reading" in as_table


async def test_other_tables_keep_datasettes_table(gold):
    ds, _ = gold
    page = (await ds.client.get("/qualcode/codings")).text
    assert '<table class="rows-and-columns">' in page and "qc-reading" not in page and "Show for reading" not in page


async def test_excerpt_cards_carry_code_coder_source_and_memo(odd):
    ds, _ = odd
    page = (await ds.client.get("/project/excerpts")).text
    cards = page.split('class="qc-card qc-excerpt"')[1:]
    assert len(cards) == 2
    assert "Coaching fitted to the person" in cards[0] and "coded by Rosa &lt;Delgado&gt;" in cards[0]
    assert "Odd &lt;b&gt;one&lt;/b&gt; &amp; &#34;quotes&#34;" in cards[0] and "Site &lt;i&gt;A&lt;/i&gt;" in cards[0]
    assert "&lt;b onmouseover=x()&gt;memo&lt;/b&gt;" in cards[0]
    assert '<blockquote class="qc-quote">Fine</blockquote>' in cards[1]  # the span, not the whole turn


async def test_codebook_reads_as_a_document_with_every_code(gold):
    ds, path = gold
    codes = sqlite3.connect(path).execute("SELECT id, name, definition FROM codes ORDER BY sort_order").fetchall()
    for table in ("codebook_tree", "codes"):
        page = (await ds.client.get(f"/qualcode/{table}?_size=max")).text
        assert page.count('class="qc-entry qc-depth-') == len(codes)
        assert [m for m in re.findall(r'id="code-([^"]+)"', page)] == [c[0] for c in codes]
        for _, name, definition in codes:
            assert str(escape(definition)) in page
    assert 'href="/qualcode/excerpts?code_id=support.coaching"' in page and 'href="/qualcode/excerpts?lesson_id=support"' in page


async def test_facet_labels_wrap_between_words(gold):
    ds, _ = gold
    css = (await ds.client.get("/-/static-plugins/qualcode/reading.css")).text
    rule = re.search(r"\.facet-results ul\.tight-bullets li \{([^}]*)\}", css)
    assert rule and "word-break: normal" in rule[1] and "hyphens: none" in rule[1]


# --- search: marked matches, escaped text ---------------------------------------------------------


async def test_search_results_mark_matches_and_show_markup_as_text(odd):
    ds, _ = odd
    page = (await ds.client.get("/project/segments?_search=coach")).text
    assert page.count("<mark>coaching</mark>") == 2  # porter stemming: "coach" finds "coaching"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    assert_no_markup_from_data(page)
    excerpts = (await ds.client.get("/project/excerpts?_search=coaching")).text
    assert excerpts.count("<mark>coaching</mark>") == 1 and "&lt;script&gt;alert(1)" in excerpts
    assert_no_markup_from_data(excerpts)


def test_highlight_escapes_every_piece():
    text = "<script>x</script> teacher's & <img onerror=y>"
    out = highlight(text, [(19, 28), (40, 60)])
    assert str(out) == "&lt;script&gt;x&lt;/script&gt; <mark>teacher&#39;s</mark> &amp; &lt;img oner<mark>ror=y&gt;</mark>"
    assert html.unescape(re.sub("</?mark>", "", str(out))) == text


def test_marked_ranges_trust_only_clean_marks():
    assert marked_ranges("a \ue000coach\ue001 b", "a coach b") == [(2, 7)]
    assert marked_ranges("a \ue000co\ue000ach\ue001 b", "a co\ue000ach b") == []  # the text held a marker itself


def test_long_results_show_the_words_around_their_matches():
    text = " ".join(f"w{i}" for i in range(400)) + " coaching " + " ".join(f"v{i}" for i in range(400))
    at = text.index("coaching")
    out = str(around_matches(text, [(at, at + 8)]))
    assert out.startswith("… ") and out.endswith(" …") and "<mark>coaching</mark>" in out
    assert len(out) < 500 and out[2:].split(" ")[0] in text.split(" ")  # cut between words
    assert str(around_matches("short coaching", [(6, 14)])) == "short <mark>coaching</mark>"


# --- search: forgiving --------------------------------------------------------------------------


@pytest.mark.parametrize("query,valid", [("teacher's", False), ('"unclosed', False), ("AND", False), ("", False),
                                         ("e-mail", False), ("coherence OR scaling", True), ('"exact phrase"', True),
                                         ("NEAR(coach district, 10)", True), ("coach*", True), ("coach NOT principal", True),
                                         ("speaker:ana", True)])
def test_fts_syntax_check(query, valid):
    assert (fts_error(query, ("text", "speaker")) is None) is valid
    forgiven = forgive(query, ("text", "speaker"))
    assert (forgiven is None) is valid
    if forgiven and query.strip():
        assert forgiven.searched and fts_error(forgiven.searched, ("text", "speaker")) is None


def count(path, query: str | None) -> int:
    conn = sqlite3.connect(path)
    if query is None:
        return conn.execute("SELECT count(*) FROM segments").fetchone()[0]
    return conn.execute("SELECT count(*) FROM segments_fts WHERE segments_fts MATCH ?", [query]).fetchone()[0]


@pytest.mark.parametrize("typed,searched", [("teacher's", "\"teacher's\""), ('"unclosed', '"unclosed"'), ("AND", '"AND"'),
                                            ("e-mail", '"e-mail"'), ("coherence OR scaling", None), ("", "")])
async def test_segment_search_forgives_invalid_syntax(gold, typed, searched):
    ds, path = gold
    page = await ds.client.get("/qualcode/segments", params={"_search": typed})
    assert page.status_code == 200, page.text
    assert "syntax error" not in page.text.split('class="qc-search-note"')[0] and "Invalid SQL" not in page.text
    data = (await ds.client.get("/qualcode/segments.json", params={"_search": typed, "_shape": "objects"})).json()
    sheet = await ds.client.get("/qualcode/segments.csv", params={"_search": typed, "_size": "max"})
    assert sheet.status_code == 200
    assert len(list(csv.reader(io.StringIO(sheet.text)))) == min(data["filtered_table_rows_count"], 1000) + 1
    if searched is None:  # valid FTS5: searched as typed, no note
        assert "qc-search-note" not in page.text
        assert data["filtered_table_rows_count"] == count(path, typed) > 0
        assert data["filtered_table_rows_count"] >= count(path, "scaling")
    elif searched == "":
        assert "Nothing to search for" in page.text and data["filtered_table_rows_count"] == count(path, None)
    else:
        assert "Searched word by word" in page.text and str(escape(searched)) in page.text
        assert data["filtered_table_rows_count"] == count(path, searched)
    if typed == "teacher's":
        assert data["filtered_table_rows_count"] > 0 and all(re.search(r"teacher\W+s\b", r["text"], re.I) for r in data["rows"])


async def test_excerpt_search_with_nothing_to_search_shows_every_excerpt(gold):
    ds, path = gold
    data = (await ds.client.get("/qualcode/excerpts.json", params={"_search": '"'})).json()
    assert data["filtered_table_rows_count"] == sqlite3.connect(path).execute("SELECT count(*) FROM excerpts").fetchone()[0]


async def test_canned_full_text_query_forgives_invalid_syntax(gold):
    ds, path = gold
    page = await ds.client.get("/qualcode/search_lesson_excerpts", params={"lesson": "support", "q": "teacher's"})
    assert page.status_code == 200 and "message-error" not in page.text and "Searched word by word" in page.text
    data = (await ds.client.get("/qualcode/search_lesson_excerpts.json",
                                params={"lesson": "support", "q": "teacher's", "_shape": "array"})).json()
    expected = sqlite3.connect(path).execute(
        "SELECT count(*) FROM excerpts WHERE lesson_id = 'support' AND segment_id IN "
        "(SELECT rowid FROM segments_fts WHERE segments_fts MATCH ?)", ["\"teacher's\""]).fetchone()[0]
    assert len(data) == expected > 0
    valid = await ds.client.get("/qualcode/search_lesson_excerpts", params={"lesson": "support", "q": "coach OR mentor"})
    assert valid.status_code == 200 and "qc-search-note" not in valid.text and "message-error" not in valid.text
