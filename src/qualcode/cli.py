"""The ``qualcode`` command: a thin click layer over the library.

Options are parsed here and results echoed here; the work happens in the
library. Every :class:`QualcodeError` becomes one line on stderr and exit 1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from . import codebook as codebook_lib
from .db import DEFAULT_DB, open_project
from .errors import QualcodeError
from .ingest import FileResult, IngestOptions, TableMapping, ingest_paths
from .status import project_status


class QualcodeGroup(click.Group):
    """Turns library errors into one-line messages, in one place."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except QualcodeError as e:
            raise click.ClickException(str(e)) from None


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


@cli.command()
@db_option
def init(db_path):
    """Create a project database (or upgrade an old one in place).

    \b
    Example:
        qualcode init --db study.db
    """
    existed = Path(db_path).exists()
    db = _open(db_path, create=True)
    status = project_status(db)
    verb = "Opened" if existed else "Created"
    click.echo(f"{verb} project {db_path} (schema {status['schema'][-1]})")


# --- codebook -----------------------------------------------------------------


@cli.group()
def codebook():
    """Check, load and show codebooks."""


@codebook.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path())
def codebook_validate(files):
    """Check codebook files; print every problem as FILE:LINE: message.

    \b
    Example:
        qualcode codebook validate codebooks/lessons.yml
    """
    problems = [p for f in files for p in codebook_lib.validate_codebook(f)]
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

    Changed codes are updated in place; a removed code that has codings is
    refused (or archived with --force).

    \b
    Example:
        qualcode codebook load codebooks/lessons.yml
    """
    book = codebook_lib.load_codebook(file)
    db = _open(db_path, create=True)
    result = codebook_lib.sync_codebook(db, book, force=force)
    parts = [f"{len(getattr(result, k))} {k}" for k in ("added", "updated", "unchanged", "restored", "archived", "deleted")
             if getattr(result, k)]
    click.echo(f"Loaded codebook '{book.name}' {book.version}: {', '.join(parts) or 'no codes'}")


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
        book = codebook_lib.load_codebook(file)
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
@click.option("--kind", help="interview, focus_group, site_visit, observation or document.")
@click.option("--site", help="Site (school) of every file ingested.")
@click.option("--district", help="District of every file ingested.")
@click.option("--role", help="Participant role, e.g. principal.")
@click.option("--date", help="Date as YYYY-MM-DD.")
@click.option("--attribute", "-a", "attributes", multiple=True, callback=_attribute_pairs, help="Any other attribute, KEY=VALUE (repeatable).")
@click.option("--segment", type=click.Choice(["auto", "turn", "paragraph", "sentence"]), default="auto", show_default=True,
              help="auto: speaker turns for interviews and focus groups, paragraphs otherwise.")
@click.option("--replace", is_flag=True, help="Re-ingest files that changed, keeping codings on unchanged segments.")
@click.option("--strict", is_flag=True, help="Stop at the first bad file.")
@click.option("--text-column", help="Spreadsheets: the column holding the segment text.")
@click.option("--document-column", help="Spreadsheets: the column holding the document id.")
@click.option("--speaker-column", help="Spreadsheets: the column holding the speaker.")
@click.option("--time-column", help="Spreadsheets: the column holding a timestamp (seconds or HH:MM:SS).")
@click.option("--order-column", help="Spreadsheets: the column giving the segment order.")
@click.option("--code-column", multiple=True, callback=_code_columns, help="Spreadsheets: a code column, as COLUMN or COLUMN=CODER (repeatable).")
@click.option("--coder", help="Spreadsheets: the coder of code columns that name none.")
@click.option("--code-separator", default=";", show_default=True, help="Spreadsheets: separator of several codes in one cell.")
@click.option("--sheet", help="Spreadsheets: the .xlsx sheet to read (default: the first).")
@click.option("--create-codes", is_flag=True, help="Spreadsheets: create codes the project does not have yet.")
@db_option
def ingest(paths, manifest, kind, site, district, role, date, attributes, segment, replace, strict, text_column,
           document_column, speaker_column, time_column, order_column, code_column, coder, code_separator, sheet,
           create_codes, db_path):
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
    attrs = {k: v for k, v in dict(kind=kind, site=site, district=district, role=role, date=date).items() if v}
    attrs.update(attributes)
    options = IngestOptions(
        manifest=manifest, attributes=attrs, segment=segment, replace=replace, strict=strict,
        table=TableMapping(text=text_column, document=document_column, speaker=speaker_column, time=time_column,
                           order=order_column, codes=code_column, coder=coder, separator=code_separator, sheet=sheet),
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
    counts = ", ".join(f"{result.count(s)} {s}" for s in ("added", "unchanged", "changed", "replaced", "skipped", "error")
                       if result.count(s))
    summary = f"{_n(len(result.files), 'file')}: {counts or 'nothing to do'}"
    if result.segments:
        summary += f" — {_n(result.words, 'word')}, {_n(result.segments, 'segment')} stored"
        summary += f", {_n(result.codings, 'coding')}" if result.codings else ""
    click.echo(summary)
    if result.errors:
        sys.exit(1)


# --- status and serve -----------------------------------------------------------


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
    click.echo(f"Coded: {s['coded_segments']:,} of {s['segments']:,} segments ({s['share_coded']:.1%})")
    if s["pending_suggestions"]:
        click.echo(f"Suggestions awaiting review: {s['pending_suggestions']:,}")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind; other than loopback exposes the data.")
@click.option("--port", default=8001, show_default=True, type=int)
@click.option("--metadata", type=click.Path(dir_okay=False), help="Datasette metadata (default: ./datasette-metadata.yml).")
@db_option
def serve(host, port, metadata, db_path):
    """Browse the project in Datasette, on 127.0.0.1 by default.

    \b
    Example:
        qualcode serve --db study.db --port 8001
    """
    from datasette.cli import cli as datasette_cli

    from .publish import datasette_args, is_loopback, load_metadata

    _open(db_path).close()
    if not is_loopback(host):
        click.echo(f"Warning: serving on {host} makes the transcripts reachable from other machines.", err=True)
    args = datasette_args(db_path, load_metadata(metadata, db_path), host, port)
    click.echo(f"Serving {db_path} at http://{host}:{port}/", err=True)
    datasette_cli.main(args, prog_name="datasette")
