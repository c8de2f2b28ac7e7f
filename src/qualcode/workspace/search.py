"""Forgiving full-text search: a query that is not valid FTS5 is searched word by word, not refused.

Segments are searched with raw FTS5 syntax (``searchmode: raw``) so researchers can write
"exact phrases", OR, NOT, NEAR() and prefix*. But raw syntax makes an ordinary word with an
apostrophe (``teacher's``), a hyphen (``e-mail``), a lone ``AND`` or an unclosed quote a syntax
error, which Datasette shows as "Invalid SQL". Datasette has no hook between reading ``?_search=``
and running it, so a small ASGI wrapper checks each full-text query before the table (or canned
query) view sees it: a valid one passes unchanged; an invalid one is replaced by Datasette's own
escaped form (each word quoted, as ``searchmode: escaped`` does), or dropped when nothing is
left to search for, and what was done is left in the request scope under :data:`SCOPE_KEY` for
the page to say so.

The check parses the query against an empty in-memory FTS5 table with the same columns, so it
costs microseconds and never touches the project file.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Awaitable, Callable
from urllib.parse import parse_qsl, urlencode

from datasette.utils import escape_fts, tilde_decode

#: Where the wrapper leaves what it changed, for templates (a list of :class:`Forgiven` as dicts).
SCOPE_KEY = "qualcode.search"
#: Datasette's table and canned-query paths: /database/name, with an optional .format.
_PAGE = re.compile(r"^/(?P<database>[^/.]+)/(?P<name>[^/.]+)(?:\.(?P<format>\w+))?$")
#: ``fts_table match :param`` in a canned query's SQL.
_MATCH_PARAM = re.compile(r"([A-Za-z_][\w]*)\s+match\s+:(\w+)", re.IGNORECASE)


@dataclass(frozen=True)
class Forgiven:
    """One query parameter the wrapper changed: what was typed, what was searched (None: nothing), why."""

    param: str
    typed: str
    searched: str | None
    error: str


@lru_cache(maxsize=32)
def _parser(columns: tuple[str, ...]) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.execute("CREATE VIRTUAL TABLE f USING fts5(" + ", ".join('"' + c.replace('"', '""') + '"' for c in columns) + ")")
    return conn


def fts_error(query: str, columns: tuple[str, ...] = ("text",)) -> str | None:
    """Why ``query`` is not a valid FTS5 query over a table with these columns, or None if it is."""
    try:
        _parser(tuple(columns)).execute("SELECT 1 FROM f WHERE f MATCH ?", [query]).fetchall()
    except sqlite3.Error as e:
        return str(e)
    return None


def forgive(query: str, columns: tuple[str, ...] = ("text",), raw: bool = True) -> Forgiven | None:
    """None if ``query`` can be searched as it is (raw FTS5 or, with ``raw=False``, Datasette's escaped
    form); otherwise what to search instead: the escaped form, or nothing when no word is left."""
    error = fts_error(query if raw else escape_fts(query), columns)
    if error is None:
        return None
    escaped = escape_fts(query)
    if not raw or fts_error(escaped, columns) is not None:
        escaped = None
    return Forgiven("", query, escaped, error)


async def fts_columns(db, fts: str) -> tuple[str, ...]:
    """The indexed columns of a full-text table (Datasette's table_columns adds FTS5's hidden ones)."""
    return tuple(r[0] for r in await db.execute("SELECT name FROM pragma_table_info(?)", [fts]))


async def _targets(datasette, database: str, name: str, args: list[tuple[str, str]]) -> list[tuple[str, str, bool]]:
    """(parameter, FTS table, raw?) for each full-text query this request carries."""
    queries = datasette.metadata("queries", database=database) or {}
    query = queries.get(name)
    sql = query.get("sql") if isinstance(query, dict) else query  # a canned query, in either form
    if isinstance(sql, str):
        return [(param, fts, True) for fts, param in _MATCH_PARAM.findall(sql)]
    keys = {key for key, _ in args if key.startswith("_search") and key != "_searchmode"}
    if not keys:
        return []
    db = datasette.get_database(database)
    if not await db.table_exists(name):
        return []
    given = dict(args)
    meta = datasette.table_metadata(database, name)
    fts = given.get("_fts_table") or meta.get("fts_table") or await db.fts_table(name)
    if not fts:
        return []
    raw = {"raw": True, "escaped": False}.get(given.get("_searchmode"), meta.get("searchmode") == "raw")
    return [(key, fts, raw) for key in keys]


async def check_request(datasette, path: str, query_string: str) -> tuple[str, list[Forgiven]]:
    """The query string to run instead (the same one when every full-text query is valid), and what changed."""
    base = datasette.setting("base_url") or "/"
    if base != "/" and path.startswith(base):
        path = "/" + path[len(base):]
    match = _PAGE.match(path)
    if not match or not query_string:
        return query_string, []
    database, name = tilde_decode(match["database"]), tilde_decode(match["name"])
    if database not in datasette.databases:
        return query_string, []
    args = parse_qsl(query_string, keep_blank_values=True)
    targets = await _targets(datasette, database, name, args)
    if not targets:
        return query_string, []
    db = datasette.get_database(database)
    changed: dict[str, Forgiven] = {}
    for param, fts, raw in targets:
        value = next((v for k, v in args if k == param), None)
        if value is None or not await db.table_exists(fts):
            continue
        columns = await fts_columns(db, fts)
        forgiven = forgive(value, columns, raw)
        if forgiven is not None:
            changed[param] = Forgiven(param, forgiven.typed, forgiven.searched, forgiven.error)
    if not changed:
        return query_string, []
    rewritten = []
    for key, value in args:
        if key in changed:
            if changed[key].searched is None:
                if not key.startswith("_search"):
                    rewritten.append((key, '""'))  # a canned query needs its parameter: the empty phrase finds nothing
                continue
            value = changed[key].searched
        rewritten.append((key, value))
    return urlencode(rewritten), list(changed.values())


ASGIApp = Callable[[dict, Callable, Callable], Awaitable[None]]


def forgiving_search(datasette) -> Callable[[ASGIApp], ASGIApp]:
    """An ``asgi_wrapper`` that makes every full-text query on Datasette's pages forgiving (see the module)."""

    def wrap(app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: dict, receive: Callable, send: Callable) -> None:
            if scope.get("type") == "http" and scope.get("query_string"):
                query_string = scope["query_string"].decode("latin-1")
                new, changed = await check_request(datasette, scope.get("path", ""), query_string)
                if changed:
                    scope = {**scope, "query_string": new.encode("latin-1"),
                             SCOPE_KEY: [asdict(c) for c in changed]}
            await app(scope, receive, send)

        return wrapped

    return wrap
