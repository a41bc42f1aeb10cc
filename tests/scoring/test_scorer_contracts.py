"""Every scorer keeps the candidates' order and count and writes only fields it declares."""

import asyncio
from dataclasses import FrozenInstanceError, fields, replace

import numpy as np
import pytest

from scoring.author_diversity import AuthorDiversityScorer
from scoring.offset import ScoreOffset
from scoring.oon import OONScorer
from scoring.phoenix_scorer import PhoenixScorer
from scoring.recency import recency_score
from scoring.weighted import WeightedScorer
from streams.candidate import Candidate
from tests.scoring.scoring_fakes import CONFIG, TableRanker, candidate, probabilities, query, scored

OFFSET = ScoreOffset.from_weights(CONFIG.weights, 1.0)
GIVEN = [
    candidate(
        i, a, in_network=i % 2 == 0, phoenix_scores=probabilities(0.05 * i), weighted_score=1.0 + i, score=1.0 + i
    )
    for i, a in [(3, 7), (1, 7), (4, 8), (2, 7), (5, 9)]
]
SCORERS = [
    PhoenixScorer(TableRanker({(c.post_id, c.author_id): probabilities(0.1) for c in GIVEN})),
    WeightedScorer(CONFIG.weights, 10_000, OFFSET),
    AuthorDiversityScorer(0.7, 0.1, OFFSET),
    OONScorer(0.8, OFFSET),
]


@pytest.mark.parametrize("scorer", SCORERS, ids=lambda s: s.name)
def test_returns_one_value_per_candidate_for_its_own_fields_only(scorer):
    updates = asyncio.run(scorer.score(query(), GIVEN))
    assert updates.keys() == scorer.fields
    assert all(len(values) == len(GIVEN) for values in updates.values())
    out = scored(scorer, query(), GIVEN)
    assert [c.post_id for c in out] == [c.post_id for c in GIVEN]
    for before, after in zip(GIVEN, out, strict=True):
        changed = {f.name for f in fields(Candidate) if differs(getattr(before, f.name), getattr(after, f.name))}
        assert changed <= scorer.fields


def differs(before: object, after: object) -> bool:
    if isinstance(before, np.ndarray) or isinstance(after, np.ndarray):
        return before is None or after is None or not np.array_equal(before, after)
    return before != after


def test_a_stage_cannot_change_a_candidate_itself():
    with pytest.raises(FrozenInstanceError):
        GIVEN[0].score = 0.0  # type: ignore[misc]


def test_recency_score_is_newest_first_in_unit_range():
    q = query()
    young, old = candidate(1, 7), candidate(2, 7)
    young = replace(young, core=young.core.__class__(post_id=1, author_id=7, created_at_ms=q.now_ms))
    old = replace(old, core=old.core.__class__(post_id=2, author_id=7, created_at_ms=q.now_ms - 3_600_000))
    assert recency_score(q, young) == 1.0
    assert recency_score(q, old) == 0.5
    assert recency_score(q, replace(candidate(3, 7), core=None)) == 0.0
