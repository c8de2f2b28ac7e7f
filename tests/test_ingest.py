import json

import docx
import openpyxl
import pytest
from click.testing import CliRunner

from qualcode import QualcodeError, cli, open_project
from qualcode.coding import apply_code
from qualcode.ingest import IngestOptions, TableMapping, ingest_paths
from qualcode.ingest.reattribute import set_attributes, set_manifest_attributes
from qualcode.ingest.segment import speaker_turns

from . import badfiles
from .conftest import assert_excerpts_current, dump

INTERVIEW = """\
---
title: Interview with a coach
kind: interview
site: Bayview Elementary
date: 2024-10-16
note: fictional
---

Interviewer: Thanks for making time. How did the year start?

Priya Natarajan: Busy. We started with co-planning.

It took a while to settle, honestly.

Interviewer: Mm-hm.

Priya Natarajan: And then the grant question came up.
"""


def rows(db, sql, params=()):
    return [dict(r) for r in db.query(sql, params)]


def check_offsets(db):
    """The invariant every reader must keep: the segment is the text at its offsets."""
    texts = {r["id"]: r["text"] for r in db.query("SELECT id, text FROM documents")}
    segs = rows(db, "SELECT document_id, start_char, end_char, text FROM segments")
    assert segs
    for s in segs:
        assert texts[s["document_id"]][s["start_char"]:s["end_char"]] == s["text"]
        assert s["text"] == s["text"].strip() and s["text"]


def ingest(db, *paths, **options):
    table = options.pop("table", None)
    return ingest_paths(db, [str(p) for p in paths], IngestOptions(table=table or TableMapping(), **options))


# --- readers, one test each ------------------------------------------------------------


def test_markdown_with_front_matter(db, tmp_path):
    path = tmp_path / "coach.md"
    path.write_text(INTERVIEW)
    result = ingest(db, path)
    assert result.count("added") == 1
    doc = rows(db, "SELECT * FROM documents")[0]
    assert (doc["title"], doc["kind"], doc["site"], doc["date"]) == ("Interview with a coach", "interview", "Bayview Elementary", "2024-10-16")
    assert json.loads(doc["attributes"]) == {"note": "fictional"}
    assert not doc["text"].startswith("---")
    segs = rows(db, "SELECT seq, speaker, text FROM segments ORDER BY seq")
    assert [s["speaker"] for s in segs] == ["Interviewer", "Priya Natarajan", "Interviewer", "Priya Natarajan"]
    # A paragraph without a label continues the turn.
    assert segs[1]["text"] == "Busy. We started with co-planning.\n\nIt took a while to settle, honestly."
    check_offsets(db)


def test_plain_text_paragraphs_for_notes(db, tmp_path):
    path = tmp_path / "visit.txt"
    path.write_text("Day 1. We met the cabinet.\n\nNote: the board meets Tuesdays.\n\n\n  Day 2. Classroom visits.  \n")
    ingest(db, path, attributes={"kind": "site_visit"})
    assert [s["text"] for s in rows(db, "SELECT text FROM segments ORDER BY seq")] == [
        "Day 1. We met the cabinet.", "Note: the board meets Tuesdays.", "Day 2. Classroom visits."]
    assert rows(db, "SELECT speaker FROM segments WHERE speaker IS NOT NULL") == []
    check_offsets(db)


def test_markdown_headings_are_not_segments(db, tmp_path):
    path = tmp_path / "notes.md"
    path.write_text("# Visit\n\n## Morning\n\nWe saw a PLC.\n\n---\n\nAfternoon was quiet.\n")
    ingest(db, path, attributes={"kind": "observation"})
    assert [s["text"] for s in rows(db, "SELECT text FROM segments ORDER BY seq")] == ["We saw a PLC.", "Afternoon was quiet."]


@pytest.mark.parametrize(
    "text,speakers",
    [
        ("Dana Whitfield: Hi.\nLena Okafor: Hello.\n", ["Dana Whitfield", "Lena Okafor"]),
        ("INTERVIEWER: Hi.\n\nQUINTERO: Hello.\n", ["INTERVIEWER", "QUINTERO"]),
        ("[Interviewer] Hi.\n\n[Teresa Villanueva] Hello.\n", ["Interviewer", "Teresa Villanueva"]),
        ("I: Hi.\nR: Hello.\n", ["I", "R"]),
        ("Facilitator: Hi.\n\nP1: Hello.\n\nP2: Hey.\n", ["Facilitator", "P1", "P2"]),
        ("Dr. Marisol Quintero: Hi.\n\nAmy (3rd grade): Hello.\n", ["Dr. Marisol Quintero", "Amy"]),
        ("Interviewer:\nHi there.\n\nJonah:\nHello.\n", ["Interviewer", "Jonah"]),
    ],
    ids=["name", "upper", "brackets", "I-R", "P1", "title-and-paren", "label-own-line"],
)
def test_speaker_label_styles(text, speakers):
    assert [s.speaker for s in speaker_turns(text)] == speakers


def test_text_before_first_label_has_no_speaker():
    segs = speaker_turns("Recorded 12 May.\n\nI: Hi.\n\nR: Hello.\n\nI: Bye.\n")
    assert [s.speaker for s in segs] == [None, "I", "R", "I"]


VTT = """\
WEBVTT

NOTE fictional sample

00:00:02.000 --> 00:00:05.500
<v Claire Osei>Thanks for meeting.

intro-2
00:00:05.800 --> 00:00:09.250
<v Priya Natarajan>Of course. The room
is small.</v>

00:00:09.550 --> 00:00:12.000
<v Priya Natarajan>But it &amp; I get along.

00:00:12.300 --> 00:00:14.000
Claire Osei: Ha. Let's start.
"""

SRT = """\
1
00:00:01,000 --> 00:00:03,000
Miguel Ansari: How was Monday?

2
00:00:03,300 --> 00:00:06,000
Hannah Kowalski: Long. We had
a fire drill.

3
00:00:06,300 --> 00:00:08,000
And then the calls.
"""


def test_vtt_cues_merge_into_timed_turns(db, tmp_path):
    path = tmp_path / "coach.vtt"
    path.write_text(VTT)
    ingest(db, path)
    segs = rows(db, "SELECT speaker, text, start_time, end_time FROM segments ORDER BY seq")
    assert segs == [
        {"speaker": "Claire Osei", "text": "Thanks for meeting.", "start_time": 2.0, "end_time": 5.5},
        {"speaker": "Priya Natarajan", "text": "Of course. The room is small. But it & I get along.", "start_time": 5.8, "end_time": 12.0},
        {"speaker": "Claire Osei", "text": "Ha. Let's start.", "start_time": 12.3, "end_time": 14.0},
    ]
    check_offsets(db)


def test_srt_cue_without_speaker_continues_turn(db, tmp_path):
    path = tmp_path / "teacher.srt"
    path.write_text(SRT)
    ingest(db, path)
    segs = rows(db, "SELECT speaker, text, start_time, end_time FROM segments ORDER BY seq")
    assert segs[1] == {"speaker": "Hannah Kowalski", "text": "Long. We had a fire drill. And then the calls.",
                       "start_time": 3.3, "end_time": 8.0}
    check_offsets(db)


def test_docx_paragraphs_and_table_rows(db, tmp_path):
    path = tmp_path / "teacher.docx"
    document = docx.Document()
    document.core_properties.title = "Teacher interview"
    document.add_paragraph("Interviewer: What changed?")
    document.add_paragraph("Jonah: The exit tickets.")
    document.add_paragraph("They were a mess at first.")
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "Interviewer"
    table.rows[0].cells[1].text = "Thanks."
    document.save(path)
    ingest(db, path, attributes={"kind": "interview"})
    assert rows(db, "SELECT title FROM documents")[0]["title"] == "Teacher interview"
    segs = rows(db, "SELECT speaker, text FROM segments ORDER BY seq")
    assert segs == [
        {"speaker": "Interviewer", "text": "What changed?"},
        {"speaker": "Jonah", "text": "The exit tickets.\n\nThey were a mess at first."},
        {"speaker": "Interviewer", "text": "Thanks."},
    ]
    check_offsets(db)


def test_sentence_segmentation_keeps_speaker(db, tmp_path):
    path = tmp_path / "coach.md"
    path.write_text(INTERVIEW)
    ingest(db, path, segment="sentence")
    segs = rows(db, "SELECT speaker, text FROM segments ORDER BY seq")
    assert {"speaker": "Priya Natarajan", "text": "It took a while to settle, honestly."} in segs
    assert {"speaker": "Priya Natarajan", "text": "Busy."} in segs
    check_offsets(db)


CSV = """\
doc,turn,who,words,code_rosa,code_sam,site
fg-1,2,P1,We never have time to meet.,context.collaboration-time,context.collaboration-time;scaling.dilemmas,Bayview
fg-1,1,Facilitator,What gets in the way?,,,Bayview
fg-2,1,P2,Our coach co-plans with us.,support.coaching,,Seacliff
"""


def table_mapping(**kw):
    base = dict(text="words", document="doc", speaker="who", order="turn",
                codes=[("code_rosa", "Rosa Delgado"), ("code_sam", "Sam Okonjo")])
    base.update(kw)
    return TableMapping(**base)


def test_csv_rows_become_documents_with_codings(coded_db, tmp_path):
    db = coded_db
    path = tmp_path / "coded.csv"
    path.write_text(CSV)
    result = ingest(db, path, table=table_mapping())
    assert result.count("added") == 1 and result.codings == 4
    docs = rows(db, "SELECT id, site, title FROM documents ORDER BY id")
    assert docs == [{"id": "fg-1", "site": "Bayview", "title": "fg-1"}, {"id": "fg-2", "site": "Seacliff", "title": "fg-2"}]
    segs = rows(db, "SELECT document_id, seq, speaker, text FROM segments ORDER BY document_id, seq")
    assert segs[0] == {"document_id": "fg-1", "seq": 1, "speaker": "Facilitator", "text": "What gets in the way?"}
    codings = rows(db, """SELECT s.text, g.code_id, c.name AS coder, g.origin FROM codings g
                          JOIN segments s ON s.id = g.segment_id JOIN coders c ON c.id = g.coder_id
                          ORDER BY c.name, g.code_id""")
    assert [(c["coder"], c["code_id"]) for c in codings] == [
        ("Rosa Delgado", "context.collaboration-time"), ("Rosa Delgado", "support.coaching"),
        ("Sam Okonjo", "context.collaboration-time"), ("Sam Okonjo", "scaling.dilemmas")]
    assert {c["origin"] for c in codings} == {"import"}
    check_offsets(db)
    assert ingest(db, path, table=table_mapping()).count("unchanged") == 1


def test_xlsx_with_created_codes(db, tmp_path):
    path = tmp_path / "coded.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["doc", "order", "speaker", "text", "label", "time"])
    for i in range(1, 301):
        sheet.append([f"d{i % 3}", i, f"S{i % 2}", f"Sentence number {i}.", ["Positive", "Negative", None][i % 3], f"00:01:{i % 60:02d}"])
    book.save(path)
    mapping = TableMapping(text="text", document="doc", speaker="speaker", order="order", time="time",
                           codes=[("label", None)], coder="External")
    result = ingest(db, path, table=mapping, create_codes=True)
    assert not result.errors, result.errors[0].error
    assert db.execute("SELECT count(*) FROM segments").fetchone()[0] == 300
    assert db.execute("SELECT count(*) FROM codings").fetchone()[0] == 200
    assert sorted(r["id"] for r in rows(db, "SELECT id FROM codes")) == ["negative", "positive"]
    assert db.execute("SELECT start_time FROM segments WHERE text = 'Sentence number 61.'").fetchone()[0] == 61.0
    check_offsets(db)


# --- attributes -------------------------------------------------------------------------


def test_manifest_and_options_precedence(db, tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.md").write_text(INTERVIEW)
    (folder / "README.md").write_text("About this corpus.")
    (folder / "manifest.csv").write_text("path,site,district,split\na.md,Seacliff Middle,Harbor Unified,test\n")
    ingest(db, folder, manifest=folder / "manifest.csv", attributes={"district": "Cedar Valley"})
    doc = rows(db, "SELECT id, site, district, kind, attributes FROM documents")
    assert len(doc) == 1  # README and the manifest itself are not documents
    assert doc[0]["site"] == "Seacliff Middle"  # manifest beats front matter
    assert doc[0]["district"] == "Cedar Valley"  # options beat the manifest
    assert doc[0]["kind"] == "interview"  # front matter where nothing overrides it
    assert json.loads(doc[0]["attributes"]) == {"note": "fictional", "split": "test"}


def test_manifest_alone_names_the_files(db, tmp_path):
    (tmp_path / "a.md").write_text(INTERVIEW)
    (tmp_path / "m.csv").write_text("path,kind\na.md,focus group\n")
    result = ingest_paths(db, [], IngestOptions(manifest=tmp_path / "m.csv"))
    assert result.count("added") == 1
    assert rows(db, "SELECT kind FROM documents") == [{"kind": "focus_group"}]


# --- re-ingest ----------------------------------------------------------------------------


def test_reingest_same_bytes_is_unchanged(db, tmp_path, db_path):
    path = tmp_path / "coach.md"
    path.write_text(INTERVIEW)
    ingest(db, path)
    before = dump(db_path)
    result = ingest(db, path)
    assert result.count("unchanged") == 1
    assert dump(db_path) == before


def test_changed_file_needs_replace_and_keeps_codings(coded_db, tmp_path):
    db = coded_db
    path = tmp_path / "coach.md"
    path.write_text(INTERVIEW)
    ingest(db, path)
    seg = {r["text"]: r["id"] for r in db.query("SELECT id, text FROM segments")}
    kept_id = seg["And then the grant question came up."]
    lost_id = seg["Mm-hm."]
    with db.atomic():
        db.execute("INSERT INTO coders (name, created_at) VALUES ('Rosa', 'now')")
        for sid in (kept_id, lost_id):
            db.execute("INSERT INTO codings (segment_id, code_id, coder_id, origin, created_at) VALUES (?, 'scaling.dilemmas', 1, 'manual', 'now')", [sid])
        # A span inside the kept segment ("grant"), stored as document offsets.
        start = db.execute("SELECT start_char FROM segments WHERE id = ?", [kept_id]).fetchone()[0] + 13
        db.execute("INSERT INTO codings (segment_id, code_id, coder_id, start_char, end_char, origin, created_at) VALUES (?, 'support.district-role', 1, ?, ?, 'manual', 'now')",
                   [kept_id, start, start + 5])
    path.write_text(INTERVIEW.replace("Mm-hm.", "Say more about that, and about the district?").replace("Thanks for", "Thank you for"))
    assert ingest(db, path).count("changed") == 1
    result = ingest(db, path, replace=True)
    stored = result.files[0].documents[0]
    assert (stored.status, stored.kept_codings, stored.dropped_codings) == ("replaced", 2, 1)
    assert db.execute("SELECT id FROM segments WHERE text = 'And then the grant question came up.'").fetchone()[0] == kept_id
    span = db.execute("SELECT start_char, end_char FROM codings WHERE start_char IS NOT NULL").fetchone()
    text = db.execute("SELECT text FROM documents").fetchone()[0]
    assert text[span[0]:span[1]] == "grant"
    check_offsets(db)
    assert_excerpts_current(db.conn)
    hits = db.execute("SELECT count(*) FROM segments_fts WHERE segments_fts MATCH 'district'").fetchone()[0]
    assert hits == 1


# --- bad input ------------------------------------------------------------------------------

BAD_FILES = {
    "empty.txt": (b"", "the file is empty"),
    "blank.md": (b"  \n\n", "the file is empty"),
    "image.txt": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
    "mixed.txt": ("I: caf\u00e9\n".encode() + b"\x81\x8d bytes", "no known encoding"),
    "cue.vtt": (VTT.replace("00:00:09.550 --> 00:00:12.000", "00:00:09.550 -> 00:00:12.000").encode(), "cue.vtt:13: malformed cue timing"),
    "nohead.vtt": (VTT.replace("WEBVTT", "WEBTT").encode(), "must start with 'WEBVTT'"),
    "times.srt": (SRT.replace("00:00:03,300 --> 00:00:06,000", "00:00:06,300 --> 00:00:03,000").encode(), "times.srt:6: cue ends before it starts"),
    "front.md": (b"---\ntitle: [unclosed\n---\nI: Hi.\n", "front.md:3: bad front matter"),
    "open.md": (b"---\ntitle: x\nI: Hi.\n", "never ends"),
    "badkind.md": (b"---\nkind: podcast\n---\nI: Hi.\n", "unknown kind 'podcast'"),
    "baddate.md": (b"---\ndate: 12/03/2019\n---\nI: Hi.\n", "is not YYYY-MM-DD"),
    "notes.docx": (b"PK\x03\x04 not really a zip", "not a valid Word .docx"),
    "sheet.csv": (CSV.encode(), "no column 'words' for --text-column"),
}


def project_with_one_document(tmp_path):
    """A project holding one good interview, and its dump: what a bad file must leave as it was."""
    project = tmp_path / "p.db"
    good = tmp_path / "good.md"
    good.write_text(INTERVIEW)
    runner = CliRunner()
    assert runner.invoke(cli.cli, ["ingest", str(good), "--db", str(project)]).exit_code == 0
    return runner, project, dump(project)


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_input_is_one_line_and_changes_nothing(tmp_path, name):
    data, message = BAD_FILES[name]
    runner, project, before = project_with_one_document(tmp_path)
    bad = tmp_path / name
    bad.write_bytes(data)
    args = ["ingest", str(bad), "--db", str(project)]
    if name.endswith(".csv"):
        args += ["--text-column", "words", "--document-column", "document"]
        bad.write_text(CSV.replace("words", "text"))
    result = runner.invoke(cli.cli, args)
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0] and name in errors[0], result.output
    assert " — " in errors[0] or name in ("times.srt",)  # says how to fix it
    assert "Traceback" not in result.output
    assert dump(project) == before


def test_cp1252_is_read_with_a_warning(db, tmp_path):
    path = tmp_path / "old.txt"
    path.write_bytes("I: Caf\u00e9 talk \u2014 good.\n\nR: Yes.\n".encode("cp1252"))
    result = ingest(db, path)
    assert result.count("added") == 1
    assert any("Windows-1252" in w for w in result.files[0].warnings)
    assert "Caf\u00e9 talk \u2014 good." in rows(db, "SELECT text FROM segments")[0]["text"]


def test_utf8_bom_is_stripped(db, tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfI: Hello.\n\nR: Hi.\n\nI: Bye.\n")
    ingest(db, path)
    assert rows(db, "SELECT speaker FROM segments ORDER BY seq")[0]["speaker"] == "I"


def test_folder_with_one_bad_file(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.md").write_text(INTERVIEW)
    (folder / "c.txt").write_text("Notes.\n\nMore notes.\n")
    (folder / "bad.vtt").write_text("WEBVTT\n\nnot a cue\n")
    project = tmp_path / "p.db"
    result = CliRunner().invoke(cli.cli, ["ingest", str(folder), "--db", str(project)])
    assert result.exit_code == 1
    assert "bad.vtt:3: malformed cue" in result.output
    assert "2 added, 1 error" in result.output
    strict = CliRunner().invoke(cli.cli, ["ingest", str(folder), "--strict", "--db", str(tmp_path / "q.db")])
    assert strict.exit_code == 1
    assert "1 added, 1 error" in strict.output  # a.md, then bad.vtt stops the run before c.txt


def test_spreadsheet_in_folder_is_skipped_without_mapping(db, tmp_path):
    (tmp_path / "a.md").write_text(INTERVIEW)
    (tmp_path / "codes.csv").write_text(CSV)
    result = ingest(db, tmp_path)
    assert result.count("added") == 1 and result.count("skipped") == 1 and not result.errors


def test_unknown_code_in_spreadsheet(coded_db, tmp_path, db_path):
    path = tmp_path / "coded.csv"
    path.write_text(CSV.replace("support.coaching", "support.coachin"))
    before = dump(db_path)
    result = ingest(coded_db, path, table=table_mapping())
    assert "coded.csv:4: unknown code 'support.coachin'" in result.errors[0].error
    assert dump(db_path) == before


def test_unsupported_and_missing_paths(tmp_path):
    (tmp_path / "scan.pdf").write_bytes(b"%PDF-1.4")
    result = CliRunner().invoke(cli.cli, ["ingest", str(tmp_path / "scan.pdf"), str(tmp_path / "nope.txt"),
                                          "--db", str(tmp_path / "p.db")])
    assert result.exit_code == 1
    assert "scan.pdf: unsupported format '.pdf'" in result.output
    assert "nope.txt: no such file or folder" in result.output


def test_bad_manifest_stops_before_any_file(tmp_path):
    (tmp_path / "a.md").write_text(INTERVIEW)
    (tmp_path / "m.csv").write_text("path,site\na.md,X\nmissing.md,Y\n")
    project = tmp_path / "p.db"
    result = CliRunner().invoke(cli.cli, ["ingest", "--manifest", str(tmp_path / "m.csv"), "--db", str(project)])
    assert result.exit_code == 1
    assert "m.csv:3: no such file 'missing.md'" in result.output
    assert CliRunner().invoke(cli.cli, ["status", "--db", str(project)]).output.count("Documents: 0") == 1


# --- issue 12: no hang, no traceback, no silent loss on a bad file ---------------------------

TABLE = ["--text-column", "text", "--document-column", "document"]

#: name -> (bytes, extra ingest options, text of the error, its line or None)
REGRESSIONS = {
    "laughs.md": (("---\n" + badfiles.LAUGHS + "---\nHello.\n").encode(), [], "YAML aliases expand to more than", 7),
    "loop.md": (b"---\na: &a [1, *a]\n---\nHello.\n", [], "refers to the value that contains it", 2),
    "deep.md": (b"---\na: " + b"[" * 5000 + b"]" * 5000 + b"\n---\nHello.\n", [], "nested more than 64 levels", None),
    "listsite.md": (b"---\ntitle: x\nsite: [a, b]\n---\nHello.\n", [], "'site' must be a single value, not a list", 3),
    "maptitle.md": (b"---\ntitle: {a: 1}\n---\nHello.\n", [], "'title' must be a single value, not a mapping", 2),
    "complexkey.md": (b"---\n? [a, b]\n: 1\n---\nHello.\n", [], "bad front matter", None),
    "month13.md": (b"---\nkind: interview\ndate: 2024-13-45\n---\nI: Hi.\n", [], "date '2024-13-45' is not a real date", 3),
    "feb30.txt": (b"---\ndate: 2023-02-30\n---\nHello.\n", [], "is not a real date", 2),
    "tagged.md": (b"---\ndate: !!timestamp 2024-13-45\n---\nHello.\n", [], "a value cannot be read", None),
    "late-nul.txt": (b"Hello.\n" * 2000 + b"Bad \x00 byte.\n", [], "holds a NUL byte", 2001),
    "short-row.csv": (b"document,text\nd1,Hello.\nd2\n", TABLE, "row has 1 cell but the header has 2", 3),
    "long-row.csv": (b"document,text\nd1,Hello, world.\n", TABLE, "row has 3 cells but the header has 2", 2),
    "quote.csv": (b'document,text\nd1,"Hello "there"\n', TABLE, "bad CSV", 2),
    "inf.csv": (b"document,text,time\nd1,Hello.,inf\n", TABLE + ["--time-column", "time"], "'inf' is not a time", 2),
    "negative.csv": (b"document,text,time\nd1,Hello.,-3\n", TABLE + ["--time-column", "time"], "'-3' is not a time", 2),
    "nan-order.csv": (b"document,text,n\nd1,Hello.,1\nd1,Bye.,nan\n", TABLE + ["--order-column", "n"], "'nan' in 'n' is not a number", 3),
    "date.csv": (b"document,text,date\nd1,Hello.,2024-02-30\n", TABLE, "date '2024-02-30' is not a real date", 2),
    "ids.csv": (b"document,text\nDoc A,Hello.\ndoc-a,Bye.\n", TABLE, "documents 'Doc A' and 'doc-a' both get the id 'doc-a'", 3),
    "formula.xlsx": (badfiles.xlsx_bytes(formula=True), TABLE, "cell C3 holds a formula", 3),
    "damaged.xlsx": (badfiles.xlsx_damaged(), TABLE, "not a valid .xlsx workbook (ParseError", None),
    "wide.xlsx": (badfiles.xlsx_bytes([["document", "text"] + [f"c{i}" for i in range(1100)], ["d", "Hi."]]), TABLE,
                  "header row has 1,102 columns", 1),
    "span.docx": (badfiles.docx_bytes("abc"), [], "a table cell spans 'abc' columns", None),
    "bomb.docx": (badfiles.docx_bomb(), [], "a zip bomb", None),
}


def _one_error_line(result, name: str, message: str, line: int | None) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit), result.exception
    errors = [text for text in result.output.splitlines() if text.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert message in errors[0] and " — " in errors[0], errors[0]
    where = f"{name}:{line}:" if line else f"{name}:"
    assert where in errors[0], errors[0]
    return errors[0]


@pytest.mark.parametrize("name", sorted(REGRESSIONS))
def test_bad_file_is_refused_in_one_line(tmp_path, name):
    data, extra, message, line = REGRESSIONS[name]
    runner, project, before = project_with_one_document(tmp_path)
    bad = tmp_path / name
    bad.write_bytes(data)
    result = runner.invoke(cli.cli, ["ingest", str(bad), "--db", str(project), *extra])
    _one_error_line(result, name, message, line)
    assert dump(project) == before


@pytest.mark.parametrize("option, value", [("--date", "2024-13-45"), ("--date", "2024-00"), ("--kind", "x" * 500)])
def test_bad_option_is_refused_before_any_file(tmp_path, option, value):
    (tmp_path / "a.md").write_text(INTERVIEW)
    project = tmp_path / "p.db"
    result = CliRunner().invoke(cli.cli, ["ingest", str(tmp_path / "a.md"), option, value, "--db", str(project)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.startswith("Error: command line: ") and len(result.output.strip().splitlines()) == 1
    assert rows(open_project(project), "SELECT id FROM documents") == []


MANIFESTS = {
    "huge-field": ("path,site\na.md," + "x" * 131_073 + "\n", "field larger than field limit", 2),
    "nul": ("path,site\n" + "a.md,Bayview\n" * 800 + "a.md,Bay\x00view\n", "holds a NUL byte", 802),
    "bad-date": ("path,date\na.md,2024-13-45\n", "is not a real date", 2),
    "short-row": ("path,site,role\na.md,Bayview\n", "row has 2 cells but the header has 3", 2),
    "long-path": ("path,site\n" + "x" * 5000 + ".md,Bayview\n", "no such file 'xxx", 2),
    "quoted-newline": ('path,site\na.md,"Bay\nview"\nb.md,"x"y\n', "bad CSV", 4),
}


@pytest.mark.parametrize("case", sorted(MANIFESTS))
def test_bad_manifest_is_one_line(tmp_path, case):
    text, message, line = MANIFESTS[case]
    (tmp_path / "a.md").write_text(INTERVIEW)
    (tmp_path / "b.md").write_text(INTERVIEW.replace("coach", "teacher"))
    manifest = tmp_path / "manifest.csv"
    manifest.write_bytes(text.encode())
    project = tmp_path / "p.db"
    result = CliRunner().invoke(cli.cli, ["ingest", "--manifest", str(manifest), "--db", str(project)])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    first = result.output.splitlines()[0]
    assert first.startswith(f"Error: {manifest}:{line}: ") and message in first, result.output
    assert rows(open_project(project), "SELECT id FROM documents") == []


def test_manifest_cell_with_a_newline_is_read_whole(tmp_path):
    (tmp_path / "a.md").write_text(INTERVIEW)
    (tmp_path / "m.csv").write_text('path,note\na.md,"two\nlines, and ""quotes"""\n')
    db = open_project(tmp_path / "p.db")
    assert not ingest_paths(db, [], IngestOptions(manifest=tmp_path / "m.csv")).errors
    assert json.loads(rows(db, "SELECT attributes FROM documents")[0]["attributes"]) == {
        "note": 'two\nlines, and "quotes"'}


@pytest.mark.parametrize("name, data, extra", [
    ("spaces.txt", b"Hello.\n" + b" " * 300_000 + b"\nBye.\n", []),
    ("spaces.md", b"# Notes\n" + b" \t" * 150_000 + b"\n\nBye.\n", []),
    ("far.xlsx", badfiles.xlsx_far_cell(), TABLE),
    ("span.docx", badfiles.docx_bytes("99999999"), []),
    ("tags.vtt", ("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n" + "<v a" * 50_000 + "\n").encode(), []),
])
def test_pathological_but_valid_files_are_read_quickly(db, tmp_path, name, data, extra):
    import time

    path = tmp_path / name
    path.write_bytes(data)
    started = time.perf_counter()
    result = CliRunner().invoke(cli.cli, ["ingest", str(path), "--db", str(tmp_path / "p.db"), *extra])
    assert time.perf_counter() - started < 5
    assert result.exit_code == 0, result.output
    assert "1 added" in result.output


def test_docx_merged_cells_are_read_once(db, tmp_path):
    path = tmp_path / "merged.docx"
    path.write_bytes(badfiles.docx_bytes("2"))
    ingest(db, path)
    text = rows(db, "SELECT text FROM documents")[0]["text"]
    assert "Ana: We co-planned." in text and "Ben: It helped." in text


def test_csv_quotes_commas_and_newlines_anywhere(db, tmp_path):
    """Doubled quotes first seen after 4 KB were misread when the dialect was guessed."""
    import csv as csv_module
    import io

    texts = [f"Turn {i}: plain words here." for i in range(200)]
    texts += ['He said "Alan?" and left, later.', 'Two\nlines, "quoted"', '"', ",", 'a""b', "  spaced  "]
    out = io.StringIO()
    writer = csv_module.writer(out)  # RFC 4180 quoting
    writer.writerow(["document", "text", "code"])
    for i, text in enumerate(texts):
        writer.writerow(["int-1", text, "support.coaching" if "Alan" in text else ""])
    path = tmp_path / "sheet.csv"
    path.write_text(out.getvalue(), newline="")
    assert len(out.getvalue()[:4096].split('""')) == 1  # no doubled quote in the first 4 KB
    result = ingest(db, path, table=TableMapping(text="text", document="document", codes=[("code", "Rosa")]),
                    create_codes=True)
    assert not result.errors, result.errors[0].error
    stored = [r["text"] for r in db.query("SELECT text FROM segments ORDER BY seq")]
    assert stored == [" ".join(t.split()) for t in texts]
    assert rows(db, "SELECT name FROM codes") == [{"name": "support.coaching"}]


@pytest.mark.parametrize("dialect, text, said", [
    ("semicolon", 'document;text\nd1;"Hello; ""you"""\n', 'Hello; "you"'),
    ("tab", 'document\ttext\nd1\t"Hello,\tyou"\n', "Hello, you"),
    ("backslash", 'document,text\nd1,"Hello, \\"you\\""\n', 'Hello, "you"'),
])
def test_csv_dialect_option(tmp_path, dialect, text, said):
    path = tmp_path / "sheet.csv"
    path.write_text(text)
    project = tmp_path / "p.db"
    wrong = CliRunner().invoke(cli.cli, ["ingest", str(path), *TABLE, "--db", str(project)])
    assert wrong.exit_code == 1
    right = CliRunner().invoke(cli.cli, ["ingest", str(path), *TABLE, "--csv-dialect", dialect, "--db", str(project)])
    assert right.exit_code == 0, right.output
    assert rows(open_project(project), "SELECT text FROM segments")[0]["text"] == said


def test_semicolon_file_read_as_rfc4180_says_which_option(tmp_path):
    path = tmp_path / "sheet.csv"
    path.write_text("document;text\nd1;Hello.\n")
    result = CliRunner().invoke(cli.cli, ["ingest", str(path), *TABLE, "--db", str(tmp_path / "p.db")])
    assert result.exit_code == 1 and "--csv-dialect semicolon" in result.output


def test_replace_does_not_let_colliding_ids_overwrite(db, tmp_path, db_path):
    path = tmp_path / "sheet.csv"
    path.write_text("document,text\nDoc A,Hello.\n")
    ingest(db, path, table=TableMapping(text="text", document="document"))
    before = dump(db_path)
    path.write_text("document,text\nDoc A,Hello.\ndoc-a,Other words.\n")
    result = ingest(db, path, table=TableMapping(text="text", document="document"), replace=True)
    assert "both get the id 'doc-a'" in result.errors[0].error
    assert dump(db_path) == before


@pytest.mark.parametrize("sheet, message", [
    ("document_id,seq,code_id,coder,start\ncoach,2,support.coaching,Rosa,3\n", "span '3:' is not START:END"),
    ("document_id,seq,code_id,coder,end\ncoach,2,support.coaching,Rosa,3\n", "span ':3' is not START:END"),
    ("document_id,seq,code_id,coder\ncoach,2\n", "row has 2 cells but the header has 4"),
])
def test_batch_sheet_with_half_a_span_is_one_line(coded_db, db_path, tmp_path, sheet, message):
    (tmp_path / "coach.md").write_text(INTERVIEW)
    ingest(coded_db, tmp_path / "coach.md")
    before = dump(db_path)
    path = tmp_path / "batch.csv"
    path.write_text(sheet)
    result = CliRunner().invoke(cli.cli, ["code", "--batch", str(path), "--create-coder", "--db", str(db_path)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert result.output.startswith(f"Error: {path}:2: ") and message in result.output, result.output
    assert dump(db_path) == before


# --- attributes after ingest ------------------------------------------------------------------

TEACHER = "Interviewer: How did the term go?\n\nMaya Chen: Long, but the coaching helped.\n\nInterviewer: How so?\n\nMaya Chen: We planned together every week.\n"
VISIT = "We arrived at nine.\n\nThe library was busy with a book fair.\n"


def corpus_with_codings(tmp_path, db):
    """Two documents ingested with a manifest, one of them coded (a turn and a span)."""
    folder = tmp_path / "corpora"
    folder.mkdir()
    (folder / "interview-01.txt").write_text(TEACHER)
    (folder / "visit-01.txt").write_text(VISIT)
    manifest = folder / "manifest.csv"
    manifest.write_text("path,title,kind,site,role,date\n"
                        "interview-01.txt,Interview with a teacher,interview,Northfield,teacher,2025-03-01\n"
                        "visit-01.txt,Visit to Northfield,site_visit,Northfield,,2025-03-02\n")
    assert ingest(db, manifest=manifest).count("added") == 2
    apply_code(db, "interview-01:2", "support.coaching", "Rosa", create_coder=True)
    apply_code(db, "interview-01:4", "context.collaboration-time", "Rosa", span="3:10")
    return folder, manifest


def content(db):
    """What an attribute change must leave alone: texts, segments and codings, row for row
    (speaker roles aside: the conventions read the kind and the interviewer attribute)."""
    return (rows(db, "SELECT id, text, sha256, format, source_path FROM documents ORDER BY id"),
            rows(db, "SELECT id, document_id, seq, speaker, start_char, end_char, text, start_time, end_time "
                     "FROM segments ORDER BY id"), rows(db, "SELECT * FROM codings ORDER BY id"),
            rows(db, "SELECT rowid, text, speaker FROM segments_fts ORDER BY rowid"))


def test_set_attributes_of_one_document(coded_db, tmp_path):
    db = coded_db
    corpus_with_codings(tmp_path, db)
    before = content(db)
    change = set_attributes(db, "interview-01", {"site": "Eastbrook", "kind": "focus group", "interviewer": "Sam Lee"})
    assert change.changes == [("kind", "interview", "focus_group"), ("site", "Northfield", "Eastbrook"),
                              ("interviewer", None, "Sam Lee")]
    assert change.describe() == "interview-01: kind interview -> focus_group; site Northfield -> Eastbrook; interviewer (none) -> Sam Lee"
    doc = rows(db, "SELECT title, kind, site, role, date, attributes FROM documents WHERE id = 'interview-01'")[0]
    assert doc == {"title": "Interview with a teacher", "kind": "focus_group", "site": "Eastbrook", "role": "teacher",
                   "date": "2025-03-01", "attributes": '{"interviewer": "Sam Lee"}'}
    assert content(db) == before
    # A focus group's questioner is its facilitator, and Sam Lee is the interviewer named.
    assert {r["speaker"]: r["speaker_role"] for r in rows(
        db, "SELECT speaker, speaker_role FROM segments WHERE document_id = 'interview-01'")}["Interviewer"] == "facilitator"
    # The excerpts table copies site and kind: it follows, and still matches its source view.
    assert {r["site"] for r in rows(db, "SELECT site FROM excerpts")} == {"Eastbrook"}
    assert_excerpts_current(db.conn)
    assert db.execute("SELECT count(*) FROM segments_fts WHERE segments_fts MATCH 'coaching'").fetchone()[0] == 1
    db.execute("INSERT INTO segments_fts(segments_fts) VALUES ('integrity-check')")  # raises if the index drifted
    assert set_attributes(db, "interview-01", {"site": "Eastbrook"}).describe() == "interview-01: unchanged"


def test_set_attributes_from_a_corrected_manifest(coded_db, tmp_path, db_path):
    db = coded_db
    folder, manifest = corpus_with_codings(tmp_path, db)
    before = content(db)
    manifest.write_text("path,title,kind,site,role,date,interviewer\n"
                        "interview-01.txt,Interview with a teacher,interview,Eastbrook,coach,,Sam Lee\n"
                        "visit-01.txt,Visit to Northfield,site_visit,Northfield,,2025-03-02,\n")
    result = CliRunner().invoke(cli.cli, ["attributes", "set", "--manifest", str(manifest), "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    assert result.output == ("interview-01: site Northfield -> Eastbrook; role teacher -> coach; interviewer (none) -> Sam Lee\n"
                             "visit-01: unchanged\n"
                             "2 documents: 1 updated, 1 unchanged\n")
    # An empty cell keeps the stored value.
    assert rows(db, "SELECT date FROM documents WHERE id = 'interview-01'") == [{"date": "2025-03-01"}]
    assert content(db) == before
    assert {(r["site"], r["role"]) for r in rows(db, "SELECT site, role FROM excerpts")} == {("Eastbrook", "coach")}
    assert_excerpts_current(db.conn)


BAD_SET_MANIFESTS = {
    "bad date": ("interview-01.txt,Eastbrook,2025-02-30\n", "manifest.csv:3: date '2025-02-30' is not a real date"),
    "unknown kind": ("interview-01.txt,Eastbrook,2025-03-01,podcast\n", "manifest.csv:3: unknown kind 'podcast'"),
    "not ingested": ("notes.txt,Eastbrook,2025-03-01\n", "manifest.csv:3: no document was ingested from 'notes.txt'"),
    "no such file": ("gone.txt,Eastbrook,2025-03-01\n", "manifest.csv:3: no such file 'gone.txt'"),
}


@pytest.mark.parametrize("case", sorted(BAD_SET_MANIFESTS))
def test_bad_manifest_row_for_attributes_changes_nothing(coded_db, tmp_path, db_path, case):
    db = coded_db
    folder, manifest = corpus_with_codings(tmp_path, db)
    (folder / "notes.txt").write_text("Never ingested.\n")
    row, message = BAD_SET_MANIFESTS[case]
    header = "path,site,date,kind\n" if "kind" in case else "path,site,date\n"
    # The first row is good: it must not be applied either.
    manifest.write_text(header + "visit-01.txt,Eastbrook,2025-03-02" + (",site visit\n" if "kind" in case else "\n") + row)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = dump(db_path)
    result = CliRunner().invoke(cli.cli, ["attributes", "set", "--manifest", str(manifest), "--db", str(db_path)])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and result.output.startswith("Error: ") and message in result.output, result.output
    assert dump(db_path) == before


@pytest.mark.parametrize("args, message", [
    (["nope", "--site", "X"], "unknown document 'nope'"),
    (["interview-01", "--date", "03/01/2025"], "command line: date '03/01/2025' is not YYYY-MM-DD"),
    (["interview-01", "--kind", "podcast"], "command line: unknown kind 'podcast'"),
    (["interview-01", "-a", "id=other"], "a document's id cannot be changed here"),
    (["interview-01"], "nothing to set"),
    (["--site", "X"], "give one DOCUMENT or a --manifest"),
])
def test_bad_attributes_set_is_one_line(coded_db, tmp_path, db_path, args, message):
    corpus_with_codings(tmp_path, coded_db)
    coded_db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = dump(db_path)
    result = CliRunner().invoke(cli.cli, ["attributes", "set", *args, "--db", str(db_path)])
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output, result.output
    assert dump(db_path) == before


def test_attributes_set_one_document_cli(coded_db, tmp_path, db_path):
    corpus_with_codings(tmp_path, coded_db)
    result = CliRunner().invoke(cli.cli, ["attributes", "set", "interview-01", "--site", "Eastbrook", "--title",
                                          "Interview with Maya Chen", "-a", "published=false", "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    assert result.output == ("interview-01: title Interview with a teacher -> Interview with Maya Chen; "
                             "site Northfield -> Eastbrook; published true -> false\n1 document: 1 updated\n")
    assert rows(coded_db, "SELECT published FROM documents WHERE id = 'interview-01'") == [{"published": 0}]


def test_reingest_unchanged_file_with_new_attributes_updates_them(coded_db, tmp_path, db_path):
    db = coded_db
    folder, manifest = corpus_with_codings(tmp_path, db)
    before = content(db)
    runner = CliRunner()
    path = str(folder / "interview-01.txt")
    result = runner.invoke(cli.cli, ["ingest", path, "--site", "Eastbrook", "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    shown = result.output.splitlines()[0]
    assert shown.endswith("interview-01.txt: attributes updated — site Northfield -> Eastbrook")
    assert result.output.splitlines()[1] == "1 file: 1 attributes updated"
    # The same again, and the plain re-ingest, change nothing: front matter and defaults do not undo it.
    for args in (["--site", "Eastbrook"], []):
        again = runner.invoke(cli.cli, ["ingest", path, *args, "--db", str(db_path)])
        assert again.output.splitlines()[-1] == "1 file: 1 unchanged", again.output
    # A corrected manifest is applied as well (what it says of the interview is what is stored).
    manifest.write_text(manifest.read_text().replace("2025-03-02", "2025-03-04").replace("interview,Northfield", "interview,Eastbrook"))
    result = ingest(db, manifest=manifest)
    assert [f.status for f in result.files] == ["unchanged", "attributes updated"]
    assert result.files[1].documents[0].note == "date 2025-03-02 -> 2025-03-04"
    assert content(db) == before
    assert rows(db, "SELECT site FROM documents ORDER BY id") == [{"site": "Eastbrook"}, {"site": "Northfield"}]
    assert_excerpts_current(db.conn)


def test_replace_keeps_stored_attributes_unless_given_anew(coded_db, tmp_path):
    db = coded_db
    folder, manifest = corpus_with_codings(tmp_path, db)
    path = folder / "interview-01.txt"
    path.write_text(TEACHER.replace("How so?", "How so, exactly?"))
    result = ingest(db, path, replace=True)  # no manifest this time
    assert result.files[0].status == "replaced"
    doc = rows(db, "SELECT title, kind, site, role, date FROM documents WHERE id = 'interview-01'")[0]
    assert doc == {"title": "Interview with a teacher", "kind": "interview", "site": "Northfield", "role": "teacher",
                   "date": "2025-03-01"}
    # Still split into turns, by the stored kind, and the codings on unchanged turns kept.
    assert [r["speaker"] for r in rows(db, "SELECT speaker FROM segments WHERE document_id = 'interview-01' ORDER BY seq")] == [
        "Interviewer", "Maya Chen", "Interviewer", "Maya Chen"]
    assert db.execute("SELECT count(*) FROM codings").fetchone()[0] == 2
    path.write_text(TEACHER.replace("How so?", "Say more?"))
    result = ingest(db, path, replace=True, attributes={"role": "coach"})
    assert result.files[0].documents[0].note == "role teacher -> coach"
    assert rows(db, "SELECT site, role FROM documents WHERE id = 'interview-01'") == [{"site": "Northfield", "role": "coach"}]
    check_offsets(db)
    assert_excerpts_current(db.conn)


# --- transcripts as Otter, Zoom, Teams and Rev export them -------------------------------------

TURNS = [("Maya Chen", "Thanks for joining. How has the term gone?"), ("Daniel Ortiz", "Busy. We moved team meetings to Tuesdays.\nThat helped.")]
EXPORTS = {
    # label, two spaces, m:ss or h:mm:ss; the text on the lines below
    "otter": ("Maya Chen  0:05\n{0}\n\nDaniel Ortiz  1:02:03\n{1}\n", [5.0, 3723.0]),
    "zoom": ("[Maya Chen] 10:04:12\n{0}\n\n[Daniel Ortiz] 10:04:20\n{1}\n", [36252.0, 36260.0]),
    "zoom-one-line": ("00:00:05 Maya Chen: {0}\n00:00:09 Daniel Ortiz: {1}\n", [5.0, 9.0]),
    "teams": ("Maya Chen   0:00:05\n{0}\n\nDaniel Ortiz   0:00:09\n{1}\n", [5.0, 9.0]),
    "teams-time-first": ("0:00:05 Maya Chen\n{0}\n\n0:00:09 Daniel Ortiz\n{1}\n", [5.0, 9.0]),
    "teams-clock": ("Maya Chen 4:05 PM\n{0}\n\nDaniel Ortiz 4:06 PM\n{1}\n", [57_900.0, 57_960.0]),
    "rev": ("Maya Chen (00:05):\n{0}\n\nDaniel Ortiz (01:10.5):\n{1}\n", [5.0, 70.5]),
}


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_timed_speaker_labels(db, tmp_path, name):
    template, times = EXPORTS[name]
    path = tmp_path / f"{name}.txt"
    path.write_text(template.format(*(text for _, text in TURNS)))
    assert ingest(db, path, attributes={"kind": "interview"}).count("added") == 1
    segs = rows(db, "SELECT speaker, text, start_time FROM segments ORDER BY seq")
    # The labels and times are not part of the turn's text; the times are where the turn starts.
    assert segs == [{"speaker": s, "text": t, "start_time": when} for (s, t), when in zip(TURNS, times)]
    check_offsets(db)


OTTER = """\
Planning interview, Eastbrook
Sat, Mar 1, 2025 10:04AM • 12:30

Maya Chen  0:05
Thanks for making time today.

Speaker 2  0:09
Of course.

Maya Chen  0:41
What changed this term?

Speaker 2  0:47
The schedule, mostly.
"""


def test_otter_export_of_unknown_kind_reads_as_turns(db, tmp_path):
    path = tmp_path / "otter.txt"
    path.write_text(OTTER)
    ingest(db, path)
    segs = rows(db, "SELECT speaker, text, start_time FROM segments ORDER BY seq")
    # Otter's heading is text before the first turn, with no speaker.
    assert [(s["speaker"], s["start_time"]) for s in segs] == [
        (None, None), ("Maya Chen", 5.0), ("Speaker 2", 9.0), ("Maya Chen", 41.0), ("Speaker 2", 47.0)]
    assert segs[0]["text"] == "Planning interview, Eastbrook\nSat, Mar 1, 2025 10:04AM • 12:30"
    check_offsets(db)


def test_schedule_in_notes_is_not_a_transcript(db, tmp_path):
    path = tmp_path / "visit.txt"
    path.write_text("9:00 Arrival\nWe met the principal.\n\n9:30 Walkthrough\nThree classrooms.\n\n10:15 Debrief\nShort.\n")
    ingest(db, path)
    assert [s["speaker"] for s in rows(db, "SELECT speaker FROM segments")] == [None, None, None]


@pytest.mark.parametrize("text, expected", [
    ("[00:01:05] Hi.\n\n[Ana Ruiz] Hello.\n", [(None, "[00:01:05] Hi.", None), ("Ana Ruiz", "Hello.", None)]),
    ("Speaker 1: Hi.\nSpeaker 2: Hello.\n", [("Speaker 1", "Hi.", None), ("Speaker 2", "Hello.", None)]),
    ("[0:05] Ana de la Cruz: Hi.\n", [("Ana de la Cruz", "Hi.", 5.0)]),
    ("Ana Ruiz  0:05\n\nBen Ode  0:09\nHi.\n", [("Ben Ode", "Hi.", 9.0)]),  # a label with nothing said
], ids=["time-in-brackets-is-no-speaker", "numbered-speakers", "particles", "empty-turn"])
def test_more_label_styles(text, expected):
    assert [(s.speaker, text[s.start:s.end], s.start_time) for s in speaker_turns(text)] == expected


def test_teams_docx_transcript(db, tmp_path):
    path = tmp_path / "teams.docx"
    document = docx.Document()
    for (speaker, said), when in zip(TURNS, ("0:00:09", "0:01:02")):
        document.add_paragraph(f"{speaker}   {when}")
        for line in said.split("\n"):
            document.add_paragraph(line)
    document.save(path)
    ingest(db, path, attributes={"kind": "interview"})
    segs = rows(db, "SELECT speaker, text, start_time FROM segments ORDER BY seq")
    assert segs == [{"speaker": "Maya Chen", "text": TURNS[0][1], "start_time": 9.0},
                    {"speaker": "Daniel Ortiz", "text": TURNS[1][1].replace("\n", "\n\n"), "start_time": 62.0}]
    check_offsets(db)


TEAMS_VTT = """\
WEBVTT

3f2a7c1e-1b2d-4c5e-9f00-1a2b3c4d5e6f/12-0
00:00:05.120 --> 00:00:08.340
<v Maya Chen>Thanks for joining.</v>

3f2a7c1e-1b2d-4c5e-9f00-1a2b3c4d5e6f/13-0
00:00:08.900 --> 00:00:11.000
<v Daniel Ortiz>Sure, happy to.</v>

3f2a7c1e-1b2d-4c5e-9f00-1a2b3c4d5e6f/14-0
00:00:11.200 --> 00:00:13.000
<v Daniel Ortiz>It was a long term.</v>
"""
ZOOM_VTT = """\
WEBVTT

1
00:00:05.120 --> 00:00:08.340
Maya Chen: Thanks for joining.

2
00:00:08.900 --> 00:00:11.000
Daniel Ortiz: Sure, happy to.

3
00:00:11.200 --> 00:00:13.000
Daniel Ortiz: It was a long term.
"""


@pytest.mark.parametrize("vtt", [TEAMS_VTT, ZOOM_VTT], ids=["teams", "zoom"])
def test_teams_and_zoom_vtt(db, tmp_path, vtt):
    path = tmp_path / "call.vtt"
    path.write_text(vtt)
    ingest(db, path, attributes={"kind": "interview"})
    assert rows(db, "SELECT speaker, text, start_time, end_time FROM segments ORDER BY seq") == [
        {"speaker": "Maya Chen", "text": "Thanks for joining.", "start_time": 5.12, "end_time": 8.34},
        {"speaker": "Daniel Ortiz", "text": "Sure, happy to. It was a long term.", "start_time": 8.9, "end_time": 13.0},
    ]
    assert "<v" not in rows(db, "SELECT text FROM documents")[0]["text"]
    check_offsets(db)


@pytest.mark.parametrize("name, data, kind, expected", [
    ("notes.txt", "We talked about the schedule.\n\nIt was fine, she said.\n", "interview",
     "ingested as an interview but no speaker turns were found (expected lines like 'Name: text' or 'Name  0:05')"),
    ("group.vtt", "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHello, everyone.\n", "focus_group",
     "ingested as a focus group but no speaker turns were found (expected cues like '<v Name>text' or 'Name: text')"),
])
def test_interview_without_turns_warns(tmp_path, monkeypatch, name, data, kind, expected):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpora").mkdir()
    path = f"corpora/{name}"
    (tmp_path / path).write_text(data)
    project = "p.db"
    runner = CliRunner()
    result = runner.invoke(cli.cli, ["ingest", path, "--kind", kind, "--db", project])
    assert result.exit_code == 0, result.output
    assert result.stderr == f"Warning: {path}: {expected}\n"
    assert result.stdout.startswith(f"{path}: added (")  # still ingested, as paragraphs
    db = open_project(project)
    assert db.execute("SELECT count(*) FROM segments WHERE speaker IS NOT NULL").fetchone()[0] == 0
    db.close()
    # Said once, when the segments are stored; not again for an unchanged file.
    assert runner.invoke(cli.cli, ["ingest", path, "--db", project]).stderr == ""


def test_no_warning_for_paragraphs_asked_for_or_turns_found(tmp_path):
    (tmp_path / "notes.txt").write_text("We talked.\n\nIt was fine.\n")
    (tmp_path / "teacher.txt").write_text(TEACHER)
    result = CliRunner().invoke(cli.cli, ["ingest", str(tmp_path / "notes.txt"), "--kind", "interview", "--segment", "paragraph",
                                          "--db", str(tmp_path / "p.db")])
    assert result.exit_code == 0 and result.stderr == ""
    result = CliRunner().invoke(cli.cli, ["ingest", str(tmp_path / "teacher.txt"), "--kind", "interview",
                                          "--db", str(tmp_path / "p.db")])
    assert result.exit_code == 0 and result.stderr == ""


def test_manifest_rows_by_id_and_by_spreadsheet_with_options(coded_db, tmp_path):
    db = coded_db
    folder, _ = corpus_with_codings(tmp_path, db)
    (folder / "coded.csv").write_text(CSV)
    ingest(db, folder / "coded.csv", table=table_mapping())
    fix = folder / "fix.csv"
    # A row may name its document by id; a spreadsheet's row is every document read from it.
    fix.write_text("path,id,role\ninterview-01.txt,interview-01,coach\ncoded.csv,,teachers\n")
    changes = set_manifest_attributes(db, fix, {"district": "North County"})
    assert [c.describe() for c in changes] == [
        "interview-01: district (none) -> North County; role teacher -> coach",
        "fg-1: district (none) -> North County; role (none) -> teachers",
        "fg-2: district (none) -> North County; role (none) -> teachers"]
    assert rows(db, "SELECT DISTINCT district FROM documents WHERE id != 'visit-01'") == [{"district": "North County"}]
    fix.write_text("path,id,role\ninterview-01.txt,interview-02,coach\n")
    with pytest.raises(QualcodeError, match=r"fix.csv:2: no document was ingested from 'interview-01.txt' \(no document 'interview-02'\)"):
        set_manifest_attributes(db, fix)
