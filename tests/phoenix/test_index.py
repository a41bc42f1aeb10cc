import dataclasses

import numpy as np
import pytest

from phoenix.index import RECALL_BOUND, AnnConfig, PostIndex

DIM = 32


def _corpus(n: int, seed: int = 0) -> np.ndarray:
    """Clustered unit vectors (posts by similar authors/topics sit together), row i = post i + 1."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(n // 100, 1), DIM))
    x = centres[rng.integers(0, len(centres), n)] + 0.6 * rng.standard_normal((n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _index(vectors: np.ndarray, ann: AnnConfig | None = None, batch_size: int = 256) -> PostIndex:
    calls = []

    def embed(post_ids: np.ndarray, author_ids: np.ndarray) -> np.ndarray:
        calls.append(len(post_ids))
        return vectors[post_ids - 1]

    index = PostIndex(embed, DIM, "g0", ann=ann or AnnConfig(min_size=10**9), batch_size=batch_size)
    index.embed_calls = calls  # type: ignore[attr-defined]
    return index


def _recall(index: PostIndex, queries: np.ndarray) -> float:
    recalls = []
    for query in queries:
        exact = {p for p, _, _ in index.search(query, 100, mode="exact")}
        approx = {p for p, _, _ in index.search(query, 100, mode="ann")}
        recalls.append(len(exact & approx) / 100)
    return float(np.mean(recalls))


def _near_queries(vectors: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Like a trained user tower's: close to some post."""
    rng = np.random.default_rng(seed)
    q = vectors[rng.choice(len(vectors), count, replace=False)] + 0.3 * rng.standard_normal((count, DIM)) / np.sqrt(DIM)
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def _far_queries(count: int, seed: int) -> np.ndarray:
    """Like an untrained user tower's: all near one direction that no post is particularly close to."""
    rng = np.random.default_rng(seed)
    q = rng.standard_normal(DIM) + 0.4 * rng.standard_normal((count, DIM)) / np.sqrt(DIM)
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def _brute_force(vectors: np.ndarray, alive: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    scores = np.where(alive, vectors @ query, -np.inf)
    order = np.argsort(-scores, kind="stable")[:k]
    return [int(i) + 1 for i in order if np.isfinite(scores[i])]


def test_add_remove_len_and_batched_embedding() -> None:
    vectors = _corpus(1000)
    index = _index(vectors, batch_size=256)
    for post in range(1, 601):
        index.add(post, post % 7)
    index.add(5, 5)  # duplicate add is ignored
    assert len(index) == 600
    assert index.embed_calls == [256, 256]  # type: ignore[attr-defined]
    assert index.remove(3) and index.remove(599)  # one embedded, one still pending
    assert not index.remove(3) and not index.remove(10_000)
    assert len(index) == 598 and 3 not in index and 4 in index


def test_exact_search_equals_brute_force_with_exclusions() -> None:
    vectors = _corpus(3000, seed=1)
    index = _index(vectors)
    authors = np.arange(1, 3001) % 50
    index.add_many(range(1, 3001), authors.tolist())
    alive = np.ones(3000, bool)
    removed = np.random.default_rng(2).choice(3000, 300, replace=False)
    for row in removed:
        index.remove(int(row) + 1)
    alive[removed] = False
    query = vectors[10] + 0.1 * vectors[20]
    query /= np.linalg.norm(query)
    hits = index.search(query, 100, mode="exact")
    assert [p for p, _, _ in hits] == _brute_force(vectors, alive, query, 100)
    assert all(a == (p % 50) for p, a, _ in hits)
    scores = [s for _, _, s in hits]
    assert scores == sorted(scores, reverse=True)
    np.testing.assert_allclose(scores[0], float(vectors[hits[0][0] - 1] @ query), rtol=1e-5)
    excluded_posts = {p for p, _, _ in hits[:10]}
    excluded_authors = {3, 4}
    allowed = alive & ~np.isin(np.arange(1, 3001), list(excluded_posts)) & ~np.isin(authors, list(excluded_authors))
    filtered = index.search(query, 100, excluded_authors, excluded_posts, mode="exact")
    assert [p for p, _, _ in filtered] == _brute_force(vectors, allowed, query, 100)


def test_ann_recall_above_documented_bound_and_tombstones() -> None:
    n = 20_000
    vectors = _corpus(n, seed=3)
    index = _index(vectors, AnnConfig(min_size=5_000), batch_size=4096)
    index.add_many(range(1, n + 1), [1] * n)
    assert index.maintain()  # builds the IVF index now that the corpus is large enough
    assert index.corpus.ann is not None and not index.needs_maintenance()
    assert _recall(index, _near_queries(vectors, 20, seed=4)) >= RECALL_BOUND
    assert _recall(index, _far_queries(20, seed=5)) >= RECALL_BOUND
    # The bound depends on probing enough cells: scanning a few misses much of the top-100.
    default = index.ann
    index.ann = dataclasses.replace(default, nprobe_fraction=0.02)
    assert _recall(index, _far_queries(20, seed=5)) < RECALL_BOUND
    index.ann = default
    # Removed posts never come back from the index; compaction happens once tombstones pile up.
    top = [p for p, _, _ in index.search(vectors[0], 50, mode="ann")]
    for post in top:
        index.remove(post)
    assert not set(top) & {p for p, _, _ in index.search(vectors[0], 50, mode="ann")}
    for post in range(1, 5001):
        index.remove(post)
    trained_on = index.corpus.ann.trained_on
    assert index.needs_maintenance() and index.maintain()
    live = n - len(set(top) | set(range(1, 5001)))
    assert index.corpus.dead == 0 and len(index) == live
    assert index.corpus.ann is not None and index.corpus.ann.ntotal == live
    assert index.corpus.ann.trained_on == trained_on  # compaction reused the trained cells
    assert _recall(index, _near_queries(vectors[5000:], 20, seed=6)) >= RECALL_BOUND


def test_ann_takes_new_posts_honours_exclusions_and_retrains_after_growth() -> None:
    n = 40_000
    vectors = _corpus(n, seed=7)
    authors = np.where(np.arange(1, n + 1) % 2 == 0, 1, np.arange(1, n + 1) % 97 + 2)  # author 1: half the posts
    index = _index(vectors, AnnConfig(min_size=5_000, retrain_growth=4.0), batch_size=4096)
    index.add_many(range(1, 8001), authors[:8000].tolist())
    assert index.maintain() and index.corpus.ann is not None
    nlist = index.corpus.ann.nlist
    index.add_many(range(8001, 20_001), authors[8000:20_000].tolist())
    query = vectors[15_000]
    assert index.search(query, 1, mode="ann")[0][0] == 15_001  # added after the build, found by the index
    assert index.corpus.ann.ntotal == 20_000 and not index.needs_maintenance()
    excluded_posts = {p for p, _, _ in index.search(query, 30, mode="exact")}
    hits = index.search(query, 100, {1}, excluded_posts, mode="ann")
    exact = index.search(query, 100, {1}, excluded_posts, mode="exact")
    assert len(hits) == 100 and all(a != 1 and p not in excluded_posts for p, a, _ in hits)
    assert len({p for p, _, _ in hits} & {p for p, _, _ in exact}) >= RECALL_BOUND * 100
    scores = [s for _, _, s in hits]
    assert scores == sorted(scores, reverse=True)
    np.testing.assert_allclose(scores, [float(vectors[p - 1] @ query) for p, _, _ in hits], rtol=1e-5)
    index.add_many(range(20_001, n + 1), authors[20_000:].tolist())
    index.flush()
    assert index.needs_maintenance() and index.maintain()  # 5x the posts it was trained on: retrain
    assert index.corpus.ann.trained_on == n and index.corpus.ann.nlist > nlist
    assert _recall(index, _near_queries(vectors, 20, seed=8)) >= RECALL_BOUND


def test_rebuild_reembeds_and_replaces_generation() -> None:
    vectors = _corpus(500, seed=5)
    index = _index(vectors)
    index.add_many(range(1, 501), [0] * 500)
    flipped = -vectors

    def embed(post_ids: np.ndarray, author_ids: np.ndarray) -> np.ndarray:
        return flipped[post_ids - 1]

    best_before = index.search(vectors[7], 1)[0][0]
    index.rebuild(embed, generation="g1")
    assert index.generation == "g1"
    assert index.corpus.ann is None  # below min_size: exact search only
    assert best_before == 8 and index.search(vectors[7], 1)[0][0] != 8
    index.add(501 - 1, 0)  # already present
    assert len(index) == 500
    with pytest.raises(RuntimeError):
        index.search(vectors[7], 1, generation="g0")
