"""AuthorColdStart: one fresh original of a small author lifted to the rank-15 score, reproducibly."""

from dataclasses import replace

import pytest

from scoring.author_cold_start import AuthorColdStartScorer
from streams.config import load_config
from tests.scoring.scoring_fakes import candidate, post, query, scored

HOUR_MS = 3_600_000
CONFIG = load_config(env={}).cold_start  # production-2026-10: thompson, 2 h, 50,000 followers, < 200 views


def established(i: int) -> object:
    """A post that is not eligible (an author with many followers), scored 100 - i."""
    return candidate(i, 1000 + i, score=100.0 - i, weighted_score=100.0 - i, author_follower_count=10**6, view_count=0)


def fresh(post_id: int, score: float = 1.0, views: int = 0, favorites: int = 0, **fields) -> object:
    values = {"author_follower_count": 10, "view_count": views, "favorite_count": favorites, **fields}
    return candidate(post_id, 2000 + post_id, core=post(post_id, 2000 + post_id, age_ms=HOUR_MS),
                     score=score, weighted_score=score, **values)


def test_lifts_exactly_one_eligible_post_to_the_score_of_rank_15():
    pool = [established(i) for i in range(20)] + [fresh(101), fresh(102, score=2.0)]
    out = scored(AuthorColdStartScorer(CONFIG), replace(query(), request_id="req-a"), pool)
    lifted = [c for c in out if c.cold_start_lifted]
    assert len(lifted) == 1 and lifted[0].score == 100.0 - 14  # the 15th best score
    others = [c.score for c in pool if c.post_id != lifted[0].post_id]
    assert [c.score for c in out if not c.cold_start_lifted] == others


@pytest.mark.parametrize(
    "ineligible",
    [
        {"core": post(101, 2101, age_ms=3 * HOUR_MS)},  # older than 2 h
        {"author_follower_count": 50_001},  # not a small author
        {"view_count": 200},  # already seen enough
        {"view_count": None},  # counts unknown
        {"core": post(101, 2101, age_ms=HOUR_MS, in_reply_to_post_id=5)},  # not an original
    ],
)
def test_ineligible_posts_are_never_lifted(ineligible):
    pool = [established(i) for i in range(20)] + [replace(fresh(101), **ineligible)]
    out = scored(AuthorColdStartScorer(CONFIG), query(), pool)
    assert not any(c.cold_start_lifted for c in out)


def test_thompson_draws_are_seeded_by_the_request_and_favour_well_received_posts():
    pool = [established(i) for i in range(20)]
    pool += [fresh(100 + j, views=150, favorites=0) for j in range(5)] + [fresh(200, views=150, favorites=120)]
    picks = {}
    for r in range(40):
        out = scored(AuthorColdStartScorer(CONFIG), replace(query(), request_id=f"req-{r}"), pool)
        picks[r] = next(c.post_id for c in out if c.cold_start_lifted)
        again = scored(AuthorColdStartScorer(CONFIG), replace(query(), request_id=f"req-{r}"), pool)
        assert next(c.post_id for c in again if c.cold_start_lifted) == picks[r]  # reproducible per request
    assert sum(p == 200 for p in picks.values()) > 30  # a favorite rate of 0.8 beats 0 almost always
    unseen = [established(i) for i in range(20)] + [fresh(100 + j) for j in range(5)]
    lifted = set()
    for r in range(40):
        out = scored(AuthorColdStartScorer(CONFIG), replace(query(), request_id=f"u-{r}"), unseen)
        lifted |= {c.post_id for c in out if c.cold_start_lifted}
    assert len(lifted) > 1  # without evidence, requests explore different posts


def test_model_mode_lifts_the_best_model_score():
    pool = [established(i) for i in range(20)] + [fresh(101, score=0.5), fresh(102, score=0.7)]
    out = scored(AuthorColdStartScorer(replace(CONFIG, mode="model")), query(), pool)
    [lifted] = [c for c in out if c.cold_start_lifted]
    assert lifted.post_id == 102


def test_nothing_is_lifted_when_every_post_already_ranks_within_the_target():
    pool = [established(i) for i in range(3)] + [fresh(101, score=0.5), fresh(102, score=0.7)]
    out = scored(AuthorColdStartScorer(CONFIG), query(), pool)
    assert not any(c.cold_start_lifted for c in out) and [c.score for c in out] == [c.score for c in pool]


def test_disabled_in_the_seed_preset():
    assert AuthorColdStartScorer(CONFIG).enable(query())
    assert not AuthorColdStartScorer(load_config(env={"FORYOU_PRESET": "seed-2026-01"}).cold_start).enable(query())
