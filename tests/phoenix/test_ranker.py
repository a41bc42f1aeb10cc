import threading
from pathlib import Path

import jax
import numpy as np

from phoenix import model
from phoenix.batch import make_batch
from phoenix.checkpoint import save_checkpoint
from phoenix.config import PhoenixConfig
from phoenix.hashing import hash_ids
from phoenix.ranker import Ranker
from stores.records import ActionEntry

TINY = PhoenixConfig(
    name="tiny",
    emb_size=32,
    num_layers=2,
    num_q_heads=2,
    num_kv_heads=1,
    key_size=16,
    widening_factor=2.0,
    history_len=16,
    user_vocab=257,
    post_vocab=4099,
    author_vocab=1031,
    retrieval_dim=8,
)
BUCKETS = (8, 32)
# Reference computations, jitted: eager JAX compiles every op separately and would dominate the test time.
rank_logits = jax.jit(model.rank_logits, static_argnums=1)
user_embedding = jax.jit(model.user_embedding, static_argnums=1)
candidate_embedding = jax.jit(model.candidate_embedding, static_argnums=1)


def _history(seed: int, n: int) -> list[ActionEntry]:
    rng = np.random.default_rng(seed)
    return [
        ActionEntry(int(rng.integers(1, 10**9)), int(rng.integers(1, 500)), int(rng.integers(1, 1 << 19)), "search", i)
        for i in range(n)
    ]


def _candidates(seed: int, n: int) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    return [(int(rng.integers(1, 10**9)), int(rng.integers(1, 500))) for _ in range(n)]


def test_untrained_scores_equal_full_forward_across_chunks() -> None:
    ranker = Ranker.untrained(TINY, seed=3, candidate_buckets=BUCKETS)
    assert ranker.version == "untrained-tiny-s3"
    history, cands = _history(1, 21), _candidates(2, 75)  # 75 candidates: chunks of 32, 32 and 11 (padded to 32)
    probs = ranker.score(11, history, cands)
    assert probs.shape == (75, 19) and probs.dtype == np.float32
    batch = make_batch(TINY, [11], [history], [cands])
    params = model.init_params(TINY, jax.random.PRNGKey(3))
    expected = np.asarray(jax.nn.sigmoid(rank_logits(params, TINY, batch)))[0]
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    np.testing.assert_allclose(ranker.score(11, history, cands[40:43]), probs[40:43], atol=1e-5)
    assert ranker.score(11, history, []).shape == (0, 19)


def test_retrieve_is_exact_top_k_with_exclusions() -> None:
    ranker = Ranker.untrained(TINY, seed=0, candidate_buckets=BUCKETS)
    posts = _candidates(5, 300)
    for post_id, author_id in posts:
        ranker.index.add(post_id, author_id)
    assert len(ranker.index) == 300
    history = _history(6, 9)
    params = model.init_params(TINY, jax.random.PRNGKey(0))
    user = np.asarray(user_embedding(params, TINY, make_batch(TINY, [4], [history], [[]])))[0]
    ids = np.array(posts)
    cand = np.asarray(
        candidate_embedding(params, TINY, hash_ids(ids[:, 0], "post", TINY), hash_ids(ids[:, 1], "author", TINY))
    )
    scores = cand @ user
    excluded_author = posts[int(np.argmax(scores))][1]
    excluded_post = posts[int(np.argsort(-scores)[1])][0]
    keep = (ids[:, 1] != excluded_author) & (ids[:, 0] != excluded_post)
    expected = [posts[i][0] for i in np.argsort(-np.where(keep, scores, -np.inf))[:20]]
    hits = ranker.retrieve(4, history, 20, exclude_authors={excluded_author}, exclude_posts={excluded_post})
    assert [p for p, _, _ in hits] == expected
    np.testing.assert_allclose([s for _, _, s in hits], np.sort(scores[keep])[::-1][:20], atol=1e-5)


def test_reload_swaps_version_params_and_corpus(tmp_path: Path) -> None:
    path = tmp_path / "phoenix.npz"
    first = save_checkpoint(path, model.init_params(TINY, jax.random.PRNGKey(0)), TINY, {"step": 1})
    ranker = Ranker.from_checkpoint(path, candidate_buckets=BUCKETS)
    ranker.warmup()
    assert ranker.version == first
    for post_id, author_id in _candidates(7, 50):
        ranker.index.add(post_id, author_id)
    history, cands = _history(8, 12), _candidates(9, 10)
    before = ranker.score(1, history, cands)
    retrieved_before = ranker.retrieve(1, history, 5)
    assert not ranker.maybe_reload()  # unchanged file

    second = save_checkpoint(path, model.init_params(TINY, jax.random.PRNGKey(1)), TINY, {"step": 2})
    stop = threading.Event()
    errors: list[BaseException] = []

    def keep_scoring() -> None:
        while not stop.is_set():
            try:
                ranker.score(1, history, cands)
                ranker.retrieve(1, history, 5)
            except BaseException as exc:  # surfaced by the assertion below
                errors.append(exc)
                return

    worker = threading.Thread(target=keep_scoring)
    worker.start()
    try:
        assert ranker.maybe_reload()
    finally:
        stop.set()
        worker.join()
    assert not errors
    assert ranker.version == second != first
    assert ranker.index.generation == second and len(ranker.index) == 50
    after = ranker.score(1, history, cands)
    assert np.abs(after - before).max() > 1e-3
    # Nothing computed from the old model (e.g. by the scoring thread above) leaks into the new one's scores.
    np.testing.assert_allclose(after, Ranker.from_checkpoint(path, candidate_buckets=BUCKETS).score(1, history, cands))
    assert ranker.retrieve(1, history, 5) != retrieved_before
    assert not ranker.maybe_reload()
