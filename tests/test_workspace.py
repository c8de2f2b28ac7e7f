"""The coding workspace through Datasette's test client: reading, signing in, writing, refusing."""

import pytest
from datasette.app import Datasette

from qualcode import open_project
from qualcode.coding import apply_code
from qualcode.logins import set_login
from qualcode.publish import load_metadata

DOC = "harbor-04-teacher-seacliff"


@pytest.fixture
def served(gold_copy):
    set_login(gold_copy, "Rosa Delgado", "rosa-secret")
    set_login(gold_copy, "Sam Okonjo", "sam-secret")
    return Datasette([str(gold_copy)], metadata=load_metadata(None, gold_copy)), gold_copy


async def sign_in(ds, name, password):
    page = await ds.client.get("/-/code/login")
    token = page.cookies["ds_csrftoken"]
    response = await ds.client.post("/-/code/login", data={"coder": name, "password": password, "csrftoken": token},
                                    cookies={"ds_csrftoken": token})
    return response, {"ds_csrftoken": token, **({"ds_actor": response.cookies["ds_actor"]} if "ds_actor" in response.cookies else {})}


async def test_anonymous_reads_the_transcript_with_codes_in_the_margin(served):
    ds, path = served
    response = await ds.client.get(f"/-/code/{DOC}")
    assert response.status_code == 200
    db = open_project(path, create=False)
    turns = db.execute("SELECT count(*) FROM segments WHERE document_id = ?", [DOC]).fetchone()[0]
    assert response.text.count('class="qc-turn') == turns
    assert "Coaching fitted to the person" in response.text and "Sign in to code" in response.text
    assert "<h1>" in (await ds.client.get("/")).text and "/-/code" in (await ds.client.get("/")).text


async def test_writes_need_a_signed_in_coder_and_a_csrf_token(served):
    ds, path = served
    seg = open_project(path, create=False).execute("SELECT id FROM segments WHERE document_id = ? AND seq = 3", [DOC]).fetchone()[0]
    anonymous = await ds.client.post("/-/code/api/apply", json={"segment_id": seg, "code_id": "support.coaching"})
    assert anonymous.status_code == 401
    response, cookies = await sign_in(ds, "Rosa Delgado", "wrong")
    assert "ds_actor" not in cookies and "do not match" in response.text
    response, cookies = await sign_in(ds, "Rosa Delgado", "rosa-secret")
    assert response.status_code == 302 and "ds_actor" in cookies
    no_token = await ds.client.post("/-/code/api/apply", json={"segment_id": seg, "code_id": "support.coaching"},
                                    cookies=cookies)
    assert no_token.status_code == 403
    ok = await ds.client.post("/-/code/api/apply", json={"segment_id": seg, "code_id": "scaling.spread", "start": None},
                              cookies=cookies, headers={"x-csrftoken": cookies["ds_csrftoken"]})
    assert ok.status_code == 200, ok.text
    data = ok.json()
    db = open_project(path, create=False)
    row = db.execute("SELECT c.name, g.code_id FROM codings g JOIN coders c ON c.id = g.coder_id WHERE g.id = ?",
                     [data["coding_id"]]).fetchone()
    assert row == ("Rosa Delgado", "scaling.spread") and "Spreading practices" in data["turn_html"]
    # Undo removes it; Sam may not remove Rosa's coding.
    undo = await ds.client.post("/-/code/api/undo", json={"undo": data["undo"]}, cookies=cookies,
                                headers={"x-csrftoken": cookies["ds_csrftoken"]})
    assert undo.status_code == 200 and db.execute("SELECT count(*) FROM codings WHERE id = ?", [data["coding_id"]]).fetchone()[0] == 0
    rosas = db.execute("SELECT g.id FROM codings g JOIN coders c ON c.id = g.coder_id WHERE c.name = 'Rosa Delgado' LIMIT 1").fetchone()[0]
    _, sam = await sign_in(ds, "Sam Okonjo", "sam-secret")
    refused = await ds.client.post("/-/code/api/remove", json={"coding_id": rosas}, cookies=sam,
                                   headers={"x-csrftoken": sam["ds_csrftoken"]})
    assert refused.status_code == 400 and "Rosa Delgado's" in refused.json()["error"]
    assert db.execute("SELECT count(*) FROM codings WHERE id = ?", [rosas]).fetchone()[0] == 1


async def test_a_span_is_stored_as_exact_document_offsets(served):
    ds, path = served
    db = open_project(path, create=False)
    seg, start, text = db.execute("SELECT id, start_char, text FROM segments WHERE document_id = ? AND seq = 14", [DOC]).fetchone()
    _, cookies = await sign_in(ds, "Rosa Delgado", "rosa-secret")
    response = await ds.client.post("/-/code/api/apply", json={"segment_id": seg, "code_id": "support.coaching",
                                                               "start": start + 5, "end": start + 12},
                                    cookies=cookies, headers={"x-csrftoken": cookies["ds_csrftoken"]})
    assert response.status_code == 200, response.text
    a, b = db.execute("SELECT start_char, end_char FROM codings WHERE id = ?", [response.json()["coding_id"]]).fetchone()
    doc_text = db.execute("SELECT text FROM documents WHERE id = ?", [DOC]).fetchone()[0]
    assert (a, b) == (start + 5, start + 12) and doc_text[a:b] == text[5:12]


async def test_transcript_text_and_memos_are_escaped(served):
    ds, path = served
    db = open_project(path)
    db.execute("UPDATE segments SET text = '<script>alert(1)</script><img src=x onerror=alert(2)>' "
               "WHERE document_id = ? AND seq = 2", [DOC])
    apply_code(db, f"{DOC}:3", "support.coaching", "Rosa Delgado", memo='<b onmouseover="x()">memo</b>')
    page = (await ds.client.get(f"/-/code/{DOC}")).text
    assert "<script>alert(1)" not in page and "<img src=x" not in page and "&lt;script&gt;alert(1)" in page
    assert '<b onmouseover' not in page


async def test_a_blind_coder_sees_only_their_own_codings_everywhere(served):
    ds, path = served
    from qualcode.team import assign
    db = open_project(path)
    assign(db, ["Sam Okonjo"], [DOC], blind=True)
    _, sam = await sign_in(ds, "Sam Okonjo", "sam-secret")
    page = (await ds.client.get(f"/-/code/{DOC}", cookies=sam)).text
    assert "Sam Okonjo" in page and 'data-coder="Rosa Delgado"' not in page
    name = path.stem
    assert (await ds.client.get(f"/{name}/codings.json", cookies=sam)).status_code == 403
    assert (await ds.client.get(f"/{name}.json?sql=select+1", cookies=sam)).status_code == 403
    # Nobody signed out sees codings while anyone codes blind (else Sam could sign out and look).
    assert (await ds.client.get(f"/{name}/codings.json")).status_code == 403
    assert (await ds.client.get(f"/-/code/{DOC}/compare", cookies=sam)).status_code == 403


async def test_next_walks_down_the_uncertain_queue_past_every_suggestion_shown(coded_db, db_path, tmp_path):
    """`n` sends the ids it has shown; the answer is the next one down, never one of those again."""
    from qualcode.coding import add_coder
    from qualcode.ingest import ingest_paths
    from qualcode.suggest import suggest
    from qualcode.suggest.review import queue

    (tmp_path / "talk.txt").write_text("A: The coach gives feedback.\n\nB: We need common planning time.\n\n"
                                       "A: The union and the school board trust us.\n\nB: We spread it to other schools.\n")
    ingest_paths(coded_db, [tmp_path / "talk.txt"])
    suggest(coded_db)
    add_coder(coded_db, "Ana Ruiz")
    set_login(db_path, "Ana Ruiz", "ana-secret")
    order = [r["id"] for r in queue(coded_db, "Ana Ruiz", order="uncertain")]
    assert len(order) >= 4
    ds = Datasette([str(db_path)], metadata=load_metadata(None, db_path))
    _, cookies = await sign_in(ds, "Ana Ruiz", "ana-secret")
    shown = []
    for expected in order:
        answer = (await ds.client.get("/-/code/api/next?after=" + ",".join(map(str, shown)), cookies=cookies)).json()
        assert answer["suggestion_id"] == expected
        shown.append(expected)
    answer = (await ds.client.get("/-/code/api/next?after=" + ",".join(map(str, shown)), cookies=cookies)).json()
    assert answer == {"ok": True, "suggestion_id": None}
