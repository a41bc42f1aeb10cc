from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from prometheus_client import REGISTRY

from scoring.phoenix_scorer import PhoenixScorer
from streams.candidate import Candidate
from tests.scoring.scoring_fakes import NOW_MS, TableRanker, candidate, post, probabilities, query, scored
from topics.actions import surface_id

P1 = probabilities(0.1, favorite=0.5)
P2 = probabilities(0.2)
P9 = probabilities(0.3, repost=0.7)


def test_writes_19_probabilities_in_candidate_order():
    ranker = TableRanker({(1, 10): P1, (2, 20): P2})
    out = scored(PhoenixScorer(ranker), query(), [candidate(2, 20), candidate(1, 10)])
    assert [c.post_id for c in out] == [2, 1]
    assert out[0].phoenix_scores == pytest.approx(P2) and out[1].phoenix_scores == pytest.approx(P1)
    assert len(out[0].phoenix_scores) == 19
    with pytest.raises(ValueError):  # the rows are read-only, like the candidates they belong to
        out[0].phoenix_scores[0] = 1.0
    assert ranker.calls[0][2] == surface_id("home_for_you")


def test_a_repost_is_scored_as_its_original_post_and_author():
    ranker = TableRanker({(9, 90): P9, (1, 10): P1})
    repost = candidate(5, 50, core=post(5, 50, repost_of_post_id=9, repost_of_user_id=90))
    out = scored(PhoenixScorer(ranker), query(), [repost, candidate(1, 10)])
    assert ranker.calls[0][1] == [(9, 90), (1, 10)]
    assert out[0].phoenix_scores == pytest.approx(P9)
    assert out[0].post_id == 5  # still the repost that is served


def test_a_repost_without_original_author_falls_back_to_the_original_record():
    ranker = TableRanker({(9, 90): P9})
    repost = candidate(5, 50, core=post(5, 50, repost_of_post_id=9), original=post(9, 90))
    scored(PhoenixScorer(ranker), query(), [repost])
    assert ranker.calls[0][1] == [(9, 90)]


def test_runs_on_a_given_executor_and_records_batch_size():
    before = REGISTRY.get_sample_value("foryou_phoenix_batch_candidates_sum") or 0.0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="phoenix-test") as pool:
        out = scored(PhoenixScorer(TableRanker({(1, 10): P1}), executor=pool), query(), [candidate(1, 10)])
    assert out[0].phoenix_scores is not None
    assert REGISTRY.get_sample_value("foryou_phoenix_batch_candidates_sum") == before + 1


def test_a_wrongly_shaped_answer_is_an_error():
    ranker = TableRanker({(1, 10): P1, (2, 20): P2}, shape_error=True)
    with pytest.raises(ValueError, match="shape"):
        scored(PhoenixScorer(ranker), query(), [candidate(1, 10), candidate(2, 20)])


def test_passes_each_served_posts_creation_time_and_the_request_time():
    ranker = TableRanker({(9, 90): P9, (1, 10): P1, (2, 20): P2})
    repost = candidate(5, 50, core=post(5, 50, age_ms=5_000, repost_of_post_id=9, repost_of_user_id=90))
    missing = Candidate(post_id=2, author_id=20, source="thunder")  # core hydration failed: time unknown
    scored(PhoenixScorer(ranker), query(), [candidate(1, 10, core=post(1, 10, age_ms=7_000)), repost, missing])
    # The repost counts from its own creation (when it entered the feed), not the original's.
    assert ranker.times == [([NOW_MS - 7_000, NOW_MS - 5_000, None], NOW_MS)]


def test_passes_the_hydrated_content_vectors_with_zero_rows_for_unknown_content():
    ranker = TableRanker({(1, 10): P1, (2, 20): P2, (3, 30): P1})
    known = [candidate(1, 10, content_embedding=np.array([1.0, 2.0], np.float32)), candidate(2, 20),
             candidate(3, 30, content_embedding=np.array([0.5, 0.0], np.float32))]
    scored(PhoenixScorer(ranker), query(), known)
    np.testing.assert_array_equal(ranker.content[0], [[1.0, 2.0], [0.0, 0.0], [0.5, 0.0]])
    scored(PhoenixScorer(ranker), query(), [candidate(2, 20)])
    assert ranker.content[1] is None  # no vectors at all: the ranker reads its own source


def test_passes_the_posts_served_to_the_user_before():
    ranker = TableRanker({(1, 10): P1})
    scored(PhoenixScorer(ranker), query(served_ids=frozenset({7, 8})), [candidate(1, 10)])
    assert ranker.served == [frozenset({7, 8})]


def test_a_checkpoint_with_the_optional_heads_gives_every_action_and_narrower_or_wider_rows_are_errors():
    full = probabilities(0.1, video_open=0.4)  # a model with the 4 optional heads: 23 columns
    out = scored(PhoenixScorer(TableRanker({(1, 10): full})), query(), [candidate(1, 10)])
    assert len(out[0].phoenix_scores) == 23
    for width in (18, 24):
        ranker = TableRanker({(1, 10): np.full(width, 0.1)})
        with pytest.raises(ValueError, match="shape"):
            scored(PhoenixScorer(ranker), query(), [candidate(1, 10)])
