"""The candidate post-age input: buckets, config, model, examples and a planted freshness signal."""

import dataclasses

import jax
import numpy as np
import pytest

from phoenix import model
from phoenix.age import age_buckets, ages_ms
from phoenix.batch import make_batch
from phoenix.config import DEMO, LARGE, PhoenixConfig
from phoenix.evaluate import model_outputs
from phoenix.examples import examples_from_groups, group_requests, sample_negatives
from phoenix.log import Impression
from phoenix.metrics import pairwise_accuracy
from phoenix.train import TrainOptions, prepare, train_params
from stores.records import ActionEntry
from tests.phoenix.test_model import TINY

MINUTE = 60_000
HOUR = 60 * MINUTE

AGED = dataclasses.replace(TINY, name="aged", age_buckets=16)
WIDTH = 8

# The full-sequence oracle: isolation is proven on it, and the forward's equality to it below.
rank = jax.jit(model.full_sequence_logits, static_argnums=1)
encode_prefix = jax.jit(model.encode_prefix, static_argnums=1)
score_from_prefix = jax.jit(model.score_from_prefix, static_argnums=1)


def test_buckets_unknown_clamped_log_spaced_and_capped() -> None:
    ages = np.array([np.nan, -5 * MINUTE, 0, 59_999, MINUTE, 3 * MINUTE, 7 * MINUTE - 1, HOUR, 6 * HOUR, 1e12])
    np.testing.assert_array_equal(age_buckets(ages, 16), [0, 1, 1, 1, 2, 3, 3, 6, 9, 15])
    # floor(log2(1 + m)) exactly at the powers of two, for every bucket edge.
    edges = (2 ** np.arange(15) - 1) * MINUTE
    np.testing.assert_array_equal(age_buckets(edges, 16), np.arange(1, 16))
    np.testing.assert_array_equal(age_buckets(edges - 1, 16)[1:], np.arange(1, 15))
    assert age_buckets(ages, 4).max() == 3 and age_buckets(ages, 2).tolist() == [0] + [1] * 9
    assert age_buckets(ages.reshape(2, 5), 16).shape == (2, 5) and age_buckets(ages, 16).dtype == np.int32
    with pytest.raises(ValueError):
        age_buckets(ages, 1)


def test_ages_from_creation_times() -> None:
    ages = ages_ms(10_000, [4_000, None, 12_000])
    assert ages[0] == 6_000 and np.isnan(ages[1]) and ages[2] == -2_000
    np.testing.assert_array_equal(ages_ms([10, 20], [0, 0]), [10.0, 20.0])


def test_config_round_trip_and_configs_without_the_field_load() -> None:
    assert PhoenixConfig.from_dict(AGED.to_dict()) == AGED
    old = DEMO.to_dict()
    del old["age_buckets"]  # a checkpoint saved before the field existed
    assert PhoenixConfig.from_dict(old).age_buckets == 0
    assert PhoenixConfig.from_dict(old) == dataclasses.replace(DEMO, age_buckets=0)
    assert DEMO.age_buckets == LARGE.age_buckets == 16  # the presets serve with ages
    for bad in (1, -3):
        with pytest.raises(ValueError, match="age_buckets"):
            dataclasses.replace(AGED, age_buckets=bad)


def test_age_table_only_when_on() -> None:
    off = dataclasses.replace(AGED, age_buckets=0)
    off_params = model.init_params(off, jax.random.PRNGKey(0))
    on_params = model.init_params(AGED, jax.random.PRNGKey(0))
    assert "age_table" not in off_params["phoenix"]
    assert on_params["phoenix"]["age_table"].shape == (16, AGED.emb_size)
    # Apart from the zero age table, the params are the same draws: an untrained model is age-blind.
    assert not np.asarray(on_params["phoenix"]["age_table"]).any()
    for module, leaves in off_params.items():
        for name, value in leaves.items():
            np.testing.assert_array_equal(np.asarray(on_params[module][name]), np.asarray(value))
    assert make_batch(off, [1], [[]], [[(5, 6)]], candidate_ages_ms=[[HOUR]]).candidate_ages is None


@pytest.fixture(scope="module")
def aged_params() -> model.Params:
    """Init params with a random age table, so the age visibly changes the outputs."""
    params = model.init_params(AGED, jax.random.PRNGKey(1))
    table = np.random.default_rng(0).standard_normal((AGED.age_buckets, AGED.emb_size)).astype(np.float32)
    return {**params, "phoenix": {**params["phoenix"], "age_table": table}}


def _history(rng: np.random.Generator, n: int) -> list[ActionEntry]:
    return [
        ActionEntry(int(rng.integers(1, 10**9)), int(rng.integers(1, 10**6)), int(rng.integers(1, 1 << 19)),
                    "home_for_you", i)
        for i in range(n)
    ]


def _scores(params: model.Params, history: list[ActionEntry], cands: list[tuple[int, int]],
            ages: list[float], width: int = WIDTH) -> np.ndarray:
    batch = make_batch(AGED, [9], [history], [cands], num_candidates=width, candidate_ages_ms=[ages])
    return np.asarray(rank(params, AGED, batch))[0]


def test_age_changes_the_candidate_and_only_it(aged_params: model.Params) -> None:
    rng = np.random.default_rng(2)
    history = _history(rng, 6)
    cands = [(int(rng.integers(1, 10**9)), int(rng.integers(1, 10**6))) for _ in range(5)]
    ages = [MINUTE, HOUR, 10 * HOUR, np.nan, 3 * 86_400_000]
    base = _scores(aged_params, history, cands, ages)
    older_first = _scores(aged_params, history, cands, [100 * HOUR, *ages[1:]])
    assert np.abs(base[0] - older_first[0]).max() > 1e-3  # its own age matters
    np.testing.assert_allclose(older_first[1:5], base[1:5], atol=1e-5)  # another's age does not
    # Isolation with ages: alone, permuted and padded give the same outputs for a candidate.
    alone = _scores(aged_params, history, cands[2:3], ages[2:3])[0]
    order = [4, 2, 0, 3, 1]
    permuted = _scores(aged_params, history, [cands[i] for i in order], [ages[i] for i in order])[1]
    padded = _scores(aged_params, history, cands, ages, width=2 * WIDTH)[2]
    for variant in (base[2], permuted, padded):
        np.testing.assert_allclose(variant, alone, atol=1e-5)
    # No ages given = every age unknown = bucket 0.
    unknown = np.asarray(rank(aged_params, AGED, make_batch(AGED, [9], [history], [cands], num_candidates=WIDTH)))
    np.testing.assert_allclose(unknown[0, 3], base[3], atol=1e-5)


@pytest.mark.parametrize(("history_len", "bucket"), [(0, 4), (11, 16)])
def test_prefix_reuse_equals_full_forward_with_ages(
    aged_params: model.Params, history_len: int, bucket: int
) -> None:
    rng = np.random.default_rng(3)
    cands = [(int(rng.integers(1, 10**9)), int(rng.integers(1, 10**6))) for _ in range(7)]
    ages = rng.choice([np.nan, 0.0, 5 * MINUTE, 7 * HOUR, 40 * HOUR], size=7).tolist()
    batch = make_batch(AGED, [7], [_history(rng, history_len)], [cands], num_candidates=WIDTH,
                       candidate_ages_ms=[ages])
    full = np.asarray(rank(aged_params, AGED, batch))
    prefix = encode_prefix(aged_params, AGED, batch.user_hashes, batch.history.first_slots(bucket))
    fast = score_from_prefix(aged_params, AGED, prefix, batch.candidates())
    np.testing.assert_allclose(np.asarray(fast), full, atol=2e-5, rtol=1e-5)


def test_examples_carry_ages_and_negatives_their_own_posts_age() -> None:
    log = [
        Impression(1, 10, 100, 5 * HOUR, "home_for_you", ("favorite",), "a", 4 * HOUR),
        Impression(2, 20, 200, 6 * HOUR, "home_for_you", ("favorite",), "b", 1 * HOUR),
        Impression(3, 30, 300, 6 * HOUR, "home_for_you", ("favorite",), "c", None),
        Impression(4, 40, 400, 7 * HOUR, "home_for_you", ("favorite",), "d", 7 * HOUR),
    ]
    sampled = sample_negatives(log, per_positive=3, window_ms=10 * HOUR, seed=0)
    negatives = [imp for imp in sampled if not imp.engaged]
    assert negatives
    created = {10: 4 * HOUR, 20: 1 * HOUR, 30: None, 40: 7 * HOUR}
    for negative in negatives:
        assert negative.post_created_at_ms == created[negative.post_id]
    examples = examples_from_groups(group_requests(sampled), 8)
    last = next(ex for ex in examples if ex.user_id == 4)  # at 7 h; may have drawn posts 10, 20 and 30
    for (post_id, _), age in zip(last.candidates, last.ages_ms, strict=True):
        expected = created[post_id]
        assert np.isnan(age) if expected is None else age == 7 * HOUR - expected


def _freshness_log(seed: int) -> list[Impression]:
    """Only age predicts engagement: a favourite on 60% of fresh posts (< 1 h) and 3% of old ones (> 2 days).

    Every post and request is new, authors are drawn from a large pool: ids carry nothing to learn.
    """
    rng = np.random.default_rng(seed)
    log = []
    for n in range(1500):
        user = int(rng.integers(1, 60))
        ts = 10 * 86_400_000 + n * 5 * MINUTE
        for k in range(8):
            fresh = k % 2 == 0
            age = int(rng.integers(0, HOUR)) if fresh else int(rng.integers(2 * 86_400_000, 5 * 86_400_000))
            liked = rng.random() < (0.6 if fresh else 0.03)
            log.append(Impression(user, n * 10 + k + 1, int(rng.integers(1, 5000)), ts, "home_for_you",
                                  ("favorite",) if liked else (), f"r{n}", ts - age))
    return log


def test_planted_freshness_is_learned_only_with_ages() -> None:
    cfg = dataclasses.replace(AGED, emb_size=16, num_layers=1, num_q_heads=2, num_kv_heads=1, key_size=8,
                              history_len=8)
    options = TrainOptions(steps=80, batch_size=32, learning_rate=1e-2, progress=False, history_slots=8)
    data = prepare(_freshness_log(0), options.num_candidates, 0.2, options.negatives)
    accuracy = {}
    for name, config in (("with", cfg), ("without", dataclasses.replace(cfg, age_buckets=0))):
        params = train_params(config, data, options).params
        probs, _ = model_outputs(params, config, data, options.num_candidates, batch_size=64)
        examples = data.held_out_examples
        scores = [probs[i, : len(ex.candidates), 0] for i, ex in enumerate(examples)]
        labels = [ex.labels[:, 0] > 0 for ex in examples]
        accuracy[name] = pairwise_accuracy(scores, labels)
    # The best possible is about 0.83 (fresh positive vs fresh negative pairs are coin flips); ids alone ~0.5.
    assert accuracy["with"] > 0.75
    assert accuracy["without"] < 0.6
