import pytest

from scoring.offset import ScoreOffset
from scoring.oon import OONScorer
from tests.scoring.scoring_fakes import CONFIG, candidate, post, query, scored

OFFSET = ScoreOffset.from_weights(CONFIG.weights, 1.0)


def test_out_of_network_scores_are_multiplied_by_the_factor():
    candidates = [
        candidate(1, 10, in_network=True, score=2.0),
        candidate(2, 20, in_network=False, score=2.0),
        candidate(3, 30, in_network=None, score=2.0),
        candidate(4, 40, in_network=False, score=0.5),  # negative post: scaled within [0, offset)
        candidate(5, 50, in_network=False),
    ]
    out = scored(OONScorer(0.8, OFFSET), query(), candidates)
    assert [c.oon_multiplier for c in out] == [1.0, 0.8, 1.0, 0.8, None]
    assert [c.score for c in out[:4]] == pytest.approx([2.0, 1.8, 2.0, 0.4])
    assert out[4].score is None


def test_in_network_replies_and_reposts_get_the_factor_when_configured():
    candidates = [
        candidate(1, 10, in_network=True, score=2.0),
        candidate(2, 10, core=post(2, 10, in_reply_to_post_id=1), in_network=True, score=2.0),
        candidate(3, 10, core=post(3, 10, repost_of_post_id=1), in_network=True, score=2.0),
        candidate(4, 20, in_network=False, score=2.0),
    ]
    out = scored(OONScorer(0.75, OFFSET, in_network_replies_reposts=True), query(), candidates)
    assert [c.oon_multiplier for c in out] == [1.0, 0.75, 0.75, 0.75]
    january = scored(OONScorer(0.75, OFFSET), query(), candidates)
    assert [c.oon_multiplier for c in january] == [1.0, 1.0, 1.0, 0.75]
