"""The coding workspace: read a transcript with its codes in the margin, and code it in the browser.

A Datasette plugin of ours (pages under ``/-/code``), so coding, suggestions and findings live in
the one server. Every write is a POST that Datasette's CSRF protection guards, made by the signed-in
coder as themselves, through the same library functions as the CLI, one transaction each.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote, unquote, urlencode

import jinja2
from datasette import Forbidden, hookimpl
from datasette.utils.asgi import Response
from markupsafe import Markup

from ..db import open_project
from ..errors import QualcodeError
from .access import REVEALING, Access
from . import reading

PLUGIN = "qualcode"  # our section of the metadata's plugins block
#: How many accepted or rejected suggestions start a retraining in the background.
RETRAIN_EVERY = 10


class Workspace:
    """Per-server state: the rules, one writer thread with its own connection, the retrainer."""

    def __init__(self, datasette) -> None:
        config = datasette.plugin_config(PLUGIN) or {}
        database = next(d for d in datasette.databases.values() if d.path)
        self.name = database.name
        self.path = database.path
        self.access = Access(self.path, config.get("read", "anyone"))
        self.retrain_every = int(config.get("retrain_every", RETRAIN_EVERY))
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qualcode-writer")
        self._reader = ThreadPoolExecutor(max_workers=2, thread_name_prefix="qualcode-reader")
        self._local = threading.local()
        self.decisions = 0
        self.retrainer = None
        # The turns are most of a transcript page. Datasette's Jinja environment is async, which
        # takes twice as long over 1,500 turns, so they are rendered by a plain one, in a reader
        # thread, from Datasette's own loader (a --template-dir override of the turn still applies).
        env = jinja2.Environment(loader=datasette.jinja_env.loader, autoescape=True)
        env.filters.update(datasette.jinja_env.filters)
        self._turns = env.get_template("_qualcode_turn.html")

    def _db(self):
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = open_project(self.path, create=False)
        return db

    async def read(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._reader, lambda: fn(self._db(), *args))

    async def write(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._writer, lambda: fn(self._db(), *args))

    async def render_turns(self, turns: list[dict], coder: str | None) -> Markup:
        return Markup(await asyncio.get_running_loop().run_in_executor(
            self._reader, lambda: self._turns.render(turns=turns, coder=coder)))

    def maybe_retrain(self, coder: str) -> bool:
        """Retrain after every few decisions, in the background; a blind coder's model learns from them only."""
        from ..suggest.review import Retrainer

        self.decisions += 1
        if self.retrain_every <= 0 or self.decisions % self.retrain_every:
            return False
        running = self.retrainer is not None and self.retrainer.thread is not None and self.retrainer.thread.is_alive()
        if running:  # one at a time: each new Retrainer used to start alongside the last (four at once, 2 GB)
            return False
        coders = [coder] if self.access.is_blind(coder) else None
        self.retrainer = Retrainer(self.path, coders=coders)
        return self.retrainer.start()


def workspace(datasette) -> Workspace:
    ws = getattr(datasette, "_qualcode_workspace", None)
    if ws is None:
        ws = datasette._qualcode_workspace = Workspace(datasette)
    return ws


@hookimpl
def startup(datasette):
    """Import the suggestion machinery (spaCy, scikit-learn) in the background while the server
    starts: imported on demand, it kept a coder's first accept or reject waiting 3 to 6 s. Then
    freeze what is loaded so far out of the garbage collector's sight: otherwise every full
    collection walks those modules' millions of objects, a quarter of a transcript page's time."""
    def warm() -> None:
        import gc
        import importlib

        importlib.import_module("qualcode.suggest.review")
        gc.freeze()

    threading.Thread(target=warm, daemon=True, name="qualcode-warm-up").start()


# --- permissions ----------------------------------------------------------------------------------


@hookimpl
def permission_allowed(datasette, actor, action, resource):
    """Datasette's own pages obey the same rules as the workspace (see access.py)."""
    try:
        access = workspace(datasette).access
    except StopIteration:  # no project file served
        return None
    if action in ("view-instance", "view-database", "view-table", "view-query") and not access.may_read(actor):
        return False
    if not access.sees_others(actor):
        if action in ("execute-sql", "view-database-download"):
            return False
        if action in ("view-table", "view-query") and resource and resource[1] in REVEALING:
            return False
    return None


@hookimpl
def menu_links(datasette, actor):
    return [{"href": datasette.urls.path("/-/code"), "label": "Code transcripts"}]


@hookimpl
def extra_css_urls(datasette):
    return [datasette.urls.path("/-/static-plugins/qualcode/workspace.css"),
            datasette.urls.path("/-/static-plugins/qualcode/reading.css")]


# --- pages ----------------------------------------------------------------------------------------


def _context(ws: Workspace, request) -> dict:
    coder = ws.access.coder(request.actor)
    return {"coder": coder, "blind": ws.access.is_blind(coder), "database": ws.name,
            "sees_others": ws.access.sees_others(request.actor)}


async def _page(datasette, request, template: str, context: dict, status: int = 200) -> Response:
    html = await datasette.render_template(template, context, request=request)
    return Response.html(html, status=status)


def _refuse_reader(ws: Workspace, request) -> None:
    if not ws.access.may_read(request.actor):
        raise Forbidden("sign in to read this project")


async def home(datasette, request):
    ws = workspace(datasette)
    if not ws.access.may_read(request.actor):
        return Response.redirect(datasette.urls.path("/-/code/login"))
    from .data import home as rows

    context = _context(ws, request)
    documents = await ws.read(rows, context["coder"])
    return await _page(datasette, request, "qualcode_home.html", {**context, "documents": documents})


async def document(datasette, request):
    ws = workspace(datasette)
    if not ws.access.may_read(request.actor):
        return Response.redirect(datasette.urls.path("/-/code/login?next=" + quote(request.path)))
    from .data import document_page

    context = _context(ws, request)
    visible = ws.access.visible_coders(request.actor)
    coders = [c for c in request.args.getlist("coder") if c] or None
    codes = [c for c in request.args.getlist("code") if c] or None
    started = time.perf_counter()
    try:
        page = await ws.read(document_page, unquote(request.url_vars["document_id"]), visible, context["coder"],
                             context["blind"], coders, codes)
    except QualcodeError as e:
        return await _page(datasette, request, "qualcode_error.html", {**context, "message": str(e)}, 404)
    if request.url_vars.get("format") == "json":
        return Response.json(_jsonable(page))
    page["turns_html"] = await ws.render_turns(page["turns"], context["coder"])
    page["server_ms"] = round((time.perf_counter() - started) * 1000)
    return await _page(datasette, request, "qualcode_document.html",
                       {**context, **page, "filter_coders": coders or [], "filter_codes": codes or [],
                        "codebook_json": json.dumps(page["codebook"], ensure_ascii=False).replace("</", "<\\/")})


async def compare(datasette, request):
    ws = workspace(datasette)
    context = _context(ws, request)
    if not ws.access.may_read(request.actor) or not context["sees_others"]:
        raise Forbidden("comparing coders is not open to a blind coder, nor while anyone codes blind")
    from .data import coder_names, compare as compare_data

    names = await ws.read(coder_names, None)
    chosen = [c for c in request.args.getlist("coder") if c in names][:4] or [n for n in names][:2]
    try:
        page = await ws.read(compare_data, unquote(request.url_vars["document_id"]), chosen)
    except QualcodeError as e:
        return await _page(datasette, request, "qualcode_error.html", {**context, "message": str(e)}, 404)
    return await _page(datasette, request, "qualcode_compare.html", {**context, **page, "all_coders": names})


def _jsonable(page: dict) -> dict:
    out = dict(page)
    out["turns"] = [{**t, "pieces": [p.__dict__ for p in t["pieces"]]} for t in page["turns"]]
    return out


# --- signing in -----------------------------------------------------------------------------------


async def login(datasette, request):
    ws = workspace(datasette)
    context = _context(ws, request)
    next_url = request.args.get("next") or datasette.urls.path("/-/code")
    if request.method == "POST":
        from ..logins import check_login

        form = await request.post_vars()
        next_url = form.get("next") or next_url
        name = await asyncio.get_running_loop().run_in_executor(
            None, check_login, ws.path, form.get("coder", ""), form.get("password", ""))
        if name:
            if not next_url.startswith("/") or next_url.startswith("//"):
                next_url = datasette.urls.path("/-/code")
            response = Response.redirect(next_url)
            response.set_cookie("ds_actor", datasette.sign({"a": {"id": name, "qualcode_coder": name}}, "actor"),
                                httponly=True, samesite="lax")
            return response
        context["error"] = "That name and password do not match a coder's login."
    return await _page(datasette, request, "qualcode_login.html", {**context, "next": next_url})


async def logout(datasette, request):
    if request.method != "POST":
        return Response.redirect(datasette.urls.path("/-/code"))
    response = Response.redirect(datasette.urls.path("/-/code"))
    response.set_cookie("ds_actor", "", expires=0)
    return response


# --- writes ---------------------------------------------------------------------------------------


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def api(datasette, request):
    """One write (or the next suggestion to look at), as JSON: who writes is the signed-in coder."""
    ws = workspace(datasette)
    coder = ws.access.coder(request.actor)
    action = request.url_vars["action"]
    try:
        if coder is None:
            raise Refused(401, "sign in as a coder to write")
        if action == "next":
            return Response.json(await ws.read(_next_uncertain, coder, ws.access.is_blind(coder),
                                               request.args.get("after")))
        if request.method != "POST":
            raise Refused(405, "writes are POST requests")
        try:
            body = json.loads((await request.post_body()) or b"{}")
        except ValueError:
            raise Refused(400, "the request body is not JSON") from None
        if not isinstance(body, dict):
            raise Refused(400, "the request body must be a JSON object")
        handler = WRITES.get(action)
        if handler is None:
            raise Refused(404, f"no action '{action}'")
        if action == "consensus" and not ws.access.sees_others(request.actor):
            raise Refused(403, "a blind coder cannot record consensus")
        result = await ws.write(handler, coder, body)
        if action == "suggestion":
            result["retraining"] = ws.maybe_retrain(coder)
        if result.get("segment_id"):
            from .data import one_turn

            turn = await ws.read(one_turn, result["segment_id"], ws.access.visible_coders(request.actor), coder,
                                 ws.access.is_blind(coder))
            result["turn_html"] = str(await ws.render_turns([turn], coder))
        return Response.json({"ok": True, **result})
    except Refused as e:
        return Response.json({"ok": False, "error": str(e)}, status=e.status)
    except QualcodeError as e:
        return Response.json({"ok": False, "error": str(e)}, status=400)


def _next_uncertain(db, coder: str, blind: bool, after: str | None) -> dict:
    """The most uncertain pending suggestion but those just shown (``after``: their ids, comma-separated),
    so that pressing n again walks down the queue rather than back and forth between two."""
    from ..suggest.review import queue

    seen = {s.strip() for s in (after or "").split(",")[:200] if s.strip()}
    for row in queue(db, coder, order="uncertain", limit=len(seen) + 1, blind=blind):
        if str(row["id"]) not in seen:
            return {"ok": True, "suggestion_id": row["id"], "document_id": row["document_id"], "seq": row["seq"],
                    "segment_id": row["segment_id"], "code_id": row["code_id"], "score": row["score"]}
    return {"ok": True, "suggestion_id": None}


def _segment(db, segment_id) -> dict:
    row = next(db.query("SELECT id, document_id, seq, start_char, end_char FROM segments WHERE id = ?",
                        [int(segment_id)]), None)
    if row is None:
        raise Refused(404, f"no segment {segment_id}")
    return row


def _int(body: dict, key: str) -> int:
    try:
        return int(body[key])
    except (KeyError, TypeError, ValueError):
        raise Refused(400, f"'{key}' must be a number") from None


def w_apply(db, coder: str, body: dict) -> dict:
    """Code a turn, or the span of it given as document offsets."""
    from ..coding import apply_code

    seg = _segment(db, _int(body, "segment_id"))
    span = None
    if body.get("start") is not None or body.get("end") is not None:
        start, end = _int(body, "start"), _int(body, "end")
        if not (seg["start_char"] <= start < end <= seg["end_char"]):
            raise Refused(400, f"the selection {start}:{end} is not inside turn {seg['seq']}")
        if (start, end) != (seg["start_char"], seg["end_char"]):
            span = f"{start - seg['start_char']}:{end - seg['start_char']}"
    result = apply_code(db, seg["id"], str(body.get("code_id", "")), coder, span=span,
                        memo=body.get("memo") or None)
    return {"segment_id": seg["id"], "coding_id": result.coding_id, "added": result.added,
            "undo": {"action": "remove", "coding_id": result.coding_id} if result.added else None}


def w_remove(db, coder: str, body: dict) -> dict:
    from ..coding import remove_coding

    row = remove_coding(db, _int(body, "coding_id"), coder)
    whole = row["start_char"] is None
    return {"segment_id": row["segment_id"],
            "undo": {"action": "apply", "segment_id": row["segment_id"], "code_id": row["code_id"],
                     "start": None if whole else row["start_char"], "end": None if whole else row["end_char"],
                     "memo": row["memo"]}}


def w_coding_memo(db, coder: str, body: dict) -> dict:
    from ..coding import own_coding, set_coding_memo

    coding_id = _int(body, "coding_id")
    before = own_coding(db, coding_id, coder)
    set_coding_memo(db, coding_id, coder, str(body.get("memo") or ""))
    return {"segment_id": before["segment_id"],
            "undo": {"action": "coding-memo", "coding_id": coding_id, "memo": before["memo"] or ""}}


def w_memo(db, coder: str, body: dict) -> dict:
    """Add a memo on a turn or the document, or edit (empty text: delete) one of the coder's own."""
    from ..memos import add_memo, edit_memo

    text = str(body.get("text") or "")
    if body.get("memo_id"):
        memo_id = _int(body, "memo_id")
        before = next(db.query("SELECT text, segment_id, document_id FROM memos WHERE id = ?", [memo_id]), None)
        edit_memo(db, memo_id, coder, text)
        undo = ({"action": "memo", "memo_id": memo_id, "text": before["text"]} if text.strip() else
                {"action": "memo", "text": before["text"], "segment_id": before["segment_id"],
                 "document_id": before["document_id"]}) if before else None
        return {"segment_id": before and before["segment_id"], "memo_id": memo_id, "undo": undo}
    if body.get("segment_id"):
        seg = _segment(db, _int(body, "segment_id"))
        memo_id = add_memo(db, text, coder, segment=str(seg["id"]))
        return {"segment_id": seg["id"], "memo_id": memo_id, "undo": {"action": "memo", "memo_id": memo_id, "text": ""}}
    memo_id = add_memo(db, text, coder, document=str(body.get("document_id") or ""))
    return {"memo_id": memo_id, "undo": {"action": "memo", "memo_id": memo_id, "text": ""}}


def w_suggestion(db, coder: str, body: dict) -> dict:
    """Accept or reject a suggestion; undoing puts it back in the queue and removes its coding."""
    from ..suggest.review import Decision, decide, undo

    suggestion_id = _int(body, "suggestion_id")
    row = next(db.query("SELECT x.segment_id, x.status, c.name AS decided_by FROM suggestions x "
                        "LEFT JOIN coders c ON c.id = x.decided_by WHERE x.id = ?", [suggestion_id]), None)
    if row is None:
        raise Refused(404, f"no suggestion {suggestion_id}")
    if body.get("undo"):
        if row["status"] == "pending":
            return {"segment_id": row["segment_id"]}
        if row["decided_by"] != coder:
            raise Refused(403, "only the coder who decided a suggestion can undo it")
        coding_id = body.get("coding_id")
        if coding_id:
            from ..coding import own_coding
            own_coding(db, int(coding_id), coder)
        undo(db, Decision(suggestion_id, row["status"], int(coding_id) if coding_id else None))
        return {"segment_id": row["segment_id"]}
    if row["status"] != "pending":
        raise Refused(409, f"suggestion {suggestion_id} was already {row['status']} by {row['decided_by']}")
    decision = decide(db, suggestion_id, coder, bool(body.get("accept")))
    return {"segment_id": row["segment_id"], "status": decision.status,
            "undo": {"action": "suggestion", "suggestion_id": suggestion_id, "undo": True,
                     "coding_id": decision.coding_id}}


def w_consensus(db, coder: str, body: dict) -> dict:
    """Record the consensus on one disagreement, as `qualcode reconcile` does."""
    from ..team import Disagreement, decide

    seg = _segment(db, _int(body, "segment_id"))
    code_id = str(body.get("code_id") or "")
    coders = [str(c) for c in body.get("coders") or []]
    if len(coders) < 2:
        raise Refused(400, "name the coders whose disagreement this settles")
    applied = [r["name"] for r in db.query(
        f"SELECT DISTINCT c.name FROM codings g JOIN coders c ON c.id = g.coder_id WHERE g.segment_id = ? "
        f"AND g.code_id = ? AND c.name IN ({', '.join('?' * len(coders))})", [seg["id"], code_id, *coders])]
    text, speaker = db.execute("SELECT text, speaker FROM segments WHERE id = ?", [seg["id"]]).fetchone()
    name = next(db.query("SELECT name FROM codes WHERE id = ?", [code_id]), {"name": code_id})["name"]
    disagreement = Disagreement(seg["id"], f"{seg['document_id']}:{seg['seq']}", speaker, text, code_id, name,
                                applied, [c for c in coders if c not in applied])
    decide(db, str(body.get("consensus") or "Consensus"), disagreement, bool(body.get("apply")),
           memo=(body.get("memo") or None))
    return {"decision": disagreement.decision, "code_id": code_id, "seq": seg["seq"]}


def w_undo(db, coder: str, body: dict) -> dict:
    """Carry out the inverse that an earlier write returned; it is checked like any write."""
    inverse = body.get("undo") or {}
    handler = WRITES.get(inverse.get("action")) if isinstance(inverse, dict) else None
    if handler is None or handler is w_undo or handler is w_consensus:
        raise Refused(400, "nothing to undo")
    return {**handler(db, coder, inverse), "undo": None}


WRITES = {"apply": w_apply, "remove": w_remove, "coding-memo": w_coding_memo, "memo": w_memo,
          "suggestion": w_suggestion, "consensus": w_consensus, "undo": w_undo}


@hookimpl
def register_routes():
    return [
        (r"^/-/code$", home),
        (r"^/-/code/login$", login),
        (r"^/-/code/logout$", logout),
        (r"^/-/code/api/(?P<action>[a-z-]+)$", api),
        (r"^/-/code/(?P<document_id>[^/]+)/compare$", compare),
        (r"^/-/code/(?P<document_id>[^/]+?)\.(?P<format>json)$", document),
        (r"^/-/code/(?P<document_id>[^/]+)$", document),
    ]


def _project_name(datasette) -> str | None:
    try:
        return workspace(datasette).name
    except StopIteration:  # no project file served
        return None


@hookimpl
def extra_template_vars(datasette, request):
    """Template helpers: `view_in_context(document_id, seq)` links any passage to its turn in the
    transcript; the reading layouts of Datasette's table pages (see reading.py); and what the
    forgiving search changed in this request (see search.py)."""
    from .search import SCOPE_KEY

    project = _project_name(datasette)

    def view_in_context(document_id, seq=None) -> str:
        return reading.passage_url(datasette, document_id, seq)

    def reading_layout(database, table) -> str | None:
        return reading.reading_layout(project, database, table, request)

    def reading_available(database, table) -> bool:
        return reading.has_layout(project, database, table)

    async def reading_items(database, table, rows, search=None) -> list[dict]:
        return await reading.reading_items(datasette, database, table, rows, request, search)

    return {"view_in_context": view_in_context, "qualcode_query": urlencode,
            "qualcode_reading_layout": reading_layout, "qualcode_reading_items": reading_items,
            "qualcode_reading_available": reading_available,
            "qualcode_search_forgiven": (request.scope.get(SCOPE_KEY) or []) if request is not None else []}


@hookimpl
def render_cell(datasette, database, table, column, value, row):
    """In Datasette's tables of the project, passages link to their turn in the transcript."""
    if database != _project_name(datasette):
        return None
    return reading.render_cell(datasette, value, column, table, row)


@hookimpl
def asgi_wrapper(datasette):
    """Full-text search that falls back to searching word by word instead of failing (see search.py)."""
    from .search import forgiving_search

    return forgiving_search(datasette)
