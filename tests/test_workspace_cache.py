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


def test_one_retraining_at_a_time(corpus_db, tmp_path):
    """Decisions while the model retrains start no second retraining alongside it."""
    from datasette.app import Datasette

    from qualcode.workspace import workspace

    path = tmp_path / "qualcode.db"
    shutil.copy(corpus_db, path)
    ws = workspace(Datasette([str(path)], metadata={"plugins": {"qualcode": {"retrain_every": 1}}}))
    assert ws.maybe_retrain("Ana") is True
    first = ws.retrainer
    assert [ws.maybe_retrain("Ana") for _ in range(3)] == [False, False, False]
    assert ws.retrainer is first
    first.wait(120)
    assert first.error is None and first.runs == 1
    assert ws.maybe_retrain("Ana") is True  # once it has finished, the next decision retrains
    ws.retrainer.wait(120)
