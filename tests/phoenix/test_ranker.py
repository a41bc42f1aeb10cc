import dataclasses
import threading
from pathlib import Path

import jax
import numpy as np

from phoenix import model
from phoenix.age import ages_ms
from phoenix.batch import make_batch
from phoenix.checkpoint import save_checkpoint
from phoenix.hashing import hash_ids
from phoenix.ranker import Ranker
from stores.records import ActionEntry
from tests.phoenix.test_model import TINY as MODEL_TINY

# Grouped-query attention with a single key-value head.
TINY = dataclasses.replace(MODEL_TINY, num_q_heads=2, num_kv_heads=1)
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


def test_scores_with_ages_equal_reference_and_need_no_compile_after_warmup() -> None:
    cfg = dataclasses.replace(TINY, age_buckets=16)
    params = model.init_params(cfg, jax.random.PRNGKey(4))
    table = np.random.default_rng(5).standard_normal((cfg.age_buckets, cfg.emb_size)).astype(np.float32)
    params = {**params, "phoenix": {**params["phoenix"], "age_table": table}}
    ranker = Ranker(cfg, params, "aged", candidate_buckets=BUCKETS)
    ranker.warmup()
    compiled = ranker._state.fns.score._cache_size()
    now = 1_700_000_000_000
    history, cands = _history(6, 9), _candidates(7, 40)  # chunks of 32 and 8
    rng = np.random.default_rng(8)
    created = [None if i % 7 == 3 else now - int(rng.integers(0, 10**9)) for i in range(len(cands))]
    probs = ranker.score(11, history, cands, created_at_ms=created, now_ms=now)
    batch = make_batch(cfg, [11], [history], [cands], candidate_ages_ms=[ages_ms(now, created)])
    prefix = jax.jit(model.encode_prefix, static_argnums=1)(params, cfg, batch.user_hashes, batch.history)
    logits = jax.jit(model.score_from_prefix, static_argnums=1)(params, cfg, prefix, batch.candidates())
    np.testing.assert_allclose(probs, np.asarray(jax.nn.sigmoid(logits))[0], atol=1e-5)
    older = ranker.score(11, history, cands, created_at_ms=[now - 10**10, *created[1:]], now_ms=now)
    assert np.abs(older[0] - probs[0]).max() > 1e-3  # its own age matters
    np.testing.assert_allclose(older[1:], probs[1:], atol=1e-5)  # another's age does not
    unknown = ranker.score(11, history, cands)  # no creation times: every age unknown
    np.testing.assert_allclose(unknown[3], probs[3], atol=1e-5)
    assert ranker._state.fns.score._cache_size() == compiled  # the warm-up compiled every shape used


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


def test_an_unreadable_checkpoint_is_refused_once_and_the_current_model_kept(tmp_path: Path) -> None:
    path = tmp_path / "phoenix.npz"
    first = save_checkpoint(path, model.init_params(TINY, jax.random.PRNGKey(0)), TINY, {"step": 1})
    ranker = Ranker.from_checkpoint(path, candidate_buckets=BUCKETS)
    history, cands = _history(8, 12), _candidates(9, 10)
    before = ranker.score(1, history, cands)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])  # truncated, as by a copy cut short
    raised = False
    try:
        ranker.maybe_reload()
    except Exception:  # what a truncated zip raises is numpy's business; that it raises is ours
        raised = True
    assert raised
    assert ranker.version == first
    np.testing.assert_allclose(ranker.score(1, history, cands), before)
    assert not ranker.maybe_reload()  # the same bad file is not tried (nor reported) again
    second = save_checkpoint(path, model.init_params(TINY, jax.random.PRNGKey(1)), TINY, {"step": 2})
    assert ranker.maybe_reload() and ranker.version == second  # a good file written later is picked up
