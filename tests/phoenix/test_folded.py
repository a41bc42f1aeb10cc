"""The folded inference forward (phoenix/folded.py) against the model (phoenix/model.py): equal up to rounding."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from phoenix import folded, model
from phoenix.batch import Candidates, History, RankingBatch, make_batch
from phoenix.config import PhoenixConfig
from stores.records import ActionEntry
from tests.phoenix.test_model import TINY
from topics.actions import NUM_PHOENIX_ACTIONS, surface_id

GQA = dataclasses.replace(TINY, name="gqa", num_layers=3)
SEARCH = surface_id("search")


@functools.cache
def _params(cfg: PhoenixConfig) -> model.Params:
    return model.init_params(cfg, jax.random.PRNGKey(5))


@functools.partial(jax.jit, static_argnums=1)
def _reference_prefix(params: model.Params, cfg: PhoenixConfig, *history: jax.Array) -> folded.FoldedPrefix:
    """`model.encode_prefix` padded to S+1 slots and laid out as `FoldedPrefix`."""
    pre = model.encode_prefix(params, cfg, *history)
    pad = 1 + cfg.history_len - pre.keys.shape[2]
    keys = jnp.pad(pre.keys[:, 0], ((0, 0), (0, pad), (0, 0), (0, 0)))
    values = jnp.pad(pre.values[:, 0], ((0, 0), (0, pad), (0, 0), (0, 0)))
    valid = jnp.pad(pre.valid[0], (0, pad))
    return folded.FoldedPrefix(
        jnp.transpose(keys, (0, 2, 3, 1)),
        jnp.transpose(values, (0, 2, 1, 3)),
        jnp.where(valid, 0.0, model.MASKED).astype(jnp.float32),
    )


_prefix = jax.jit(folded.prefix_keys_values, static_argnums=1)
_candidate_logits = jax.jit(folded.candidate_logits, static_argnums=1)


def _history(seed: int, n: int) -> list[ActionEntry]:
    rng = np.random.default_rng(seed)
    surfaces = ["home_for_you", "search", "profile", "notifications"]
    return [
        ActionEntry(
            int(rng.integers(1, 10**9)),
            int(rng.integers(1, 500)),
            int(rng.integers(0, 1 << 19)),  # 0: an entry with no recorded action
            surfaces[int(rng.integers(len(surfaces)))],
            i,
        )
        for i in range(n)
    ]


def _history_args(batch: RankingBatch, length: int) -> tuple[np.ndarray, History]:
    return batch.user_hashes, batch.history.first_slots(length)


@pytest.mark.parametrize(("history_len", "bucket"), [(0, 4), (5, 8), (16, 16), (30, 16)])
def test_prefix_keys_values_equal_reference(history_len: int, bucket: int) -> None:
    cfg = GQA
    params = _params(cfg)
    batch = make_batch(cfg, [3], [_history(history_len, history_len)], [[]])
    args = _history_args(batch, bucket)
    expected = _reference_prefix(params, cfg, *args)
    got = _prefix(folded.fold_prefix_weights(params, cfg), cfg, *args)
    for name, want, have in zip(folded.FoldedPrefix._fields, expected, got, strict=True):
        assert want.shape == have.shape, name
        np.testing.assert_allclose(np.asarray(have), np.asarray(want), atol=2e-5, rtol=1e-5, err_msg=name)


@pytest.mark.parametrize(
    ("cap", "width"),
    [
        (30.0, 8),  # softmax shifted by the constant cap
        (30.0, 40),  # padded: padding rows leave the real ones unchanged
        (2 * folded.FIXED_SHIFT_MAX_CAP, 8),  # a cap too large for the constant shift: row-max softmax
    ],
)
def test_candidate_logits_equal_full_forward(cap: float, width: int) -> None:
    cfg = dataclasses.replace(GQA, attn_logit_cap=cap)
    params = _params(cfg)
    history = _history(7, 11)
    rng = np.random.default_rng(8)
    cands = [(int(rng.integers(1, 10**9)), int(rng.integers(1, 500))) for _ in range(6)]
    cands += [(int(rng.integers(1, 10**9)), 0), (0, int(rng.integers(1, 500)))]  # absent author / post: rows zero
    batch = make_batch(cfg, [3], [history], [cands], candidate_surface=SEARCH)
    expected = np.asarray(jax.jit(model.full_sequence_logits, static_argnums=1)(params, cfg, batch))[0]
    prefix = _prefix(folded.fold_prefix_weights(params, cfg), cfg, *_history_args(batch, cfg.history_len))
    pad = ((0, width - len(cands)), (0, 0))
    got = _candidate_logits(
        folded.fold_weights(params, cfg),
        cfg,
        prefix,
        Candidates(
            np.pad(batch.candidate_post_hashes[0], pad), np.pad(batch.candidate_author_hashes[0], pad), np.int32(SEARCH)
        ),
    )
    assert got.shape == (width, NUM_PHOENIX_ACTIONS)
    np.testing.assert_allclose(np.asarray(got)[: len(cands)], expected, atol=2e-5, rtol=1e-5)


def test_candidate_logits_with_ages_equal_reference() -> None:
    cfg = dataclasses.replace(GQA, age_buckets=8)
    params = _params(cfg)
    table = np.random.default_rng(4).standard_normal((cfg.age_buckets, cfg.emb_size)).astype(np.float32)
    params = {**params, "phoenix": {**params["phoenix"], "age_table": table}}
    rng = np.random.default_rng(9)
    cands = [(int(rng.integers(1, 10**9)), int(rng.integers(1, 500))) for _ in range(5)]
    batch = make_batch(cfg, [3], [_history(6, 9)], [cands], candidate_surface=SEARCH)
    history = _history_args(batch, cfg.history_len)
    reference_prefix = jax.jit(model.encode_prefix, static_argnums=1)(params, cfg, *history)
    reference = jax.jit(model.score_from_prefix, static_argnums=1)
    prefix = _prefix(folded.fold_prefix_weights(params, cfg), cfg, *history)
    weights = folded.fold_weights(params, cfg)
    posts, authors = batch.candidate_post_hashes[0], batch.candidate_author_hashes[0]

    def logits(ages: np.ndarray | None) -> np.ndarray:
        return np.asarray(_candidate_logits(weights, cfg, prefix, Candidates(posts, authors, np.int32(SEARCH), ages)))

    ages = np.array([1, 3, 0, 7, 5], np.int32)
    candidates = Candidates(posts[None], authors[None], batch.candidate_surfaces, ages[None])
    expected = reference(params, cfg, reference_prefix, candidates)
    base = logits(ages)
    np.testing.assert_allclose(base, np.asarray(expected)[0], atol=2e-5, rtol=1e-5)
    changed = logits(np.array([6, 3, 0, 7, 5], np.int32))
    assert np.abs(changed[0] - base[0]).max() > 1e-3  # its own age matters
    np.testing.assert_allclose(changed[1:], base[1:], atol=1e-5)  # another's age does not
    no_ages, unknown = logits(None), logits(np.zeros(5, np.int32))
    np.testing.assert_allclose(no_ages, unknown, atol=2e-5, rtol=1e-5)  # no ages = every age unknown


_prefix_and_user = jax.jit(folded.prefix_and_user, static_argnums=1)


@functools.partial(jax.jit, static_argnums=1)
def _reference_user(params: model.Params, cfg: PhoenixConfig, *history: jax.Array) -> jax.Array:
    return model.user_embedding_from_prefix(params, cfg, model.encode_prefix(params, cfg, *history))


@pytest.mark.parametrize(("history_len", "bucket"), [(0, 4), (5, 8), (30, 16)])
def test_prefix_and_user_equal_reference_prefix_and_user_tower(history_len: int, bucket: int) -> None:
    """One pass gives ranking its keys/values and retrieval its user embedding (the prefix encoded once)."""
    cfg = GQA
    params = _params(cfg)
    batch = make_batch(cfg, [3], [_history(history_len + 40, history_len)], [[]])
    args = _history_args(batch, bucket)
    weights = folded.fold_prefix_weights(params, cfg)
    prefix, user = _prefix_and_user(weights, cfg, *args)
    for name, want, have in zip(folded.FoldedPrefix._fields, _prefix(weights, cfg, *args), prefix, strict=True):
        np.testing.assert_allclose(np.asarray(have), np.asarray(want), atol=2e-5, rtol=1e-5, err_msg=name)
    expected = np.asarray(_reference_user(params, cfg, *args))[0]
    assert user.shape == expected.shape == (cfg.retrieval_dim,)
    np.testing.assert_allclose(np.asarray(user), expected, atol=2e-5, rtol=1e-5)
