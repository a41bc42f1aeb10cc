"""One candidate against many users: the Phoenix half the draft simulator needs.

The ranker scores many candidates against one user's prefix; a draft is the opposite shape, one candidate
against a whole audience. So each user's prefix (`FoldedPrefix`, the per-layer keys and values of
user+history) is computed once with the ranker's own prefix program and kept by the caller, and the draft is
scored against a stack of prefixes by the ranker's own candidate function (`folded.candidate_logits`)
mapped over users (`jax.vmap`): the same arithmetic as `Ranker.score`, batched the other way.

Users are scored in chunks of a few bucketed sizes (padding repeats the first user), so a worker compiles
one program per bucket and a chunk's stacked prefixes stay small (256 users of the demo config: ~68 MB).
"""

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from phoenix.affinity import content_affinity
from phoenix.age import age_buckets, ages_ms
from phoenix.batch import Candidates, History
from phoenix.config import PhoenixConfig
from phoenix.folded import FoldedPrefix, candidate_logits
from phoenix.hashing import hash_ids
from phoenix.ranker import HOME, Ranker
from stores.records import ActionEntry
from topics.actions import NUM_PHOENIX_ACTIONS

USER_BUCKETS = (16, 64, 256)


class AudiencePrefix(NamedTuple):
    """One user's cached part: the folded prefix, and for a config with content affinity the history as the
    prefix program read it ([1, S, ...]; a candidate's affinity is read against its content, actions and mask)."""

    folded: FoldedPrefix
    history: History | None


@functools.cache
def _batched_score(cfg: PhoenixConfig) -> Callable[..., Any]:
    def score(weights: Any, keys: jax.Array, values: jax.Array, bias: jax.Array, candidate: Candidates,
              affinity: jax.Array | None) -> jax.Array:
        # keys [U, L, Hkv, K, T], values [U, L, Hkv, T, K], bias [U, T]; the one candidate [1, ...] without its
        # affinity, which depends on the user: affinity [U, 1, N] or None
        def one(k: jax.Array, v: jax.Array, b: jax.Array, a: jax.Array | None) -> jax.Array:
            logits = candidate_logits(weights, cfg, FoldedPrefix(k, v, b), candidate._replace(affinity=a))
            return jax.nn.sigmoid(logits[0])  # [19]

        return jax.vmap(one)(keys, values, bias, affinity)  # [U, 19]

    return jax.jit(score)


class AudienceRanker:
    """The `streams.simulate.AudienceRankerPort` over a worker's `Ranker`: reads its served model once per
    call (a reload between calls shows in `version`, which the simulator's cache is keyed by)."""

    def __init__(self, ranker: Ranker) -> None:
        self._ranker = ranker

    @property
    def version(self) -> str:
        return self._ranker.version

    def prefix(self, user_id: int, history: Sequence[ActionEntry]) -> AudiencePrefix:
        state = self._ranker._state
        user_hashes, arrays = self._ranker.prefix_args(state, user_id, history)
        folded = state.fns.prefix(state.prefix_weights, user_hashes, arrays)
        if not state.cfg.affinity_buckets:
            return AudiencePrefix(folded, None)
        return AudiencePrefix(folded, arrays)

    def user_embedding(self, user_id: int, history: Sequence[ActionEntry]) -> np.ndarray:
        return self._ranker.user_embedding(user_id, history)

    def post_embedding(self, post_id: int, author_id: int) -> np.ndarray:
        """The post's retrieval embedding, as the index embeds a new post."""
        embed = self._ranker._embedder(self._ranker._state)
        return embed(np.array([post_id], np.int64), np.array([author_id], np.int64))[0]

    def score_for_users(
        self, prefixes: Sequence[AudiencePrefix], post_id: int, author_id: int, created_at_ms: int | None,
        now_ms: int, content: np.ndarray | None = None,
    ) -> np.ndarray:
        """[U, 19] action probabilities of one candidate for each user's prefix, in order. `content` is the
        candidate's content vector (default: read from the ranker's content source)."""
        state = self._ranker._state
        cfg = state.cfg
        if not prefixes:
            return np.zeros((0, NUM_PHOENIX_ACTIONS), np.float32)
        ages = age_buckets(ages_ms(now_ms, [created_at_ms]), cfg.age_buckets) if cfg.age_buckets else None
        vectors = ids = None
        if cfg.has_content:
            given = None if content is None else np.asarray(content, np.float32)[None]
            vectors, ids = self._ranker.content_inputs(state, [post_id], given)  # [1, E], [1, L]
        candidate = Candidates(
            post_hashes=hash_ids(np.array([post_id], np.int64), "post", cfg),
            author_hashes=hash_ids(np.array([author_id], np.int64), "author", cfg),
            surfaces=np.int32(HOME),
            ages=ages,
            content=vectors,
            semantic_ids=ids,
        )
        fn = _batched_score(cfg)
        probabilities = np.zeros((len(prefixes), NUM_PHOENIX_ACTIONS), np.float32)
        # Users' prefixes come in a few history-bucket lengths: one batched call per length, in chunks.
        by_length: dict[tuple[int, ...], list[int]] = {}
        for index, prefix in enumerate(prefixes):
            by_length.setdefault(tuple(prefix.folded.keys.shape), []).append(index)
        step = USER_BUCKETS[-1]
        for indices in by_length.values():
            for start in range(0, len(indices), step):
                chunk = indices[start : start + step]
                size = next(b for b in USER_BUCKETS if len(chunk) <= b)
                padded = [prefixes[i] for i in chunk] + [prefixes[chunk[0]]] * (size - len(chunk))
                affinity = None
                if cfg.affinity_buckets:  # per user: histories differ in length
                    affinity = np.concatenate([
                        content_affinity(cfg, p.history.content, p.history.actions, p.history.mask, vectors[None])
                        for p in padded
                    ])  # [U, 1, 2]
                probs = fn(
                    state.weights,
                    jnp.stack([p.folded.keys for p in padded]),
                    jnp.stack([p.folded.values for p in padded]),
                    jnp.stack([p.folded.bias for p in padded]),
                    candidate,
                    affinity,
                )
                probabilities[chunk] = np.asarray(probs)[: len(chunk)]
        calibrated = self._ranker.calibrate(probabilities)  # as the Phoenix scorer serves them
        return probabilities if calibrated is None else calibrated
