"""Property-based fuzzing of every reader: a mutated file is read or refused, nothing else.

For each reader, hypothesis mutates a valid seed file (bytes, or the XML inside
a .docx/.xlsx) and the real CLI reads it. The property: exit 0 with every
stored segment at its offsets, or exit 1 with an ``Error:`` line naming the
file and the database dump unchanged; never a traceback, never past
``fuzzing.HANG_SECONDS``.

By default each reader gets a few dozen inputs (the file runs in well under
30 s). Ask for a longer run with ``QUALCODE_FUZZ_EXAMPLES=2000``; the counts
of every run are printed by ``python bench/fuzz.py``.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from . import fuzzing

EXAMPLES = int(os.environ.get("QUALCODE_FUZZ_EXAMPLES", "25"))

settings.register_profile(
    "qualcode-fuzz",
    max_examples=EXAMPLES,
    deadline=None,  # fuzzing.run_one enforces its own bound, HANG_SECONDS
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=os.environ.get("QUALCODE_FUZZ_RANDOM") is None,  # CI runs the same inputs every time
    database=None,
)

PLANS = st.lists(
    st.tuples(st.integers(0, fuzzing.OPS - 1), st.integers(0, 2**20), st.integers(0, 2**10), st.integers(0, 2**20)),
    min_size=1,
    max_size=6,
)


@pytest.fixture(scope="module")
def template_db(tmp_path_factory):
    return fuzzing.template(tmp_path_factory.mktemp("fuzz-template"))


@pytest.mark.parametrize("name", sorted(fuzzing.TARGETS))
def test_reader_reads_or_refuses_any_mutation(template_db, name):
    target = fuzzing.TARGETS[name]

    @settings(settings.get_profile("qualcode-fuzz"))
    @given(plan=PLANS, raw_zip=st.booleans() if target.member else st.just(False))
    def check(plan, raw_zip):
        outcome = fuzzing.run_one(target, fuzzing.build(target, plan, raw_zip), template_db)
        assert outcome.ok, f"{name}: {outcome.kind}: {outcome.detail}"

    check()


@pytest.mark.parametrize("name", sorted(fuzzing.TARGETS))
def test_seed_files_are_accepted(template_db, name):
    """The seeds themselves are good files, so a mutation is what any refusal is about."""
    target = fuzzing.TARGETS[name]
    outcome = fuzzing.run_one(target, target.seed, template_db)
    assert outcome.kind == "accepted", outcome.detail
