"""The candidate record: frozen for stages, written only through write_fields, built in batches by sources."""

from dataclasses import FrozenInstanceError, fields

import pytest

from streams.candidate import Candidate, new_candidates, write_fields
from tests.streams.foryou_fakes import post


def as_dict(candidate: Candidate) -> dict[str, object]:
    return {f.name: getattr(candidate, f.name) for f in fields(Candidate)}


def test_new_candidates_are_what_the_constructor_builds():
    built = new_candidates("phoenix_retrieval", [1, 2], [10, 20], [0.5, 0.25])
    assert [as_dict(c) for c in built] == [
        as_dict(Candidate(post_id=1, author_id=10, source="phoenix_retrieval", retrieval_score=0.5)),
        as_dict(Candidate(post_id=2, author_id=20, source="phoenix_retrieval", retrieval_score=0.25)),
    ]
    [thunder] = new_candidates("thunder", [3], [30])
    assert as_dict(thunder) == as_dict(Candidate(post_id=3, author_id=30, source="thunder"))
    assert new_candidates("thunder", [], []) == []


def test_new_candidates_needs_one_author_and_score_per_post():
    with pytest.raises(ValueError):
        new_candidates("thunder", [1, 2], [10])
    with pytest.raises(ValueError):
        new_candidates("phoenix_retrieval", [1, 2], [10, 20], [0.5])


def test_candidates_are_frozen_and_write_fields_writes_columns_in_order():
    candidates = new_candidates("thunder", [1, 2, 3], [10, 20, 30])
    with pytest.raises(FrozenInstanceError):
        candidates[0].score = 1.0  # type: ignore[misc]
    core = post(2, 20)
    write_fields(candidates, {"score": [0.3, 0.2, 0.1], "core": [None, core, None]})
    assert [c.score for c in candidates] == [0.3, 0.2, 0.1]
    assert [c.core for c in candidates] == [None, core, None]
    assert [c.post_id for c in candidates] == [1, 2, 3]
    assert candidates[1].in_network is None  # untouched fields keep their values
