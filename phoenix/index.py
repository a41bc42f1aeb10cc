"""The post-embedding corpus for two-tower retrieval: a growing and shrinking set of (post, author, vector).

Adds are buffered and embedded in batches by the candidate tower (`EmbedFn`); removals take effect at once.
Search is maximum inner product (all vectors are L2-normalised, so it is cosine similarity):

- Exact: one pass of faiss's brute-force inner-product k-NN over the contiguous float32 rows, which keeps
  the running top-k in a heap while it streams the matrix (no N-long score vector to write, negate and
  argpartition: 1.4-2x faster than numpy matvec + argpartition over 1M x 64 on this machine).
- Approximate, once the corpus holds `AnnConfig.min_size` live posts: a faiss inverted file (IVF) whose
  lists hold 4-bit fast-scan codes of the residuals (`IndexIVFPQFastScan`, one sub-quantizer per
  dimension, 32 bytes a post, inner-product metric), followed by an exact re-rank of the
  `refine_factor * k` best candidates against the float32 rows. The coarse cells number about
  sqrt(posts); a query scans `nprobe_fraction` of them. Training (k-means on a sample) takes seconds
  and is reused by later compactions until the corpus has grown or shrunk `retrain_growth`-fold or is
  re-embedded. HNSW (the previous choice) needed 13 minutes to build over 1M posts on this machine and
  did not reach the recall bound there for queries far from every post even at efSearch 2048 (12 ms).
  New posts are added to their nearest cell as they arrive. Removed posts are tombstones (filtered out of
  results, compensated by over-fetching) until `maintain()` compacts the rows once tombstones exceed
  `rebuild_dead_fraction` of them: faiss `remove_ids` on an IVF scans every list per call, and the rows
  must be renumbered at compaction anyway, while a tombstone costs one mask lookup per candidate.
  Documented bound: recall@100 against exact search >= RECALL_BOUND, checked by the tests for queries
  near the corpus (a trained user tower) and for queries far from every post (an untrained one, which
  needs the wider probe: recall there is governed by the fraction of cells scanned); `phoenix.bench`
  sweeps `nprobe_fraction` and reports the speed/recall trade-off measured.

Both searches drop excluded posts and authors (over-fetch, filter, widen if the filter ate too much) and
return (post_id, author_id, score) best first; scores are exact inner products in both paths.

faiss runs single-threaded here: one query is too little work to share, and an OpenMP team on a busy
2-core machine made single-query searches up to 10x and training 2.5x slower (measured). The OpenMP thread count is a
per-thread setting, so it is set by every call that enters faiss, whichever thread makes it.

Rebuilds (new embedding function after a checkpoint reload, or compaction) happen off to the side: the
live rows are snapshotted, the new `Corpus` is built without holding the lock while adds and removals keep
landing in the current one and in a journal, then the journal is replayed into the new corpus and a single
reference is swapped.
"""

import math
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
TRAIN_POINTS_PER_CELL: Final = 128  # k-means sample size per coarse cell (faiss warns below 39)


class StaleGenerationError(RuntimeError):
    """The corpus was re-embedded by a newer model than the query's."""


@dataclass(frozen=True)
class AnnConfig:
    min_size: int = 50_000  # fewer live posts than this: exact search is fast enough
    nlist: int | None = None  # coarse cells; None: the power of two nearest sqrt(live posts) at training
    nprobe_fraction: float = 0.5  # share of the cells a query scans
    refine_factor: int = 4  # candidates re-ranked exactly per result wanted (8: +0.01 recall, +15% time)
    rebuild_dead_fraction: float = 0.2
    retrain_growth: float = 4.0  # retrain the cells once the corpus is this many times larger (or smaller)

    def cells(self, posts: int) -> int:
        if self.nlist is not None:
            return self.nlist
        return max(16, 2 ** round(math.log2(math.sqrt(max(posts, 1)))))

    def probes(self, nlist: int) -> int:
        return min(nlist, max(1, round(self.nprobe_fraction * nlist)))


def _one_thread() -> None:
    faiss.omp_set_num_threads(1)


class AnnIndex:
    """IVF + 4-bit fast-scan codes over corpus rows (faiss ids are row numbers, added in row order)."""

    def __init__(self, trained: faiss.IndexIVFPQFastScan, trained_on: int) -> None:
        self._trained = trained  # kept empty: compactions start from a copy instead of retraining
        self.trained_on = trained_on
        self.index = faiss.clone_index(trained)

    @classmethod
    def train(cls, emb: np.ndarray, cfg: AnnConfig, seed: int = 0) -> "AnnIndex":
        _one_thread()
        dim = emb.shape[1]
        nlist = cfg.cells(len(emb))
        index = faiss.IndexIVFPQFastScan(faiss.IndexFlatIP(dim), dim, nlist, dim, 4, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        sample_size = min(len(emb), TRAIN_POINTS_PER_CELL * nlist)
        sample = emb[np.random.default_rng(seed).choice(len(emb), sample_size, replace=False)]
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
        return cls(index, len(emb))

    def emptied(self) -> "AnnIndex":
        """Same cells and codebooks, no rows."""
        return AnnIndex(self._trained, self.trained_on)

    @property
    def nlist(self) -> int:
        return int(self.index.nlist)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def add(self, emb: np.ndarray) -> None:
        _one_thread()
        self.index.add(np.ascontiguousarray(emb, dtype=np.float32))

    def candidates(self, query: np.ndarray, count: int, nprobe: int) -> np.ndarray:
        """Rows of the `count` best by the 4-bit codes (not yet exact), best first."""
        _one_thread()
        params = faiss.SearchParametersIVF()
        params.nprobe = nprobe
        _, rows = self.index.search(query[None], count, params=params)
        return rows[0][rows[0] >= 0]


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
        self.ann: AnnIndex | None = None

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
            self.ann.add(self.emb[rows])
        self.n += count  # last: a lock-free reader that saw n finds rows [0, n) in whichever arrays it reads

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


def _collect(
    corpus: Corpus,
    rows: np.ndarray,
    scores: np.ndarray,
    k: int,
    exclude_authors: Collection[int],
    exclude_posts: Collection[int],
) -> list[Hit]:
    """Rows sorted best first -> up to k hits that are alive and not excluded."""
    keep = corpus.alive[rows]
    hits: list[Hit] = []
    for post_id, author_id, score in zip(
        corpus.post_ids[rows][keep].tolist(), corpus.author_ids[rows][keep].tolist(), scores[keep].tolist(), strict=True
    ):
        if post_id in exclude_posts or author_id in exclude_authors:
            continue
        hits.append((post_id, author_id, score))
        if len(hits) == k:
            break
    return hits


def _first_fetch(corpus: Corpus, k: int, exclude_posts: Collection[int]) -> int:
    """Rows to fetch so that k usually survive tombstones and the excluded posts."""
    return k + len(exclude_posts) + math.ceil(k * corpus.dead / max(corpus.n, 1)) + 16


def search_exact(
    corpus: Corpus,
    query: np.ndarray,
    k: int,
    exclude_authors: Collection[int] = (),
    exclude_posts: Collection[int] = (),
) -> list[Hit]:
    n = corpus.n  # before the arrays: see Corpus.append
    emb = corpus.emb[:n]
    if n == 0 or k <= 0:
        return []
    q = np.asarray(query, np.float32)[None]
    fetch = _first_fetch(corpus, k, exclude_posts)
    while True:
        fetch = min(fetch, n)
        _one_thread()
        scores, rows = faiss.knn(q, emb, fetch, metric=faiss.METRIC_INNER_PRODUCT)
        hits = _collect(corpus, rows[0], scores[0], k, exclude_authors, exclude_posts)
        if len(hits) == k or fetch == n:
            return hits
        fetch *= 4  # dead rows or excluded authors ate the over-fetch: widen and retry


def search_ann(
    corpus: Corpus,
    query: np.ndarray,
    k: int,
    cfg: AnnConfig,
    exclude_authors: Collection[int] = (),
    exclude_posts: Collection[int] = (),
) -> list[Hit]:
    ann = corpus.ann
    assert ann is not None
    q = np.ascontiguousarray(query, dtype=np.float32)
    nprobe = cfg.probes(ann.nlist)
    fetch = _first_fetch(corpus, k, exclude_posts)
    while True:
        fetch = min(fetch, corpus.n)
        wanted = min(fetch * cfg.refine_factor, corpus.n)
        rows = ann.candidates(q, wanted, nprobe)
        scores = corpus.emb[rows] @ q
        best = np.argsort(-scores, kind="stable")[:fetch]
        hits = _collect(corpus, rows[best], scores[best], k, exclude_authors, exclude_posts)
        if len(hits) == k or fetch == corpus.n:
            return hits
        if fetch >= 8 * k + len(exclude_posts) + 1024:
            return search_exact(corpus, query, k, exclude_authors, exclude_posts)
        fetch *= 4  # tombstones or exclusions ate the over-fetch: widen and retry
        if len(rows) < wanted:
            nprobe = min(2 * nprobe, ann.nlist)  # the probed cells ran out of rows too


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
                # A faiss IVF must not be searched while rows are added to it, so ANN search holds the lock.
                return search_ann(corpus, query, k, self.ann, exclude_authors, exclude_posts)
        # Exact search reads only rows that already exist; concurrent appends and growth do not disturb it.
        return search_exact(corpus, query, k, exclude_authors, exclude_posts)

    def needs_maintenance(self) -> bool:
        corpus = self._corpus
        live = len(self)  # posts still waiting to be embedded count: a rebuild flushes them first
        too_dead = corpus.dead > self.ann.rebuild_dead_fraction * max(corpus.n, 1)
        if live < self.ann.min_size:
            return corpus.ann is not None and too_dead
        return corpus.ann is None or too_dead or self._needs_training(corpus.ann, live)

    def _needs_training(self, ann: AnnIndex, live: int) -> bool:
        """The cells were fitted to a corpus of a very different size (or the configured count changed)."""
        growth = self.ann.retrain_growth
        return not ann.trained_on / growth <= live <= ann.trained_on * growth or ann.nlist != self.ann.cells(
            ann.trained_on
        )

    def maintain(self) -> bool:
        """Build or retrain the ANN index, or compact tombstones, when due (off to the side); True if rebuilt."""
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
        """Compact, optionally re-embed with a new tower, rebuild the ANN index, then swap in the result.

        Compaction of an unchanged corpus reuses the trained cells and codebooks (only the rows are re-added);
        a re-embedded corpus, or one that grew or shrank `retrain_growth`-fold, is trained afresh.

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
                    corpus.ann = self._ann_for(old.ann if embed is None else None, corpus.emb[: corpus.n])
                with self._lock:
                    self._replay(old, corpus, new_embed, reembed=embed is not None)
                    self._corpus = corpus
                    self._embed = new_embed
                    if on_install is not None:
                        on_install()
            finally:
                with self._lock:
                    self._journal = None

    def _ann_for(self, previous: AnnIndex | None, emb: np.ndarray) -> AnnIndex:
        if previous is not None and not self._needs_training(previous, len(emb)):
            ann = previous.emptied()  # reads only the untouched trained copy: safe without the lock
        else:
            ann = AnnIndex.train(emb, self.ann)
        ann.add(emb)
        return ann

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
