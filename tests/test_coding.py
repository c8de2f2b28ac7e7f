import pytest
from click.testing import CliRunner

from qualcode import cli
from qualcode.codebook import dump_codebook, load_codebook, merge_codes, move_code, rename_code, sync_codebook
from qualcode.coding import CodingError, add_coder, apply_batch, apply_code, remove_code
from qualcode.errors import CodebookError
from qualcode.ingest import IngestOptions, ingest_paths
from qualcode.memos import add_memo, list_memos

from .conftest import LESSONS, dump

TRANSCRIPT = """\
I: How does coaching work here?

R: Our coach sits with us and we co-plan every Thursday.

I: And time?

R: We never have time to meet since the contract changed.
"""


@pytest.fixture
def project(coded_db, tmp_path):
    path = tmp_path / "int.txt"
    path.write_text(TRANSCRIPT)
    ingest_paths(coded_db, [path], IngestOptions(attributes={"kind": "interview", "site": "Bayview", "role": "teacher"}))
    add_coder(coded_db, "Rosa")
    add_coder(coded_db, "Sam")
    return coded_db


def codings(db):
    return [dict(r) for r in db.query(
        """SELECT s.document_id || ':' || s.seq AS seg, g.code_id, c.name AS coder, g.start_char, g.end_char, g.origin
           FROM codings g JOIN segments s ON s.id = g.segment_id JOIN coders c ON c.id = g.coder_id ORDER BY g.id""")]


def test_apply_records_coder_origin_and_time(project):
    assert apply_code(project, "int:2", "support.coaching", "Rosa").added == 1
    row = project.execute("SELECT origin, created_at FROM codings").fetchone()
    assert row[0] == "manual" and row[1].startswith("20")
    assert apply_code(project, "int:2", "support.coaching", "Rosa").unchanged == 1


def test_coders_never_overwrite_each_other(project):
    apply_code(project, "int:2", "support.coaching", "Rosa")
    apply_code(project, "int:2", "support.coaching", "Sam")
    remove_code(project, "int:2", "support.coaching", "Sam")
    assert [(c["seg"], c["coder"]) for c in codings(project)] == [("int:2", "Rosa")]


def test_span_is_stored_as_document_offsets_and_relocates(project):
    apply_code(project, "int:4", "context.collaboration-time", "Rosa", span="0:23")
    start, end = project.execute("SELECT start_char, end_char FROM codings").fetchone()
    text = project.execute("SELECT text FROM documents").fetchone()[0]
    assert text[start:end] == "We never have time to m"
    assert start > 0  # a document offset, not a segment offset
    excerpt = project.execute("SELECT text FROM excerpts").fetchone()[0]
    assert excerpt == "We never have time to m"


@pytest.mark.parametrize(
    "segment,code,coder,span,message",
    [
        ("int:99", "support.coaching", "Rosa", None, "unknown segment 'int:99'"),
        ("nonsense", "support.coaching", "Rosa", None, "unknown segment 'nonsense'"),
        ("int:2", "support.coachin", "Rosa", None, "unknown code 'support.coachin'"),
        ("int:2", "support.coaching", "Nobody", None, "unknown coder 'Nobody'"),
        ("int:2", "support.coaching", "Rosa", "10:500", "outside segment int:2"),
        ("int:2", "support.coaching", "Rosa", "5-9", "is not START:END"),
    ],
)
def test_bad_coding_changes_nothing(project, db_path, segment, code, coder, span, message):
    before = dump(db_path)
    with pytest.raises(CodingError, match=message):
        apply_code(project, segment, code, coder, span=span)
    assert dump(db_path) == before


def test_archived_code_is_refused(project, tmp_path):
    apply_code(project, "int:2", "support.coaching", "Rosa")
    smaller = tmp_path / "lessons.yml"
    smaller.write_text(LESSONS.read_text().replace("- id: support.coaching", "- id: support.coaching-gone"))
    sync_codebook(project, load_codebook(smaller), force=True)
    with pytest.raises(CodingError, match="code 'support.coaching' is archived"):
        apply_code(project, "int:4", "support.coaching", "Rosa")


def test_create_coder_on_the_fly(project):
    apply_code(project, "int:2", "support.coaching", "Lee", create_coder=True)
    assert codings(project)[0]["coder"] == "Lee"


def test_batch_applies_all_or_nothing(project, tmp_path, db_path):
    sheet = tmp_path / "decisions.csv"
    sheet.write_text("document_id,seq,code_id,coder,action,start,end,memo\n"
                     "int,2,support.coaching,Rosa,add,,,co-planning\n"
                     "int,4,context.collaboration-time,Sam,add,0,10,\n"
                     "int,4,scaling.dilemmas,Sam,,,,\n")
    result = apply_batch(project, sheet)
    assert (result.added, result.removed) == (3, 0)
    assert {c["origin"] for c in codings(project)} == {"import"}
    sheet.write_text("document_id,seq,code_id,coder,action\nint,4,scaling.dilemmas,Sam,remove\nint,9,support.coaching,Rosa,add\n")
    before = dump(db_path)
    with pytest.raises(CodingError) as e:
        apply_batch(project, sheet)
    assert str(e.value).startswith(f"{sheet}:3: unknown segment 'int:9'")
    assert dump(db_path) == before


def test_memos_on_document_segment_and_code(project):
    add_memo(project, "Strong case.", "Rosa", document="int")
    add_memo(project, "Contract!", "Sam", segment="int:4")
    add_memo(project, "Means co-planning here.", "Rosa", code="support.coaching")
    assert [m["target"] for m in list_memos(project, document="int")] == ["int", "int:4"]
    assert [m["text"] for m in list_memos(project, code="support.coaching")] == ["Means co-planning here."]
    with pytest.raises(CodingError, match="exactly one"):
        add_memo(project, "x", "Rosa", document="int", code="support.coaching")


def test_rename_carries_children_and_codings(project):
    apply_code(project, "int:2", "support.coaching", "Rosa")
    result = rename_code(project, "support", "help", name="Help")
    assert result.renamed["support.coaching"] == "help.coaching"
    assert codings(project)[0]["code_id"] == "help.coaching"
    row = project.execute("SELECT lesson_id, parent_id FROM codes WHERE id = 'help.coaching'").fetchone()
    assert tuple(row) == ("help", "help")
    assert "- id: help.coaching" in dump_codebook(project)


def test_move_changes_parent_id_and_lesson(project):
    apply_code(project, "int:4", "scaling.dilemmas", "Rosa")
    move_code(project, "scaling.dilemmas", "context")
    row = project.execute("SELECT parent_id, lesson_id, depth FROM codes WHERE id = 'context.dilemmas'").fetchone()
    assert tuple(row) == ("context", "context", 1)
    assert codings(project)[0]["code_id"] == "context.dilemmas"
    with pytest.raises(CodebookError, match="its own sub-code"):
        move_code(project, "context", "context.relationships")


def test_merge_collapses_duplicates_and_reports_counts(project):
    apply_code(project, "int:2", "scaling.spread", "Rosa")
    apply_code(project, "int:2", "scaling.deepening", "Rosa")  # same segment and coder: collapses
    apply_code(project, "int:4", "scaling.spread", "Sam")
    add_memo(project, "spread memo", "Sam", code="scaling.spread")
    result = merge_codes(project, "scaling.spread", "scaling.deepening")
    assert (result.codings_moved, result.codings_collapsed, result.memos_moved) == (1, 1, 1)
    assert sorted((c["seg"], c["code_id"], c["coder"]) for c in codings(project)) == [
        ("int:2", "scaling.deepening", "Rosa"), ("int:4", "scaling.deepening", "Sam")]
    assert project.execute("SELECT count(*) FROM codes WHERE id = 'scaling.spread'").fetchone()[0] == 0


def test_merge_refuses_a_parent(project):
    with pytest.raises(CodebookError, match="has sub-codes"):
        merge_codes(project, "scaling", "context")


# --- CLI ----------------------------------------------------------------------------------------


def run(db_path, *args):
    return CliRunner().invoke(cli.cli, [*args, "--db", str(db_path)])


def test_cli_code_uncode_and_errors(project, db_path):
    result = run(db_path, "code", "int:2", "support.coaching", "--coder", "Rosa", "--span", "0:9", "--memo", "coach")
    assert result.exit_code == 0 and "int:2: coded support.coaching by Rosa at 0:9" in result.output
    result = run(db_path, "code", "int:2", "support.nope", "--coder", "Rosa")
    assert result.exit_code == 1
    assert result.output.strip() == "Error: unknown code 'support.nope' — see `qualcode codebook show` for the codes"
    result = run(db_path, "code", "int:2", "support.coaching", "--coder", "Zed")
    assert "create it" not in result.output and "qualcode coder add \"Zed\"" in result.output
    assert run(db_path, "uncode", "int:2", "support.coaching", "--coder", "Rosa").exit_code == 0
    result = run(db_path, "uncode", "int:2", "support.coaching", "--coder", "Rosa")
    assert result.exit_code == 1 and "has not coded int:2" in result.output


def test_cli_batch_and_coders(project, db_path, tmp_path):
    sheet = tmp_path / "d.csv"
    sheet.write_text("document_id,seq,code_id,coder\nint,2,support.coaching,Lee\n")
    result = run(db_path, "code", "--batch", str(sheet))
    assert result.exit_code == 1 and f"{sheet}:2: unknown coder 'Lee'" in result.output
    result = run(db_path, "code", "--batch", str(sheet), "--create-coder")
    assert result.exit_code == 0 and "1 coding added" in result.output and "new coders: Lee" in result.output
    assert run(db_path, "coder", "add", "Ana").exit_code == 0
    assert "already exists" in run(db_path, "coder", "add", "Ana").output
    listing = run(db_path, "coder", "list").output
    assert "Lee" in listing and "1 coding" in listing


def test_cli_memo(project, db_path):
    result = run(db_path, "memo", "add", "Good turn.", "--segment", "int:2", "--coder", "Rosa")
    assert result.exit_code == 0
    assert "Good turn." in run(db_path, "memo", "list").output
    result = run(db_path, "memo", "add", "x", "--coder", "Rosa")
    assert result.exit_code == 1 and "exactly one" in result.output


def test_cli_rename_move_merge_dump(project, db_path):
    run(db_path, "code", "int:2", "scaling.spread", "--coder", "Rosa")
    assert "scaling.spread → scaling.reach" in run(db_path, "codebook", "rename", "scaling.spread", "scaling.reach").output
    assert run(db_path, "codebook", "move", "scaling.reach", "--parent", "context").exit_code == 0
    result = run(db_path, "codebook", "merge", "context.reach", "context.relationships")
    assert "1 coding moved, 0 duplicates collapsed" in result.output
    result = run(db_path, "codebook", "merge", "context.nope", "context.relationships")
    assert result.exit_code == 1 and "unknown code 'context.nope'" in result.output
    dumped = run(db_path, "codebook", "dump").output
    assert "- id: context.relationships" in dumped and "- id: scaling.spread" not in dumped


@pytest.mark.parametrize(
    "args,message",
    [
        (["coder", "list", "--db", "/nonexistent/dir/x.db"], "no project database here"),
        (["memo", "list", "--code", "nope"], "unknown code 'nope'"),
        (["codebook", "rename", "nope", "other"], "unknown code 'nope'"),
        (["codebook", "rename", "support.coaching", "Bad Id"], "is not a dotted slug"),
        (["codebook", "rename", "support.coaching", "support.adult-learning"], "already exists"),
        (["codebook", "move", "support.coaching", "--parent", "nowhere"], "unknown code 'nowhere'"),
        (["cooccurrence", "--code", "nope"], "unknown code 'nope'"),
        (["export", "json", "out.json", "--coder", "Nobody"], "unknown coder 'Nobody'"),
        (["export", "memos", "out.md", "--coder", "Nobody"], "unknown coder 'Nobody'"),
        (["code", "int:2", "support.coaching", "--coder", "Rosa", "--batch", "x.csv"], "not both"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_cli_bad_input_changes_nothing(project, db_path, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    before = dump(db_path)
    result = CliRunner().invoke(cli.cli, args if "--db" in args else [*args, "--db", str(db_path)])
    assert result.exit_code in (1, 2) and message in result.output, result.output
    assert "Traceback" not in result.output
    assert dump(db_path) == before
    assert not (tmp_path / "out.json").exists() and not (tmp_path / "out.md").exists()


def test_cli_dump_without_codebook(tmp_path):
    db = tmp_path / "p.db"
    CliRunner().invoke(cli.cli, ["init", "--db", str(db)])
    result = CliRunner().invoke(cli.cli, ["codebook", "dump", "--db", str(db)])
    assert result.exit_code == 1 and "has no codebook" in result.output
