"""The workspace keeps the codebook's counts until the project changes, from any connection."""

import shutil

from qualcode import open_project
from qualcode.coding import apply_code
from qualcode.workspace.data import codebook


def counts(db) -> dict[str, int]:
    return {k["id"]: k["segments"] for k in codebook(db)}


def test_the_codebook_counts_follow_every_write(corpus_db, tmp_path):
    path = tmp_path / "qualcode.db"
    shutil.copy(corpus_db, path)
    reader, other = open_project(path, create=False), open_project(path, create=False)
    segments = [r[0] for r in reader.execute("SELECT id FROM segments ORDER BY id LIMIT 2")]
    before = counts(reader)
    assert codebook(reader) is codebook(reader)  # nothing changed: the same answer, not counted again

    apply_code(other, segments[0], "support.coaching", "Ana", create_coder=True)  # another connection
    assert counts(reader) == {**before, "support.coaching": before["support.coaching"] + 1,
                              "support": before["support"] + 1}
    apply_code(reader, segments[1], "support.coaching", "Ana")  # this connection
    assert counts(reader)["support.coaching"] == before["support.coaching"] + 2
    reader.close()
    other.close()
