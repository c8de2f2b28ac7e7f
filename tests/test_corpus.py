"""The sample corpus is what the demo, the suggestions and the agreement figures stand on."""

import csv
import re
import sqlite3
from collections import Counter, defaultdict

from .conftest import CORPORA

MANIFEST = CORPORA / "manifest.csv"
SOURCE_SUFFIXES = {".txt", ".md", ".docx", ".vtt", ".srt"}


def manifest_rows():
    with MANIFEST.open(newline="") as f:
        return list(csv.DictReader(f))


def test_manifest_names_every_corpus_file():
    listed = {row["path"] for row in manifest_rows()}
    on_disk = {str(p.relative_to(CORPORA)) for p in CORPORA.rglob("*")
               if p.suffix in SOURCE_SUFFIXES and p.parent != CORPORA and "coding" not in p.parts
               and p.name != "README.md"}  # a generated corpus's README describes it and is no source
    assert listed == on_disk


def test_corpus_shape(corpus_db):
    conn = sqlite3.connect(corpus_db)
    docs = conn.execute("SELECT id, kind, district, role, format, word_count FROM documents").fetchall()
    assert len(docs) >= 18
    assert len({d[2] for d in docs}) == 3
    assert all("(fictional)" in d[2] for d in docs)
    kinds = Counter(d[1] for d in docs)
    assert kinds["interview"] >= 10 and kinds["focus_group"] >= 1 and kinds["site_visit"] >= 1 and kinds["observation"] >= 1
    roles = {d[3] for d in docs}
    assert {"district leader", "principal", "instructional coach", "teacher"} <= roles
    formats = {d[4] for d in docs}
    assert {"vtt", "docx", "txt", "md"} <= formats
    for doc_id, kind, _, _, _, words in docs:
        if kind == "interview":
            assert 1500 <= words <= 4000, (doc_id, words)
    assert sum(d[5] for d in docs) >= 40000


def test_focus_groups_have_four_or_more_participants(corpus_db):
    conn = sqlite3.connect(corpus_db)
    groups = conn.execute("""SELECT s.document_id, count(DISTINCT s.speaker) FROM segments s
                             JOIN documents d ON d.id = s.document_id
                             WHERE d.kind = 'focus_group' AND s.speaker NOT IN ('Facilitator', 'Miguel Ansari', 'Dana Whitfield', 'Claire Osei')
                             GROUP BY 1""").fetchall()
    assert groups and all(n >= 4 for _, n in groups), groups


def test_offsets_hold_for_the_whole_corpus(corpus_db):
    conn = sqlite3.connect(corpus_db)
    texts = dict(conn.execute("SELECT id, text FROM documents"))
    for doc_id, start, end, text in conn.execute("SELECT document_id, start_char, end_char, text FROM segments"):
        assert texts[doc_id][start:end] == text


def test_transcripts_are_split_into_turns(corpus_db):
    conn = sqlite3.connect(corpus_db)
    for doc_id, kind, labelled, total in conn.execute(
        """SELECT d.id, d.kind, count(s.speaker), count(*) FROM documents d JOIN segments s ON s.document_id = d.id
           GROUP BY d.id"""):
        if kind in ("interview", "focus_group"):
            assert labelled >= total - 1, doc_id  # at most a header paragraph without a speaker
        else:
            assert labelled == 0, doc_id


def test_corpus_is_marked_fictional_and_names_no_real_places():
    readme = (CORPORA / "README.md").read_text()
    assert "fictional" in readme.lower()
    real = re.compile(r"Long Beach|LBUSD|CORE Districts|CORE Improvement|\bPACE\b")
    for path in CORPORA.rglob("*"):
        if path.suffix in (".txt", ".md", ".vtt", ".srt", ".csv"):
            assert not real.search(path.read_text()), path


# --- the two coders' gold coding ---------------------------------------------------------

CODING = CORPORA / "coding"


def coding_rows():
    rows = []
    for path in sorted(CODING.glob("*.csv")):
        with path.open(newline="") as f:
            rows.extend(dict(r, _file=path.name) for r in csv.DictReader(f))
    return rows


def test_coding_references_real_segments_and_codes(corpus_db):
    conn = sqlite3.connect(corpus_db)
    segments = {(d, s): sp for d, s, sp in conn.execute("SELECT document_id, seq, speaker FROM segments")}
    codes = {r[0] for r in conn.execute("SELECT id FROM codes WHERE depth = 1")}
    rows = coding_rows()
    assert rows
    for row in rows:
        key = (row["document_id"], int(row["seq"]))
        assert key in segments, (row["_file"], key)
        assert (row["speaker"] or None) == segments[key], (row["_file"], key)
        assert row["code_id"] in codes, (row["_file"], row["code_id"])


def test_two_coders_coded_every_document_independently(corpus_db):
    conn = sqlite3.connect(corpus_db)
    documents = {r[0] for r in conn.execute("SELECT id FROM documents")}
    n_segments = conn.execute("SELECT count(*) FROM segments").fetchone()[0]
    by_coder = defaultdict(set)
    for row in coding_rows():
        by_coder[row["coder"]].add((row["document_id"], int(row["seq"]), row["code_id"]))
    assert len(by_coder) == 2
    a, b = by_coder.values()
    for coded in (a, b):
        assert {d for d, _, _ in coded} == documents
        assert len({(d, s) for d, s, _ in coded}) < n_segments * 0.8  # plenty of talk fits no code
    # They agree often, but not always: a careful second reader differs somewhere.
    overlap = len(a & b) / len(a | b)
    assert 0.3 < overlap < 0.95, overlap
    # Between them they use every sub-code, and each uses nearly all of them.
    codes = {r[0] for r in conn.execute("SELECT id FROM codes WHERE depth = 1")}
    assert {c for _, _, c in a} | {c for _, _, c in b} == codes
    assert all(len({c for _, _, c in coded}) >= len(codes) - 2 for coded in (a, b))
