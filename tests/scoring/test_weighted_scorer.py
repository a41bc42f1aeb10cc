import numpy as np
import pytest

from scoring.offset import ScoreOffset
from scoring.weighted import WeightedScorer
from streams.config import load_config
from tests.scoring.scoring_fakes import CONFIG, candidate, post, probabilities, query, scored
from topics.actions import ACTIONS

OFFSET = ScoreOffset.from_weights(CONFIG.weights, 1.0)
MIN_VIDEO_MS = 10_000


def scorer() -> WeightedScorer:
    return WeightedScorer(CONFIG.weights, MIN_VIDEO_MS, OFFSET)


def score(*candidates):
    return scored(scorer(), query(), list(candidates))


def test_weighted_sum_then_offset():
    p = probabilities(favorite=0.5, reply=0.25, block_author=0.1)
    [out] = score(candidate(1, 10, phoenix_scores=p))
    combined = 0.5 * 1.0 + 0.25 * 1.6 - 0.1 * 5.0
    assert out.weighted_score == pytest.approx(combined + 1.0)
    assert out.score == out.weighted_score


def test_every_weight_is_applied_to_its_own_action():
    video = post(1, 10, media="video", video_duration_ms=MIN_VIDEO_MS)
    for name in ACTIONS:
        p = probabilities(**{name: 1.0})
        expected = CONFIG.weights[name]
        assert scorer().combined(np.array([p]), np.array([True]))[0] == pytest.approx(expected), name
        [out] = score(candidate(1, 10, core=video, phoenix_scores=p))
        assert out.weighted_score == pytest.approx(OFFSET.apply(expected)), name


@pytest.mark.parametrize(
    ("media", "duration", "counted"),
    [
        ("video", MIN_VIDEO_MS - 1, False),
        ("video", MIN_VIDEO_MS, True),
        ("video", MIN_VIDEO_MS * 3, True),
        ("video", None, False),
        ("photo", MIN_VIDEO_MS * 3, False),
    ],
)
def test_vqv_counts_only_for_videos_of_at_least_the_minimum_duration(media, duration, counted):
    p = probabilities(favorite=0.2, vqv=0.8)
    [out] = score(candidate(1, 10, core=post(1, 10, media=media, video_duration_ms=duration), phoenix_scores=p))
    expected = 0.2 * 1.0 + (0.8 * 0.5 if counted else 0.0)
    assert out.weighted_score == pytest.approx(expected + 1.0)


def test_a_repost_of_a_video_uses_the_originals_duration():
    original = post(9, 90, media="video", video_duration_ms=MIN_VIDEO_MS * 2)
    repost = candidate(
        5, 50, core=post(5, 50, repost_of_post_id=9), original=original, phoenix_scores=probabilities(vqv=1.0)
    )
    [out] = score(repost)
    assert out.weighted_score == pytest.approx(0.5 + 1.0)


def test_all_negative_scores_stay_below_all_positive_ones_in_order():
    negatives = [probabilities(block_author=b, report=r) for b, r in [(0.9, 0.9), (0.5, 0.1), (0.01, 0.0)]]
    positives = [probabilities(favorite=f) for f in (0.0, 0.001, 0.3)]
    scored = score(*(candidate(i, 10, phoenix_scores=p) for i, p in enumerate(negatives + positives)))
    neg, pos = [c.weighted_score for c in scored[:3]], [c.weighted_score for c in scored[3:]]
    assert max(neg) < min(pos)
    assert neg == sorted(neg)  # the stronger the predicted negative feedback, the lower
    assert all(s >= 0 for s in neg)


def test_all_negative_request_keeps_an_order_by_severity():
    scored = score(
        candidate(1, 10, phoenix_scores=probabilities(report=1.0)),
        candidate(2, 10, phoenix_scores=probabilities(not_interested=1.0)),
    )
    assert scored[0].weighted_score < scored[1].weighted_score < 1.0


def test_without_phoenix_scores_there_is_no_score():
    [out] = score(candidate(1, 10))
    assert out.weighted_score is None and out.score is None


def test_optional_heads_the_model_lacks_weigh_nothing_and_count_when_present():
    production = load_config(env={})
    weighted = WeightedScorer(production.weights, MIN_VIDEO_MS, ScoreOffset.from_weights(production.weights, 0.001))
    nineteen = probabilities(0.0, favorite=1.0)
    with_heads = probabilities(0.0, favorite=1.0, open_link=1.0, not_dwelled=1.0)
    assert weighted.combined(np.array([nineteen]), np.array([True]))[0] == pytest.approx(0.5)
    assert weighted.combined(np.array([with_heads]), np.array([True]))[0] == pytest.approx(0.5 + 0.2 - 0.02)


def test_the_reply_weight_is_boosted_for_mutual_follows_on_originals_only():
    boosted = WeightedScorer(CONFIG.weights, MIN_VIDEO_MS, OFFSET, mutual_follow_reply_boost=15.0)
    p = probabilities(reply=0.1)
    candidates = [
        candidate(1, 10, phoenix_scores=p, mutual_follow=True),
        candidate(2, 10, phoenix_scores=p, mutual_follow=False),
        candidate(3, 10, core=post(3, 10, in_reply_to_post_id=1), phoenix_scores=p, mutual_follow=True),
        candidate(4, 10, core=post(4, 10, repost_of_post_id=1), phoenix_scores=p, mutual_follow=True),
        candidate(5, 10, phoenix_scores=p),  # the hydrator did not run
    ]
    out = scored(boosted, query(), candidates)
    plain = OFFSET.apply(0.1 * 1.6)
    assert [c.weighted_score for c in out] == pytest.approx([OFFSET.apply(0.1 * (1.6 + 15.0))] + [plain] * 4)
