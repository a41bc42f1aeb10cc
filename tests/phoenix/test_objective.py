import jax.numpy as jnp
import numpy as np
import pytest

from phoenix.objective import masked_bce, within_request_pairwise


def test_pairwise_counts_only_engaged_vs_not_engaged_pairs_of_the_same_request_and_head() -> None:
    # One request, 3 real candidates + 1 padding slot, 2 heads. Head 0: candidate 0 engaged, 1 and 2 not.
    labels = np.zeros((1, 4, 2), np.float32)
    labels[0, 0, 0] = 1.0
    labels[0, 3, 0] = 1.0  # padding: must be ignored
    mask = np.array([[True, True, True, False]])
    logits = np.zeros((1, 4, 2), np.float32)
    logits[0, 0, 0] = 2.0  # the engaged candidate ahead by 2 of both others
    expected = np.log1p(np.exp(-2.0))  # two pairs, each softplus(-2)
    assert float(within_request_pairwise(jnp.asarray(logits), jnp.asarray(labels), jnp.asarray(mask))) == (
        pytest.approx(expected, rel=1e-5)
    )


def test_pairwise_is_blind_to_what_all_candidates_of_a_request_share() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 5, 3)).astype(np.float32)
    labels = (rng.random((2, 5, 3)) < 0.4).astype(np.float32)
    mask = np.ones((2, 5), bool)
    shifted = logits + np.array([3.0, -7.0], np.float32)[:, None, None]  # a per-request offset
    a = within_request_pairwise(jnp.asarray(logits), jnp.asarray(labels), jnp.asarray(mask))
    b = within_request_pairwise(jnp.asarray(shifted), jnp.asarray(labels), jnp.asarray(mask))
    assert float(a) == pytest.approx(float(b), rel=1e-5)
    # ...while BCE is not: it learns the base rate, which cannot order a request.
    assert float(masked_bce(jnp.asarray(logits), jnp.asarray(labels), jnp.asarray(mask))) != pytest.approx(
        float(masked_bce(jnp.asarray(shifted), jnp.asarray(labels), jnp.asarray(mask)))
    )


def test_pairwise_is_zero_without_pairs_and_falls_when_order_is_right() -> None:
    mask = np.ones((1, 3), bool)
    all_engaged = np.ones((1, 3, 1), np.float32)
    assert float(within_request_pairwise(jnp.zeros((1, 3, 1)), jnp.asarray(all_engaged), jnp.asarray(mask))) == 0.0
    labels = np.array([[[1.0], [0.0], [0.0]]], np.float32)
    right = jnp.asarray([[[3.0], [0.0], [0.0]]])
    wrong = jnp.asarray([[[-3.0], [0.0], [0.0]]])
    assert float(within_request_pairwise(right, jnp.asarray(labels), jnp.asarray(mask))) < 0.1
    assert float(within_request_pairwise(wrong, jnp.asarray(labels), jnp.asarray(mask))) > 3.0


def test_masked_bce_averages_over_real_candidates_and_sums_over_heads() -> None:
    logits = jnp.zeros((1, 2, 19))
    labels = jnp.zeros((1, 2, 19))
    mask = jnp.asarray([[True, False]])
    assert float(masked_bce(logits, labels, mask)) == pytest.approx(19 * np.log(2.0), rel=1e-5)
