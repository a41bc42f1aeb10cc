import numpy as np
import pytest

from scoring.offset import ScoreOffset
from tests.scoring.scoring_fakes import CONFIG

OFFSET = ScoreOffset.from_weights(CONFIG.weights, 1.0)


def test_sums_of_the_default_weights():
    assert OFFSET.negative_sum == pytest.approx(16.5)
    assert OFFSET.total_sum == pytest.approx(16.5 + 12.6)


def test_every_negative_combined_score_lands_below_every_non_negative_one():
    negatives = [-OFFSET.negative_sum, -10.0, -1.0, -1e-9]
    positives = [0.0, 1e-9, 0.5, 20.0]
    mapped_negatives = [OFFSET.apply(c) for c in negatives]
    mapped_positives = [OFFSET.apply(c) for c in positives]
    assert max(mapped_negatives) < min(mapped_positives)
    assert min(mapped_negatives) >= 0.0
    assert mapped_negatives == sorted(mapped_negatives)  # order among negatives is kept
    assert mapped_positives == [1.0 + c for c in positives]


def test_scale_acts_within_each_band():
    assert OFFSET.scale(1.5, 0.5) == pytest.approx(1.25)  # above the offset: the part above it
    assert OFFSET.scale(1.0, 0.1) == 1.0
    assert OFFSET.scale(0.3, 0.1) == pytest.approx(0.03)  # a negative post: its whole score
    assert OFFSET.scale(0.9, 3.0) < OFFSET.offset <= OFFSET.scale(1.0, 0.001)  # never across the offset


def test_all_zero_weights_do_not_divide_by_zero():
    zero = ScoreOffset.from_weights(dict.fromkeys(CONFIG.weights, 0.0), 1.0)
    assert zero.apply(0.0) == 0.0


@pytest.mark.parametrize("offset", [OFFSET, ScoreOffset.from_weights(dict.fromkeys(CONFIG.weights, 0.0), 1.0)])
def test_apply_all_is_apply_of_every_value(offset: ScoreOffset):
    combined = [-OFFSET.negative_sum, -3.3, -1e-9, 0.0, 1e-9, 0.7, 25.0]
    assert offset.apply_all(np.array(combined)).tolist() == [offset.apply(c) for c in combined]


def test_the_published_offset_with_the_production_weights():
    from streams.config import load_config

    weights = load_config(env={}).weights
    offset = ScoreOffset.from_weights(weights, 0.001)
    negative = 47.52 + 31.2 + 58.8 + 234.0 + 0.02
    assert offset.negative_sum == pytest.approx(negative)
    assert offset.total_sum == pytest.approx(sum(w for w in weights.values() if w > 0) + negative)
    assert offset.apply(2.0) == pytest.approx(2.001)
    assert offset.apply(-10.0) == pytest.approx((-10.0 + negative) / offset.total_sum * 0.001)
    assert offset.apply(-negative) == 0.0 and offset.apply(-1e-9) < offset.apply(0.0)
