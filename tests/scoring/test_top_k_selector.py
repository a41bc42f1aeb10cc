import random

from scoring.selector import TopKSelector, ranking_order
from tests.scoring.scoring_fakes import candidate, post, query


def test_sorts_by_score_keeps_top_k_and_ranks_the_reserve():
    candidates = [candidate(i, 10, score=s) for i, s in [(1, 0.2), (2, 0.9), (3, None), (4, 0.5), (5, 0.7)]]
    selection = TopKSelector().select(query(max_results=2), candidates)
    assert [c.post_id for c in selection.selected] == [2, 5]
    assert [c.post_id for c in selection.reserve] == [4, 1, 3]


def test_ties_go_to_the_newer_post_then_the_higher_id():
    candidates = [
        candidate(1, 10, core=post(1, 10, age_ms=5_000), score=1.0),
        candidate(2, 10, core=post(2, 10, age_ms=1_000), score=1.0),
        candidate(3, 10, core=post(3, 10, age_ms=1_000), score=1.0),
    ]
    assert [c.post_id for c in TopKSelector().select(query(), candidates).selected] == [3, 2, 1]


def test_the_order_is_the_sort_by_score_then_newer_then_higher_id():
    rng = random.Random(7)
    candidates = [
        candidate(i, 10, core=post(i, 10, age_ms=rng.choice([1_000, 2_000])), score=rng.choice([None, 0.0, 0.5, 2.0]))
        for i in rng.sample(range(1, 10_000), 300)
    ]
    expected = sorted(
        candidates,
        key=lambda c: (-(c.score if c.score is not None else float("-inf")), -c.created_at_ms, -c.post_id),
    )
    assert [candidates[i] for i in ranking_order(candidates)] == expected
    assert ranking_order([]) == []


def test_a_selection_size_passes_more_to_the_post_selection_stages():
    candidates = [candidate(i, 10, score=float(i)) for i in range(1, 61)]
    selection = TopKSelector(50).select(query(max_results=35), candidates)
    assert len(selection.selected) == 50 and len(selection.reserve) == 10
    assert len(TopKSelector(50).select(query(max_results=60), candidates).selected) == 60
