"""The coding workspace in a real browser: Debian's Chromium driven by Playwright against `qualcode serve`.

What the Datasette test client cannot show: that workspace.js turns a mouse selection into the
document offsets of exactly the selected words (accents, CJK, emoji, a file with Windows line
endings), that the keys do what the README says, and that every click lands in the SQLite file.
Screenshots of each step go to $QUALCODE_ARTIFACTS (default screenshots/browser/), for a person to
look at. Playwright only drives the system Chromium; it never downloads a browser.
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from playwright import sync_api

from qualcode import cli

from .conftest import ROOT, running_server

CHROMIUM = "/usr/bin/chromium"
CODER, PASSWORD = "Ana Ruiz", "ana-secret-1"
ARTIFACTS = Path(os.environ.get("QUALCODE_ARTIFACTS") or ROOT / "screenshots" / "browser")

PLAIN = """---
title: Interview with a coach at Birchwood
kind: interview
site: Birchwood
---

INTERVIEWER: How do you support teachers this year?

COACH: Mostly through coaching cycles. I plan with a teacher, model a lesson, and we debrief afterwards.

INTERVIEWER: And the district office?

COACH: The central office pays for release time, so we have common planning every week after school.

INTERVIEWER: What about scaling it up?

COACH: We want to spread it to more classrooms and other schools next year, but the budget is stretched thin.
"""

UNICODE = """---
title: Entrevista — Zoë Weiß, Straße 中文
kind: interview
site: Über Schule
---

INTERVIEWER: Zoë, wie geht's? Tell me about the coaching at the Straße campus.

WEISS: Der Coach 👩‍🏫 visits my class every week. Café mornings, then feedback — très utile. 中文老师 also join the debrief 👩🏽‍🔬 after school.

INTERVIEWER: Große Frage: is there a shared aim?

WEISS: Our instructional focus is student discourse, même en français 😀, auch auf Deutsch.
"""

CRLF = (
    "---\r\ntitle: Site visit at Crestline (written on Windows)\r\nkind: interview\r\n---\r\n\r\n"
    "INTERVIEWER: What changed after the learning walk?\r\n\r\n"
    "PRINCIPAL: Teachers visit classrooms now.\r\nThe PLC meets on Tuesdays,\r\nand the ILT reviews the run chart.\r\n\r\n"
    "INTERVIEWER: And the union?\r\n\r\n"
    "PRINCIPAL: The teachers association trusts us; no grievance this year.\r\n"
)


# --- the project, the server, the browser ---------------------------------------------------------


def run(*args: str) -> str:
    result = CliRunner().invoke(cli.cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A small real project: three documents, the lessons codebook, lexicon suggestions, one login."""
    folder = tmp_path_factory.mktemp("browser")
    db = folder / "project.db"
    (folder / "plain.txt").write_text(PLAIN, encoding="utf-8")
    (folder / "unicode.md").write_text(UNICODE, encoding="utf-8")
    (folder / "crlf.txt").write_bytes(CRLF.encode("utf-8"))
    run("init", "--db", str(db), "--title", "Browser test project")
    run("codebook", "load", "lessons", "--db", str(db))
    out = run("ingest", str(folder / "plain.txt"), str(folder / "unicode.md"), str(folder / "crlf.txt"), "--db", str(db))
    assert "3 added" in out
    assert "suggestions for" in run("suggest", "--db", str(db))
    run("login", "add", CODER, "--password", PASSWORD, "--create-coder", "--db", str(db))
    return db


@pytest.fixture(scope="module")
def server(project):
    with running_server(project) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: `make browser` installs it (apt-get install chromium)"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh visitor (no cookies); any JavaScript error on the page fails the test."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-GB")
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert not errors, errors


def rows(db: Path, sql: str, params=()) -> list[tuple]:
    """Read the project file as it is now, on its own connection (the server writes in WAL mode)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page, server: str, document: str) -> None:
    """Through the login form, as a coder would, landing on the document."""
    page.goto(f"{server}/-/code/{document}")
    page.get_by_role("link", name="Sign in to code").click()
    page.get_by_label("Coder name").fill(CODER)
    page.get_by_label("Password").fill(PASSWORD)
    shot(page, "login-form")
    with page.expect_navigation(url=re.compile(f"/-/code/{document}$")):
        page.get_by_role("button", name="Sign in").click()
    ready(page)
    assert page.locator(".qc-whoami b").inner_text() == CODER


def ready(page) -> None:
    page.wait_for_selector("#qc[data-ready]", state="attached")


def api(page, action: str):
    return page.expect_response(lambda r: r.url.endswith(f"/-/code/api/{action}") and r.request.method == "POST")


def turn(page, seq: int):
    return page.locator(f"#turn-{seq}")


def segment_id(db: Path, document: str, seq: int) -> int:
    return rows(db, "SELECT id FROM segments WHERE document_id = ? AND seq = ?", [document, seq])[0][0]


def codings(db: Path, coding_id: int) -> tuple:
    return rows(db, """SELECT c.name, g.code_id, s.document_id, s.seq, g.start_char, g.end_char, g.origin
                       FROM codings g JOIN coders c ON c.id = g.coder_id JOIN segments s ON s.id = g.segment_id
                       WHERE g.id = ?""", [coding_id])[0]


# Drags the mouse over the words, from inside their first character to inside their last, as a
# coder would; the caret snaps to the character edges. Returns the selection the browser made.
DRAG_POINTS = """([seq, words]) => {
  const text = document.querySelector(`#turn-${seq} .qc-text`);
  const nodes = [], walker = document.createTreeWalker(text, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) nodes.push(walker.currentNode);
  const whole = nodes.map((n) => n.data).join("");
  const at = whole.indexOf(words);
  if (at < 0 || whole.indexOf(words, at + 1) >= 0) throw new Error(`'${words}' is not once in turn ${seq}`);
  function point(index) {  // the text node and offset of a UTF-16 index into the turn's text
    for (const n of nodes) { if (index < n.data.length) return [n, index]; index -= n.data.length; }
  }
  function box(index, units) {
    const [n, o] = point(index), r = document.createRange();
    r.setStart(n, o); r.setEnd(n, o + units);
    const rects = r.getClientRects();
    return rects[rects.length - 1];
  }
  const last = [...words].pop().length;  // the last character may be two UTF-16 units
  const a = box(at, 1), b = box(at + words.length - last, last);
  return {x1: a.left + 1, y1: (a.top + a.bottom) / 2, x2: b.right - 1, y2: (b.top + b.bottom) / 2};
}"""


def drag_select(page, seq: int, words: str) -> None:
    turn(page, seq).scroll_into_view_if_needed()
    p = page.evaluate(DRAG_POINTS, [seq, words])
    page.mouse.move(p["x1"], p["y1"])
    page.mouse.down()
    page.mouse.move(p["x2"], p["y2"], steps=8)
    assert page.evaluate("window.getSelection().toString()") == words  # the drag selects what we meant
    page.mouse.up()  # and the picker opens


def pick(page, query: str, code: str) -> dict:
    """In the open picker: type to filter, check the first option, Enter; the server's answer."""
    picker = page.locator("#qc-picker")
    picker.wait_for(state="visible")
    page.keyboard.type(query)
    assert page.locator("#qc-picker-input").input_value() == query
    assert page.locator("#qc-options li").first.get_attribute("data-code") == code
    with api(page, "apply") as response:
        page.keyboard.press("Enter")
    data = response.value.json()
    assert data["ok"], data
    picker.wait_for(state="hidden")
    return data


# --- the tests ------------------------------------------------------------------------------------


def test_code_a_whole_turn_by_keyboard(page, server, project):
    sign_in(page, server, "plain")
    assert page.locator(".qc-turn.qc-focus").get_attribute("data-seq") == "1"  # the first turn has focus
    for key in ["j", "j", "j", "ArrowDown", "k"]:  # down to 5, back up to 4
        page.keyboard.press(key)
    focus = page.locator(".qc-turn.qc-focus")
    assert focus.get_attribute("data-seq") == "4"
    page.keyboard.press("c")
    page.locator("#qc-picker").wait_for(state="visible")
    shot(page, "a1-picker-open")
    data = pick(page, "collab", "context.collaboration-time")
    chip = turn(page, 4).locator(f'.qc-chip[data-coding="{data["coding_id"]}"]')
    chip.wait_for()
    assert "Ana Ruiz" in chip.inner_text() and "qc-coded" in turn(page, 4).get_attribute("class")
    assert page.locator(".qc-turn.qc-focus").get_attribute("data-seq") == "4"  # focus stays on the turn
    shot(page, "a2-turn-coded")
    assert codings(project, data["coding_id"]) == (CODER, "context.collaboration-time", "plain", 4, None, None, "manual")
    # Enter opens the picker too, and 1 applies the code just used (the picker's recent codes).
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.locator("#qc-picker").wait_for(state="visible")
    assert page.locator("#qc-recent").inner_text().startswith("1 Time for teacher collaboration")
    with api(page, "apply") as response:
        page.keyboard.press("1")
    again = response.value.json()
    assert codings(project, again["coding_id"])[1:4] == ("context.collaboration-time", "plain", 5)


def test_the_codebook_guidance_stays_open_while_coding(coder_page, server):
    """Datasette shuts every open <details> on a click elsewhere; a code's definition must stay open."""
    page = coder_page
    page.goto(f"{server}/-/code/plain")
    ready(page)
    assert page.locator("details.qc-code[open]").count() == 0  # the guidance is folded until asked for
    lesson, code = page.locator('details.qc-code[data-code="support"]'), page.locator('details.qc-code[data-code="support.coaching"]')
    lesson.locator("summary").click()
    code.locator("summary").click()
    turn(page, 3).locator(".qc-speaker").click()
    drag_select(page, 2, "coaching cycles")
    page.keyboard.press("Escape")
    assert lesson.locator(".qc-guidance").is_visible() and code.locator(".qc-guidance").is_visible()
    code.locator("summary").click()  # and the coder can still close it
    assert code.get_attribute("open") is None and lesson.get_attribute("open") is not None


SPANS = [
    # document, turn, the words a coder selects, the code typed into the picker, the code it picks
    ("unicode", 2, "Coach 👩‍🏫", "coaching", "support.coaching"),  # ends just after an emoji (3 code points, 5 units)
    ("unicode", 2, "très utile. 中文老师 also join the debrief 👩🏽‍🔬 after", "adult", "support.adult-learning"),
    ("unicode", 1, "Zoë, wie geht's?", "relation", "context.relationships"),
    ("unicode", 4, "même en français 😀, auch", "shared aim", "purpose.shared-aim"),
    ("crlf", 2, "now.\nThe PLC meets", "shared-learning", "purpose.shared-learning"),  # across a line break of the file
    ("crlf", 4, "association trusts us", "relation", "context.relationships"),
    ("plain", 2, "model a lesson", "coaching", "support.coaching"),
]


@pytest.fixture(scope="module")
def coder_page(browser, server):
    """One signed-in page for the span tests (signing in once keeps the file fast)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, server, "plain")
    yield page
    context.close()
    assert not errors, errors


def code_span(page, server, project, document, seq, words, query, code) -> tuple:
    if not page.url.endswith(f"/-/code/{document}"):
        page.goto(f"{server}/-/code/{document}")
        ready(page)
    drag_select(page, seq, words)
    data = pick(page, query, code)
    turn(page, seq).locator(f'.qc-chip[data-coding="{data["coding_id"]}"]').wait_for()
    # The re-drawn turn highlights exactly the words selected.
    marked = page.locator(f'#turn-{seq} .qc-text [data-c~="{data["coding_id"]}"]').all_text_contents()
    assert "".join(marked) == words
    return codings(project, data["coding_id"])


@pytest.mark.parametrize("document,seq,words,query,code", SPANS, ids=[f"{s[0]}-{s[1]}-{s[4]}" for s in SPANS])
def test_a_selected_span_is_stored_as_exactly_its_words(coder_page, server, project, document, seq, words, query, code):
    name, got_code, got_doc, got_seq, start, end, origin = code_span(coder_page, server, project, document, seq, words, query, code)
    text = rows(project, "SELECT text FROM documents WHERE id = ?", [document])[0][0]
    assert (name, got_code, got_doc, got_seq, origin) == (CODER, code, document, seq, "manual")
    assert text[start:end] == words and start == text.index(words)
    segment = rows(project, "SELECT start_char, end_char, text FROM segments WHERE document_id = ? AND seq = ?", [document, seq])[0]
    assert segment[0] <= start < end <= segment[1] and segment[2][start - segment[0]:end - segment[0]] == words
    shot(coder_page, f"b-{document}-{seq}-{code}")


def test_a_selection_from_inside_a_highlight_to_outside_it(coder_page, server, project):
    first = code_span(coder_page, server, project, "unicode", 2, "visits my class every week", "spread", "scaling.spread")
    assert coder_page.locator("#turn-2 .qc-hl", has_text="visits my class").count() >= 1
    words = "class every week. Café mornings"  # starts inside the highlighted words, ends past them
    second = code_span(coder_page, server, project, "unicode", 2, words, "deep", "scaling.deepening")
    text = rows(project, "SELECT text FROM documents WHERE id = 'unicode'")[0][0]
    assert text[first[4]:first[5]] == "visits my class every week"
    assert text[second[4]:second[5]] == words and first[4] < second[4] < first[5] < second[5]
    shot(coder_page, "b-overlapping-spans")


def test_a_triple_click_codes_the_whole_turn(coder_page, server, project):
    """Chromium ends a triple-click's selection in the margin or at the next turn; it is still this turn."""
    page = coder_page
    page.goto(f"{server}/-/code/plain")
    ready(page)
    for seq, query, code in [(1, "coaching", "support.coaching"), (3, "district", "support.district-role")]:
        turn(page, seq).locator(".qc-text").click(click_count=3)
        data = pick(page, query, code)
        assert codings(project, data["coding_id"])[1:6] == (code, "plain", seq, None, None)  # no span: the whole turn
        turn(page, seq).locator(f'.qc-chip[data-coding="{data["coding_id"]}"]').wait_for()


def test_a_drag_past_the_end_of_the_text_ends_at_the_turns_end(coder_page, server, project):
    page = coder_page
    page.goto(f"{server}/-/code/crlf")
    ready(page)
    p = page.evaluate(DRAG_POINTS, [1, "learning"])
    margin = turn(page, 1).locator(".qc-margin").bounding_box()
    page.mouse.move(p["x1"], p["y1"])
    page.mouse.down()
    page.mouse.move(margin["x"] + 20, margin["y"] + 5, steps=8)
    page.mouse.up()
    data = pick(page, "shared-learning", "purpose.shared-learning")
    start, end = codings(project, data["coding_id"])[4:6]
    text = rows(project, "SELECT text FROM documents WHERE id = 'crlf'")[0][0]
    assert text[start:end] == "learning walk?"


def test_the_crlf_file_is_stored_with_plain_line_breaks(project):
    """What the span test for crlf.txt compares against: the file's words, its line breaks as \\n."""
    text = rows(project, "SELECT text FROM documents WHERE id = 'crlf'")[0][0]
    assert "\r" not in text and "now.\nThe PLC meets" in text
    assert text.strip() in CRLF.replace("\r\n", "\n")


def test_accept_one_suggestion_and_reject_another(page, server, project):
    sign_in(page, server, "crlf")
    box = turn(page, 4).locator(".qc-sugg").first
    accepted = int(box.get_attribute("data-suggestion"))
    code = rows(project, "SELECT code_id FROM suggestions WHERE id = ?", [accepted])[0][0]
    seg = segment_id(project, "crlf", 4)
    shot(page, "c1-suggestions")
    with api(page, "suggestion") as response:
        box.get_by_role("button", name="Accept").click()
    data = response.value.json()
    assert data["ok"] and data["status"] == "accepted", data
    turn(page, 4).locator(f'[data-suggestion="{accepted}"]').wait_for(state="detached")
    coded = "SELECT g.origin, c.name FROM codings g JOIN coders c ON c.id = g.coder_id WHERE g.segment_id = ? AND g.code_id = ?"
    assert rows(project, coded, [seg, code]) == [("suggestion", CODER)]
    # u takes the decision back: pending again, its coding gone; then a accepts it by key.
    with api(page, "undo"):
        page.keyboard.press("u")
    turn(page, 4).locator(f'[data-suggestion="{accepted}"]').wait_for()
    assert rows(project, "SELECT status, decided_by FROM suggestions WHERE id = ?", [accepted]) == [("pending", None)]
    assert rows(project, coded, [seg, code]) == []
    turn(page, 4).locator(".qc-speaker").click()
    assert turn(page, 4).locator(".qc-sugg").first.get_attribute("data-suggestion") == str(accepted)
    with api(page, "suggestion") as response:
        page.keyboard.press("a")
    assert response.value.json()["status"] == "accepted"
    # Then r rejects the first suggestion of another turn.
    turn(page, 2).locator(".qc-speaker").click()
    assert page.locator(".qc-turn.qc-focus").get_attribute("data-seq") == "2"
    rejected = int(turn(page, 2).locator(".qc-sugg").first.get_attribute("data-suggestion"))
    with api(page, "suggestion") as response:
        page.keyboard.press("r")
    assert response.value.json()["status"] == "rejected"
    turn(page, 2).locator(f'[data-suggestion="{rejected}"]').wait_for(state="detached")
    shot(page, "c2-decided")
    decided = dict((r[0], r[1:]) for r in rows(project, """SELECT x.id, x.status, c.name FROM suggestions x
        LEFT JOIN coders c ON c.id = x.decided_by WHERE x.id IN (?, ?)""", [accepted, rejected]))
    assert decided == {accepted: ("accepted", CODER), rejected: ("rejected", CODER)}
    assert rows(project, coded, [seg, code]) == [("suggestion", CODER)]
    assert turn(page, 4).locator(f'.qc-chip[data-code="{code}"]').count() == 1


def test_n_walks_down_the_most_uncertain_suggestions(page, server, project):
    """n goes to the next most uncertain suggestion, in any document, and on down the queue."""
    from qualcode import open_project
    from qualcode.suggest.review import queue

    db = open_project(project, create=False)
    expected = [(r["id"], r["document_id"], r["seq"]) for r in queue(db, CODER, order="uncertain", limit=4)]
    db.close()
    assert len(expected) == 4
    sign_in(page, server, "plain")
    for suggestion, document, seq in expected:
        with page.expect_response(lambda r: "/-/code/api/next" in r.url):
            page.keyboard.press("n")
        if not page.url.split("#")[0].endswith(f"/-/code/{document}"):
            page.wait_for_url(re.compile(f"/-/code/{document}#turn-{seq}$"))
            ready(page)
        page.wait_for_function(f"document.querySelector('.qc-turn.qc-focus').dataset.seq === '{seq}'")
        assert turn(page, seq).locator(f'[data-suggestion="{suggestion}"]').is_visible()
    assert page.evaluate("JSON.parse(sessionStorage.getItem('qc-seen'))") == [s for s, _, _ in expected]


def test_memos_and_undo(page, server, project):
    sign_in(page, server, "plain")
    seg = segment_id(project, "plain", 6)
    # A memo on a turn: focus it, m, type into the prompt.
    turn(page, 6).locator(".qc-speaker").click()
    page.once("dialog", lambda d: d.accept("Budget worry — ask the principal 🙂"))
    with api(page, "memo") as response:
        page.keyboard.press("m")
    memo_id = response.value.json()["memo_id"]
    turn(page, 6).locator(f'.qc-memo[data-memo="{memo_id}"]').wait_for()
    assert rows(project, "SELECT m.text, c.name, m.segment_id FROM memos m JOIN coders c ON c.id = m.coder_id WHERE m.id = ?",
                [memo_id]) == [("Budget worry — ask the principal 🙂", CODER, seg)]
    # A memo on a coding: code the turn with the + beside a code, then the chip's pencil.
    turn(page, 6).locator(".qc-speaker").click()
    with api(page, "apply") as response:
        page.locator('[data-apply-code="scaling.dilemmas"]').click()
    coding_id = response.value.json()["coding_id"]
    chip = turn(page, 6).locator(f'.qc-chip[data-coding="{coding_id}"]')
    page.once("dialog", lambda d: d.accept("Stretched thin = capacity"))
    with api(page, "coding-memo"):
        chip.locator("[data-edit-memo]").click()
    turn(page, 6).locator(f'.qc-chip[data-coding="{coding_id}"] .qc-memo-mark').wait_for()
    assert rows(project, "SELECT memo FROM codings WHERE id = ?", [coding_id]) == [("Stretched thin = capacity",)]
    shot(page, "d1-memos")
    # u undoes the last action first: the coding's memo, then the coding, then the turn's memo.
    page.keyboard.press("Escape")
    with api(page, "undo"):
        page.keyboard.press("u")
    turn(page, 6).locator(f'.qc-chip[data-coding="{coding_id}"] .qc-memo-mark').wait_for(state="detached")
    assert rows(project, "SELECT memo FROM codings WHERE id = ?", [coding_id]) in ([(None,)], [("",)])
    with api(page, "undo"):
        page.keyboard.press("u")
    turn(page, 6).locator(f'.qc-chip[data-coding="{coding_id}"]').wait_for(state="detached")
    assert rows(project, "SELECT count(*) FROM codings WHERE id = ?", [coding_id]) == [(0,)]
    with api(page, "undo"):
        page.keyboard.press("u")
    turn(page, 6).locator(f'.qc-memo[data-memo="{memo_id}"]').wait_for(state="detached")
    assert rows(project, "SELECT count(*) FROM memos WHERE id = ?", [memo_id]) == [(0,)]
    shot(page, "d2-undone")
    # A memo on the document reloads the page to show it; u still undoes it afterwards.
    page.once("dialog", lambda d: d.accept("Ask about the grant — Straße 5"))
    with page.expect_navigation():
        page.get_by_role("button", name="Add a memo").click()
    ready(page)
    doc_memo = page.locator(".qc-doc-memos .qc-memo")
    assert "Ask about the grant — Straße 5" in doc_memo.inner_text()
    assert rows(project, "SELECT text, document_id FROM memos WHERE document_id = 'plain'") == [("Ask about the grant — Straße 5", "plain")]
    with page.expect_navigation():
        page.keyboard.press("u")
    ready(page)
    assert doc_memo.count() == 0 and rows(project, "SELECT count(*) FROM memos WHERE document_id = 'plain'") == [(0,)]


def test_an_anonymous_visitor_reads_but_cannot_write(page, server, project):
    page.goto(f"{server}/-/code/plain")
    ready(page)
    shot(page, "e-anonymous")
    assert page.get_by_role("link", name="Sign in to code").is_visible()
    for control in ["[data-apply-code]", "[data-accept]", "[data-reject]", "[data-remove]", "[data-edit-memo]",
                    "[data-doc-memo]", "[data-next]", ".qc-sugg"]:
        assert page.locator(control).count() == 0, control
    before = rows(project, "SELECT (SELECT count(*) FROM codings), (SELECT count(*) FROM memos)")
    page.keyboard.press("c")  # the picker does not open; the page says why
    assert page.locator("#qc-status").inner_text() == "Sign in to code."
    assert page.locator("#qc-picker").is_hidden()
    seg = segment_id(project, "plain", 2)
    answer = page.evaluate("""async (seg) => {
      const root = document.getElementById("qc");
      const r = await fetch(root.dataset.api + "apply", {method: "POST", credentials: "same-origin",
        headers: {"content-type": "application/json", "x-csrftoken": root.dataset.csrf},
        body: JSON.stringify({segment_id: seg, code_id: "support.coaching"})});
      return [r.status, await r.json()];
    }""", seg)
    assert answer == [401, {"ok": False, "error": "sign in as a coder to write"}]
    assert rows(project, "SELECT (SELECT count(*) FROM codings), (SELECT count(*) FROM memos)") == before
