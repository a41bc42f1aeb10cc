"""The worker's Phoenix inference service: ranking, retrieval and hot checkpoint reloads.

A request's user+history prefix is encoded once (history padded to one of a few bucket lengths): retrieval
asks for it first and gets, from one pass (`folded.prefix_and_user`), the per-layer keys/values scoring
needs and the user tower's embedding; ranking then finds that prefix in a small per-model cache keyed by the
exact inputs (user, history ids, actions, surfaces), and encodes it itself (`folded.prefix_keys_values`,
without the last layer's attention) only when retrieval did not run. The candidates then go in chunks of a
few bucketed sizes against it (`folded.candidate_logits`: each candidate is one query over
[prefix ; itself]); both halves are folded rewrites of `model.encode_prefix` / `model.score_from_prefix`
and the user tower of `model.user_embedding_from_prefix`. Every jitted function takes the params
(or the weights folded from them) as an argument, so a reload with the same config reuses the compiled
code, and `warmup()` compiles every bucket up front: a running worker never compiles. The prefix
keys/values are padded to the full S+1 slots so that the candidate function has one shape per candidate
bucket only. A config with post ages (`age_buckets` > 0) always gets an age bucket array (bucket 0 for an
unknown creation time), one without always gets None, so each config has one signature per bucket and the
warm-up covers it.

On the 2-core CPU, XLA already splits every large product of one program across both cores, while two
programs dispatched together run one after the other; so the candidates of a request go through one
program per chunk rather than being split across Python threads. Requests scored at the same time (a worker
runs several as asyncio tasks, each calling `score` from a pool thread) share forwards through a
micro-batcher (`phoenix.batcher`): calls that arrive while a forward runs are grouped into the next one,
where chunks of the same bucket size from different requests go through one [B, N] program (B in
BATCH_SIZES, B x N <= ROWS_PER_FORWARD), each against its own request's prefix; one request alone is never
delayed. Measured on this CPU the gain is small (two 1,024-row chunks: 8.3 ms batched vs 8.8 ms one by one;
four 512-row chunks: 8.1 vs 11.2 ms), because one forward already keeps both cores busy.

Content (a config with `content_dim` > 0): the ranker reads the posts' content vectors from its
`content_source` (the worker's post store, where they are written at ingest) for the history, the
candidates (unless the caller passes them) and the retrieval corpus, and turns them into semantic ids with
the checkpoint's codebooks, cached per post (a post's vector never changes; the cache is per model). A post
without a stored vector (unknown, or past retention in an old history) reads as "content unknown".

Reloads build the new params and the re-embedded corpus off to the side, then swap one reference
(`_Served`): a request reads that reference once and uses it throughout, so scoring never pauses and
never mixes two models.
"""

import dataclasses
import functools
import itertools
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from phoenix import model
from phoenix.affinity import content_affinity
from phoenix.age import UNKNOWN_AGE_BUCKET, age_buckets, ages_ms
from phoenix.batch import Candidates, History, actions_multi_hot, encode_history, served_posts, stack_histories
from phoenix.batcher import MicroBatcher
from phoenix.calibration import Calibration
from phoenix.checkpoint import load_checkpoint, read_version
from phoenix.config import PhoenixConfig
from phoenix.folded import (
    FoldedPrefix,
    PrefixWeights,
    ServingWeights,
    candidate_logits,
    fold_prefix_weights,
    fold_weights,
    prefix_and_user,
    prefix_keys_values,
)
from phoenix.hashing import hash_ids
from phoenix.index import AnnConfig, Hit, PostIndex, StaleGenerationError
from phoenix.semantic_ids import model_ids
from stores.records import ActionEntry
from topics.actions import NUM_PHOENIX_ACTIONS, surface_id

DEFAULT_CANDIDATE_BUCKETS = (32, 128, 512, 1024)
# Candidate rows per batched forward: several requests' chunks of one bucket size go through one program as
# [B, N] with B in BATCH_SIZES and B x N at most this. Past about 2,048 rows the [B, N, T] attention weights
# leave the caches and a batched forward got slower than the same chunks one by one (measured on this CPU).
ROWS_PER_FORWARD = 2048
BATCH_SIZES = (4, 2)
MAX_BATCHED_REQUESTS = 16  # requests whose candidates share one batch of forwards
PREFIX_CACHE = 64  # encoded user prefixes kept per model (DEMO: 0.26 MB each); one request needs one
EMBED_BUCKETS = (64, 1024, 16_384)
HOME = surface_id("home_for_you")
SEMANTIC_ID_CACHE = 500_000  # posts whose semantic ids are kept (L int32 each); cleared when full

ContentSource = Callable[[Sequence[int]], np.ndarray]  # post ids -> [N, E] float32 content (zero = unknown)


def default_history_buckets(cfg: PhoenixConfig) -> tuple[int, ...]:
    return tuple(sorted({b for b in (16, 32, 64) if b < cfg.history_len} | {cfg.history_len}))


def _bucket(n: int, buckets: Sequence[int]) -> int:
    for size in buckets:
        if n <= size:
            return size
    return buckets[-1]


@dataclass(frozen=True)
class CompiledFns:
    """Jitted entry points for one config (shared by every Ranker and every reload with that config)."""

    prefix: Callable[..., Any]  # (prefix weights, user_h [1, H], History [1, ...]) -> FoldedPrefix
    prefix_user: Callable[..., Any]  # the same arguments -> (FoldedPrefix, user embedding [R])
    score: Callable[..., Any]  # (weights, folded, Candidates [N, ...] with one scalar surface) -> [N, 19]
    score_batch: Callable[..., Any]  # `score` over a leading [B] axis of everything but the weights
    embed: Callable[..., Any]  # (params, post_h, author_h, content [N,E]|None, ids [N,L]|None) -> [N, R]


@functools.cache
def compiled_fns(cfg: PhoenixConfig) -> CompiledFns:

    def prefix(weights: PrefixWeights, user_hashes: jax.Array, history: History) -> FoldedPrefix:
        return prefix_keys_values(weights, cfg, user_hashes, history)

    def prefix_user(
        weights: PrefixWeights, user_hashes: jax.Array, history: History
    ) -> tuple[FoldedPrefix, jax.Array]:
        return prefix_and_user(weights, cfg, user_hashes, history)

    def score(weights: ServingWeights, folded: FoldedPrefix, candidates: Candidates) -> jax.Array:
        """[N, 19] probabilities of one request's candidates against its prefix."""
        return jax.nn.sigmoid(candidate_logits(weights, cfg, folded, candidates))

    def embed(
        params: model.Params,
        post_hashes: jax.Array,
        author_hashes: jax.Array,
        content: jax.Array | None,
        semantic_ids: jax.Array | None,
    ) -> jax.Array:
        return model.candidate_embedding(params, cfg, post_hashes, author_hashes, content, semantic_ids)

    batched = jax.vmap(score, in_axes=(None, 0, 0))
    return CompiledFns(jax.jit(prefix), jax.jit(prefix_user), jax.jit(score), jax.jit(batched), jax.jit(embed))


class UserPrefix(NamedTuple):
    """One request's encoded user (history through the transformer), computed once for retrieval and ranking."""

    folded: FoldedPrefix
    embedding: np.ndarray | None  # [R] the user tower's output; None when only scoring asked for the prefix
    args: tuple[np.ndarray, History]  # the prefix program's host inputs (affinity reads the history)


class _PrefixCache:
    """Recently encoded prefixes of one model, by their exact inputs (so a user whose history changed, or a
    reused list object, never gets a stale prefix). Thread-safe; least recently used out first."""

    def __init__(self, capacity: int = PREFIX_CACHE) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[tuple[Any, ...], UserPrefix] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0

    def get(self, key: tuple[Any, ...], with_user: bool) -> UserPrefix | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or (with_user and entry.embedding is None):
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: tuple[Any, ...], entry: UserPrefix) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)


@dataclass(frozen=True)
class _Chunk:
    """Up to one bucket of one request's candidates, padded to the bucket size: the `score` input."""

    size: int
    count: int
    candidates: Candidates  # [size, ...], surfaces the request's one scalar id


@dataclass(frozen=True)
class _ScoreJob:
    """One request's scoring: its model state, prefix and candidate chunks."""

    state: "_Served"
    folded: FoldedPrefix
    chunks: tuple[_Chunk, ...]


def _split_batches(count: int, size: int) -> list[int]:
    """How many chunks of `size` rows each forward takes: the largest allowed batch sizes first, then ones."""
    pieces = []
    for batch in BATCH_SIZES:
        if batch * size > ROWS_PER_FORWARD:
            continue
        while count >= batch:
            pieces.append(batch)
            count -= batch
    return pieces + [1] * count


def run_score_jobs(jobs: Sequence[_ScoreJob]) -> list[np.ndarray]:
    """Every job's [C, k] probabilities; chunks of the same model and bucket size from different requests go
    through one batched forward. All forwards are dispatched before any result is read."""
    groups: dict[tuple[int, int], list[tuple[int, int]]] = {}  # (model, size) -> (job, chunk) indexes
    for j, job in enumerate(jobs):
        for c, chunk in enumerate(job.chunks):
            groups.setdefault((id(job.state), chunk.size), []).append((j, c))
    outputs: list[tuple[Any, list[tuple[int, int]]]] = []  # (device array [B?, size, k], the chunks in it)
    for members in groups.values():
        start = 0
        for batch in _split_batches(len(members), jobs[members[0][0]].chunks[members[0][1]].size):
            part = members[start : start + batch]
            start += batch
            outputs.append((_forward(jobs, part), part))
    pieces: dict[tuple[int, int], np.ndarray] = {}
    for probs, part in outputs:
        host = np.asarray(probs)
        if len(part) == 1:
            host = host[None]
        for row, (j, c) in zip(host, part, strict=True):
            pieces[(j, c)] = row[: jobs[j].chunks[c].count]
    return [np.concatenate([pieces[(j, c)] for c in range(len(job.chunks))]) for j, job in enumerate(jobs)]


def _forward(jobs: Sequence[_ScoreJob], part: list[tuple[int, int]]) -> Any:
    """Dispatch one forward over these (job, chunk) pairs (one chunk: the unbatched program)."""
    state = jobs[part[0][0]].state
    chunks = [jobs[j].chunks[c] for j, c in part]
    if len(part) == 1:
        return state.fns.score(state.weights, jobs[part[0][0]].folded, chunks[0].candidates)
    folded = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *(jobs[j].folded for j, _ in part))
    # Absent inputs (None) are empty subtrees, so they stay None; the scalar surfaces stack to [B].
    candidates = jax.tree_util.tree_map(lambda *xs: np.stack(xs), *(chunk.candidates for chunk in chunks))
    return state.fns.score_batch(state.weights, folded, candidates)


@dataclass(frozen=True)
class _Served:
    cfg: PhoenixConfig
    params: model.Params
    prefix_weights: PrefixWeights
    weights: ServingWeights
    version: str
    fns: CompiledFns
    mtime_ns: int | None  # of the checkpoint file this came from
    semantic_ids: "_SemanticIds | None" = None  # None for a config without semantic ids
    calibration: Calibration | None = None  # per-head maps from the checkpoint's meta (phoenix.calibration)
    prefixes: _PrefixCache = dataclasses.field(default_factory=_PrefixCache)  # this model's encoded users


class _SemanticIds:
    """Semantic ids of posts under one model's codebooks, cached per post id (known content only)."""

    def __init__(self, codebooks: np.ndarray, capacity: int = SEMANTIC_ID_CACHE) -> None:
        self._codebooks = np.asarray(codebooks, np.float32)
        self._capacity = capacity
        self._rows: dict[int, np.ndarray] = {}

    def __call__(self, post_ids: Sequence[int], vectors: np.ndarray) -> np.ndarray:
        """[N, L] int32 model ids of the posts whose content is `vectors` [N, E] (0 where unknown)."""
        out = np.zeros((len(post_ids), self._codebooks.shape[0]), np.int32)
        rows = self._rows
        missing = []
        for i, post_id in enumerate(post_ids):
            row = rows.get(post_id)
            if row is None:
                missing.append(i)
            else:
                out[i] = row
        if missing:
            known = vectors[missing].any(1)
            out[missing] = model_ids(vectors[missing], self._codebooks, known)
            if len(rows) + len(missing) > self._capacity:
                rows.clear()
            for i in np.asarray(missing)[known].tolist():
                rows[post_ids[i]] = out[i]
        return out


class Ranker:
    def __init__(
        self,
        cfg: PhoenixConfig,
        params: model.Params,
        version: str,
        *,
        checkpoint_path: str | os.PathLike[str] | None = None,
        mtime_ns: int | None = None,
        candidate_buckets: Sequence[int] = DEFAULT_CANDIDATE_BUCKETS,
        history_buckets: Sequence[int] | None = None,
        ann: AnnConfig | None = None,
        calibration: Calibration | None = None,
        codebooks: np.ndarray | None = None,
        content_source: ContentSource | None = None,
    ) -> None:
        self.checkpoint_path = os.fspath(checkpoint_path) if checkpoint_path is not None else None
        self.content_source = content_source  # where content vectors come from (None: unknown for every post)
        self.candidate_buckets = tuple(sorted(candidate_buckets))
        self._history_buckets = tuple(sorted(history_buckets)) if history_buckets else None
        self._state = self._serve(cfg, params, version, mtime_ns, codebooks, calibration)
        state = self._state
        self.index = PostIndex(self._embedder(state), cfg.retrieval_dim, version, ann=ann)
        self._reload_lock = threading.Lock()
        self._unreadable_mtime_ns: int | None = None  # of a checkpoint file that failed to load
        self.batcher: MicroBatcher[_ScoreJob, np.ndarray] = MicroBatcher(run_score_jobs, MAX_BATCHED_REQUESTS)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], **kwargs: Any) -> "Ranker":
        mtime_ns = os.stat(path).st_mtime_ns
        ckpt = load_checkpoint(path)
        return cls(
            ckpt.cfg,
            ckpt.params,
            ckpt.version,
            checkpoint_path=path,
            mtime_ns=mtime_ns,
            codebooks=ckpt.codebooks,
            calibration=Calibration.from_meta(ckpt.meta),
            **kwargs,
        )

    @classmethod
    def untrained(cls, cfg: PhoenixConfig, seed: int = 0, **kwargs: Any) -> "Ranker":
        params = model.init_params(cfg, jax.random.PRNGKey(seed))
        return cls(cfg, params, f"untrained-{cfg.name}-s{seed}", **kwargs)

    @property
    def version(self) -> str:
        return self._state.version

    @property
    def cfg(self) -> PhoenixConfig:
        return self._state.cfg

    def history_buckets(self, cfg: PhoenixConfig) -> tuple[int, ...]:
        if self._history_buckets is None:
            return default_history_buckets(cfg)
        return (*tuple(b for b in self._history_buckets if b < cfg.history_len), cfg.history_len)

    def _serve(
        self,
        cfg: PhoenixConfig,
        params: model.Params,
        version: str,
        mtime_ns: int | None,
        codebooks: np.ndarray | None,
        calibration: Calibration | None = None,
    ) -> _Served:
        if (codebooks is not None) != bool(cfg.semantic_id_levels):
            raise ValueError("a config with semantic ids needs its codebooks (and only such a config has them)")
        params = jax.device_put(jax.tree_util.tree_map(jnp.asarray, params))
        weights = fold_weights(params, cfg)
        return _Served(
            cfg,
            params,
            fold_prefix_weights(params, cfg),
            weights,
            version,
            compiled_fns(cfg),
            mtime_ns,
            _SemanticIds(codebooks) if codebooks is not None else None,
            calibration,
        )

    @property
    def calibration(self) -> Calibration | None:
        return self._state.calibration

    def calibrate(self, probabilities: np.ndarray) -> np.ndarray | None:
        """`score`'s probabilities through the checkpoint's per-head calibration; None when it has none
        (the scorer then serves the model's own probabilities)."""
        calibration = self._state.calibration
        return None if calibration is None else calibration.apply(probabilities)

    # -- content ---------------------------------------------------------------------------------------

    def content_inputs(
        self, state: _Served, post_ids: Sequence[int], vectors: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Content vectors [N, E] (from `vectors` if given, else the content source) and semantic ids [N, L]."""
        cfg = state.cfg
        if vectors is None:
            source = self.content_source
            vectors = source(post_ids) if source is not None and len(post_ids) else None
        if vectors is None:
            vectors = np.zeros((len(post_ids), cfg.content_dim), np.float32)
        vectors = np.asarray(vectors, np.float32)
        if vectors.shape != (len(post_ids), cfg.content_dim):
            raise ValueError(f"content vectors of shape {vectors.shape} for {len(post_ids)} posts of {cfg.content_dim}")
        if state.semantic_ids is None:
            return vectors, np.zeros((len(post_ids), 0), np.int32)
        return vectors, state.semantic_ids(post_ids, vectors)

    def served_inputs(
        self, state: _Served, history: Sequence[ActionEntry], served_ids: Collection[int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The served posts' content vectors [1, M, E], actions [1, M, 19] and mask [1, M] (`served_posts`),
        as training builds them from a log (`phoenix.examples.examples_to_batch`)."""
        rows = served_posts(history, served_ids)
        post_ids = [post_id for post_id, _ in rows]
        source = self.content_source
        vectors = source(post_ids) if source is not None and post_ids else None
        if vectors is None:
            vectors = np.zeros((len(post_ids), state.cfg.content_dim), np.float32)
        masks = np.array([mask for _, mask in rows], np.int64)
        return np.asarray(vectors, np.float32)[None], actions_multi_hot(masks)[None], np.ones((1, len(rows)), bool)

    # -- ranking ---------------------------------------------------------------------------------------

    def prefix_args(
        self, state: _Served, user_id: int, history: Sequence[ActionEntry]
    ) -> tuple[np.ndarray, History]:
        """Host-side inputs of the prefix program: the user's hashes [1, H] and the history padded to a
        history bucket ([1, ...]; with its content vectors and semantic ids for a config with content)."""
        cfg = state.cfg
        length = _bucket(min(len(history), cfg.history_len), self.history_buckets(cfg))
        enc = encode_history(cfg, history, length)
        user = hash_ids(np.array([user_id], np.int64), "user", cfg)
        arrays = stack_histories([enc.history])
        if cfg.has_content:
            vectors, ids = self.content_inputs(state, enc.post_ids.tolist())
            arrays = arrays._replace(content=vectors[None], semantic_ids=ids[None])
        return user, arrays

    def _prefix(self, state: _Served, user_id: int, history: Sequence[ActionEntry]) -> FoldedPrefix:
        return state.fns.prefix(state.prefix_weights, *self.prefix_args(state, user_id, history))

    def user_prefix(
        self, state: _Served, user_id: int, history: Sequence[ActionEntry], with_user: bool
    ) -> UserPrefix:
        """The request's encoded prefix, from the cache when the same user and history were encoded last
        (retrieval encodes it with the user embedding; ranking then finds it); `with_user` asks for the
        embedding too, which costs the last layer over the history more."""
        cfg = state.cfg
        length = _bucket(min(len(history), cfg.history_len), self.history_buckets(cfg))
        kept = history[-min(cfg.history_len, length) :] if length else ()
        # The exact inputs: ids, actions, surfaces and order (content is a function of the post id).
        key = (user_id, length, tuple((e.post_id, e.author_id, e.action_mask, e.surface) for e in kept))
        cached = state.prefixes.get(key, with_user)
        if cached is not None:
            return cached
        args = self.prefix_args(state, user_id, history)
        if with_user:
            folded, embedding = state.fns.prefix_user(state.prefix_weights, *args)
            entry = UserPrefix(folded, np.asarray(embedding), args)
        else:
            entry = UserPrefix(state.fns.prefix(state.prefix_weights, *args), None, args)
        state.prefixes.put(key, entry)
        return entry

    def score(
        self,
        user_id: int,
        history: Sequence[ActionEntry],
        candidates: Sequence[tuple[int, int]],
        surface: int = HOME,
        created_at_ms: Sequence[int | None] | None = None,
        now_ms: int | None = None,
        content: np.ndarray | None = None,
        served_ids: Collection[int] = (),
    ) -> np.ndarray:
        """[C, 19] action probabilities, one row per (post_id, author_id) candidate, in input order.

        `created_at_ms` (aligned with `candidates`, None = unknown) and the request time `now_ms` (default:
        the wall clock) give the candidates' post ages; used only by a config with ages. `content` [C, E]
        gives the candidates' content vectors (default: read from the content source); used only by a
        config with content. `served_ids` are the posts served to the user before (the served history),
        read by a config with `served_affinity`.
        """
        state = self._state
        total = len(candidates)
        if not total:
            return np.zeros((0, NUM_PHOENIX_ACTIONS), np.float32)
        # A fresh prefix runs asynchronously: the candidates' hashing below overlaps it.
        prefix = self.user_prefix(state, user_id, history, with_user=False)
        pairs = _id_pairs(candidates)
        post_hashes = hash_ids(pairs[:, 0], "post", state.cfg)
        author_hashes = hash_ids(pairs[:, 1], "author", state.cfg)
        surface_arr = np.int32(surface)
        ages = _age_bucket_ids(state.cfg, total, created_at_ms, now_ms)
        vectors = ids = None
        if state.cfg.has_content:
            vectors, ids = self.content_inputs(state, pairs[:, 0].tolist(), content)
        affinity = None
        if state.cfg.affinity_buckets:
            arrays = prefix.args[1]
            served = self.served_inputs(state, history, served_ids) if state.cfg.served_affinity else ()
            affinity = content_affinity(
                state.cfg, arrays.content, arrays.actions, arrays.mask, vectors[None], *served
            )[0]
        step = self.candidate_buckets[-1]
        chunks = []
        for start in range(0, total, step):
            count = min(step, total - start)
            size = _bucket(count, self.candidate_buckets)
            rows = slice(start, start + count)
            chunks.append(
                _Chunk(
                    size,
                    count,
                    Candidates(
                        post_hashes=_padded(post_hashes[rows], size),
                        author_hashes=_padded(author_hashes[rows], size),
                        surfaces=surface_arr,
                        ages=None if ages is None else _padded_ages(ages[rows], size),
                        content=None if vectors is None else _padded(vectors[rows], size),
                        semantic_ids=None if ids is None else _padded(ids[rows], size),
                        affinity=None if affinity is None else _padded(affinity[rows], size),
                    ),
                )
            )
        # Requests scored at the same time from other threads share forwards (phoenix.batcher).
        return self.batcher.submit(_ScoreJob(state, prefix.folded, tuple(chunks)))

    # -- retrieval -------------------------------------------------------------------------------------

    def _embedder(self, state: _Served) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        def embed(post_ids: np.ndarray, author_ids: np.ndarray) -> np.ndarray:
            out = np.zeros((len(post_ids), state.cfg.retrieval_dim), np.float32)
            step = EMBED_BUCKETS[-1]
            for start in range(0, len(post_ids), step):
                count = min(step, len(post_ids) - start)
                size = _bucket(count, EMBED_BUCKETS)
                pad = ((0, size - count), (0, 0))
                post_hashes = np.pad(hash_ids(post_ids[start : start + count], "post", state.cfg), pad)
                author_hashes = np.pad(hash_ids(author_ids[start : start + count], "author", state.cfg), pad)
                vectors = ids = None
                if state.cfg.has_content:
                    vectors, ids = self.content_inputs(state, post_ids[start : start + count].tolist())
                    vectors, ids = np.pad(vectors, pad), np.pad(ids, pad)
                emb = state.fns.embed(state.params, post_hashes, author_hashes, vectors, ids)
                out[start : start + count] = np.asarray(emb)[:count]
            return out

        return embed

    def user_embedding(self, user_id: int, history: Sequence[ActionEntry]) -> np.ndarray:
        embedding = self.user_prefix(self._state, user_id, history, with_user=True).embedding
        assert embedding is not None
        return embedding

    def retrieve(
        self,
        user_id: int,
        history: Sequence[ActionEntry],
        k: int,
        exclude_authors: Collection[int] = (),
        exclude_posts: Collection[int] = (),
        *,
        exact: bool = False,
    ) -> list[Hit]:
        """Top-k (post_id, author_id, score) from the corpus, best first (ANN once the corpus is large)."""
        for _ in range(3):
            state = self._state
            query = self.user_prefix(state, user_id, history, with_user=True).embedding
            assert query is not None
            try:
                return self.index.search(
                    query,
                    k,
                    exclude_authors,
                    exclude_posts,
                    mode="exact" if exact else "auto",
                    generation=state.version,
                )
            except StaleGenerationError:
                continue  # a reload swapped the corpus between reading the model and searching: redo
        raise RuntimeError("model and corpus kept changing during retrieval")

    # -- lifecycle -------------------------------------------------------------------------------------

    def warmup(self) -> None:
        """Compile every bucketed shape of the current config (prefix, candidate chunks, tower batches)."""
        self._warm(self._state)

    def _warm(self, state: _Served) -> None:
        cfg = state.cfg
        for length in self.history_buckets(cfg):
            args = self.prefix_args(state, 1, _stub_history(length))
            folded = jax.block_until_ready(state.fns.prefix(state.prefix_weights, *args))
            jax.block_until_ready(state.fns.prefix_user(state.prefix_weights, *args))
        for size in self.candidate_buckets:
            hashes = np.ones((size, cfg.num_hashes), np.int32)
            ages = _padded_ages(np.zeros(0, np.int32), size) if cfg.age_buckets else None
            vectors, ids = _stub_content(cfg, size)
            affinity = np.zeros((size, cfg.num_affinity_inputs), np.int32) if cfg.affinity_buckets else None
            chunk = _Chunk(size, size, Candidates(hashes, hashes, np.int32(HOME), ages, vectors, ids, affinity))
            for batch in (1, *(b for b in BATCH_SIZES if b * size <= ROWS_PER_FORWARD)):
                jax.block_until_ready(run_score_jobs([_ScoreJob(state, folded, (chunk,) * batch)]))
        for size in EMBED_BUCKETS:
            hashes = np.ones((size, cfg.num_hashes), np.int32)
            jax.block_until_ready(state.fns.embed(state.params, hashes, hashes, *_stub_content(cfg, size)))

    def maybe_reload(self) -> bool:
        """Swap in a newer checkpoint from `checkpoint_path` if there is one; True if the version changed.

        Also runs due index maintenance (ANN build, tombstone compaction). Never blocks scoring; concurrent
        calls return False while another reload is in progress.
        """
        if self.checkpoint_path is None or not self._reload_lock.acquire(blocking=False):
            return False
        try:
            swapped = self._reload_if_changed(self.checkpoint_path)
            if not swapped:
                self.index.maintain()
            return swapped
        finally:
            self._reload_lock.release()

    def _reload_if_changed(self, path: str) -> bool:
        current = self._state
        try:
            mtime_ns = os.stat(path).st_mtime_ns
        except FileNotFoundError:
            return False
        if mtime_ns in (current.mtime_ns, self._unreadable_mtime_ns):
            return False
        try:
            if read_version(path) == current.version:
                self._state = dataclasses.replace(current, mtime_ns=mtime_ns)
                return False
            ckpt = load_checkpoint(path)
            fresh = self._serve(
                ckpt.cfg, ckpt.params, ckpt.version, mtime_ns, ckpt.codebooks, Calibration.from_meta(ckpt.meta)
            )
            if fresh.cfg != current.cfg:
                self._warm(fresh)
        except Exception:
            # Raised once per file: the same unreadable file is not tried again until it changes.
            self._unreadable_mtime_ns = mtime_ns
            raise

        def install() -> None:
            self._state = fresh

        self.index.rebuild(self._embedder(fresh), generation=fresh.version, on_install=install)
        return True


def _id_pairs(candidates: Sequence[tuple[int, int]]) -> np.ndarray:
    """[C, 2] int64 (post_id, author_id); from a list of tuples without numpy's slower nested-sequence parsing."""
    if isinstance(candidates, np.ndarray):
        return candidates.astype(np.int64, copy=False).reshape(-1, 2)
    flat = np.fromiter(itertools.chain.from_iterable(candidates), np.int64, 2 * len(candidates))
    return flat.reshape(-1, 2)


def _padded(rows: np.ndarray, size: int) -> np.ndarray:
    """Rows [n, W] (hashes, content vectors, semantic ids) followed by zero (padding) rows up to `size`."""
    out = np.zeros((size, rows.shape[1]), rows.dtype)
    out[: len(rows)] = rows
    return out


def _stub_content(cfg: PhoenixConfig, size: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    if not cfg.has_content:
        return None, None
    return np.zeros((size, cfg.content_dim), np.float32), np.zeros((size, cfg.semantic_id_levels), np.int32)


def _age_bucket_ids(
    cfg: PhoenixConfig, total: int, created_at_ms: Sequence[int | None] | None, now_ms: int | None
) -> np.ndarray | None:
    """[C] int32 age buckets for a config with ages (all unknown without creation times), else None."""
    if not cfg.age_buckets:
        return None
    if created_at_ms is None:
        return np.full(total, UNKNOWN_AGE_BUCKET, np.int32)
    if len(created_at_ms) != total:
        raise ValueError(f"{len(created_at_ms)} creation times for {total} candidates")
    now = now_ms if now_ms is not None else time.time_ns() // 1_000_000
    return age_buckets(ages_ms(now, created_at_ms), cfg.age_buckets)


def _padded_ages(ages: np.ndarray, size: int) -> np.ndarray:
    """Age buckets [n] followed by the unknown bucket up to `size` (padding rows are discarded anyway)."""
    out = np.full(size, UNKNOWN_AGE_BUCKET, np.int32)
    out[: len(ages)] = ages
    return out


def _stub_history(length: int) -> list[ActionEntry]:
    return [ActionEntry(i + 1, i + 1, 1, "home_for_you", i) for i in range(length)]
