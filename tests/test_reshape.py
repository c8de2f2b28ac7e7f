"""Any sequence of rename, move and merge leaves a codebook that dumps, validates and loads back the same."""

import os
import shutil

import pytest

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qualcode import open_project
from qualcode.codebook import (CodebookError, dump_codebook, load_codebook, merge_codes, move_code, rename_code,
                               sync_codebook, validate_codebook)

from .conftest import LESSONS

EXAMPLES = int(os.environ.get("QUALCODE_PROPERTY_EXAMPLES", "30"))


def tree(db) -> list[tuple]:
    return [tuple(r) for r in db.execute(
        "SELECT id, parent_id, name, depth, lesson_id FROM codes WHERE archived = 0 ORDER BY sort_order")]


def assert_preorder(rows: list[tuple]) -> None:
    """Each code comes after its parent, and a parent's sub-codes directly follow its subtree start."""
    seen, stack = set(), []
    for code, parent, *_ in rows:
        while stack and stack[-1] != parent:
            stack.pop()
        assert parent is None or (parent in seen and stack and stack[-1] == parent), (code, parent, rows)
        seen.add(code)
        stack.append(code)


@pytest.fixture(scope="module")
def lessons_project(tmp_path_factory):
    path = tmp_path_factory.mktemp("lessons") / "p.db"
    db = open_project(path)
    sync_codebook(db, load_codebook(LESSONS))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return path


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_reshaping_round_trips(data, lessons_project, tmp_path_factory):
    folder = tmp_path_factory.mktemp("reshape")
    shutil.copy(lessons_project, folder / "p.db")
    db = open_project(folder / "p.db")
    for _ in range(data.draw(st.integers(1, 8), label="steps")):
        codes = [r[0] for r in db.execute("SELECT id FROM codes ORDER BY sort_order")]
        code = data.draw(st.sampled_from(codes), label="code")
        op = data.draw(st.sampled_from(["rename", "move", "merge"]), label="op")
        try:
            if op == "rename":
                leaf = data.draw(st.sampled_from(["spread", "alpha", "beta", "dilemmas"]), label="leaf")
                prefix = code.rsplit(".", 1)[0] + "." if "." in code else ""
                rename_code(db, code, prefix + leaf)
            elif op == "move":
                parent = data.draw(st.sampled_from([None, *codes]), label="parent")
                move_code(db, code, parent)
            else:
                merge_codes(db, code, data.draw(st.sampled_from(codes), label="target"))
        except CodebookError:
            pass  # a refused step changes nothing; the next one goes on from here
        assert_preorder(tree(db))
    out = folder / "dumped.yml"
    out.write_text(dump_codebook(db))
    assert validate_codebook(out) == []
    fresh = open_project(folder / "fresh.db")
    sync_codebook(fresh, load_codebook(out))
    assert tree(fresh) == tree(db)
    db.close()
    fresh.close()
    shutil.rmtree(folder)


def test_moved_code_dumps_under_its_new_parent(tmp_path):
    """The case a user met: move a sub-code to another lesson, then dump."""
    db = open_project(tmp_path / "p.db")
    sync_codebook(db, load_codebook(LESSONS))
    move_code(db, "scaling.dilemmas", "context")
    out = tmp_path / "dumped.yml"
    out.write_text(dump_codebook(db))
    assert validate_codebook(out) == []
    order = [r[0] for r in tree(db)]
    context_codes = [c for c in order if c == "context" or c.startswith("context.")]
    assert context_codes[-1] == "context.dilemmas"
    assert order.index("context.dilemmas") == order.index(context_codes[-2]) + 1
