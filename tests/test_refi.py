"""REFI-QDA exchange: what we write is valid, what goes out comes back, what others write comes in.

Every lenient case is a fixture made here by altering a valid export, the way another tool
would have written it; every bad input is refused with one line and the project unchanged.
"""

import io
import json
import re
import sqlite3
import zipfile
from pathlib import Path

import pytest
import xmlschema
from click.testing import CliRunner

from qualcode import cli, open_project
from qualcode.codebook import load_codebook, sync_codebook, validate_codebook
from qualcode.coding import apply_code
from qualcode.ingest import ingest_paths
from qualcode.memos import add_memo
from qualcode.refi import (CODEBOOK_NS, PROJECT_NS, RefiError, codebook_yaml, export_codebook, export_project,
                           import_codebook, import_project, read_codebook)

from .conftest import LESSONS, assert_excerpts_current, dump

SCHEMAS = Path(__file__).with_name("refi-qda")
PROJECT_XSD = xmlschema.XMLSchema(str(SCHEMAS / "Project.xsd"))
CODEBOOK_XSD = xmlschema.XMLSchema(str(SCHEMAS / "Codebook.xsd"))

INTERVIEW = """---
kind: interview
site: Bayview Elementary
district: Harbor Unified
role: teacher
date: 2024-10-16
cohort: 3
mentored: true
---
Interviewer: Where did you work before?

Ana Ruiz: At the café – naïve ideas, “quotes” and an emoji 🎉 all here.

Interviewer: And now?

Ana Ruiz: Coaching, mostly. We co-plan every Tuesday with Mr. Bell.
"""

NOTES = """---
kind: observation
site: Cedar Middle
---
Déjà vu at the staff meeting: the coach – again – led the data talk.

Teachers sat by grade level; the principal arrived late and café au lait in hand.
"""


def snapshot(path) -> dict:
    """What a round trip must keep: documents, segments, codes, coders, codings, memos."""
    conn = sqlite3.connect(str(path))
    q = lambda sql: sorted(tuple(r) for r in conn.execute(sql))  # noqa: E731
    try:
        return {
            "documents": q("SELECT id, title, kind, site, district, role, date, text, attributes, format, published, guid "
                           "FROM documents"),
            "segments": q("SELECT document_id, seq, speaker, start_char, end_char, text, start_time, end_time, speaker_role "
                          "FROM segments"),
            "codes": q("SELECT id, codebook_id, parent_id, lesson_id, depth, name, definition, include, exclude, examples, "
                       "terms, color, sort_order, archived, roles, exclusive, guid FROM codes"),
            "codebooks": q("SELECT id, name, version, description FROM codebooks"),
            "coders": q("SELECT name, guid, consensus FROM coders"),
            "codings": q("SELECT s.document_id, s.seq, g.code_id, c.name, g.start_char, g.end_char, coalesce(g.memo, '') "
                         "FROM codings g JOIN segments s ON s.id = g.segment_id JOIN coders c ON c.id = g.coder_id"),
            "memos": q("SELECT coalesce(c.name, ''), coalesce(m.document_id, ''), coalesce(s.document_id || ':' || s.seq, ''), "
                       "coalesce(m.code_id, ''), m.text, m.guid FROM memos m LEFT JOIN coders c ON c.id = m.coder_id "
                       "LEFT JOIN segments s ON s.id = m.segment_id"),
        }
    finally:
        conn.close()


@pytest.fixture
def small(tmp_path) -> Path:
    """Two documents (one with an emoji, both with accents), spans, whole segments, every kind of memo."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "interview-ana.txt").write_text(INTERVIEW, encoding="utf-8")
    (folder / "field-notes.txt").write_text(NOTES, encoding="utf-8")
    path = tmp_path / "small.db"
    db = open_project(path)
    sync_codebook(db, load_codebook(LESSONS))
    result = ingest_paths(db, [folder])
    assert not result.errors
    apply_code(db, "interview-ana:2", "support.coaching", "Rosa Delgado", create_coder=True)
    apply_code(db, "interview-ana:2", "purpose.coherence", "Rosa Delgado", span="7:13", memo="the café")
    apply_code(db, "interview-ana:2", "purpose.coherence", "Sam Okonjo", span="40:55", create_coder=True)
    apply_code(db, "interview-ana:4", "support.coaching", "Sam Okonjo")
    apply_code(db, "field-notes:1", "scaling.spread", "Sam Okonjo", span="0:9")
    seg = db.execute("SELECT end_char - start_char FROM segments WHERE document_id = 'field-notes' AND seq = 2").fetchone()[0]
    apply_code(db, "field-notes:2", "context.relationships", "Rosa Delgado", span=f"0:{seg}")  # a span that is the segment
    add_memo(db, "Coaching here means co-planning.", "Rosa Delgado", code="support.coaching")
    add_memo(db, "Ana was candid.", "Sam Okonjo", document="interview-ana")
    add_memo(db, "Note the emoji 🎉.", "Sam Okonjo", segment="interview-ana:2")
    db.close()
    return path


def members(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def write_zip(path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def exported(db_path, out, **kwargs) -> Path:
    db = open_project(db_path)
    try:
        export_project(db, out, **kwargs)
    finally:
        db.close()
    return out


def imported(qdpx, db_path):
    db = open_project(db_path)
    try:
        return import_project(db, qdpx)
    finally:
        db.close()


# --- validity -----------------------------------------------------------------------------------


@pytest.mark.parametrize("options", [{}, {"pseudonymise": True}, {"where": {"site": ["Cedar Middle"]}}],
                         ids=["all", "pseudonymised", "filtered"])
def test_every_project_we_write_is_valid(small, tmp_path, options):
    files = members(exported(small, tmp_path / "out.qdpx", **options))
    PROJECT_XSD.validate(io.BytesIO(files["project.qde"]))
    assert all(n.startswith("sources/") for n in files if n not in ("project.qde", "qualcode.json"))


def test_an_empty_project_exports_valid_and_comes_back_empty(tmp_path):
    open_project(tmp_path / "empty.db").close()
    files = members(exported(tmp_path / "empty.db", tmp_path / "empty.qdpx"))
    PROJECT_XSD.validate(io.BytesIO(files["project.qde"]))
    result = imported(tmp_path / "empty.qdpx", tmp_path / "back.db")
    assert (result.documents, result.codes, result.codings) == (0, 0, 0)
    with pytest.raises(RefiError, match="no codes to export"):
        export_codebook(open_project(tmp_path / "empty.db"), tmp_path / "none.qdc")


def test_the_sample_corpus_exports_valid(gold_copy, tmp_path):
    files = members(exported(gold_copy, tmp_path / "gold.qdpx"))
    PROJECT_XSD.validate(io.BytesIO(files["project.qde"]))


def test_every_codebook_we_write_is_valid(small, tmp_path):
    db = open_project(small)
    assert export_codebook(db, tmp_path / "codes.qdc") == 21
    CODEBOOK_XSD.validate(str(tmp_path / "codes.qdc"))


def test_sources_are_the_exact_text_and_selections_point_into_it(small, tmp_path):
    files = members(exported(small, tmp_path / "out.qdpx"))
    db = open_project(small)
    texts = {r["guid"]: r["text"] for r in db.query("SELECT guid, text FROM documents")}
    for guid, text in texts.items():
        assert files[f"sources/{guid}.txt"] == text.encode("utf-8")
    qde = files["project.qde"].decode()
    # The span 7:13 of turn 2 is "café –": offsets are code points, so the emoji later counts as one.
    seg = db.execute("SELECT start_char FROM segments WHERE document_id = 'interview-ana' AND seq = 2").fetchone()[0]
    assert f'startPosition="{seg + 7}" endPosition="{seg + 13}"' in qde
    assert texts[next(g for g in texts if "Ana" in texts[g])][seg + 7:seg + 13] == "café –"


def test_guids_are_stable_across_exports(small, tmp_path):
    first = members(exported(small, tmp_path / "1.qdpx"))
    second = members(exported(small, tmp_path / "2.qdpx"))
    strip = lambda b: re.sub(rb'creationDateTime="[^"]+"', b"", b, count=1)  # noqa: E731  (the export's own time)
    assert strip(first["project.qde"]) == strip(second["project.qde"])
    assert first.keys() == second.keys()


# --- round trips --------------------------------------------------------------------------------


def test_round_trip_gives_the_same_project(small, tmp_path):
    out = exported(small, tmp_path / "out.qdpx")
    result = imported(out, tmp_path / "back.db")
    assert result.warnings == []
    assert (result.documents, result.codes, result.coders, result.codings, result.memos) == (2, 21, 2, 6, 3)
    assert snapshot(tmp_path / "back.db") == snapshot(small)
    back = open_project(tmp_path / "back.db")
    assert_excerpts_current(back.conn)  # copied in bulk, and the trigger that keeps them is back
    assert back.execute("SELECT 1 FROM sqlite_master WHERE name = 'excerpts_coding_insert'").fetchone()


def test_round_trip_of_the_sample_corpus(gold_copy, tmp_path):
    imported(exported(gold_copy, tmp_path / "gold.qdpx"), tmp_path / "back.db")
    assert snapshot(tmp_path / "back.db") == snapshot(gold_copy)


def test_a_foreign_project_is_stable_through_import_export_import(small, tmp_path):
    """Without our sidecar (as another tool writes it): segments are made from the text, and a
    second trip changes nothing."""
    files = members(exported(small, tmp_path / "out.qdpx"))
    del files["qualcode.json"]
    foreign = write_zip(tmp_path / "foreign.qdpx", files)
    imported(foreign, tmp_path / "first.db")
    imported(exported(tmp_path / "first.db", tmp_path / "again.qdpx"), tmp_path / "second.db")
    assert snapshot(tmp_path / "second.db") == snapshot(tmp_path / "first.db")
    first = snapshot(tmp_path / "first.db")
    assert [d[7] for d in first["documents"]] == [d[7] for d in snapshot(small)["documents"]]  # text exactly
    assert len(first["codings"]) == 6


def test_pseudonymised_export_names_nobody_and_keeps_spans(small, tmp_path):
    from qualcode.privacy import Pseudonymiser, scan_file

    out = exported(small, tmp_path / "p.qdpx", pseudonymise=True)
    db = open_project(small)
    assert scan_file(out, Pseudonymiser.for_project(db).scan) == []
    text = b"".join(members(out).values()).decode("utf-8", "replace")
    for name in ("Ana Ruiz", "Ruiz", "Rosa Delgado", "Delgado", "Sam Okonjo", "Okonjo"):
        assert name not in text
    imported(out, tmp_path / "back.db")
    back = open_project(tmp_path / "back.db")
    spans = [r[0] for r in back.execute(
        "SELECT substr(d.text, g.start_char + 1, g.end_char - g.start_char) FROM codings g JOIN segments s ON s.id = g.segment_id "
        "JOIN documents d ON d.id = s.document_id WHERE g.start_char IS NOT NULL ORDER BY g.start_char")]
    assert "café –" in spans
    assert back.execute("SELECT count(*) FROM codings").fetchone()[0] == 6


def test_where_exports_only_those_documents(small, tmp_path):
    out = exported(small, tmp_path / "w.qdpx", where={"site": ["Cedar Middle"]})
    result = imported(out, tmp_path / "back.db")
    assert (result.documents, result.codings) == (1, 2)


# --- codebooks ----------------------------------------------------------------------------------


def test_codebook_round_trip_and_yaml(small, tmp_path):
    db = open_project(small)
    export_codebook(db, tmp_path / "codes.qdc")
    fresh = open_project(tmp_path / "fresh.db")
    result = import_codebook(fresh, tmp_path / "codes.qdc")
    assert len(result.sync.added) == 21 and result.warnings == []
    tree = "SELECT name, definition, color, depth, guid FROM codes ORDER BY sort_order"
    assert list(fresh.query(tree)) == list(db.query(tree))
    yml = tmp_path / "codes.yml"
    yml.write_text(codebook_yaml(read_codebook(tmp_path / "codes.qdc").codebook), encoding="utf-8")
    assert validate_codebook(yml) == []
    assert [c.name for c, _, _ in load_codebook(yml).walk()] == [r["name"] for r in db.query(tree)]


def test_codebook_back_from_another_tool_updates_in_place(small, tmp_path):
    """GUIDs match codes up: a code renamed in the other tool is renamed here; what a .qdc cannot
    carry (include, exclude, terms) is kept."""
    db = open_project(small)
    export_codebook(db, tmp_path / "codes.qdc")
    before = list(db.query("SELECT id, include, terms FROM codes ORDER BY id"))
    xml = (tmp_path / "codes.qdc").read_text().replace('name="Coaching fitted to the person"', 'name="Fitted coaching"')
    (tmp_path / "codes.qdc").write_text(xml)
    result = import_codebook(db, tmp_path / "codes.qdc")
    assert result.sync.updated == ["support.coaching"] and len(result.sync.unchanged) == 20
    assert db.execute("SELECT name FROM codes WHERE id = 'support.coaching'").fetchone()[0] == "Fitted coaching"
    assert list(db.query("SELECT id, include, terms FROM codes ORDER BY id")) == before


def test_codebook_from_a_qdpx(small, tmp_path):
    out = exported(small, tmp_path / "out.qdpx")
    book = read_codebook(out).codebook
    assert sum(1 for _ in book.walk()) == 21


# --- lenient import ------------------------------------------------------------------------------


def _alter_qde(fn):
    def alter(files):
        files["project.qde"] = fn(files["project.qde"].decode()).encode()
    return alter


def _rename_sources(files, rename):
    for name in [n for n in files if n.startswith("sources/")]:
        files[rename(name)] = files.pop(name)


def _cp1252(files):
    name = next(n for n in files if n.startswith("sources/") and "Déjà".encode() in files[n])
    files[name] = files[name].decode("utf-8").encode("cp1252")


def _inner_named(files):
    files["Continuous improvement study.qde"] = files.pop("project.qde")


def _drop_code(xml):
    return re.sub(r'<Code guid="[^"]+" name="Spreading practices"[^>]*>.*?</Code>', "", xml, count=1, flags=re.S)


def _duplicate_guid(xml):
    first, second = re.findall(r'<Code guid="([^"]+)" name="(?:Dilemmas|Testing)', xml)[:2]
    return xml.replace(f'guid="{second}"', f'guid="{first}"', 1)


def _past_end(xml):
    return re.sub(r'endPosition="\d+"', 'endPosition="999999"', xml, count=1)


def _tampered_sidecar(files):
    sidecar = json.loads(files["qualcode.json"])
    for doc in sidecar["documents"].values():
        doc["segments"] = [[5, 2, {"not": "a speaker"}, "x", None]]
        doc["published"] = "maybe"
        doc["id"] = "../../etc"
    sidecar["codes"] = {g: {"roles": ["not a role!!", 3], "examples": "x", "id": ["list"]} for g in sidecar["codes"]}
    files["qualcode.json"] = json.dumps(sidecar).encode()


def _sidecar_not_ours(files):
    files["qualcode.json"] = b'{"format": 1, "documents": []}'


LENIENT = {
    "capital-S Sources/": (lambda f: _rename_sources(f, lambda n: "Sources/" + n[8:]), "sources folder named 'Sources/'"),
    "no extension": (lambda f: _rename_sources(f, lambda n: n[:-4]), "found as 'sources/"),
    "Windows-1252 text": (_cp1252, "read as Windows-1252"),
    "qde named after the project": (_inner_named, "named 'Continuous improvement study.qde', not 'project.qde'"),
    "namespace 1:0": (_alter_qde(lambda x: x.replace(PROJECT_NS, "urn:QDA-XML:project:1:0")),
                      "namespace written 'urn:QDA-XML:project:1:0'"),
    "colour with alpha": (_alter_qde(lambda x: x.replace('color="#1f77b4"', 'color="#1f77b4ff"')),
                          "colour '#1f77b4ff' has an alpha channel; read as '#1f77b4'"),
    "colour #RGB": (_alter_qde(lambda x: re.sub(r'color="#[0-9a-f]{6}"', 'color="#f80"', x, count=1)),
                    "colour '#f80' written as #RGB; read as '#ff8800'"),
    "empty <Codes/>": (_alter_qde(lambda x: re.sub(r"<CodeBook>.*</CodeBook>", "<CodeBook><Codes /></CodeBook>", x, flags=re.S)),
                       "empty <Codes/>"),
    "offsets past the end": (_alter_qde(_past_end), "run past the source's"),
    "code referenced, not defined": (_alter_qde(_drop_code), "names a code the codebook does not define; created it as"),
    "duplicate GUID": (_alter_qde(_duplicate_guid), "duplicate GUID"),
    "qualcode.json of another shape": (_sidecar_not_ours, "qualcode.json set aside ('documents' is not a dict)"),
}


@pytest.mark.parametrize("case", LENIENT, ids=list(LENIENT))
def test_lenient_import(small, tmp_path, case):
    alter, message = LENIENT[case]
    files = members(exported(small, tmp_path / "valid.qdpx"))
    alter(files)
    qdpx = write_zip(tmp_path / "altered.qdpx", files)
    result = imported(qdpx, tmp_path / "back.db")
    assert any(message in w for w in result.warnings), result.warnings
    assert all(w.startswith(f"{qdpx}: ") and "\n" not in w for w in result.warnings)
    back, original = snapshot(tmp_path / "back.db"), snapshot(small)
    assert [d[7] for d in back["documents"]] == [d[7] for d in original["documents"]]  # the text, exactly
    # A selection clipped to the end of its source now runs on into the next segment: one more coding.
    assert result.codings == (7 if case == "offsets past the end" else 6)
    if case == "colour with alpha":
        assert ("#1f77b4",) in {(c[11],) for c in back["codes"]}
    if case == "empty <Codes/>":
        assert all(c[5].startswith("Undefined code") for c in back["codes"])  # made for the codings' sake
    if case == "offsets past the end":
        db = open_project(tmp_path / "back.db")
        assert db.execute("SELECT max(g.end_char <= length(d.text)) FROM codings g JOIN segments s ON s.id = g.segment_id "
                          "JOIN documents d ON d.id = s.document_id").fetchone()[0] == 1


def _foreign_qde(text: str) -> str:
    """A small project as another tool might write it: cases with variables, a selection across two
    paragraphs, a whole-source coding, a note on a selection, a user missing from <Users>, and
    sources and graphs we cannot hold."""
    return f"""<?xml version="1.0" encoding="utf-8"?>
<Project xmlns="{PROJECT_NS}" name="Fieldwork" creatingUserGUID="11111111-1111-1111-1111-111111111111">
 <Users><User guid="11111111-1111-1111-1111-111111111111" name="Lee"/></Users>
 <CodeBook><Codes>
  <Code guid="AAAAAAAA-0000-0000-0000-000000000001" name="Trust" isCodable="true" color="#FF0000">
   <Description>Trust between staff.</Description>
   <Code guid="AAAAAAAA-0000-0000-0000-000000000002" name="Broken trust" isCodable="true"/>
  </Code>
 </Codes></CodeBook>
 <Variables><Variable guid="BBBBBBBB-0000-0000-0000-000000000001" name="Age" typeOfVariable="Integer"/>
  <Variable guid="BBBBBBBB-0000-0000-0000-000000000002" name="site" typeOfVariable="Text"/></Variables>
 <Cases><Case guid="CCCCCCCC-0000-0000-0000-000000000001" name="Ms Lopez">
  <VariableValue><VariableRef targetGUID="BBBBBBBB-0000-0000-0000-000000000001"/><IntegerValue>44</IntegerValue></VariableValue>
  <VariableValue><VariableRef targetGUID="BBBBBBBB-0000-0000-0000-000000000002"/><TextValue>North</TextValue></VariableValue>
  <SourceRef targetGUID="DDDDDDDD-0000-0000-0000-000000000001"/></Case></Cases>
 <Sources>
  <TextSource guid="DDDDDDDD-0000-0000-0000-000000000001" name="Lopez interview.docx"
              richTextPath="internal://DDDDDDDD-0000-0000-0000-000000000001.docx"
              plainTextPath="internal://DDDDDDDD-0000-0000-0000-000000000001.txt">
   <PlainTextSelection guid="EEEEEEEE-0000-0000-0000-000000000001" startPosition="5" endPosition="30"
                       creatingUser="11111111-1111-1111-1111-111111111111">
    <Coding guid="EEEEEEEE-0000-0000-0000-000000000011"><CodeRef targetGUID="AAAAAAAA-0000-0000-0000-000000000002"/></Coding>
    <NoteRef targetGUID="FFFFFFFF-0000-0000-0000-000000000001"/>
   </PlainTextSelection>
   <Coding guid="EEEEEEEE-0000-0000-0000-000000000021" creatingUser="99999999-9999-9999-9999-999999999999">
    <CodeRef targetGUID="AAAAAAAA-0000-0000-0000-000000000001"/></Coding>
  </TextSource>
  <TextSource guid="DDDDDDDD-0000-0000-0000-000000000004" name="Field note"><PlainTextContent>Inline text, no file.</PlainTextContent>
   <PlainTextSelection guid="EEEEEEEE-0000-0000-0000-000000000031" startPosition="0" endPosition="11">
    <Coding guid="EEEEEEEE-0000-0000-0000-000000000032" creatingUser="11111111-1111-1111-1111-111111111111">
     <CodeRef targetGUID="AAAAAAAA-0000-0000-0000-000000000001"/></Coding></PlainTextSelection>
  </TextSource>
  <AudioSource guid="DDDDDDDD-0000-0000-0000-000000000002" name="Lopez.mp3" path="internal://x.mp3"/>
  <PictureSource guid="DDDDDDDD-0000-0000-0000-000000000003" name="Map.png" path="internal://y.png"/>
 </Sources>
 <Notes><Note guid="FFFFFFFF-0000-0000-0000-000000000001" name="n"><PlainTextContent>Crosses the break.</PlainTextContent></Note></Notes>
 <Sets><Set guid="77777777-0000-0000-0000-000000000001" name="Wave 1">
  <MemberSource targetGUID="DDDDDDDD-0000-0000-0000-000000000001"/></Set>
  <Set guid="77777777-0000-0000-0000-000000000002" name="Key codes">
  <MemberCode targetGUID="AAAAAAAA-0000-0000-0000-000000000001"/></Set></Sets>
 <Graphs><Graph guid="99999999-0000-0000-0000-000000000001"/></Graphs>
</Project>"""


def test_a_tampered_sidecar_is_not_trusted(small, tmp_path):
    """Segments, ids and roles from qualcode.json are used only when sound; else made afresh."""
    files = members(exported(small, tmp_path / "valid.qdpx"))
    _tampered_sidecar(files)
    result = imported(write_zip(tmp_path / "t.qdpx", files), tmp_path / "back.db")
    assert result.codings == 6
    db = open_project(tmp_path / "back.db")
    assert sorted(r[0] for r in db.execute("SELECT id FROM documents")) == ["field-notes", "interview-ana"]
    assert db.execute("SELECT count(*) FROM segments WHERE speaker IS NOT NULL").fetchone()[0] > 0
    assert db.execute("SELECT count(*) FROM codes WHERE roles IS NOT NULL").fetchone()[0] == 0


def _encrypted(path):
    """A zip whose project.qde is flagged encrypted, as a password-protected export would be."""
    write_zip(path, {"project.qde": b"<Project/>"})
    data = bytearray(path.read_bytes())
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature)
        data[at + flag_at] |= 0x01
    path.write_bytes(bytes(data))
    return path


def test_a_project_from_another_tool(tmp_path):
    text = "Trust was low.\n\nThen it grew, slowly.\n\nNow it holds."
    qdpx = write_zip(tmp_path / "fieldwork.qdpx", {
        "project.qde": _foreign_qde(text).encode(), "sources/DDDDDDDD-0000-0000-0000-000000000001.txt": text.encode()})
    result = imported(qdpx, tmp_path / "fw.db")
    assert result.summary() == ("Imported fieldwork.qdpx: 2 documents, 2 codes, 2 coders, 6 codings, 1 memo; "
                                "not imported: 1 audio source, 1 graph, 1 picture source, 1 set of codes or notes")
    db = open_project(tmp_path / "fw.db")
    assert db.execute("SELECT text FROM documents WHERE title = 'Field note'").fetchone()[0] == "Inline text, no file."
    assert db.execute("SELECT g.start_char, g.end_char FROM codings g JOIN segments s ON s.id = g.segment_id "
                      "WHERE s.document_id = 'field-note'").fetchall() == [(0, 11)]
    doc = next(db.query("SELECT * FROM documents WHERE title = 'Lopez interview.docx'"))
    assert doc["text"] == text and doc["site"] == "North"
    assert json.loads(doc["attributes"]) == {"Age": 44, "case": "Ms Lopez", "sets": "Wave 1"}
    spans = list(db.query("SELECT s.seq, g.start_char, g.end_char, k.name, c.name AS coder FROM codings g "
                          "JOIN segments s ON s.id = g.segment_id JOIN codes k ON k.id = g.code_id "
                          "JOIN coders c ON c.id = g.coder_id WHERE s.document_id = 'lopez-interview' ORDER BY k.name, s.seq"))
    # The selection 5:30 crosses the paragraph break: one coding per paragraph, cut to it.
    assert [(r["seq"], r["start_char"], r["end_char"]) for r in spans if r["name"] == "Broken trust"] == [(1, 5, 14), (2, 16, 30)]
    assert all(r["coder"] == "Lee" for r in spans if r["name"] == "Broken trust")
    # The whole-source coding codes every paragraph, by a coder made for the unlisted user.
    assert [(r["seq"], r["start_char"], r["coder"]) for r in spans if r["name"] == "Trust"] == [
        (1, None, "User 99999999"), (2, None, "User 99999999"), (3, None, "User 99999999")]
    assert db.execute("SELECT color FROM codes WHERE name = 'Trust'").fetchone()[0] == "#FF0000"
    assert db.execute("SELECT text FROM memos").fetchone()[0] == "Crosses the break."
    assert any("not in <Users>" in w for w in result.warnings)


# --- refused -------------------------------------------------------------------------------------


def _bad_zip(tmp_path, files):
    return write_zip(tmp_path / "bad.qdpx", files)


BILLION_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
                  f'<Project xmlns="{PROJECT_NS}" name="&lol2;"/>')
EXTERNAL = ('<?xml version="1.0"?><!DOCTYPE p [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            f'<Project xmlns="{PROJECT_NS}" name="&xxe;"/>')

BAD = {
    "not a zip": (lambda p: (p.write_text("just text"), p)[1], "not a zip archive"),
    "zip bomb": (lambda p: _bomb(p), "a zip bomb"),
    "billion laughs": (lambda p: _bad_zip(p.parent, {"project.qde": BILLION_LAUGHS.encode()}), "refused: the XML holds an entity"),
    "external entity": (lambda p: _bad_zip(p.parent, {"project.qde": EXTERNAL.encode()}), "refused: the XML holds"),
    "path outside the archive": (lambda p: _bad_zip(p.parent, {"project.qde": b"<Project/>", "../../evil.txt": b"x"}),
                                 "has a path outside the archive"),
    "absolute path": (lambda p: _bad_zip(p.parent, {"project.qde": b"<Project/>", "/etc/evil": b"x"}),
                      "has a path outside the archive"),
    "not XML": (lambda p: _bad_zip(p.parent, {"project.qde": b"<Project name='x'><Users>"}), "not well-formed XML"),
    "no project.qde": (lambda p: _bad_zip(p.parent, {"readme.txt": b"hello"}), "no project.qde in the archive"),
    "wrong root": (lambda p: _bad_zip(p.parent, {"project.qde": f'<CodeBook xmlns="{CODEBOOK_NS}"/>'.encode()}),
                   "the root element is <CodeBook>, not <Project>"),
    "encrypted member": (lambda p: _encrypted(p), "is encrypted, password required"),
    "foreign namespace": (lambda p: _bad_zip(p.parent, {"project.qde": b'<Project xmlns="urn:other" name="x"/>'}),
                          "not REFI-QDA's"),
}


def _bomb(path):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("project.qde", b"<Project/>")
        z.writestr("sources/big.txt", b"\0" * (20 * 1024 * 1024))
    return path


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_input_is_refused_with_one_line_and_the_project_unchanged(small, tmp_path, case):
    make, message = BAD[case]
    bad = make(tmp_path / "bad.qdpx")
    target = tmp_path / "empty.db"
    db = open_project(target)
    sync_codebook(db, load_codebook(LESSONS))  # an empty project may already hold a codebook
    db.close()
    before = dump(target)
    result = CliRunner().invoke(cli.cli, ["import", str(bad), "--db", str(target)])
    assert result.exit_code == 1, result.output
    line = result.output.strip()
    assert line.startswith(f"Error: {bad}: ") and "\n" not in line and message in line, line
    assert dump(target) == before


def test_a_refused_import_leaves_no_new_project_behind(tmp_path):
    bad = tmp_path / "bad.qdpx"
    bad.write_text("not a zip")
    result = CliRunner().invoke(cli.cli, ["import", str(bad), "--db", str(tmp_path / "new.db")])
    assert result.exit_code == 1 and not (tmp_path / "new.db").exists()


def test_a_failure_inside_the_transaction_changes_nothing(small, tmp_path):
    """Refused half way (coders already written): the codebook sync finds a code the file dropped
    still carrying a memo in the project, and everything is rolled back."""
    target = tmp_path / "target.db"
    db = open_project(target)
    sync_codebook(db, load_codebook(LESSONS))
    add_memo(db, "Keep this code.", "Lee", code="scaling.spread", create_coder=True)
    db.close()
    files = members(exported(small, tmp_path / "out.qdpx"))
    _alter_qde(_drop_code)(files)  # drops 'Spreading practices' (scaling.spread), which a coding uses
    qdpx = write_zip(tmp_path / "dropped.qdpx", files)
    before = dump(target)
    result = CliRunner().invoke(cli.cli, ["import", str(qdpx), "--db", str(target)])
    assert result.exit_code == 1 and "would orphan" in result.output, result.output
    assert dump(target) == before


def test_codes_nested_absurdly_deep_are_refused(tmp_path):
    deep = "".join(f'<Code guid="{i:08d}-0000-0000-0000-000000000000" name="c{i}" isCodable="true">' for i in range(500))
    qdc = tmp_path / "deep.qdc"
    qdc.write_text(f'<CodeBook xmlns="{CODEBOOK_NS}"><Codes>{deep}{"</Code>" * 500}</Codes></CodeBook>')
    with pytest.raises(RefiError, match="nested more than 100 deep"):
        read_codebook(qdc)


def test_import_refuses_a_project_with_documents(small, tmp_path):
    out = exported(small, tmp_path / "out.qdpx")
    before = dump(small)
    with pytest.raises(RefiError, match="already has 2 documents"):
        imported(out, small)
    assert dump(small) == before


def test_a_bad_qdc_is_refused(tmp_path, small):
    bad = tmp_path / "bad.qdc"
    bad.write_text(EXTERNAL.replace("Project", "CodeBook").replace(PROJECT_NS, CODEBOOK_NS))
    before = dump(small)
    result = CliRunner().invoke(cli.cli, ["codebook", "import", str(bad), "--db", str(small)])
    assert result.exit_code == 1 and result.output.startswith(f"Error: {bad}: refused")
    assert dump(small) == before


# --- the CLI -------------------------------------------------------------------------------------


def test_cli_export_import_and_codebooks(small, tmp_path):
    runner = CliRunner()
    out = tmp_path / "study.qdpx"
    result = runner.invoke(cli.cli, ["export", "qdpx", str(out), "--db", str(small)])
    assert result.exit_code == 0
    assert result.output == f"Wrote {out}: 2 documents, 21 codes, 2 coders, 6 codings, 3 memos\n"
    result = runner.invoke(cli.cli, ["import", str(out), "--db", str(tmp_path / "new.db")])
    assert result.exit_code == 0
    assert result.output == "Imported study.qdpx: 2 documents, 21 codes, 2 coders, 6 codings, 3 memos\n"
    result = runner.invoke(cli.cli, ["export", "qdpx", str(tmp_path / "f.qdpx"), "-w", "site=Cedar Middle",
                                     "--pseudonymise", "--db", str(small)])
    assert result.exit_code == 0 and ": 1 document," in result.output

    qdc = tmp_path / "codes.qdc"
    result = runner.invoke(cli.cli, ["codebook", "export", "--format", "qdc", str(qdc), "--db", str(small)])
    assert result.exit_code == 0 and result.output == f"Wrote {qdc}: 21 codes\n"
    result = runner.invoke(cli.cli, ["codebook", "import", str(qdc), "--to-yaml", str(tmp_path / "c.yml")])
    assert result.exit_code == 0 and "21 codes" in result.output
    assert validate_codebook(tmp_path / "c.yml") == []
    result = runner.invoke(cli.cli, ["codebook", "import", str(qdc), "--db", str(tmp_path / "fresh.db")])
    assert result.exit_code == 0 and result.output == f"Imported codebook 'codes' from {qdc}: 21 added\n"
    result = runner.invoke(cli.cli, ["codebook", "export", str(tmp_path / "back.yml"), "--db", str(small)])
    assert result.exit_code == 0 and validate_codebook(tmp_path / "back.yml") == []


def test_cli_prints_warnings_on_stderr_and_the_summary_last(small, tmp_path):
    files = members(exported(small, tmp_path / "valid.qdpx"))
    _rename_sources(files, lambda n: "Sources/" + n[8:])
    qdpx = write_zip(tmp_path / "capital.qdpx", files)
    result = CliRunner().invoke(cli.cli, ["import", str(qdpx), "--db", str(tmp_path / "new.db")])
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert lines[0].startswith(f"warning: {qdpx}: sources folder named 'Sources/'")
    assert lines[-1].startswith("Imported capital.qdpx: 2 documents")


def test_a_code_keeps_its_guid_when_renamed_moved_or_merged_into(small, tmp_path):
    from qualcode.codebook import merge_codes, move_code, rename_code

    db = open_project(small)
    guid = db.execute("SELECT guid FROM codes WHERE id = 'support.coaching'").fetchone()[0]
    rename_code(db, "support.coaching", "support.fitted-coaching")
    move_code(db, "support.fitted-coaching", "context")
    assert db.execute("SELECT guid FROM codes WHERE id = 'context.fitted-coaching'").fetchone()[0] == guid
    merge_codes(db, "scaling.spread", "context.fitted-coaching")
    assert db.execute("SELECT guid FROM codes WHERE id = 'context.fitted-coaching'").fetchone()[0] == guid
    files = members(exported(small, tmp_path / "out.qdpx"))
    PROJECT_XSD.validate(io.BytesIO(files["project.qde"]))
    assert f'guid="{guid}" name="Coaching fitted to the person"'.encode() in files["project.qde"]


def test_an_old_project_gets_a_guid_on_every_row(tmp_path):
    """Migration 0009 gives the documents, codes, coders and memos of an older project each their own GUID."""
    from qualcode.db import migrations

    index = next(i for i, m in enumerate(migrations._migrations) if m.name == "0009_refi_guids")
    later = migrations._migrations[index:]
    del migrations._migrations[index:]
    try:
        db = open_project(tmp_path / "old.db")
        sync_codebook(db, load_codebook(LESSONS))
        with db.atomic():
            for name in ("Rosa", "Sam"):
                db.execute("INSERT INTO coders (name, created_at) VALUES (?, 'now')", [name])
            db.execute("INSERT INTO memos (coder_id, code_id, text, created_at) VALUES (1, 'purpose', 'm', 'now')")
        db.close()
    finally:
        migrations._migrations.extend(later)
    db = open_project(tmp_path / "old.db")
    for table, n in (("codes", 21), ("coders", 2), ("memos", 1)):
        guids = [r[0] for r in db.execute(f"SELECT guid FROM {table}")]
        assert len(guids) == len(set(guids)) == n
        assert all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", g) for g in guids)
