"""Every scorer keeps the candidates' order and count and writes only fields it declares."""

import asyncio
from dataclasses import fields

import pytest

from scoring.author_diversity import AuthorDiversityScorer
from scoring.offset import ScoreOffset
from scoring.oon import OONScorer
from scoring.phoenix_scorer import PhoenixScorer
from scoring.recency import recency_score
from scoring.weighted import WeightedScorer
from streams.candidate import Candidate
from streams.pipeline import check_same_candidates
from tests.scoring.scoring_fakes import CONFIG, TableRanker, candidate, probabilities, query

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
def test_keeps_order_count_and_writes_only_its_fields(scorer):
    out = asyncio.run(scorer.score(query(), GIVEN))
    check_same_candidates(scorer.name, GIVEN, out)
    for before, after in zip(GIVEN, out, strict=True):
        changed = {f.name for f in fields(Candidate) if getattr(before, f.name) != getattr(after, f.name)}
        assert changed <= scorer.fields


def test_recency_score_is_newest_first_in_unit_range():
    q = query()
    young, old = candidate(1, 7), candidate(2, 7)
    young = young.with_fields(core=young.core.__class__(post_id=1, author_id=7, created_at_ms=q.now_ms))
    old = old.with_fields(core=old.core.__class__(post_id=2, author_id=7, created_at_ms=q.now_ms - 3_600_000))
    assert recency_score(q, young) == 1.0
    assert recency_score(q, old) == 0.5
    assert recency_score(q, candidate(3, 7).with_fields(core=None)) == 0.0
