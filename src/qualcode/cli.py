"""The ``qualcode`` command: a thin click layer over the library.

Options are parsed here and results echoed here; the work happens in the
library. Every :class:`QualcodeError` becomes one line on stderr and exit 1.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import sys
from pathlib import Path

import click

from . import codebook as codebook_lib
from .db import DEFAULT_DB, open_project
from .errors import QualcodeError
from .ingest import FileResult, IngestOptions, TableMapping, ingest_paths
from .status import project_status


class QualcodeGroup(click.Group):
    """Turns library errors into one-line messages, in one place.

    Every group of ours is one (``group_class``), so the innermost group, which knows the command
    that failed, words the message: a hint offers only options that this command has.
    """

    group_class = type

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except QualcodeError as e:
            raise click.ClickException(error_line(e, self.get_command(ctx, ctx.invoked_subcommand or ""))) from None
        except sqlite3.OperationalError as e:
            # Units of work wait in Project.atomic(); a lock met elsewhere is still a busy project, not a bug.
            if "locked" not in str(e) and "busy" not in str(e):
                raise
            raise click.ClickException("the project is busy: another program held its write lock past the "
                                       "busy timeout — try again when it has finished") from None


def error_line(error: QualcodeError, command: click.Command | None) -> str:
    if error.or_option and command is not None:
        option, clause = error.or_option
        if any(option in p.opts for p in command.params):
            error.hint = f"{error.hint} or {clause}" if error.hint else clause
    return str(error)


def db_option(fn):
    return click.option(
        "--db",
        "db_path",
        type=click.Path(dir_okay=False),
        default=DEFAULT_DB,
        envvar="QUALCODE_DB",
        show_default=True,
        help="Project database (or set QUALCODE_DB).",
    )(fn)


def _open(db_path: str, create: bool = False):
    return open_project(db_path, create=create)


@click.group(cls=QualcodeGroup)
@click.version_option(package_name="qualcode")
def cli():
    """qualcode: team coding of interviews and field notes, published with Datasette.

    \b
    Start a project and code a corpus:
        qualcode init
        qualcode codebook load codebooks/lessons.yml
        qualcode ingest corpora/ --manifest corpora/manifest.csv
        qualcode status
        qualcode serve
    """


def about_options(fn):
    for name, help_text in reversed([
        ("--title", "The project's title, shown at the top of every page it is served with."),
        ("--description", "A sentence or two on what the project is (plain text)."),
        ("--license", "The licence under which the data may be used, e.g. 'CC BY 4.0' or 'internal use only'."),
        ("--license-url", "A link to the licence."),
        ("--source", "Who collected the data, or where it comes from."),
        ("--source-url", "A link to the source."),
    ]):
        fn = click.option(name, help=help_text)(fn)
    return fn


@cli.command()
@about_options
@db_option
def init(db_path, **about):
    """Create a project database (or upgrade an old one in place).

    \b
    Example:
        qualcode init --db study.db --title "Coaching study, spring 2025" --license "internal use only"
    """
    from .about import set_about

    existed = Path(db_path).exists()
    db = _open(db_path, create=True)
    if any(v is not None for v in about.values()):
        set_about(db, **about)
    status = project_status(db)
    verb = "Opened" if existed else "Created"
    click.echo(f"{verb} project {db_path} (schema {status['schema'][-1]})")


@cli.command()
@about_options
@db_option
def about(db_path, **values):
    """Show or change the project's title, description and licence.

    These are what `qualcode serve` and a published copy show; an empty value clears one.

    \b
    Example:
        qualcode about --title "Coaching study, spring 2025" --license "CC BY 4.0"
    """
    from .about import FIELDS, get_about, set_about

    db = _open(db_path)
    current = set_about(db, **values) if any(v is not None for v in values.values()) else get_about(db)
    for field in FIELDS:
        click.echo(f"{field.replace('_', ' ')}: {current[field] or '(not set)'}")


# --- codebook -----------------------------------------------------------------


@cli.group()
def codebook():
    """Check, load, show, import and export codebooks."""


@codebook.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path())
def codebook_validate(files):
    """Check codebook files; print every problem as FILE:LINE: message.

    \b
    Example:
        qualcode codebook validate codebooks/lessons.yml
    """
    problems = [p for f in files for p in codebook_lib.validate_codebook(codebook_lib.resolve_codebook(f))]
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        click.echo(f"{len(problems)} problem(s) found", err=True)
        sys.exit(1)
    click.echo(f"{', '.join(files)}: OK")


@codebook.command("load")
@click.argument("file", type=click.Path())
@click.option("--force", is_flag=True, help="Archive codes that left the file even when they have codings.")
@db_option
def codebook_load(file, force, db_path):
    """Load a codebook into the project, syncing its codes.

    FILE is a YAML codebook, or the name of one that qualcode ships (`lessons`).

    Changed codes are updated in place; a removed code that has codings is
    refused (or archived with --force).

    \b
    Example:
        qualcode codebook load lessons
        qualcode codebook load my-codebook.yml
    """
    book = codebook_lib.load_codebook(codebook_lib.resolve_codebook(file))
    db = _open(db_path, create=True)
    result = codebook_lib.sync_codebook(db, book, force=force)
    parts = [f"{len(getattr(result, k))} {k}" for k in ("added", "updated", "unchanged", "restored", "archived", "deleted")
             if getattr(result, k)]
    click.echo(f"Loaded codebook '{book.name}'{' ' + str(book.version) if book.version else ''}: {', '.join(parts) or 'no codes'}")


@codebook.command("show")
@click.argument("file", required=False, type=click.Path())
@db_option
def codebook_show(file, db_path):
    """Show a codebook as a tree: the project's, or a file's.

    \b
    Examples:
        qualcode codebook show
        qualcode codebook show codebooks/lessons.yml
    """
    if file:
        book = codebook_lib.load_codebook(codebook_lib.resolve_codebook(file))
        click.echo(f"{book.name} {book.version}")
        for code, _, depth in book.walk():
            click.echo(f"{'  ' * (depth + 1)}{code.id:<{34 - 2 * depth}} {code.name}")
        return
    codes = codebook_lib.project_codes(_open(db_path), include_archived=True)
    if not codes:
        raise QualcodeError("the project has no codebook", db_path, hint="load one with `qualcode codebook load FILE`")
    for code in codes:
        flag = " (archived)" if code["archived"] else ""
        click.echo(f"{'  ' * code['depth']}{code['id']:<{34 - 2 * code['depth']}} {code['name']}{flag}  [{code['n_codings']} codings]")


# --- ingest -------------------------------------------------------------------


def _attribute_pairs(ctx, param, values):
    pairs = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"'{value}' is not KEY=VALUE")
        pairs[key.strip()] = val.strip()
    return pairs


def attribute_options(fn):
    """The document attributes `ingest` and `attributes set` both take, named and checked alike,
    handed to the command as one ``attributes`` dict of the values given."""
    options = [
        click.option("--kind", help="interview, focus_group, site_visit, observation or document."),
        click.option("--site", help="Site (school)."),
        click.option("--district", help="District."),
        click.option("--role", help="Participant role, e.g. principal."),
        click.option("--date", help="Date as YYYY-MM-DD."),
        click.option("--attribute", "-a", "attributes", multiple=True, callback=_attribute_pairs,
                     help="Any other attribute, KEY=VALUE (repeatable)."),
    ]

    @functools.wraps(fn)
    def given(*args, kind, site, district, role, date, attributes, **kwargs):
        named = {k: v for k, v in dict(kind=kind, site=site, district=district, role=role, date=date).items() if v}
        return fn(*args, attributes={**named, **dict(attributes)}, **kwargs)

    for option in reversed(options):
        given = option(given)
    return given


def _code_columns(ctx, param, values):
    columns = []
    for value in values:
        column, sep, coder = value.partition("=")
        columns.append((column.strip(), coder.strip() or None))
    return columns


def _n(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _file_line(f: FileResult) -> str:
    if f.status == "error":
        return f.error or f.path
    if f.status == "skipped":
        return f"{f.path}: {f.error}"
    detail = ""
    if f.documents and f.status in ("added", "replaced", "mixed"):
        detail = f" ({_n(f.segments, 'segment')}, {_n(f.words, 'word')}"
        codings = sum(d.codings for d in f.documents)
        detail += f", {_n(codings, 'coding')}" if codings else ""
        dropped = sum(d.dropped_codings for d in f.documents)
        detail += f", {dropped} codings on changed segments dropped" if dropped else ""
        detail += ")"
    notes = "; ".join(d.note for d in f.documents if d.note)
    return f"{f.path}: {f.status}{detail}" + (f" — {notes}" if notes else "")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--manifest", type=click.Path(dir_okay=False), help="CSV of path, title, kind, site, district, role, date, ...")
@attribute_options
@click.option("--segment", type=click.Choice(["auto", "turn", "paragraph", "sentence"]), default="auto", show_default=True,
              help="auto: speaker turns for interviews and focus groups, paragraphs otherwise.")
@click.option("--replace", is_flag=True, help="Re-ingest files that changed, keeping codings on unchanged segments.")
@click.option("--strict", is_flag=True, help="Stop at the first bad file.")
@click.option("--text-column", help="Spreadsheets: the column holding the segment text.")
@click.option("--document-column", help="Spreadsheets: the column holding the document id.")
@click.option("--speaker-column", help="Spreadsheets: the column holding the speaker.")
@click.option("--speaker-role-column", help="Spreadsheets: the column holding each row's speaker role "
              "(default: a column named speaker_role).")
@click.option("--time-column", help="Spreadsheets: the column holding a timestamp (seconds or HH:MM:SS).")
@click.option("--order-column", help="Spreadsheets: the column giving the segment order.")
@click.option("--code-column", multiple=True, callback=_code_columns, help="Spreadsheets: a code column, as COLUMN or COLUMN=CODER (repeatable).")
@click.option("--coder", help="Spreadsheets: the coder of code columns that name none.")
@click.option("--code-separator", default=";", show_default=True, help="Spreadsheets: separator of several codes in one cell.")
@click.option("--sheet", help="Spreadsheets: the .xlsx sheet to read (default: the first).")
@click.option("--create-codes", is_flag=True, help="Spreadsheets: create codes the project does not have yet.")
@click.option("--csv-dialect", type=click.Choice(["rfc4180", "semicolon", "tab", "backslash"]), default="rfc4180",
              show_default=True, help="CSV spreadsheets: comma with \"\" inside quotes (RFC 4180), ';', tabs, or \\\" inside quotes.")
@db_option
def ingest(paths, manifest, attributes, segment, replace, strict, text_column,
           document_column, speaker_column, speaker_role_column, time_column, order_column, code_column, coder, code_separator, sheet,
           create_codes, csv_dialect, db_path):
    """Ingest transcripts and notes (files or folders, recursively).

    Reads .txt, .md (with YAML front matter), .docx, .vtt, .srt, and .csv/.xlsx
    spreadsheets with one row per segment. Re-ingesting the same bytes does
    nothing; a changed file needs --replace.

    \b
    Examples:
        qualcode ingest corpora/ --manifest corpora/manifest.csv
        qualcode ingest notes/visit.md --kind site_visit --site "Bayview Elementary"
        qualcode ingest coded.xlsx --document-column doc --speaker-column speaker \\
            --text-column text --code-column "code=Rosa Delgado"
    """
    if not paths and not manifest:
        raise click.UsageError("give files or folders to ingest, or a --manifest")
    options = IngestOptions(
        manifest=manifest, attributes=attributes, segment=segment, replace=replace, strict=strict,
        table=TableMapping(text=text_column, document=document_column, speaker=speaker_column,
                           speaker_role=speaker_role_column, time=time_column,
                           order=order_column, codes=code_column, coder=coder, separator=code_separator, sheet=sheet,
                           csv_dialect=csv_dialect),
        create_codes=create_codes,
    )
    db = _open(db_path, create=True)
    bar = None

    def on_file(f: FileResult, done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label="Ingesting", file=sys.stderr, hidden=not sys.stderr.isatty())
            bar.__enter__()
        bar.update(1)

    try:
        result = ingest_paths(db, paths, options, on_file=on_file)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    for f in result.files:
        for warning in f.warnings:
            click.echo(f"Warning: {warning}", err=True)
        if f.status == "error":
            click.echo(f"Error: {_file_line(f)}", err=True)
        elif f.status != "skipped" or os.environ.get("QUALCODE_VERBOSE"):
            click.echo(_file_line(f))
    counts = ", ".join(f"{result.count(s)} {s}" for s in ("added", "unchanged", "attributes updated", "changed", "replaced",
                                                           "mixed", "skipped", "error")
                       if result.count(s))
    summary = f"{_n(len(result.files), 'file')}: {counts or 'nothing to do'}"
    if result.segments:
        summary += f" — {_n(result.words, 'word')}, {_n(result.segments, 'segment')} stored"
        summary += f", {_n(result.codings, 'coding')}" if result.codings else ""
    click.echo(summary)
    if result.errors:
        sys.exit(1)


@cli.group()
def attributes():
    """Correct documents' attributes after ingest (text, segments and codings stay)."""


@attributes.command("set")
@click.argument("document", required=False)
@click.option("--manifest", type=click.Path(dir_okay=False), help="A manifest CSV, as for `ingest --manifest`: every row's document.")
@click.option("--title", help="The document's title.")
@attribute_options
@db_option
def attributes_set(document, manifest, title, attributes, db_path):
    """Set attributes of one ingested DOCUMENT (by id), or of every document a --manifest lists.

    Values are checked as ingest checks them; attributes not given (and empty manifest cells)
    keep their stored values. The whole manifest is one change: any bad row changes nothing.

    \b
    Examples:
        qualcode attributes set harbor-02-principal-bayview --site "Bayview Elementary" --date 2024-10-16
        qualcode attributes set --manifest corpora/manifest.csv
    """
    from .ingest.reattribute import set_attributes, set_manifest_attributes

    attrs = {**({"title": title} if title else {}), **attributes}
    if bool(document) == bool(manifest):
        raise click.UsageError("give one DOCUMENT or a --manifest")
    if document and not attrs:
        raise click.UsageError("nothing to set: give --site, --role, ... or -a KEY=VALUE")
    db = _open(db_path)
    results = set_manifest_attributes(db, manifest, attrs) if manifest else [set_attributes(db, document, attrs)]
    for r in results:
        click.echo(r.describe())
    updated = sum(1 for r in results if r.changes)
    counts = ", ".join(f"{n} {word}" for n, word in ((updated, "updated"), (len(results) - updated, "unchanged")) if n)
    click.echo(f"{_n(len(results), 'document')}: {counts or 'nothing to do'}")


# --- speaker roles ----------------------------------------------------------------


@cli.group()
def roles():
    """Speaker roles (interviewer, participant, teacher...): list them, and map speakers to roles.

    Every turn's role comes from, strongest first: a spreadsheet's speaker_role column, the
    speaker map of its document, the project's speaker map, and the conventions (I, Q,
    Interviewer, Facilitator, Moderator and a document's `interviewer` attribute ask; anyone
    else is a participant). Codebook codes with `roles:` are suggested only on those turns.
    """


@roles.command("list")
@db_option
def roles_list(db_path):
    """List every speaker with their role, where it comes from, and their segments.

    \b
    Example:
        qualcode roles list
    """
    from .roles import list_roles

    rows = list_roles(_open(db_path))
    if not rows:
        click.echo("No speakers yet: ingest transcripts with speaker turns first.")
        return
    width = max(7, min(max(len(r["speaker"]) for r in rows), 30))
    click.echo(f"{'speaker':<{width}}  {'role':<14} {'source':<11} {'segments':>8}  document")
    for r in rows:
        click.echo(f"{r['speaker'][:30]:<{width}}  {r['role'] or '(none)':<14} {r['source'] or '':<11} "
                   f"{r['segments']:>8,}  {r['document'] or ''}".rstrip())


@roles.command("set")
@click.argument("speaker")
@click.argument("role")
@click.option("--document", help="Only in this document (by id); without it, in every document.")
@db_option
def roles_set(speaker, role, document, db_path):
    """Map SPEAKER (as transcripts label them, any case) to ROLE, and re-apply roles.

    \b
    Examples:
        qualcode roles set "Ana Ruiz" teacher
        qualcode roles set "Sam Lee" facilitator --document harbor-01-focus-group
    """
    from .roles import set_role

    with _open(db_path).atomic() as db:
        result = set_role(db, speaker, role, document)
    click.echo(result.summary())


@roles.command("clear")
@click.argument("speaker")
@click.option("--document", help="The document whose mapping to remove; without it, the project's.")
@db_option
def roles_clear(speaker, document, db_path):
    """Remove SPEAKER's mapping, so their turns fall back to the next source, and re-apply roles.

    \b
    Example:
        qualcode roles clear "Ana Ruiz"
    """
    from .roles import clear_role

    with _open(db_path).atomic() as db:
        result = clear_role(db, speaker, document)
    click.echo(result.summary("cleared"))


@roles.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@db_option
def roles_import(file, db_path):
    """Map the speakers of a CSV FILE with columns speaker, role and (optionally) document.

    One change: a bad row changes nothing. An empty document cell maps the speaker in every document.

    \b
    Example:
        qualcode roles import speakers.csv
    """
    from .roles import import_roles

    with _open(db_path).atomic() as db:
        result = import_roles(db, file)
    click.echo(result.summary())


# --- status and serve -----------------------------------------------------------


@cli.command()
@click.argument("document")
@click.option("--coder", "coders", multiple=True, help="Only this coder's codings (repeatable).")
@click.option("--code", "codes", multiple=True, help="Only this code's codings; a lesson means its sub-codes (repeatable).")
@click.option("--width", default=100, show_default=True, type=click.IntRange(40, 400), help="Wrap text at this many columns.")
@db_option
def show(document, coders, codes, width, db_path):
    """Print a document as a transcript: turn numbers, speakers, times, and each turn's codings.

    The reference to code a turn from the terminal is DOCUMENT:TURN, e.g. harbor-04-teacher-seacliff:12.

    \b
    Example:
        qualcode show harbor-04-teacher-seacliff --coder "Rosa Delgado"
    """
    import textwrap

    from .transcript import clock, read_transcript

    t = read_transcript(_open(db_path), document, list(coders) or None, list(codes) or None)
    d = t.document
    click.echo(d["title"] or d["id"])
    facts = [d["id"], d["kind"], d["site"], d["role"], d["date"], _n(len(t.turns), "turn")]
    click.echo(" · ".join(str(f) for f in facts if f))
    click.echo(f"Code a turn with: qualcode code {d['id']}:TURN CODE --coder NAME")
    for turn in t.turns:
        when = f" ({clock(turn.start_time)})" if turn.start_time is not None else ""
        click.echo(f"\n[{turn.seq}] {turn.speaker or ''}{when}".rstrip())
        click.echo(textwrap.fill(turn.text, width, initial_indent="    ", subsequent_indent="    "))
        by_code: dict[tuple, list[str]] = {}
        for c in turn.codings:
            span = ""
            if c["start_char"] is not None:
                words = turn.text[c["start_char"] - turn.start_char:c["end_char"] - turn.start_char]
                span = f' "{textwrap.shorten(words, 60, placeholder="…")}"'
            by_code.setdefault((c["code_id"], c["code_name"], span), []).append(c["coder"])
        for (code_id, name, span), names in by_code.items():
            click.echo(f"    ▸ {code_id} ({name}){span} — {', '.join(names)}")


@cli.command()
@db_option
def status(db_path):
    """Show what the project holds: documents by kind and site, share coded.

    \b
    Example:
        qualcode status --db study.db
    """
    s = project_status(_open(db_path))
    click.echo(f"Project {db_path} (schema {s['schema'][-1]})")
    for book in s["codebooks"]:
        click.echo(f"Codebook: {book['name']} {book['version'] or ''} — {book['codes']} codes, {book['top_level']} top-level")
    click.echo(f"Documents: {s['documents']} ({s['words']:,} words, {s['segments']:,} segments)")
    width = max((len(name) for key in ("by_kind", "by_district", "by_site") for name, _, _ in s[key]), default=0)
    for title, key in (("By kind", "by_kind"), ("By district", "by_district"), ("By site", "by_site")):
        click.echo(f"{title}:")
        for name, n, words in s[key]:
            click.echo(f"  {name:<{width}}  {n:>4} document{'s' if n != 1 else ' '}  {words or 0:>9,} words")
    click.echo(f"Coders: {s['coders']}, codings: {s['codings']:,}")
    for c in s["team"]:
        assigned = f"; assigned {c['assigned']}, {c['assigned_started']} started" if c["assigned"] else ""
        click.echo(f"  {c['name']}{' (consensus)' if c['consensus'] else ''}: {_n(c['codings'], 'coding')} "
                   f"in {_n(c['documents'], 'document')}{assigned}")
    if s["consensus_decisions"]:
        click.echo(f"Consensus decisions on disagreements: {s['consensus_decisions']:,}")
    click.echo(f"Coded: {s['coded_segments']:,} of {s['segments']:,} segments ({s['share_coded']:.1%})")
    if s["pending_suggestions"]:
        click.echo(f"Suggestions awaiting review: {s['pending_suggestions']:,}")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind; other than loopback exposes the data.")
@click.option("--port", default=8001, show_default=True, type=int)
@click.option("--metadata", type=click.Path(dir_okay=False), help="Datasette metadata to use instead of the one qualcode ships.")
@click.option("--allow-remote", is_flag=True, help="Allow --host other than loopback (the transcripts become reachable).")
@click.option("--user", help="Require this user's password (hash in QUALCODE_PASSWORD_HASH) for every page.")
@click.option("--read", type=click.Choice(["anyone", "coders"]), default="anyone", show_default=True,
              help="Who may read the project: anyone who reaches the server, or only coders signed in to the workspace.")
@click.option("--retrain-every", type=click.IntRange(min=0), metavar="N",
              help="Retrain suggestions in the background after every N decisions in the browser (default 10; 0: never, "
                   "as on projects of hundreds of thousands of segments, where `qualcode suggest` is run apart).")
@db_option
def serve(host, port, metadata, allow_remote, user, read, retrain_every, db_path):
    """Browse the project in Datasette, on 127.0.0.1 by default.

    \b
    Example:
        qualcode serve --db study.db --port 8001
    """
    from datasette.cli import cli as datasette_cli

    from .publish import datasette_args, is_loopback, load_metadata, with_password

    _open(db_path).close()
    if not is_loopback(host):
        if not allow_remote:
            raise click.ClickException(f"refusing to serve on {host}: other machines could read the transcripts "
                                       "— pass --allow-remote if that is what you want")
        click.echo(f"Warning: serving on {host} makes the transcripts reachable from other machines.", err=True)
    data = load_metadata(metadata, db_path)
    # The options win over the metadata's workspace settings, which are otherwise kept.
    plugins = data["plugins"] = data.get("plugins") or {}
    workspace = plugins.get("qualcode")
    workspace = plugins["qualcode"] = {**(workspace if isinstance(workspace, dict) else {}), "read": read}
    if retrain_every is not None:
        workspace["retrain_every"] = retrain_every
    if user:
        data = with_password(data, user)
    args = datasette_args(db_path, data, host, port)
    click.echo(f"Serving {db_path} at http://{host}:{port}/", err=True)
    datasette_cli.main(args, prog_name="datasette")


# --- coding ---------------------------------------------------------------------------------


def _where_pairs(ctx, param, values):
    where: dict[str, list[str]] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"'{value}' is not ATTRIBUTE=VALUE")
        where.setdefault(key.strip(), []).append(val.strip())
    return where


@cli.command()
@click.argument("segment", required=False)
@click.argument("code", required=False)
@click.option("--coder", help="Who is coding (see `qualcode coder add`).")
@click.option("--span", help="Characters inside the segment, START:END.")
@click.option("--memo", help="A note on this coding.")
@click.option("--batch", type=click.Path(dir_okay=False), help="A .csv/.xlsx of decisions: document_id, seq, code_id, coder[, action, start, end, memo].")
@click.option("--create-coder", is_flag=True, help="Create the coder if they are new.")
@db_option
def code(segment, code, coder, span, memo, batch, create_coder, db_path):
    """Apply a code to a segment (DOCUMENT:SEQ), or a spreadsheet of decisions.

    \b
    Examples:
        qualcode code harbor-01-deputy-superintendent:14 support.coaching --coder "Rosa Delgado"
        qualcode code lakemont-04-coach-northside:7 scaling.deepening --coder Sam --span 0:120
        qualcode code --batch corpora/coding/rosa-delgado.csv --create-coder
    """
    from .coding import apply_batch, apply_code

    db = _open(db_path)
    if batch:
        if segment or code:
            raise click.UsageError("give either SEGMENT CODE or --batch FILE, not both")
        result = apply_batch(db, batch, coder=coder, create_coders=create_coder)
        created = f"; new coders: {', '.join(result.coders_created)}" if result.coders_created else ""
        click.echo(f"{batch}: {_n(result.added, 'coding')} added, {result.unchanged} already there, "
                   f"{result.removed} removed{created}")
        return
    if not (segment and code and coder):
        raise click.UsageError("give SEGMENT CODE and --coder NAME (or --batch FILE)")
    result = apply_code(db, segment, code, coder, span=span, memo=memo, create_coder=create_coder)
    click.echo(f"{segment}: {'coded' if result.added else 'already coded'} {code} by {coder}" + (f" at {span}" if span else ""))


@cli.command()
@click.argument("segment")
@click.argument("code")
@click.option("--coder", required=True, help="Whose coding to remove.")
@click.option("--span", help="Only the coding of this span (START:END inside the segment).")
@db_option
def uncode(segment, code, coder, span, db_path):
    """Remove a coder's coding of a code on a segment.

    \b
    Example:
        qualcode uncode harbor-01-deputy-superintendent:14 support.coaching --coder "Rosa Delgado"
    """
    from .coding import remove_code

    removed = remove_code(_open(db_path), segment, code, coder, span)
    click.echo(f"{segment}: removed {_n(removed, 'coding')} of {code} by {coder}")


@cli.group()
def coder():
    """Add and list coders."""


@coder.command("add")
@click.argument("name")
@db_option
def coder_add(name, db_path):
    """Register a coder so their codings can be recorded.

    \b
    Example:
        qualcode coder add "Rosa Delgado"
    """
    from .coding import add_coder

    add_coder(_open(db_path), name)
    click.echo(f"Added coder {name}")


@coder.command("list")
@db_option
def coder_list(db_path):
    """List coders and how many codings each has made.

    \b
    Example:
        qualcode coder list
    """
    from .coding import list_coders

    for c in list_coders(_open(db_path)):
        click.echo(f"{c['name']:<30} {_n(c['codings'], 'coding'):>14}")


@cli.group()
def memo():
    """Write and read memos on documents, segments and codes."""


@memo.command("add")
@click.argument("text")
@click.option("--coder", required=True, help="Who writes the memo.")
@click.option("--document", help="Attach to a document (its id).")
@click.option("--segment", help="Attach to a segment (DOCUMENT:SEQ).")
@click.option("--code", "code_", help="Attach to a code (its id).")
@click.option("--create-coder", is_flag=True, help="Create the coder if they are new.")
@db_option
def memo_add(text, coder, document, segment, code_, create_coder, db_path):
    """Attach a memo to a document, a segment or a code.

    \b
    Example:
        qualcode memo add "Coaching here means co-planning." --code support.coaching --coder "Rosa Delgado"
    """
    from .memos import add_memo

    memo_id = add_memo(_open(db_path), text, coder, document, segment, code_, create_coder)
    click.echo(f"Memo {memo_id} added to {document or segment or code_}")


@memo.command("list")
@click.option("--document", help="Memos on a document and its segments.")
@click.option("--segment", help="Memos on a segment (DOCUMENT:SEQ).")
@click.option("--code", "code_", help="Memos on a code.")
@click.option("--coder", help="Only this coder's memos.")
@db_option
def memo_list(document, segment, code_, coder, db_path):
    """List memos with what each is attached to.

    \b
    Example:
        qualcode memo list --code support.coaching
    """
    from .memos import list_memos

    memos = list_memos(_open(db_path), document, segment, code_, coder)
    for m in memos:
        click.echo(f"[{m['id']}] {m['target_type']} {m['target']} — {m['coder']}, {m['created_at']}\n    {m['text']}")
    if not memos:
        click.echo("No memos.")


# --- code maintenance -----------------------------------------------------------------------


def _maintenance_line(result) -> str:
    parts = [f"{old} → {new}" for old, new in result.renamed.items()]
    return "; ".join(parts)


@codebook.command("rename")
@click.argument("code_id")
@click.argument("new_id", required=False)
@click.option("--name", help="New display name.")
@db_option
def codebook_rename(code_id, new_id, name, db_path):
    """Rename a code's id (sub-codes follow) and/or its name; codings follow.

    \b
    Examples:
        qualcode codebook rename support.coaching support.fitted-coaching
        qualcode codebook rename support.coaching --name "Coaching that fits"
    """
    if not new_id and not name:
        raise click.UsageError("give a NEW_ID, a --name, or both")
    result = codebook_lib.rename_code(_open(db_path), code_id, new_id, name)
    click.echo(f"Renamed {_maintenance_line(result) or code_id}" + (f" (name: {name})" if name else ""))


@codebook.command("move")
@click.argument("code_id")
@click.option("--parent", help="The new parent code; omit to make it top-level.")
@db_option
def codebook_move(code_id, parent, db_path):
    """Move a code under another parent; its id and sub-codes follow, codings too.

    \b
    Example:
        qualcode codebook move scaling.dilemmas --parent context
    """
    result = codebook_lib.move_code(_open(db_path), code_id, parent)
    click.echo(f"Moved {_maintenance_line(result)}")


@codebook.command("merge")
@click.argument("source")
@click.argument("target")
@db_option
def codebook_merge(source, target, db_path):
    """Merge SOURCE into TARGET: codings move, duplicates collapse, SOURCE goes.

    \b
    Example:
        qualcode codebook merge scaling.spread scaling.deepening
    """
    r = codebook_lib.merge_codes(_open(db_path), source, target)
    click.echo(f"Merged {source} into {target}: {_n(r.codings_moved, 'coding')} moved, "
               f"{r.codings_collapsed} duplicates collapsed, {r.suggestions_moved} suggestions and "
               f"{r.memos_moved} memos moved")


@codebook.command("dump")
@click.option("--codebook", "codebook_id", help="Codebook id (default: the first).")
@db_option
def codebook_dump(codebook_id, db_path):
    """Print the project's codebook as YAML (after renames, moves or merges).

    \b
    Example:
        qualcode codebook dump > codebooks/lessons.yml
    """
    click.echo(codebook_lib.dump_codebook(_open(db_path), codebook_id), nl=False)


def _warn(lines: list[str]) -> None:
    for line in lines:
        click.echo(f"warning: {line}", err=True)


@codebook.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--to-yaml", "to_yaml", type=click.Path(dir_okay=False),
              help="Write it as a YAML codebook to this file instead of loading it (no project needed).")
@click.option("--force", is_flag=True, help="Archive codes that left the file even when they have codings.")
@db_option
def codebook_import(file, to_yaml, force, db_path):
    """Load a REFI-QDA codebook (.qdc, or the codebook of a .qdpx) from NVivo, ATLAS.ti, MAXQDA or QualCoder.

    Codes keep their GUIDs, so a codebook that went to another tool and comes back updates the
    codes it left as (renamed there, renamed here). With --to-yaml it becomes a YAML codebook
    to keep under version control and load with `qualcode codebook load`.

    \b
    Examples:
        qualcode codebook import team-codes.qdc
        qualcode codebook import team-codes.qdc --to-yaml codebooks/team.yml
    """
    from . import refi

    if to_yaml:
        result = refi.read_codebook(file)
        _warn(result.warnings)
        Path(to_yaml).write_text(refi.codebook_yaml(result.codebook), encoding="utf-8")
        click.echo(f"Wrote {to_yaml}: {_n(sum(1 for _ in result.codebook.walk()), 'code')} from {file}")
        return
    result = refi.import_codebook(_open(db_path, create=True), file, force=force)
    _warn(result.warnings)
    sync = result.sync
    parts = [f"{len(getattr(sync, k))} {k}" for k in ("added", "updated", "unchanged", "restored", "archived", "deleted")
             if getattr(sync, k)]
    click.echo(f"Imported codebook '{result.codebook.name}' from {file}: {', '.join(parts)}")


@codebook.command("export")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["qdc", "yaml"]),
              help="qdc (REFI-QDA, for NVivo, ATLAS.ti, MAXQDA, QualCoder) or yaml; default: from OUT's extension.")
@click.option("--codebook", "codebook_id", help="For yaml: the codebook id (default: the first).")
@db_option
def codebook_export(out, fmt, codebook_id, db_path):
    """Write the project's codes as a REFI-QDA codebook (.qdc) or as a YAML codebook.

    \b
    Examples:
        qualcode codebook export --format qdc codes.qdc
        qualcode codebook export --format yaml codebooks/lessons.yml
    """
    from . import refi

    fmt = fmt or ("yaml" if Path(out).suffix.lower() in (".yml", ".yaml") else "qdc")
    db = _open(db_path)
    if fmt == "yaml":
        Path(out).write_text(codebook_lib.dump_codebook(db, codebook_id), encoding="utf-8")
        click.echo(f"Wrote {out}")
        return
    n = refi.export_codebook(db, out)
    click.echo(f"Wrote {out}: {_n(n, 'code')}")


@cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@db_option
def import_(file, db_path):
    """Import a REFI-QDA project (.qdpx) from NVivo, ATLAS.ti, MAXQDA or QualCoder into a new or empty project.

    Text sources, the code tree, users (as coders), every coded selection, notes (as memos) and
    variables (as document attributes) come in; what a qualcode project cannot hold (audio,
    video, picture and PDF sources, graphs) is counted in the summary line.

    \b
    Example:
        qualcode import fieldwork.qdpx --db fieldwork.db
    """
    from . import refi

    existed = Path(db_path).exists()
    db = _open(db_path, create=True)
    try:
        result = refi.import_project(db, file)
    except QualcodeError:
        db.close()
        if not existed:  # a refused import leaves no new, empty project behind
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db_path}{suffix}").unlink(missing_ok=True)
        raise
    _warn(result.warnings)
    click.echo(result.summary())


# --- queries ----------------------------------------------------------------------------------


def _emit(rows: list[dict], fmt: str, columns: list[str]) -> None:
    import csv as csv_module
    import json

    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    elif fmt == "csv":
        from .spreadsheet import csv_cell

        writer = csv_module.DictWriter(sys.stdout, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({k: csv_cell(v) for k, v in r.items()} for r in rows)
    else:
        widths = {c: max([len(c)] + [len(str(r[c] if r[c] is not None else "")) for r in rows]) for c in columns}
        click.echo("  ".join(c.ljust(widths[c]) for c in columns))
        for r in rows:
            click.echo("  ".join(str(r[c] if r[c] is not None else "").ljust(widths[c]) for c in columns))


FORMAT = click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)


@cli.command()
@click.option("--by", default="site", show_default=True, help="Attribute: site, district, role, kind, date, or any other.")
@click.option("--level", type=click.Choice(["all", "code", "lesson"]), default="all", show_default=True)
@click.option("--coder", "coders", multiple=True, help="Only these coders' codings (repeatable).")
@FORMAT
@db_option
def frequencies(by, level, coders, fmt, db_path):
    """Code frequencies by a document attribute: segments, documents, speakers.

    \b
    Example:
        qualcode frequencies --by role --level lesson
    """
    from .queries import frequencies as run

    rows = run(_open(db_path), by, level, list(coders))
    _emit(rows, fmt, ["code_id", "value", "segments", "documents", "speakers"])


@cli.command()
@click.option("--level", type=click.Choice(["code", "lesson"]), default="code", show_default=True)
@click.option("--code", "code_", help="Only pairs with this code.")
@click.option("--coder", "coders", multiple=True, help="Only these coders' codings (repeatable).")
@FORMAT
@db_option
def cooccurrence(level, code_, coders, fmt, db_path):
    """Codes applied to the same segment: n12 and c = n12 / (n1 + n2 − n12).

    \b
    Example:
        qualcode cooccurrence --code scaling.spread
    """
    from .queries import cooccurrence as run

    rows = run(_open(db_path), level, list(coders), code_)
    _emit(rows, fmt, ["code_a", "code_b", "n12", "n1", "n2", "coefficient"])


@cli.command()
@click.argument("codes", nargs=-1)
@click.option("--where", "-w", multiple=True, callback=_where_pairs, help="ATTRIBUTE=VALUE, e.g. site=\"Bayview Elementary\" (repeatable).")
@click.option("--coder", "coders", multiple=True, help="Only these coders' codings (repeatable).")
@click.option("--search", help="Full-text search in the excerpt's segment (FTS5 syntax).")
@FORMAT
@db_option
def excerpts(codes, where, coders, search, fmt, db_path):
    """Coded excerpts for codes (a lesson means all its sub-codes), filtered.

    \b
    Example:
        qualcode excerpts support.coaching -w role=teacher --search "co-plan*"
    """
    from .queries import excerpts as run

    rows = run(_open(db_path), list(codes), where, list(coders), search)
    if fmt == "table":
        for r in rows:
            click.echo(f"{r['document_id']}:{r['seq']} {r['code_id']} [{r['coder']}] {r['speaker'] or ''}\n    {r['text'][:300]}")
        click.echo(f"{_n(len(rows), 'excerpt')}")
    else:
        _emit(rows, fmt, ["excerpt_id", "document_id", "seq", "speaker", "code_id", "coder", "site", "role", "text"])


# --- exports ----------------------------------------------------------------------------------


def export_filters(fn):
    fn = click.option("--code", "codes", multiple=True, help="Only these codes (a lesson means its sub-codes).")(fn)
    fn = click.option("--site", "sites", multiple=True, help="Only these sites.")(fn)
    fn = click.option("--role", "roles", multiple=True, help="Only these roles.")(fn)
    fn = click.option("--where", "-w", multiple=True, callback=_where_pairs, help="ATTRIBUTE=VALUE (repeatable).")(fn)
    fn = click.option("--all-coders", is_flag=True,
                      help="Every coder's codings, even once a consensus exists (which is the default then).")(fn)
    fn = click.option("--coder", "coders", multiple=True, help="Only these coders' codings.")(fn)
    fn = click.option("--pseudonymise", is_flag=True,
                      help="Replace every speaker's and coder's name, everywhere, with a pseudonym.")(fn)
    return db_option(fn)


def _filters(codes, sites, roles, where, coders, all_coders, search=None):
    from .export import Filters

    where = dict(where)
    if sites:
        where.setdefault("site", []).extend(sites)
    if roles:
        where.setdefault("role", []).extend(roles)
    return Filters(codes=list(codes), where=where, coders=list(coders), search=search, all_coders=all_coders)


def _write_export(db, out, pseudonymise, write):
    """A pseudonymised export is written aside, scanned for names and moved into place only if clean."""
    from .privacy import Pseudonymiser, write_private

    write_private(out, write, Pseudonymiser.for_project(db) if pseudonymise else None)


@cli.group()
def export():
    """Export quotes, code matrices, reports, JSON, memos and REFI-QDA projects."""


@export.command("quotes")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--search", help="Full-text search in the excerpts' segments.")
@export_filters
def export_quotes(out, search, codes, sites, roles, where, coders, all_coders, pseudonymise, db_path):
    """Quote table (.csv or .xlsx): one row per coded segment or span.

    \b
    Example:
        qualcode export quotes quotes.xlsx --code support --site "Bayview Elementary"
    """
    from .export import quote_rows, write_table

    db = _open(db_path)
    rows = quote_rows(db, _filters(codes, sites, roles, where, coders, all_coders, search), pseudonymise)
    _write_export(db, out, pseudonymise, lambda path: write_table(rows, path))
    click.echo(f"Wrote {_n(len(rows), 'excerpt')} to {out}")


@export.command("matrix")
@click.argument("out", type=click.Path(dir_okay=False))
@export_filters
def export_matrix(out, codes, sites, roles, where, coders, all_coders, pseudonymise, db_path):
    """Code matrix (.csv or .xlsx): one row per segment, a 0/1 column per code.

    \b
    Example:
        qualcode export matrix matrix.csv --coder "Rosa Delgado"
    """
    from .export import code_matrix, write_table

    db = _open(db_path)
    rows = code_matrix(db, _filters(codes, sites, roles, where, coders, all_coders), pseudonymise)
    _write_export(db, out, pseudonymise, lambda path: write_table(rows, path))
    click.echo(f"Wrote {_n(len(rows), 'segment')} to {out}")


@export.command("report")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--max-per-code", type=int, help="Cap on excerpts per code (taken in turn from each document).")
@export_filters
def export_report(out, max_per_code, codes, sites, roles, where, coders, all_coders, pseudonymise, db_path):
    """Report (.md or .docx): a chapter per lesson, a section per code, cited quotes.

    \b
    Example:
        qualcode export report report.docx --role principal --max-per-code 5
    """
    from .export import build_report, write_report

    db = _open(db_path)
    report = build_report(db, _filters(codes, sites, roles, where, coders, all_coders), max_per_code, pseudonymise)
    _write_export(db, out, pseudonymise, lambda path: write_report(report, path))
    quotes = sum(len(c["quotes"]) for lesson in report.lessons for c in lesson["codes"])
    click.echo(f"Wrote {_n(quotes, 'excerpt')} in {_n(len(report.lessons), 'lesson')} to {out}")


@export.command("json")
@click.argument("out", type=click.Path(dir_okay=False))
@export_filters
def export_json(out, codes, sites, roles, where, coders, all_coders, pseudonymise, db_path):
    """The quote table as JSON, for other programs.

    \b
    Example:
        qualcode export json quotes.json --code scaling
    """
    from .export import quote_rows, write_json

    db = _open(db_path)
    rows = quote_rows(db, _filters(codes, sites, roles, where, coders, all_coders), pseudonymise)
    _write_export(db, out, pseudonymise, lambda path: write_json(rows, path))
    click.echo(f"Wrote {_n(len(rows), 'excerpt')} to {out}")


@export.command("memos")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--coder", "coders", multiple=True, help="Only these coders' memos.")
@click.option("--pseudonymise", is_flag=True, help="Replace every speaker's and coder's name, everywhere, with a pseudonym.")
@db_option
def export_memos(out, coders, pseudonymise, db_path):
    """Memos as Markdown, grouped by what they are attached to.

    \b
    Example:
        qualcode export memos memos.md
    """
    from .export import memos_markdown

    db = _open(db_path)
    text = memos_markdown(db, list(coders), pseudonymise)
    _write_export(db, out, pseudonymise, lambda path: path.write_text(text, encoding="utf-8"))
    click.echo(f"Wrote memos to {out}")


@export.command("qdpx")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--where", "-w", multiple=True, callback=_where_pairs, help="Only documents with ATTRIBUTE=VALUE (repeatable).")
@click.option("--pseudonymise", is_flag=True, help="Replace every speaker's and coder's name, everywhere, with a pseudonym.")
@db_option
def export_qdpx(out, where, pseudonymise, db_path):
    """The project as a REFI-QDA project (.qdpx) for NVivo, ATLAS.ti, MAXQDA or QualCoder.

    Every document (or those -w selects), code, coder, coded span, memo and attribute.

    \b
    Example:
        qualcode export qdpx study.qdpx -w site="Bayview Elementary" --pseudonymise
    """
    from .refi import export_project

    click.echo(export_project(_open(db_path), out, where, pseudonymise).summary())


# --- suggestions ------------------------------------------------------------------------------


@cli.command()
@click.option("--code", "codes", multiple=True, help="Only these codes (a lesson means its sub-codes).")
@click.option("--document", "documents", multiple=True, help="Only segments of these documents.")
@click.option("--where", "-w", multiple=True, callback=_where_pairs,
              help="Only segments of documents with ATTRIBUTE=VALUE, e.g. site=\"Bayview Elementary\" (repeatable).")
@click.option("--coder", "coders", multiple=True, help="Train only on these coders' codings.")
@click.option("--precision", type=float,
              help="Suggest a code only from the score where its held-out precision reaches this, e.g. 0.8.")
@click.option("--min-score", type=float,
              help="Keep every suggestion scoring at least this, instead of each code's operating point.")
@db_option
def suggest(codes, documents, where, coders, precision, min_score, db_path):
    """Suggest codes for segments, with a score and the evidence behind each.

    Uses the codebook's terms and examples from the start, and a model trained
    on the project's codings (and rejections) once there are some. A score is
    a calibrated probability; by default a code is suggested where the model
    itself decides it applies, its operating point chosen on held-out documents.

    \b
    Examples:
        qualcode suggest -w site="Northside Middle"
        qualcode suggest --precision 0.8
    """
    from .suggest import suggest as run

    r = run(_open(db_path), list(codes), list(documents), list(coders), min_score, where=where or None,
            precision=precision)
    macro = r.metrics.get("macro_f1")
    click.echo(f"Model run {r.model_run_id} ({r.method}, trained on {_n(r.training_size, 'segment')} in "
               f"{r.train_seconds:.1f} s" + (f", out-of-fold macro-F1 {macro:.3f}" if macro is not None else "")
               + f"): {_n(r.suggestions, 'suggestion')} for {_n(r.segments, 'segment')} in {r.seconds:.1f} s; "
               f"operating point: {r.operating_point}")


def _highlight(text: str, terms: list[str]) -> str:
    import re

    for term in sorted(set(terms), key=len, reverse=True):
        text = re.sub(rf"(?i)\b({re.escape(term)})\b", lambda m: click.style(m.group(1), bold=True, underline=True), text)
    return text


@cli.command()
@click.option("--coder", required=True, help="Who is answering.")
@click.option("--order", type=click.Choice(["likely", "uncertain"]), default="likely", show_default=True,
              help="Most likely first, or most uncertain first (active learning).")
@click.option("--code", "codes", multiple=True, help="Only suggestions of these codes.")
@click.option("--retrain-every", default=10, show_default=True, type=int, help="Retrain in the background after this many answers (0: never).")
@click.option("--create-coder", is_flag=True, help="Create the coder if they are new.")
@click.option("--blind/--no-blind", default=None,
              help="Only suggestions that cannot echo other coders (default: on when the coder has blind assignments).")
@db_option
def review(coder, order, codes, retrain_every, create_coder, blind, db_path):
    """Review suggestions one by one: accept, reject, skip, choose another code, undo, quit.

    \b
    Keys: a accept · r reject · s skip · c choose another code · u undo · q quit
    Example:
        qualcode review --coder "Rosa Delgado" --order uncertain
    """
    from .coding import find_coder
    from .suggest.review import Retrainer, decide, evidence_terms, queue, undo

    from .team import is_blind

    db = _open(db_path)
    with db.atomic():
        find_coder(db, coder, create_coder)
    if blind is None:
        blind = is_blind(db, coder)
    if blind:
        click.echo(f"Blind review: only suggestions from the codebook or from {coder}'s own codings.")
    retrainer = Retrainer(db_path, list(codes) or None, [coder] if blind else None)
    history, skipped, answers = [], set(), 0
    while True:
        items = [q for q in queue(db, coder, order, list(codes), blind=blind) if q["id"] not in skipped]
        if not items:
            click.echo("No suggestions left to review."
                       + (f" (Blind: run `qualcode suggest --coder \"{coder}\"` for suggestions from your own codings.)"
                          if blind else ""))
            break
        s = items[0]
        evidence = json.loads(s["evidence"] or "{}")
        click.echo("")
        click.echo(click.style(f"{s['title']} — {s['document_id']}:{s['seq']}", fg="cyan"))
        if s["previous"]:
            label = f"{s['previous_speaker']}: " if s["previous_speaker"] else ""
            click.echo(click.style(f"  {label}{s['previous'][:400]}", dim=True))
        label = f"{s['speaker']}: " if s["speaker"] else ""
        click.echo(f"  {label}{_highlight(s['text'], evidence_terms(s))}")
        click.echo(f"Suggested: {click.style(s['code_id'], bold=True)} — {s['code_name']} "
                   f"(score {s['score']:.2f}, {s['method']}, run {s['model_run_id']})")
        click.echo(f"  {s['definition']}")
        if evidence.get("terms") or evidence.get("features"):
            click.echo(f"  Evidence: terms {', '.join(evidence.get('terms', [])) or '—'}; "
                       f"features {', '.join(evidence.get('features', [])) or '—'}")
        key = click.prompt("[a]ccept [r]eject [s]kip [c]hoose code [u]ndo [q]uit",
                           type=click.Choice(["a", "r", "s", "c", "u", "q"]), show_choices=False)
        if key == "q":
            break
        if key == "s":
            skipped.add(s["id"])
            continue
        if key == "u":
            if history:
                undo(db, history.pop())
                answers -= 1
                click.echo("Undone.")
            else:
                click.echo("Nothing to undo.")
            continue
        try:
            other = click.prompt("Code") if key == "c" else None
            history.append(decide(db, s["id"], coder, accept=key == "a", other_code=other))
        except QualcodeError as e:
            click.echo(f"Error: {e}", err=True)
            continue
        answers += 1
        if retrain_every and answers % retrain_every == 0 and retrainer.start():
            click.echo("Retraining in the background…")
    retrainer.wait(60)
    click.echo(f"{_n(answers, 'answer')} recorded for {coder}.")


def _batch_decision(accept: bool, coder, code_, min_score, max_score, db_path):
    from .suggest.review import decide_batch

    n = decide_batch(_open(db_path), coder, accept, code_, min_score, max_score)
    click.echo(f"{'Accepted' if accept else 'Rejected'} {_n(n, 'suggestion')} as {coder}")


@cli.command()
@click.option("--coder", required=True)
@click.option("--code", "code_", help="Only this code (a lesson means its sub-codes).")
@click.option("--min-score", type=float, help="Accept suggestions scoring at least this.")
@click.option("--max-score", type=float, help="... and at most this.")
@db_option
def accept(coder, code_, min_score, max_score, db_path):
    """Accept pending suggestions in a score range as the coder's codings.

    \b
    Example:
        qualcode accept --coder "Rosa Delgado" --code scaling.improvement-cycles --min-score 0.3
    """
    _batch_decision(True, coder, code_, min_score, max_score, db_path)


@cli.command()
@click.option("--coder", required=True)
@click.option("--code", "code_", help="Only this code (a lesson means its sub-codes).")
@click.option("--min-score", type=float, help="Reject suggestions scoring at least this.")
@click.option("--max-score", type=float, help="... and at most this.")
@db_option
def reject(coder, code_, min_score, max_score, db_path):
    """Reject pending suggestions in a score range; rejections teach the model.

    \b
    Example:
        qualcode reject --coder "Rosa Delgado" --max-score 0.25
    """
    _batch_decision(False, coder, code_, min_score, max_score, db_path)


@cli.command()
@click.option("--folds", default=5, show_default=True, type=int, help="Grouped cross-validation folds.")
@click.option("--test-where", multiple=True, callback=_where_pairs, help="Held-out mode: test on documents with ATTRIBUTE=VALUE.")
@click.option("--coder", "coders", multiple=True, help="The human coder(s) to measure against (default: all).")
@click.option("--code", "codes", multiple=True, help="Only these codes.")
@click.option("--estimator", type=click.Choice(["auto", "logreg", "sgd"]), default="auto", show_default=True)
@click.option("--precision", type=float, help="Measure at the precision-first operating point (see `suggest --precision`).")
@click.option("--predictions", "predictions_path", type=click.Path(dir_okay=False),
              help="Write every held-out decision (segment, set, predicted code, score, coded) to this CSV.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@db_option
def evaluate(folds, test_where, coders, codes, estimator, precision, predictions_path, fmt, db_path):
    """Measure suggestions against human coders on documents the model never saw.

    \b
    Examples:
        qualcode evaluate --coder "Rosa Delgado"
        qualcode evaluate --test-where split=test --predictions held-out.csv
    """
    import csv

    from .evaluate import PREDICTION_COLUMNS, format_table
    from .evaluate import evaluate as run

    if precision is not None and not 0 < precision < 1:
        raise click.BadParameter(f"must be between 0 and 1, not {precision:g}", param_hint="--precision")
    result = run(_open(db_path), list(codes), list(coders), folds, test_where or None, estimator, precision,
                 keep_predictions=bool(predictions_path))
    if predictions_path:
        predictions = result.pop("predictions")
        with open(predictions_path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, PREDICTION_COLUMNS)
            writer.writeheader()
            writer.writerows(predictions)
    click.echo(json.dumps(result, indent=2) if fmt == "json" else format_table(result))
    if predictions_path:
        click.echo(f"Wrote {_n(len(predictions), 'held-out decision')} to {predictions_path}", err=fmt == "json")


@cli.command()
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--pseudonymise", is_flag=True, help="Replace every speaker's and coder's name, everywhere, with a pseudonym.")
@click.option("--names", "names_file", type=click.Path(dir_okay=False), help="Other identifying names to replace: one per line, 'Name' or 'Name = Replacement'.")
@click.option("--include-unpublished", is_flag=True, help="Keep documents marked unpublished.")
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
@db_option
def publish(out, pseudonymise, names_file, include_unpublished, force, db_path):
    """Write a separate, read-only copy of the project for sharing.

    \b
    Example:
        qualcode publish shared.db --pseudonymise --names names.txt
    """
    from .publish import publish as run
    from .publish import read_names

    names = read_names(names_file) if names_file else None
    r = run(db_path, out, pseudonymise, names, include_unpublished, force)
    click.echo(f"Published {out} (read-only): {_n(r['documents'], 'document')}, {_n(r['segments'], 'segment')}, "
               f"{_n(r['codings'], 'coding')}; {r['dropped_documents']} unpublished dropped, "
               f"{r['pseudonymised_documents']} pseudonymised")


@cli.group()
def login():
    """Coders' logins for the browser workspace (`qualcode serve`, then /-/code)."""


@login.command("add")
@click.argument("coder")
@click.option("--password", help="The password (asked for, hidden, when not given).")
@click.option("--create-coder", is_flag=True, help="Create the coder if they are new.")
@db_option
def login_add(coder, password, create_coder, db_path):
    """Give a coder a password for the workspace (or a new one).

    The hash is kept in PROJECT.db.logins beside the project, never in it, so a published or
    cloned project carries no password.

    \b
    Example:
        qualcode login add "Rosa Delgado"
    """
    from .coding import find_coder
    from .logins import logins_path, set_login

    if create_coder:
        with _open(db_path).atomic() as db:
            find_coder(db, coder, create=True)
    if not password:
        password = click.prompt(f"Password for {coder}", hide_input=True, confirmation_prompt=True, err=True)
    new = set_login(db_path, coder, password)
    click.echo(f"{'Added a login for' if new else 'Changed the password of'} {coder} (in {logins_path(db_path)})")


@login.command("list")
@db_option
def login_list(db_path):
    """List the coders who can sign in to the workspace.

    \b
    Example:
        qualcode login list
    """
    from .logins import read_logins

    names = sorted(read_logins(db_path))
    click.echo("\n".join(names) if names else "No logins yet: add one with `qualcode login add NAME`.")


@login.command("remove")
@click.argument("coder")
@db_option
def login_remove(coder, db_path):
    """Take away a coder's login (their codings stay).

    \b
    Example:
        qualcode login remove "Sam Okonjo"
    """
    from .logins import remove_login

    remove_login(db_path, coder)
    click.echo(f"Removed the login of {coder}")


@cli.command("hash-password")
@click.option("--password", help="The password (asked for, hidden, when not given).")
def hash_password(password):
    """Print a password hash for `qualcode serve --user NAME`.

    \b
    Example:
        export QUALCODE_PASSWORD_HASH=$(qualcode hash-password)
        qualcode serve --user evaluator
    """
    from datasette_auth_passwords.utils import hash_password as make_hash

    if not password:
        # Prompts go to stderr so that $(qualcode hash-password) captures only the hash.
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    click.echo(make_hash(password))


# --- team coding --------------------------------------------------------------------------------


def _names(ctx, param, value):
    """--coders A,B (or repeated) as a list of names."""
    names = [n.strip() for v in (value or ()) for n in v.split(",") if n.strip()]
    return names or None


@cli.command()
@click.option("--coders", multiple=True, callback=_names, help="Coders to compare, A,B[,C] (default: everyone but consensus coders).")
@click.option("--level", type=click.Choice(["code", "lesson"]), default="code", show_default=True,
              help="Sub-codes, or lessons with their sub-codes rolled up.")
@click.option("--code", "codes", multiple=True, help="Only these codes.")
@click.option("--min-positives", default=10, show_default=True, help="Warn below this many positive units.")
@click.option("--model", is_flag=True,
              help="Compare one coder with the model's held-out predictions (each document scored by a model that never saw it).")
@FORMAT
@db_option
def agreement(coders, level, codes, min_positives, model, fmt, db_path):
    """Inter-coder agreement per code and pooled: percent, positive, kappa, alpha, overlap.

    The unit is a segment in a document every coder coded; see the README for
    each statistic's formula.

    \b
    Example:
        qualcode agreement --coders "Rosa Delgado,Sam Okonjo" --level lesson
        qualcode agreement --model --coders "Rosa Delgado"
    """
    from .agreement import COLUMNS, agreement as run, rows

    report = run(_open(db_path), coders, level, list(codes), min_positives, model)
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        return
    if fmt == "table":
        click.echo(f"{' and '.join(report.coders)}: {_n(len(report.documents), 'document')} coded by all, "
                   f"{_n(report.segments, 'segment')}")
    _emit(rows(report), fmt, COLUMNS)


@cli.command()
@click.option("--coders", multiple=True, callback=_names, required=True, help="The coders to compare, A,B.")
@click.option("--code", "codes", multiple=True, help="Only these codes (a lesson means its sub-codes).")
@FORMAT
@db_option
def disagreements(coders, codes, fmt, db_path):
    """Each segment where the coders differ on a code, side by side, with their memos.

    \b
    Example:
        qualcode disagreements --coders "Rosa Delgado,Sam Okonjo" --code support
    """
    from dataclasses import asdict

    from .team import disagreements as run

    found = run(_open(db_path), coders, list(codes))
    if fmt != "table":
        rows = [asdict(d) | {"applied_by": ", ".join(d.applied_by), "not_applied_by": ", ".join(d.not_applied_by),
                             "memos": "; ".join(f"{k}: {' / '.join(v)}" for k, v in d.memos.items())} for d in found]
        _emit(rows, fmt, ["segment", "speaker", "code_id", "applied_by", "not_applied_by", "memos", "text"])
        return
    for d in found:
        _show_disagreement(d)
    click.echo(f"\n{_n(len(found), 'disagreement')}")


def _show_disagreement(d) -> None:
    click.echo("")
    click.echo(click.style(f"{d.segment} — {d.code_id} ({d.code_name})", fg="cyan"))
    click.echo(f"  {d.speaker + ': ' if d.speaker else ''}{d.text}")
    click.echo(f"  applied by {', '.join(d.applied_by)}; not by {', '.join(d.not_applied_by)}")
    for who, texts in d.memos.items():
        for text in texts:
            click.echo(f"  memo ({who}): {text}")


@cli.command()
@click.option("--coders", multiple=True, callback=_names, required=True, help="The coders to reconcile, A,B.")
@click.option("--as", "consensus", required=True, help="The consensus coder to record decisions under (created when new).")
@click.option("--code", "codes", multiple=True, help="Only these codes (a lesson means its sub-codes).")
@click.option("--take", help="Decide every open disagreement as this coder did, without asking.")
@db_option
def reconcile(coders, consensus, codes, take, db_path):
    """Settle disagreements into a consensus coder's codings; the originals stay.

    Codes every coder applied are adopted first; then each open disagreement is
    shown. Keys: a apply · r reject · s skip · q quit (decisions so far are kept).

    \b
    Example:
        qualcode reconcile --coders "Rosa Delgado,Sam Okonjo" --as Consensus
    """
    from .coding import CodingError
    from .team import adopt_agreements, decide, disagreements

    db = _open(db_path)
    if take and take not in coders:
        raise CodingError(f"--take {take} is not one of the coders being reconciled")
    adopted = adopt_agreements(db, coders, consensus, list(codes))
    found = [d for d in disagreements(db, coders, list(codes), consensus) if d.decision is None]
    click.echo(f"{consensus}: adopted {_n(adopted, 'coding')} all coders agreed on; "
               f"{_n(len(found), 'open disagreement')}")
    applied = rejected = 0
    for d in found:
        if take:
            apply = take in d.applied_by
        else:
            _show_disagreement(d)
            key = click.prompt("[a]pply [r]eject [s]kip [q]uit", type=click.Choice(["a", "r", "s", "q"]), show_choices=False)
            if key == "q":
                break
            if key == "s":
                continue
            apply = key == "a"
        decide(db, consensus, d, apply, memo=f"as {take} coded" if take else None)
        applied, rejected = applied + apply, rejected + (not apply)
    left = len(found) - applied - rejected
    click.echo(f"Decided {applied + rejected}: {applied} applied, {rejected} rejected; {left} left")


@cli.command()
@click.option("--coders", multiple=True, callback=_names, required=True, help="Who codes them, A,B.")
@click.option("--documents", multiple=True, callback=_names, help="Document ids, D1,D2 (repeatable).")
@click.option("--where", "-w", multiple=True, callback=_where_pairs, help="Documents with ATTRIBUTE=VALUE, e.g. site=\"Bayview Elementary\".")
@click.option("--open", "open_", is_flag=True, help="Not blind: coders may see each other's codings.")
@db_option
def assign(coders, documents, where, open_, db_path):
    """Assign documents to coders for (blind) double-coding.

    Blind coders' reviews show only suggestions that cannot echo a colleague,
    and `qualcode clone --for NAME` gives them a copy without others' work.

    \b
    Example:
        qualcode assign --coders "Rosa Delgado,Sam Okonjo" -w district="Harbor Unified (fictional)"
    """
    from .coding import CodingError
    from .queries import where_sql
    from .team import assign as run

    db = _open(db_path)
    ids = list(documents or [])
    if where:
        clauses, params = where_sql(where)
        ids += [r["id"] for r in db.query(f"SELECT id FROM documents d WHERE {' AND '.join(clauses)}", params)]
    if not ids:
        raise CodingError("no documents to assign", hint="give --documents D1,D2 or --where ATTRIBUTE=VALUE")
    added = run(db, coders, list(dict.fromkeys(ids)), blind=not open_)
    click.echo(f"Assigned {_n(len(set(ids)), 'document')} to {', '.join(coders)} "
               f"({'open' if open_ else 'blind'}): {_n(added, 'new assignment')}")


@cli.command()
@click.option("--coder", help="Only this coder's assignments.")
@FORMAT
@db_option
def assignments(coder, fmt, db_path):
    """Who is assigned which documents, and how far they have got.

    \b
    Example:
        qualcode assignments --coder "Rosa Delgado"
    """
    from .team import assignments as run

    _emit(run(_open(db_path), coder), fmt, ["coder", "document_id", "blind", "coded_segments", "segments", "assigned_at"])


@cli.command()
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--for", "for_coder", help="A blind copy for this coder: other coders' work is left out.")
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
@db_option
def clone(out, for_coder, force, db_path):
    """Copy the project for one coder to work in; bring it back with `qualcode merge`.

    \b
    Example:
        qualcode clone rosa.db --for "Rosa Delgado"
    """
    from .sync import clone as run

    run(_open(db_path), out, force, for_coder)
    click.echo(f"Wrote {out}{' for ' + for_coder + ' (blind)' if for_coder else ''}. "
               f"Code in it with --db {out}; bring it back with `qualcode merge {out}`.")


@cli.command()
@click.argument("theirs", type=click.Path(dir_okay=False))
@db_option
def merge(theirs, db_path):
    """Bring a copy's codings, memos and decisions into this project.

    Nothing is lost or duplicated; merging the same file twice changes nothing.
    Conflicts (one coder deciding one segment and code differently in the two
    files) keep this project's decision and are listed.

    \b
    Example:
        qualcode merge rosa.db
    """
    from .sync import merge as run

    r = run(_open(db_path), theirs)
    click.echo(f"Merged {theirs}: {_n(r.codings, 'coding')}, {_n(r.memos, 'memo')}, "
               f"{_n(r.decisions, 'suggestion decision')}, {_n(r.consensus, 'consensus decision')}, "
               f"{_n(r.coders, 'new coder')}, {_n(r.assignments, 'assignment')}"
               + ("" if r.changed else " (nothing new)"))
    for line in r.conflicts:
        click.echo(f"Conflict: {line}", err=True)
    if r.conflicts:
        click.echo(f"{_n(len(r.conflicts), 'conflict')}: this project's decisions were kept.", err=True)
