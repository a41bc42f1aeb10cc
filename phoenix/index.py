"""The post-embedding corpus for two-tower retrieval: a growing and shrinking set of (post, author, vector).

Adds are buffered and embedded in batches by the candidate tower (`EmbedFn`); removals take effect at once.
Search is maximum inner product (all vectors are L2-normalised, so it is cosine similarity):

- Exact: one float32 matrix-vector product over the corpus and an `argpartition`, numpy only.
- Approximate, once the corpus holds `AnnConfig.min_size` live posts: a faiss HNSW graph (`IndexHNSWFlat`,
  inner-product metric). HNSW was chosen over IVF because it needs no training (so it grows one post at
  a time without drifting centroids) and reaches high recall@100 at a few ms per query on a 2-core CPU;
  `ef_search` trades speed for recall. HNSW cannot delete, so removed posts are tombstones (filtered out
  of results, compensated by over-fetching) and `maintain()` compacts the rows and rebuilds the graph once
  tombstones exceed `rebuild_dead_fraction` of the rows. Documented bound: recall@100 against exact search
  >= RECALL_BOUND for queries that lie near the corpus (checked by the tests on a clustered corpus).
  Queries far from every post (e.g. an untrained user tower) need a larger `ef_search` for the same
  recall; `phoenix.bench` sweeps it and reports the speed/recall trade-off measured.

Both searches drop excluded posts and authors and return (post_id, author_id, score) best first.

Rebuilds (new embedding function after a checkpoint reload, or compaction) happen off to the side: the
live rows are snapshotted, the new `Corpus` is built without holding the lock while adds and removals keep
landing in the current one and in a journal, then the journal is replayed into the new corpus and a single
reference is swapped.
"""

import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Final, Literal

import faiss
import numpy as np

EmbedFn = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (post_ids [N], author_ids [N]) -> [N, R] float32
SearchMode = Literal["auto", "exact", "ann"]
Hit = tuple[int, int, float]

RECALL_BOUND: Final = 0.95  # recall@100 of the approximate path against exact search


class StaleGenerationError(RuntimeError):
    """The corpus was re-embedded by a newer model than the query's."""


@dataclass(frozen=True)
class AnnConfig:
    min_size: int = 50_000  # fewer live posts than this: exact search is fast enough
    m: int = 32  # HNSW links per node
    ef_construction: int = 64
    ef_search: int = 512
    rebuild_dead_fraction: float = 0.2


class Corpus:
    """One generation of embeddings: rows in insertion order, dead rows kept until the next rebuild."""

    def __init__(self, dim: int, generation: str, capacity: int = 1024) -> None:
        self.dim = dim
        self.generation = generation
        self.emb = np.zeros((capacity, dim), np.float32)
        self.post_ids = np.zeros(capacity, np.int64)
        self.author_ids = np.zeros(capacity, np.int64)
        self.alive = np.zeros(capacity, bool)
        self.n = 0
        self.dead = 0
        self.row_of: dict[int, int] = {}
        self.ann: faiss.IndexHNSWFlat | None = None

    @property
    def live(self) -> int:
        return self.n - self.dead

    def append(self, post_ids: np.ndarray, author_ids: np.ndarray, emb: np.ndarray) -> None:
        count = len(post_ids)
        if self.n + count > len(self.emb):
            capacity = max(2 * len(self.emb), self.n + count)
            # New arrays rather than in-place resize: readers holding the old ones stay valid.
            self.emb = _grown(self.emb, capacity)
            self.post_ids = _grown(self.post_ids, capacity)
            self.author_ids = _grown(self.author_ids, capacity)
            self.alive = _grown(self.alive, capacity)
        rows = slice(self.n, self.n + count)
        self.emb[rows] = emb
        self.post_ids[rows] = post_ids
        self.author_ids[rows] = author_ids
        self.alive[rows] = True
        for offset, post_id in enumerate(post_ids.tolist()):
            self.row_of[post_id] = self.n + offset
        if self.ann is not None:
            self.ann.add(np.ascontiguousarray(emb, dtype=np.float32))
        self.n += count

    def kill(self, post_id: int) -> bool:
        row = self.row_of.pop(post_id, None)
        if row is None:
            return False
        self.alive[row] = False
        self.dead += 1
        return True

    def live_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        keep = self.alive[: self.n]
        return self.post_ids[: self.n][keep], self.author_ids[: self.n][keep], self.emb[: self.n][keep]


def _grown(a: np.ndarray, capacity: int) -> np.ndarray:
    out = np.zeros((capacity, *a.shape[1:]), a.dtype)
    out[: len(a)] = a
    return out


def build_hnsw(emb: np.ndarray, ann: AnnConfig) -> faiss.IndexHNSWFlat:
    index = faiss.IndexHNSWFlat(emb.shape[1], ann.m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ann.ef_construction
    index.add(np.ascontiguousarray(emb, dtype=np.float32))
    return index


def _collect(
    corpus: Corpus,
    rows: np.ndarray,
    scores: np.ndarray,
    k: int,
    exclude_authors: Collection[int],
    exclude_posts: Collection[int],
) -> list[Hit]:
    """Rows sorted best first -> up to k hits that are alive and not excluded."""
    hits: list[Hit] = []
    for row, score in zip(rows.tolist(), scores.tolist(), strict=True):
        if row < 0 or not corpus.alive[row]:
            continue
        post_id = int(corpus.post_ids[row])
        author_id = int(corpus.author_ids[row])
        if post_id in exclude_posts or author_id in exclude_authors:
            continue
        hits.append((post_id, author_id, float(score)))
        if len(hits) == k:
            break
    return hits


def search_exact(
    corpus: Corpus,
    query: np.ndarray,
    k: int,
    exclude_authors: Collection[int] = (),
    exclude_posts: Collection[int] = (),
) -> list[Hit]:
    n = corpus.n
    if n == 0 or k <= 0:
        return []
    scores = corpus.emb[:n] @ np.asarray(query, np.float32)
    fetch = k + len(exclude_posts) + 16
    while True:
        fetch = min(fetch, n)
        top = np.argpartition(-scores, fetch - 1)[:fetch] if fetch < n else np.arange(n)
        top = top[np.argsort(-scores[top], kind="stable")]
        hits = _collect(corpus, top, scores[top], k, exclude_authors, exclude_posts)
        if len(hits) == k or fetch == n:
            return hits
        fetch *= 4  # dead rows or excluded authors ate the over-fetch: widen and retry


def search_ann(
    corpus: Corpus,
    query: np.ndarray,
    k: int,
    ef_search: int,
    exclude_authors: Collection[int] = (),
    exclude_posts: Collection[int] = (),
) -> list[Hit]:
    assert corpus.ann is not None
    q = np.ascontiguousarray(np.asarray(query, np.float32)[None])
    fetch = k + len(exclude_posts) + int(np.ceil(k * corpus.dead / max(corpus.n, 1))) + 16
    while True:
        fetch = min(fetch, corpus.n)
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(ef_search, fetch)
        scores, rows = corpus.ann.search(q, fetch, params=params)
        hits = _collect(corpus, rows[0], scores[0], k, exclude_authors, exclude_posts)
        if len(hits) == k or fetch == corpus.n:
            return hits
        if fetch >= 8 * k + len(exclude_posts) + 1024:
            return search_exact(corpus, query, k, exclude_authors, exclude_posts)
        fetch *= 4


class PostIndex:
    """Thread-safe corpus facade: add/remove from the event loop, search and rebuild from other threads."""

    def __init__(
        self,
        embed: EmbedFn,
        dim: int,
        generation: str = "",
        *,
        ann: AnnConfig | None = None,
        batch_size: int = 1024,
    ) -> None:
        self._embed = embed
        self.dim = dim
        self.ann = ann if ann is not None else AnnConfig()
        self.batch_size = batch_size
        self._corpus = Corpus(dim, generation)
        self._pending: dict[int, int] = {}  # post_id -> author_id, not yet embedded
        self._journal: list[tuple[str, int, int]] | None = None  # ops during a rebuild
        self._lock = threading.RLock()
        self._rebuild_lock = threading.Lock()

    @property
    def generation(self) -> str:
        return self._corpus.generation

    @property
    def corpus(self) -> Corpus:
        return self._corpus

    def __len__(self) -> int:
        with self._lock:
            return self._corpus.live + len(self._pending)

    def __contains__(self, post_id: object) -> bool:
        return post_id in self._pending or post_id in self._corpus.row_of

    def add(self, post_id: int, author_id: int) -> None:
        """Idempotent; embedding happens in batches (when `batch_size` adds are pending, or at search)."""
        with self._lock:
            if post_id in self._pending or post_id in self._corpus.row_of:
                return
            self._pending[post_id] = author_id
            if self._journal is not None:
                self._journal.append(("add", post_id, author_id))
            if len(self._pending) >= self.batch_size:
                self._flush_locked()

    def add_many(self, post_ids: Collection[int], author_ids: Collection[int]) -> None:
        for post_id, author_id in zip(post_ids, author_ids, strict=True):
            self.add(int(post_id), int(author_id))

    def remove(self, post_id: int) -> bool:
        with self._lock:
            if self._journal is not None:
                self._journal.append(("remove", post_id, 0))
            if self._pending.pop(post_id, None) is not None:
                return True
            return self._corpus.kill(post_id)

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if not self._pending:
            return
        post_ids = np.fromiter(self._pending.keys(), np.int64, len(self._pending))
        author_ids = np.fromiter(self._pending.values(), np.int64, len(self._pending))
        self._pending.clear()
        self._corpus.append(post_ids, author_ids, self._embed(post_ids, author_ids))

    def search(
        self,
        query: np.ndarray,
        k: int,
        exclude_authors: Collection[int] = (),
        exclude_posts: Collection[int] = (),
        *,
        mode: SearchMode = "auto",
        generation: str | None = None,
    ) -> list[Hit]:
        """Top-k by inner product; `generation` guards against a query from a model the corpus no longer uses."""
        exclude_authors = exclude_authors if isinstance(exclude_authors, set | frozenset) else set(exclude_authors)
        exclude_posts = exclude_posts if isinstance(exclude_posts, set | frozenset) else set(exclude_posts)
        with self._lock:
            self._flush_locked()
            corpus = self._corpus
            if generation is not None and corpus.generation != generation:
                raise StaleGenerationError(f"corpus is {corpus.generation!r}, query from {generation!r}")
            use_ann = corpus.ann is not None and mode != "exact"
            if mode == "ann" and not use_ann:
                raise ValueError("no approximate index has been built (see maintain())")
            if use_ann:
                # faiss HNSW does not allow a search concurrent with an add, so ANN search holds the lock.
                return search_ann(corpus, query, k, self.ann.ef_search, exclude_authors, exclude_posts)
        # Exact search reads only rows that already exist; concurrent appends and growth do not disturb it.
        return search_exact(corpus, query, k, exclude_authors, exclude_posts)

    def needs_maintenance(self) -> bool:
        corpus = self._corpus
        if corpus.live < self.ann.min_size:
            return corpus.ann is not None and corpus.dead > self.ann.rebuild_dead_fraction * max(corpus.n, 1)
        return corpus.ann is None or corpus.dead > self.ann.rebuild_dead_fraction * corpus.n

    def maintain(self) -> bool:
        """Build the ANN graph or compact tombstones when due (off to the side); True if rebuilt."""
        if not self.needs_maintenance():
            return False
        self.rebuild()
        return True

    def rebuild(
        self,
        embed: EmbedFn | None = None,
        generation: str | None = None,
        on_install: Callable[[], None] | None = None,
    ) -> None:
        """Compact, optionally re-embed with a new tower, rebuild the ANN graph, then swap in the result.

        `on_install` runs under the index lock right after the swap (the Ranker swaps its model there, so
        no search can see the new corpus with the old model).
        """
        with self._rebuild_lock:
            with self._lock:
                self._flush_locked()
                old = self._corpus
                post_ids, author_ids, emb = old.live_rows()
                self._journal = []
            try:
                new_embed = embed or self._embed
                if embed is not None:
                    emb = self._embed_in_batches(new_embed, post_ids, author_ids)
                corpus = Corpus(self.dim, generation if generation is not None else old.generation, len(post_ids))
                corpus.append(post_ids, author_ids, emb)
                if len(post_ids) >= self.ann.min_size:
                    corpus.ann = build_hnsw(corpus.emb[: corpus.n], self.ann)
                with self._lock:
                    self._replay(old, corpus, new_embed, reembed=embed is not None)
                    self._corpus = corpus
                    self._embed = new_embed
                    if on_install is not None:
                        on_install()
            finally:
                with self._lock:
                    self._journal = None

    def _replay(self, old: Corpus, new: Corpus, embed: EmbedFn, reembed: bool) -> None:
        """Apply the adds/removals that happened during a rebuild (called with the lock held)."""
        assert self._journal is not None
        added: dict[int, int] = {}
        for op, post_id, author_id in self._journal:
            if op == "add":
                added[post_id] = author_id
            else:
                added.pop(post_id, None)
                new.kill(post_id)
        # Still-pending adds are embedded by whichever tower is current when they flush.
        flushed = {p: a for p, a in added.items() if p not in self._pending and p in old.row_of}
        if not flushed:
            return
        post_ids = np.fromiter(flushed.keys(), np.int64, len(flushed))
        author_ids = np.fromiter(flushed.values(), np.int64, len(flushed))
        emb = embed(post_ids, author_ids) if reembed else old.emb[[old.row_of[p] for p in flushed]]
        new.append(post_ids, author_ids, emb)

    def _embed_in_batches(self, embed: EmbedFn, post_ids: np.ndarray, author_ids: np.ndarray) -> np.ndarray:
        out = np.zeros((len(post_ids), self.dim), np.float32)
        step = max(self.batch_size, 16_384)
        for start in range(0, len(post_ids), step):
            out[start : start + step] = embed(post_ids[start : start + step], author_ids[start : start + step])
        return out
