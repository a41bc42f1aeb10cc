import jax
import jax.numpy as jnp
import numpy as np
import pytest

from phoenix import model
from phoenix.batch import History, RankingBatch, make_batch
from phoenix.config import PhoenixConfig
from stores.records import ActionEntry
from topics.actions import NUM_PHOENIX_ACTIONS

TINY = PhoenixConfig(
    name="tiny",
    emb_size=32,
    num_layers=2,
    num_q_heads=4,
    num_kv_heads=2,
    key_size=16,
    widening_factor=2.0,
    history_len=16,
    user_vocab=257,
    post_vocab=4099,
    author_vocab=1031,
    retrieval_dim=8,
)

# Jitted once per shape; tests reuse a few shapes because XLA compilation dominates their run time.
# `rank` is the full-sequence oracle: candidate isolation is proven on it, and the forward
# (encode_prefix + score_from_prefix, what training, evaluation and serving run) is proven equal to it.
rank = jax.jit(model.full_sequence_logits, static_argnums=1)
forward = jax.jit(model.rank_logits, static_argnums=1)
encode_prefix = jax.jit(model.encode_prefix, static_argnums=1)
score_from_prefix = jax.jit(model.score_from_prefix, static_argnums=1)
user_embedding = jax.jit(model.user_embedding, static_argnums=1)
candidate_embedding = jax.jit(model.candidate_embedding, static_argnums=1)
WIDTH = 16  # candidate slots used by most tests


@pytest.fixture(scope="module")
def params() -> model.Params:
    return model.init_params(TINY, jax.random.PRNGKey(0))


def _history(rng: np.random.Generator, n: int) -> list[ActionEntry]:
    return [
        ActionEntry(
            post_id=int(rng.integers(1, 10**12)),
            author_id=int(rng.integers(1, 10**6)),
            action_mask=int(rng.integers(1, 1 << NUM_PHOENIX_ACTIONS)),
            surface=str(rng.choice(["home_for_you", "search", "profile"])),
            ts_ms=i,
        )
        for i in range(n)
    ]


def _candidates(rng: np.random.Generator, n: int) -> list[tuple[int, int]]:
    return [(int(rng.integers(1, 10**12)), int(rng.integers(1, 10**6))) for _ in range(n)]


def _scores(
    params: model.Params, history: list[ActionEntry], cands: list[tuple[int, int]], width: int = WIDTH
) -> np.ndarray:
    batch = make_batch(TINY, [42], [history], [cands], num_candidates=width)
    return np.asarray(rank(params, TINY, batch))[0]


def test_shapes_and_varied_untrained_outputs(params: model.Params) -> None:
    rng = np.random.default_rng(1)
    logits = _scores(params, _history(rng, 10), _candidates(rng, WIDTH))
    assert logits.shape == (WIDTH, NUM_PHOENIX_ACTIONS)
    probs = jax.nn.sigmoid(logits)
    # Untrained but not constant: candidates get clearly different probabilities on every head.
    assert float(np.min(np.std(probs, axis=0))) > 0.05


def test_candidate_output_independent_of_other_candidates(params: model.Params) -> None:
    rng = np.random.default_rng(2)
    history = _history(rng, 9)
    target = _candidates(rng, 1)[0]
    others = _candidates(rng, WIDTH - 1)
    alone = _scores(params, history, [target])[0]
    first = _scores(params, history, [target, *others])[0]
    changed = _scores(params, history, [*_candidates(rng, 5), target])[5]
    order = rng.permutation(len(others) + 1)
    permuted_list = [[target, *others][i] for i in order]
    permuted = _scores(params, history, permuted_list)[int(np.argmax(order == 0))]
    padded = _scores(params, history, [target, *others[:3]], width=2 * WIDTH)[0]
    for variant in (first, changed, permuted, padded):
        np.testing.assert_allclose(variant, alone, atol=1e-5)


def test_candidate_output_depends_on_user_and_history(params: model.Params) -> None:
    rng = np.random.default_rng(3)
    history = _history(rng, 8)
    cands = _candidates(rng, 4)
    base = _scores(params, history, cands)
    other_history = _scores(params, _history(rng, 8), cands)
    other_user = np.asarray(rank(params, TINY, make_batch(TINY, [43], [history], [cands], num_candidates=WIDTH)))[0]
    assert np.abs(base - other_history).max() > 1e-3
    assert np.abs(base - other_user).max() > 1e-3


def _slice_history(batch: RankingBatch, length: int) -> tuple[np.ndarray, History]:
    return batch.user_hashes, batch.history.first_slots(length)


@pytest.mark.parametrize(("history_len", "bucket"), [(0, 4), (5, 8), (30, 16)])
def test_prefix_reuse_equals_full_forward(params: model.Params, history_len: int, bucket: int) -> None:
    rng = np.random.default_rng(4)
    batch = make_batch(TINY, [7], [_history(rng, history_len)], [_candidates(rng, 11)], num_candidates=WIDTH)
    full = np.asarray(rank(params, TINY, batch))
    prefix = encode_prefix(params, TINY, *_slice_history(batch, bucket))
    fast = score_from_prefix(params, TINY, prefix, batch.candidates())
    np.testing.assert_allclose(np.asarray(fast), full, atol=2e-5, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(forward(params, TINY, batch)), full, atol=2e-5, rtol=1e-5)


def test_attention_mask_shape_and_content() -> None:
    history_mask = jnp.array([[True, True, False], [True, False, False]])
    mask = np.asarray(model.attention_mask(history_mask, 2))
    assert mask.shape == (2, 6, 6)
    # rows/cols: 0 user, 1-3 history, 4-5 candidates; request 0 has two real history entries.
    expected0 = np.array(
        [
            [1, 0, 0, 0, 0, 0],
            [1, 1, 0, 0, 0, 0],
            [1, 1, 1, 0, 0, 0],
            [1, 1, 1, 0, 0, 0],
            [1, 1, 1, 0, 1, 0],
            [1, 1, 1, 0, 0, 1],
        ],
        dtype=bool,
    )
    np.testing.assert_array_equal(mask[0], expected0)
    assert not mask[1][:, 2:4].any()  # request 1: padded history keys are never attended
    assert mask[1][4, 1] and mask[1][5, 5] and not mask[1][5, 4]


def test_history_positions_count_back_from_the_newest_entry() -> None:
    mask = jnp.array([[True, True, True, False, False], [False, False, False, False, False]])
    np.testing.assert_array_equal(np.asarray(model.history_positions(mask, 16)), [[14, 15, 16, 0, 0], [0, 0, 0, 0, 0]])


def test_retrieval_towers_are_normalised_and_ignore_candidates(params: model.Params) -> None:
    rng = np.random.default_rng(5)
    history = _history(rng, 6)
    a = user_embedding(params, TINY, make_batch(TINY, [1], [history], [_candidates(rng, 3)], num_candidates=WIDTH))
    b = user_embedding(params, TINY, make_batch(TINY, [1], [history], [_candidates(rng, 9)], num_candidates=WIDTH))
    assert a.shape == (1, TINY.retrieval_dim)
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(a), axis=-1), 1.0, atol=1e-5)
    batch = make_batch(TINY, [1], [history], [_candidates(rng, WIDTH)], num_candidates=WIDTH)
    cand = np.asarray(
        candidate_embedding(params, TINY, batch.candidate_post_hashes[0], batch.candidate_author_hashes[0])
    )
    assert cand.shape == (WIDTH, TINY.retrieval_dim)
    np.testing.assert_allclose(np.linalg.norm(cand, axis=-1), 1.0, atol=1e-5)
    assert np.std(cand @ np.asarray(a)[0]) > 0.05


def test_init_is_seeded() -> None:
    a = model.init_params(TINY, jax.random.PRNGKey(3))
    b = model.init_params(TINY, jax.random.PRNGKey(3))
    c = model.init_params(TINY, jax.random.PRNGKey(4))
    table = "phoenix"
    np.testing.assert_array_equal(np.asarray(a[table]["post_table"]), np.asarray(b[table]["post_table"]))
    assert not np.array_equal(np.asarray(a[table]["post_table"]), np.asarray(c[table]["post_table"]))
