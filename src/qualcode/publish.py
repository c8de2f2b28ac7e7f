"""Datasette: the metadata we serve the project with, and serving it.

This module is also registered as a Datasette plugin (see pyproject.toml), so
the pages and hooks we add later live beside the code that serves them.
"""

from __future__ import annotations

import atexit
import json
import ipaddress
import os
import tempfile
from pathlib import Path

import yaml
from datasette import hookimpl

from .errors import QualcodeError

#: The metadata every project is served with, shipped inside the package.
METADATA_FILE = Path(__file__).with_name("datasette-metadata.yml")
#: The database name used as the key in datasette-metadata.yml.
METADATA_DATABASE = "qualcode"


def load_metadata(path: str | Path | None, db_path: str | Path) -> dict:
    """The metadata to serve ``db_path`` with: our packaged file (or ``path``), fitted to the project.

    Datasette keys metadata by database name (the file's stem), while one metadata file serves any
    project file, so we rename the section; the title, description and licence come from the
    project itself, and the code × site matrix gets one column per site of this project.
    """
    path = Path(path) if path is not None else METADATA_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise QualcodeError("no such metadata file", path) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise QualcodeError(f"YAML syntax error: {getattr(e, 'problem', e)}", path, mark.line + 1 if mark else None) from None
    if not isinstance(data, dict):
        raise QualcodeError("the metadata file must be a mapping of settings", path)
    databases = data.get("databases") or {}
    name = Path(db_path).stem
    if METADATA_DATABASE in databases and name != METADATA_DATABASE:
        databases[name] = databases.pop(METADATA_DATABASE)
    # Dashboard charts and filters name their database too.
    for dashboard in ((data.get("plugins") or {}).get("datasette-dashboards") or {}).values():
        for part in [*(dashboard.get("charts") or {}).values(), *(dashboard.get("filters") or {}).values()]:
            if part.get("db") == METADATA_DATABASE:
                part["db"] = name
    return _fit_to_project(data, db_path, databases.get(name) or {})


def _fit_to_project(data: dict, db_path: str | Path, section: dict) -> dict:
    from .about import apply_to_metadata, get_about

    about, sites = {}, []
    if Path(db_path).is_file():
        import sqlite3

        conn = sqlite3.connect(f"file:{Path(db_path).resolve()}?mode=ro", uri=True)
        try:
            import sqlite_utils

            db = sqlite_utils.Database(conn)
            if db["about"].exists():
                about = get_about(db)
            sites = [r[0] for r in conn.execute("SELECT DISTINCT coalesce(site, '') FROM documents ORDER BY 1")]
        except sqlite3.DatabaseError:
            pass  # not a project (yet): serve with the defaults; `serve` has checked the file already
        finally:
            conn.close()
    query = (section.get("queries") or {}).get("code_by_site_matrix")
    if query is not None:
        query["sql"] = code_by_site_sql(sites)
    return apply_to_metadata(data, about, Path(db_path).stem)


def code_by_site_sql(sites: list[str]) -> str:
    """Segments per sub-code, one column per site: written for each project, since SQL cannot pivot."""
    def literal(value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    def column(value: str) -> str:
        return '"' + (value or "(no site)").replace('"', '""') + '"'

    columns = "".join(f"  sum(case when coalesce(site, '') = {literal(site)} then segments else 0 end) as {column(site)},\n"
                      for site in sites)
    return ("select code_id, code_name,\n" + columns + "  sum(segments) as total\nfrom code_by_site\n"
            "where depth = 1\ngroup by code_id\norder by total desc")


@hookimpl
def prepare_connection(conn):
    """Map the project file into memory and give each connection a 64 MB page cache.

    A search over a million segments touches hundreds of megabytes; with SQLite's
    default 2 MB cache every request copies them in again (measured: 20% slower).
    """
    conn.execute("PRAGMA mmap_size = 1073741824")
    conn.execute("PRAGMA cache_size = -65536")


PASSWORD_ENV = "QUALCODE_PASSWORD_HASH"


def with_password(metadata: dict, user: str) -> dict:
    """Require HTTP Basic authentication as ``user`` for every page and API call.

    The password hash is read by datasette-auth-passwords from the environment
    variable QUALCODE_PASSWORD_HASH (made with `qualcode hash-password`), so it
    never sits in a file next to the transcripts.
    """
    if not os.environ.get(PASSWORD_ENV):
        raise QualcodeError(f"{PASSWORD_ENV} is not set",
                            hint=f"run `qualcode hash-password` and export {PASSWORD_ENV}=<the hash>")
    data = dict(metadata)
    plugins = dict(data.get("plugins") or {})
    plugins["datasette-auth-passwords"] = {"http_basic_auth": True, f"{user}_password_hash": {"$env": PASSWORD_ENV}}
    data["plugins"] = plugins
    data["allow"] = {"id": user}
    return data


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def datasette_args(db_path: str | Path, metadata: dict, host: str, port: int) -> list[str]:
    """Arguments for ``datasette serve``; the metadata is written to a temporary file."""
    handle = tempfile.NamedTemporaryFile("w", suffix=".yml", prefix="qualcode-metadata-", delete=False)
    with handle:
        yaml.safe_dump(metadata, handle, sort_keys=False, allow_unicode=True)
    atexit.register(os.remove, handle.name)
    # Facet suggestions run a query per column on every table page; on a project of a
    # million segments they dominate response time, and our metadata names the facets.
    return ["serve", str(db_path), "--metadata", handle.name, "--host", host, "--port", str(port),
            "--setting", "suggest_facets", "off", "--setting", "default_page_size", "50"]


# --- a separate, read-only copy for sharing -----------------------------------------------------


def read_names(path: str | Path) -> dict[str, str]:
    """A per-project list of identifying names: one per line, ``Name`` or ``Name = Replacement``."""
    path = Path(path)
    if not path.is_file():
        raise QualcodeError("no such names file", path)
    names: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, replacement = line.partition("=")
        if not name.strip():
            raise QualcodeError("a line with a replacement but no name", path, number, hint="write 'Name = Replacement'")
        names[name.strip()] = replacement.strip() or f"[name {len(names) + 1}]"
    return names


def _pseudonymise(db, alias) -> int:
    """Replace every listed name in every column :data:`qualcode.privacy.FIELDS` walks.

    Document text first, re-deriving the offsets of its segments and coded spans
    from the same replacements, so ``document.text[start:end]`` still holds for
    every segment and span; then every other text and JSON column, identifiers
    and the columns that refer to them alike (foreign keys are checked at commit).
    """
    import sqlite3

    from .privacy import IDENTIFIER, JSON, OffsetMap, walked_fields

    db.execute("PRAGMA defer_foreign_keys = ON")
    changed = 0
    for doc in list(db.query("SELECT id, text FROM documents")):
        spans = alias.spans(doc["text"])
        if not spans:
            continue
        changed += 1
        moved = OffsetMap(doc["text"], spans)
        db.execute("UPDATE documents SET text = ? WHERE id = ?", [moved.text, doc["id"]])
        for seg in list(db.query("SELECT id, start_char, end_char FROM segments WHERE document_id = ?", [doc["id"]])):
            start, end = moved.start(seg["start_char"]), moved.end(seg["end_char"])
            db.execute("UPDATE segments SET start_char = ?, end_char = ?, text = ? WHERE id = ?",
                       [start, end, moved.text[start:end], seg["id"]])
        for coding in list(db.query("SELECT g.id, g.start_char, g.end_char FROM codings g JOIN segments s ON s.id = g.segment_id "
                                    "WHERE s.document_id = ? AND g.start_char IS NOT NULL", [doc["id"]])):
            db.execute("UPDATE codings SET start_char = ?, end_char = ? WHERE id = ?",
                       [moved.start(coding["start_char"]), moved.end(coding["end_char"]), coding["id"]])
    for table, column, kind in walked_fields():
        rewrite = {JSON: alias.json, IDENTIFIER: alias.identifier}.get(kind, alias.text)
        updates = [(new, rowid) for rowid, value in db.execute(
                       f"SELECT rowid, [{column}] FROM [{table}] WHERE typeof([{column}]) = 'text'").fetchall()
                   if (new := rewrite(value)) != value]
        try:
            db.conn.executemany(f"UPDATE [{table}] SET [{column}] = ? WHERE rowid = ?", updates)
        except sqlite3.IntegrityError as e:
            raise QualcodeError(f"pseudonymising {table}.{column} makes two rows the same ({e})",
                                hint="give the names involved distinct replacements in --names") from None
    # Excerpts copy names from five tables: refill them from their source rather than trust the triggers.
    db.execute("DELETE FROM excerpts")
    db.execute("INSERT INTO excerpts SELECT * FROM excerpt_source")
    return changed


def publish(source: str | Path, out: str | Path, pseudonymise: bool = False, names: dict[str, str] | None = None,
            include_unpublished: bool = False, force: bool = False) -> dict:
    """Write a separate, read-only copy of a project for sharing.

    Unpublished documents are dropped; with ``pseudonymise`` every speaker, coder
    and listed name is replaced in every column the schema has (see
    :data:`qualcode.privacy.FIELDS`), the full-text index is rebuilt and the file
    vacuumed. The copy is built aside and scanned (every table and column, the
    index, the raw bytes): if any listed name or name part survives, nothing is
    written and :class:`qualcode.privacy.LeakError` names where it is. Only a
    complete, verified file is moved to ``out``.
    """
    import stat

    import sqlite_utils

    from .db import copy_project, open_project
    from .privacy import Pseudonymiser, check_target, staged_output, verify_database

    out = Path(out)
    project = open_project(source, create=False)
    try:
        check_target(project.conn.execute("PRAGMA database_list").fetchone()[2], out, force, "published copy")
        with staged_output(out) as staged:
            target = copy_project(project, staged)
            try:
                target.execute("PRAGMA journal_mode = DELETE")
                target.execute("PRAGMA foreign_keys = ON")
                target.execute("PRAGMA secure_delete = ON")  # what is replaced is overwritten, not just unlinked
                db = sqlite_utils.Database(target)
                alias = None
                if pseudonymise or names:  # from the whole project: unpublished documents name people too
                    alias = Pseudonymiser.for_project(db, names) if pseudonymise else Pseudonymiser([], names)
                with db.atomic():
                    dropped = 0
                    if not include_unpublished:
                        dropped = db.execute("DELETE FROM documents WHERE published = 0").rowcount
                    changed = _pseudonymise(db, alias) if alias else 0
                    db.execute("INSERT INTO segments_fts(segments_fts) VALUES ('rebuild')")
                    db.execute("INSERT INTO segments_fts(segments_fts) VALUES ('optimize')")
                target.execute("VACUUM")
                if alias:
                    verify_database(target, staged, alias, out)
                counts = {t: target.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                          for t in ("documents", "segments", "codings")}
            finally:
                target.close()
            staged.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    finally:
        project.close()
    return {**counts, "dropped_documents": dropped, "pseudonymised_documents": changed}


# --- CSV a spreadsheet will not execute ---------------------------------------------------------


@hookimpl
def asgi_wrapper(datasette):
    """Datasette's built-in ``.csv`` output, with formula-like text cells neutralised as our
    own exports are (an ASGI wrapper, since Datasette offers no hook on its CSV rows)."""
    from .spreadsheet import safe_csv_app

    return safe_csv_app
