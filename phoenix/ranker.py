"""The worker's Phoenix inference service: ranking, retrieval and hot checkpoint reloads.

Scoring a request runs the user+history prefix once (`model.encode_prefix`, history padded to one of a few
bucket lengths) and then the candidates in chunks of a few bucketed sizes against the prefix keys/values
(`model.score_from_prefix`: each candidate is one query over [prefix ; itself]). Every jitted function
takes the params as an argument, so a reload with the same config reuses the compiled code, and `warmup()`
compiles every bucket up front: a running worker never compiles. The prefix keys/values are padded to the
full S+1 slots so that the candidate function has one shape per candidate bucket only.

Reloads build the new params and the re-embedded corpus off to the side, then swap one reference
(`_Served`): a request reads that reference once and uses it throughout, so scoring never pauses and
never mixes two models.
"""

import dataclasses
import functools
import os
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from phoenix import model
from phoenix.actions import NUM_ACTIONS, surface_id
from phoenix.batch import encode_history
from phoenix.checkpoint import load_checkpoint, read_version
from phoenix.config import PhoenixConfig
from phoenix.hashing import hash_ids
from phoenix.index import AnnConfig, Hit, PostIndex, StaleGenerationError
from phoenix.serving import FoldedPrefix, ServingWeights, candidate_logits, fold_prefix, fold_weights
from stores.records import ActionEntry

DEFAULT_CANDIDATE_BUCKETS = (32, 128, 512)
EMBED_BUCKETS = (64, 1024, 16_384)
HOME = surface_id("home_for_you")


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

    prefix: Callable[..., Any]  # (params, user_h, hist...) -> (FoldedPrefix, user embedding [1, R])
    score: Callable[..., Any]  # (weights, folded prefix, post_h [N,H], author_h [N,H], surface) -> [N, 19]
    embed: Callable[..., Any]  # (params, post_h, author_h) -> [N, R]


@functools.cache
def compiled_fns(cfg: PhoenixConfig) -> CompiledFns:
    full = 1 + cfg.history_len

    def prefix(params: model.Params, *history: jax.Array) -> tuple[FoldedPrefix, jax.Array]:
        pre = model.encode_prefix(params, cfg, *history)
        pad = full - pre.keys.shape[2]
        keys = jnp.pad(pre.keys, ((0, 0), (0, 0), (0, pad), (0, 0), (0, 0)))
        values = jnp.pad(pre.values, ((0, 0), (0, 0), (0, pad), (0, 0), (0, 0)))
        valid = jnp.pad(pre.valid, ((0, 0), (0, pad)))
        user = model.user_embedding_from_prefix(params, cfg, pre)
        return fold_prefix(cfg, keys, values, valid), user

    def score(
        weights: ServingWeights,
        folded: FoldedPrefix,
        post_hashes: jax.Array,
        author_hashes: jax.Array,
        surface: jax.Array,
    ) -> jax.Array:
        return jax.nn.sigmoid(candidate_logits(weights, cfg, folded, post_hashes, author_hashes, surface))

    def embed(params: model.Params, post_hashes: jax.Array, author_hashes: jax.Array) -> jax.Array:
        return model.candidate_embedding(params, cfg, post_hashes, author_hashes)

    return CompiledFns(jax.jit(prefix), jax.jit(score), jax.jit(embed))


@dataclass(frozen=True)
class _Served:
    cfg: PhoenixConfig
    params: model.Params
    weights: ServingWeights
    version: str
    fns: CompiledFns
    mtime_ns: int | None  # of the checkpoint file this came from


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
    ) -> None:
        self.checkpoint_path = os.fspath(checkpoint_path) if checkpoint_path is not None else None
        self.candidate_buckets = tuple(sorted(candidate_buckets))
        self._history_buckets = tuple(sorted(history_buckets)) if history_buckets else None
        self._state = self._serve(cfg, params, version, mtime_ns)
        state = self._state
        self.index = PostIndex(self._embedder(state), cfg.retrieval_dim, version, ann=ann)
        self._reload_lock = threading.Lock()

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], **kwargs: Any) -> "Ranker":
        mtime_ns = os.stat(path).st_mtime_ns
        ckpt = load_checkpoint(path)
        return cls(ckpt.cfg, ckpt.params, ckpt.version, checkpoint_path=path, mtime_ns=mtime_ns, **kwargs)

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

    def _serve(self, cfg: PhoenixConfig, params: model.Params, version: str, mtime_ns: int | None) -> _Served:
        weights = fold_weights(params, cfg)
        params = jax.device_put(jax.tree_util.tree_map(jnp.asarray, params))
        return _Served(cfg, params, weights, version, compiled_fns(cfg), mtime_ns)

    # -- ranking ---------------------------------------------------------------------------------------

    def prefix_args(self, cfg: PhoenixConfig, user_id: int, history: Sequence[ActionEntry]) -> tuple[np.ndarray, ...]:
        """Host-side inputs of the prefix program: hashes and history arrays padded to a history bucket."""
        length = _bucket(min(len(history), cfg.history_len), self.history_buckets(cfg))
        enc = encode_history(cfg, history, length)
        user = hash_ids(np.array([user_id], np.int64), "user", cfg)
        return (
            user,
            enc.post_hashes[None],
            enc.author_hashes[None],
            enc.actions[None],
            enc.surfaces[None],
            enc.mask[None],
        )

    def _prefix(self, state: _Served, user_id: int, history: Sequence[ActionEntry]) -> tuple[FoldedPrefix, jax.Array]:
        return state.fns.prefix(state.params, *self.prefix_args(state.cfg, user_id, history))

    def score(
        self,
        user_id: int,
        history: Sequence[ActionEntry],
        candidates: Sequence[tuple[int, int]],
        surface: int = HOME,
    ) -> np.ndarray:
        """[C, 19] action probabilities, one row per (post_id, author_id) candidate, in input order."""
        state = self._state
        if not len(candidates):
            return np.zeros((0, NUM_ACTIONS), np.float32)
        folded, _ = self._prefix(state, user_id, history)
        pairs = np.asarray(candidates, np.int64).reshape(-1, 2)
        post_hashes = hash_ids(pairs[:, 0], "post", state.cfg)
        author_hashes = hash_ids(pairs[:, 1], "author", state.cfg)
        surface_arr = np.int32(surface)
        chunk = self.candidate_buckets[-1]
        pieces = []
        for start in range(0, len(pairs), chunk):
            count = min(chunk, len(pairs) - start)
            pad = ((0, _bucket(count, self.candidate_buckets) - count), (0, 0))
            probs = state.fns.score(
                state.weights,
                folded,
                np.pad(post_hashes[start : start + count], pad),
                np.pad(author_hashes[start : start + count], pad),
                surface_arr,
            )
            pieces.append((probs, count))  # dispatched asynchronously; gathered below
        return np.concatenate([np.asarray(probs)[:count] for probs, count in pieces])

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
                emb = state.fns.embed(state.params, post_hashes, author_hashes)
                out[start : start + count] = np.asarray(emb)[:count]
            return out

        return embed

    def user_embedding(self, user_id: int, history: Sequence[ActionEntry]) -> np.ndarray:
        return np.asarray(self._prefix(self._state, user_id, history)[1])[0]

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
            query = np.asarray(self._prefix(state, user_id, history)[1])[0]
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
            folded, emb = self._prefix(state, 1, _stub_history(length))
        for size in self.candidate_buckets:
            hashes = np.ones((size, cfg.num_hashes), np.int32)
            jax.block_until_ready(state.fns.score(state.weights, folded, hashes, hashes, np.int32(HOME)))
        for size in EMBED_BUCKETS:
            hashes = np.ones((size, cfg.num_hashes), np.int32)
            jax.block_until_ready(state.fns.embed(state.params, hashes, hashes))
        jax.block_until_ready(emb)

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
        if mtime_ns == current.mtime_ns:
            return False
        if read_version(path) == current.version:
            self._state = dataclasses.replace(current, mtime_ns=mtime_ns)
            return False
        ckpt = load_checkpoint(path)
        fresh = self._serve(ckpt.cfg, ckpt.params, ckpt.version, mtime_ns)
        if fresh.cfg != current.cfg:
            self._warm(fresh)

        def install() -> None:
            self._state = fresh

        self.index.rebuild(self._embedder(fresh), generation=fresh.version, on_install=install)
        return True


def _stub_history(length: int) -> list[ActionEntry]:
    return [ActionEntry(i + 1, i + 1, 1, "home_for_you", i) for i in range(length)]
