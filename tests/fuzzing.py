"""The fuzzing harness shared by tests/test_fuzz.py (hypothesis) and bench/fuzz.py (counts).

A *plan* is a short list of integer tuples; :func:`mutate` applies it to a
reader's seed file, so hypothesis can draw and shrink plans while the bench
draws them from a seeded ``random.Random``. :func:`run_one` feeds the result
to the real CLI and classifies what happened. The only good outcomes are
``accepted`` (exit 0, every stored segment still the text at its offsets) and
``refused`` (exit 1, an ``Error:`` line naming the file, the database dump
unchanged); anything else is a bug.
"""

from __future__ import annotations

import io
import math
import re
import shutil
import signal
import sqlite3
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from click.testing import CliRunner

from qualcode import cli, open_project
from qualcode.codebook import load_codebook, sync_codebook
from qualcode.ingest import IngestOptions, ingest_paths

from . import badfiles

#: Seconds one input may take before it counts as a hang (generous: CI machines are shared).
HANG_SECONDS = 20
#: Mutated files never grow past this, so a run's time stays predictable.
MAX_BYTES = 400_000

TOKENS = [
    b"\x00", b'"', b'""', b",", b";", b"\t", b"\n", b"\r\n", b"\r", b" ", b"\n\n", b"-->", b"---\n", b"...\n",
    b": ", b"&a ", b"*a", b"[", b"]", b"{", b"}", b"? ", b"- ", b"!!timestamp ", b"!!python/object ", b"2024-13-45",
    b"0000-00-00", b"inf", b"nan", b"-1", b"1e999", b"99999999999999999999", b"\xff\xfe", b"\xef\xbb\xbf", b"\xc3",
    "é\u2028\u00a0".encode(), b"<v ", b"<", b">", b"&amp;", b"Interviewer:", b"WEBVTT\n", b"NOTE ",
    b"00:00:01.000 --> 00:00:00.500", b"99:99:99,999 --> 00:00:01,000", b"#", b"\\", b"'", b"%", b"=SUM(A1)",
    b"Doc A", b"doc-a", b"id: x\n", b"date: 2024-02-30\n", b"kind: [a]\n", b"title: {a: 1}\n",
]
XML_TOKENS = [
    b'<w:gridSpan w:val="99999999"/>', b'<w:gridSpan w:val="abc"/>', b"<w:vMerge/>", b'<w:vMerge w:val="restart"/>',
    b'<w:gridBefore w:val="-1"/>', b'r="XFD1048576"', b'<dimension ref="A1:XFD1048576"/>', b"<f>A1&amp;B1</f>",
    b't="s"', b't="e"', b't="n"', b"<v>999999</v>", b"<v>abc</v>", b"</", b"<!--", b"<![CDATA[",
    b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaaaaaaaaaaaa">]>', b"&a;", b'<row r="1048576">', b'<row r="0">',
    b'<c r="A0">', b"<is><t>x</t></is>", b'<c r="B2" t="inlineStr"><is><t>=1</t></is></c>', b"<w:tbl>", b"</w:tr>",
]
VALUES = [b"99999999", b"abc", b"XFD1048576", b"A0", b"-1", b"", b"0", b"1e999", b"inf", b"2024-13-45", b"s", b"e",
          b"A1:XFD1048576", b"continue", b"restart", b"9" * 30]
OPS = 8


@dataclass(frozen=True)
class Target:
    """One reader: its seed file, the member mutated inside a zip, and the command that reads it."""

    name: str
    filename: str
    seed: bytes
    args: tuple[str, ...] = ()
    member: str | None = None  # for .docx/.xlsx: the XML part that is mutated
    command: str = "ingest"  # ingest | manifest | codebook | batch


TABLE = ("--text-column", "text", "--document-column", "document", "--speaker-column", "speaker",
         "--time-column", "time", "--code-column", "code=Rosa", "--order-column", "n")
_XLSX_ROWS = [["document", "speaker", "time", "n", "text", "code"], ["int-1", "Ana", "1.5", 1, "Hello, there.", "support"],
              ["int-1", "Ben", "00:00:03", 2, "Hi.", ""]]

TARGETS = {t.name: t for t in [
    Target("txt", "notes.txt", badfiles.TEXT.encode()),
    Target("md", "notes.md", ("---\ntitle: Notes\nkind: interview\nsite: Bayview\ndate: 2024-10-16\ntags: [a, b]\n---\n"
                              + badfiles.TEXT).encode()),
    Target("vtt", "talk.vtt", badfiles.VTT.encode()),
    Target("srt", "talk.srt", badfiles.SRT.encode()),
    Target("csv", "sheet.csv", "document,speaker,time,n,text,code\nint-1,Ana,1.5,1,\"Hello, \"\"there\"\".\",support\n"
                               "int-1,Ben,00:00:03,2,\"Two\nlines\",\n".encode(), TABLE),
    Target("xlsx", "sheet.xlsx", badfiles.xlsx_bytes(_XLSX_ROWS), TABLE, member="xl/worksheets/sheet1.xml"),
    Target("xlsx-strings", "sheet.xlsx", badfiles.xlsx_bytes(_XLSX_ROWS), TABLE, member="xl/sharedStrings.xml"),
    Target("docx", "notes.docx", badfiles.docx_bytes(), member="word/document.xml"),
    Target("manifest", "manifest.csv", b"path,title,kind,site,date,note\nint.txt,Interview,interview,Bayview,2024-10-16,\"a, b\"\n",
           command="manifest"),
    Target("codebook", "book.yml", badfiles.CODEBOOK.encode(), command="codebook"),
    Target("batch", "batch.csv", b"document_id,seq,code_id,coder,start,end,memo\nint,1,support,Rosa,0,5,\"a \"\"memo\"\"\"\n",
           command="batch"),
]}


def mutate(data: bytes, plan: list[tuple[int, int, int, int]], xml: bool = False) -> bytes:
    """Apply each (op, position, token, amount) step of a plan to the bytes.

    For XML (``xml=True``) most steps keep the markup well formed, so the
    mutation reaches the reader's own logic rather than the XML parser.
    """
    buf = bytearray(data)
    tokens = XML_TOKENS + TOKENS if xml else TOKENS + XML_TOKENS
    for op, position, token, amount in plan:
        if xml:
            op = (6, 7, 6, 7, 6, 7, 1, 0)[op % 8]
        at = position % (len(buf) + 1)
        piece = tokens[token % len(tokens)]
        if op == 0 and buf:  # change one byte
            buf[min(at, len(buf) - 1)] = amount % 256
        elif op == 1:  # insert a token
            buf[at:at] = piece
        elif op == 2:  # delete a stretch
            del buf[at:at + amount % 64 + 1]
        elif op == 3:  # repeat a stretch
            chunk = bytes(buf[at:at + amount % 256 + 1])
            buf[at:at] = chunk * (amount % 50 + 1)
        elif op == 4:  # cut the file short
            del buf[at:]
        elif op == 5:  # a long run of one token: 300 KB of spaces, 50,000 '<'...
            buf[at:at] = piece * (amount % 100_000 + 1)
        elif op == 6:  # an element or token where a tag starts, which keeps XML well formed more often
            starts = [i for i, c in enumerate(buf) if c == 0x3C] or [at]
            where = starts[position % len(starts)]
            buf[where:where] = piece
        else:  # an attribute value (or a quoted cell) replaced
            quoted = [i for i, c in enumerate(buf) if c == 0x22]
            if len(quoted) >= 2:
                i = (position % (len(quoted) // 2)) * 2
                buf[quoted[i] + 1:quoted[i + 1]] = VALUES[amount % len(VALUES)]
        if len(buf) > MAX_BYTES:
            del buf[MAX_BYTES:]
    return bytes(buf)


def build(target: Target, plan: list[tuple[int, int, int, int]], raw_zip: bool = False) -> bytes:
    """The mutated file: bytes directly, or for a zip the XML member, re-zipped."""
    if target.member is None or raw_zip:
        return mutate(target.seed, plan)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(target.seed)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            dst.writestr(info.filename, mutate(body, plan, xml=True) if info.filename == target.member else body)
    return out.getvalue()


def template(folder: Path) -> Path:
    """An empty project with the fuzz codebook and one interview, copied for every input."""
    path = folder / "template.db"
    db = open_project(path)
    book = folder / "book.yml"
    book.write_text(badfiles.CODEBOOK)
    sync_codebook(db, load_codebook(book))
    (folder / "int.txt").write_text(badfiles.TEXT)
    assert not ingest_paths(db, [folder / "int.txt"], IngestOptions()).errors
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return path


def _dump(path: Path) -> list[str]:
    conn = sqlite3.connect(str(path))
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


_SUMMARY = re.compile(r"^[0-9,]+ files?: ")


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


@dataclass
class Outcome:
    kind: str  # accepted | refused | traceback | hang | dirty (failed but changed the db) | unclear (no Error: line)
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.kind in ("accepted", "refused")


def run_one(target: Target, data: bytes, template_db: Path) -> Outcome:
    """Feed one input to the CLI and say how it went."""
    work = Path(tempfile.mkdtemp(prefix="qcfuzz-"))
    try:
        project = work / "p.db"
        shutil.copy(template_db, project)
        shutil.copy(template_db.parent / "int.txt", work / "int.txt")
        path = work / target.filename
        path.write_bytes(data)
        args = {
            "ingest": ["ingest", str(path), *target.args],
            "manifest": ["ingest", "--manifest", str(path)],
            "codebook": ["codebook", "load", str(path)],
            "batch": ["code", "--batch", str(path), "--create-coder"],
        }[target.command] + ["--db", str(project)]
        before = _dump(project)
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(HANG_SECONDS)
        try:
            result = CliRunner().invoke(cli.cli, args, catch_exceptions=True)
        except Hang:
            return Outcome("hang", f"over {HANG_SECONDS} s")
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
        if isinstance(result.exception, Hang):
            return Outcome("hang", f"over {HANG_SECONDS} s")
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            return Outcome("traceback", f"{result.exception.__class__.__name__}: {result.exception}"[:300])
        if result.exit_code == 0:
            problem = _stored_problem(project)
            return Outcome("dirty", problem) if problem else Outcome("accepted")
        errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
        if _dump(project) != before:
            return Outcome("dirty", "failed but changed the database: " + result.output[:200])
        if not errors or not any(target.filename in line for line in errors):
            return Outcome("unclear", result.output[:300])
        stray = [line for line in result.output.splitlines()
                 if not (line.startswith(("Error:", "Warning:")) or _SUMMARY.match(line))]
        if stray or (target.command in ("codebook", "batch") and len(result.output.splitlines()) != 1):
            return Outcome("unclear", "more than one line per error: " + result.output[:300])
        return Outcome("refused", errors[0][:300])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _stored_problem(project: Path) -> str:
    """What is wrong with what an accepted input stored: offsets, NULs, times."""
    conn = sqlite3.connect(str(project))
    try:
        texts = dict(conn.execute("SELECT id, text FROM documents"))
        for doc, start, end, text, t0, t1 in conn.execute(
                "SELECT document_id, start_char, end_char, text, start_time, end_time FROM segments"):
            if texts[doc][start:end] != text or not text.strip():
                return f"segment of {doc} at {start}:{end} is not the text at its offsets"
            if any(t is not None and not (isinstance(t, (int, float)) and math.isfinite(t)) for t in (t0, t1)):
                return f"segment of {doc} has time {t0!r}"
        for doc, text in texts.items():
            if "\x00" in text:
                return f"document {doc} holds a NUL"
        for (date,) in conn.execute("SELECT date FROM documents WHERE date IS NOT NULL"):
            import datetime

            parts = (date.split("-") + ["01", "01"])[:3]
            try:
                datetime.date(*map(int, parts))
            except ValueError:
                return f"impossible date {date!r} stored"
        return ""
    finally:
        conn.close()


@dataclass
class Tally:
    """Counts of outcomes per target, for the closing report."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, target: str, outcome: Outcome) -> None:
        row = self.counts.setdefault(target, {})
        row[outcome.kind] = row.get(outcome.kind, 0) + 1
        if not outcome.ok:
            self.examples.setdefault(target, []).append(f"{outcome.kind}: {outcome.detail}")
