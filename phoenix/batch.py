"""Model inputs as plain numpy arrays, and their construction from store records.

Layout: histories are left-aligned, oldest first (slot 0 = oldest kept entry), padding after the last real
entry; candidates likewise fill the first slots. The model derives rotary positions from the masks, so the
arrays may also be built directly (e.g. by training code) as long as masked slots are padding. A history
is one `History` wherever it goes (batch, model, folded serving forward), not its arrays one by one, and the
candidates scored against it likewise one `Candidates` (`RankingBatch.candidates` builds it from a batch).

`candidate_ages` holds each candidate's post-age bucket (`phoenix.age`) when the config has `age_buckets`
> 0, and is None otherwise (so a batch for an age-free config is exactly what it was before ages existed).
Likewise the four content arrays are set exactly when the config has content (`content_dim` > 0), from a
`ContentTable` (posts without known content get zero vectors and semantic id 0).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import NamedTuple

import jax
import numpy as np

from phoenix.affinity import content_affinity
from phoenix.age import age_buckets
from phoenix.config import PhoenixConfig
from phoenix.hashing import hash_ids
from phoenix.posts import ContentTable
from stores.records import ActionEntry
from topics.actions import NUM_PHOENIX_ACTIONS, surface_id

_ACTION_BITS = np.arange(NUM_PHOENIX_ACTIONS, dtype=np.int64)


class History(NamedTuple):
    """The user's recent actions as the model reads them (a pytree, so it passes through jit as one argument).

    Shapes are those of a batch; one request's history (`encode_history`) has no leading B. S may be any
    bucketed length up to the config's history_len: positions count back from the newest real entry.
    """

    post_hashes: np.ndarray  # [B, S, H] int32
    author_hashes: np.ndarray  # [B, S, H] int32
    actions: np.ndarray  # [B, S, 19] float32 multi-hot
    surfaces: np.ndarray  # [B, S] int32
    mask: np.ndarray  # [B, S] bool
    # Content (None for a config without content): vectors (zero = unknown) and semantic ids (0 = unknown).
    content: np.ndarray | None = None  # [B, S, E] float32
    semantic_ids: np.ndarray | None = None  # [B, S, L] int32

    def first_slots(self, slots: int) -> "History":
        """The first `slots` slots of a batched history (they hold the newest entries when it was built
        for at most that many)."""
        return History(*(None if array is None else array[:, :slots] for array in self))


def stack_histories(histories: Sequence[History]) -> History:
    """Requests' histories of one length -> one batched History (a leading B axis on every array)."""
    return History(*(None if parts[0] is None else np.stack(parts) for parts in zip(*histories, strict=True)))


class Candidates(NamedTuple):
    """The posts to score as the model reads them (a pytree, so it passes through jit as one argument).

    Shapes are those of a batch ([B, C, ...]; `model.score_from_prefix`). The serving forward
    (`folded.candidate_logits`) takes one request's candidates with no leading B and `surfaces` as one
    scalar id: a request's candidates are all shown on its surface.
    """

    post_hashes: np.ndarray  # [B, C, H] int32
    author_hashes: np.ndarray  # [B, C, H] int32
    surfaces: np.ndarray  # [B, C] int32
    ages: np.ndarray | None = None  # [B, C] int32 age bucket ids (0 = unknown); None = all unknown, or no ages
    # Content (None for a config without content): vectors (zero = unknown) and semantic ids (0 = unknown).
    content: np.ndarray | None = None  # [B, C, E] float32
    semantic_ids: np.ndarray | None = None  # [B, C, L] int32
    affinity: np.ndarray | None = None  # [B, C, N] int32 affinity buckets; None = unknown, or no affinity


@dataclass(frozen=True)
class RankingBatch:
    user_hashes: np.ndarray  # [B, H] int32
    history: History  # [B, S, ...]
    candidate_post_hashes: np.ndarray  # [B, C, H] int32
    candidate_author_hashes: np.ndarray  # [B, C, H] int32
    candidate_surfaces: np.ndarray  # [B, C] int32
    candidate_mask: np.ndarray  # [B, C] bool
    candidate_ages: np.ndarray | None = None  # [B, C] int32 age bucket ids (0 = unknown); None without ages
    # Content (None for a config without content): vectors (zero = unknown) and semantic ids (0 = unknown).
    candidate_content: np.ndarray | None = None  # [B, C, E] float32
    candidate_semantic_ids: np.ndarray | None = None  # [B, C, L] int32
    candidate_affinity: np.ndarray | None = None  # [B, C, N] int32 affinity buckets; None without affinity

    def as_dict(self) -> dict[str, np.ndarray | History]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def candidates(self) -> Candidates:
        """The candidate arrays as the model reads them: each `Candidates` field is the batch's field of that
        name after `candidate_` (the mask is not among them: padded candidates give ignorable values)."""
        return Candidates(*(getattr(self, f"candidate_{name}") for name in Candidates._fields))


# A pytree, so a batch (of numpy or jax arrays) can be passed straight to jitted functions.
jax.tree_util.register_dataclass(RankingBatch, data_fields=[f.name for f in fields(RankingBatch)], meta_fields=[])


@dataclass(frozen=True)
class EncodedHistory:
    """One user's history at a chosen padded length (left-aligned, oldest first), without content."""

    post_ids: np.ndarray  # [L] int64, 0 = padding (content is looked up by post id)
    history: History  # [L, ...]


def actions_multi_hot(action_masks: np.ndarray) -> np.ndarray:
    """19-bit ints -> float32 multi-hot with a trailing axis of 19."""
    masks = np.asarray(action_masks, dtype=np.int64)
    return ((masks[..., None] >> _ACTION_BITS) & 1).astype(np.float32)


def encode_history(cfg: PhoenixConfig, history: Sequence[ActionEntry], length: int) -> EncodedHistory:
    """Keep the most recent min(S, length) entries and pad to `length` slots."""
    kept = list(history[-min(cfg.history_len, length) :]) if length > 0 else []
    n = len(kept)
    post_ids = np.zeros(length, dtype=np.int64)
    author_ids = np.zeros(length, dtype=np.int64)
    masks = np.zeros(length, dtype=np.int64)
    surfaces = np.zeros(length, dtype=np.int32)
    if n:
        post_ids[:n] = [e.post_id for e in kept]
        author_ids[:n] = [e.author_id for e in kept]
        masks[:n] = [e.action_mask for e in kept]
        surfaces[:n] = [surface_id(e.surface) for e in kept]
    valid = np.zeros(length, dtype=bool)
    valid[:n] = True
    arrays = History(
        post_hashes=hash_ids(post_ids, "post", cfg),
        author_hashes=hash_ids(author_ids, "author", cfg),
        actions=actions_multi_hot(masks),
        surfaces=surfaces,
        mask=valid,
    )
    return EncodedHistory(post_ids, arrays)


def make_batch(
    cfg: PhoenixConfig,
    user_ids: Sequence[int],
    histories: Sequence[Sequence[ActionEntry]],
    candidates: Sequence[Sequence[tuple[int, int]]],
    candidate_surface: int = surface_id("home_for_you"),
    num_candidates: int | None = None,
    candidate_ages_ms: Sequence[Sequence[float]] | None = None,
    content: ContentTable | None = None,
    served: Sequence[Sequence[tuple[int, int]]] | None = None,
) -> RankingBatch:
    """Batch of B requests; C = num_candidates or the longest candidate list (at least 1).

    `candidate_ages_ms` gives each candidate's age in ms (NaN = unknown), parallel to `candidates`; None
    means every age is unknown. Ignored when the config has no age input. `content` gives the posts'
    content (None: unknown for every post); ignored when the config has no content input. `served` gives,
    per request, the (post_id, action mask) of every post served to the user before it (mask 0 = served and
    ignored; `served_posts`), read by a config with `served_affinity` (None: that input is unknown).
    """
    if not len(user_ids) == len(histories) == len(candidates):
        raise ValueError("user_ids, histories and candidates must have the same length")
    longest = max((len(c) for c in candidates), default=0)
    width = max(longest, 1) if num_candidates is None else num_candidates
    if longest > width:
        raise ValueError(f"a request has {longest} candidates, more than num_candidates={width}")
    b = len(user_ids)
    encoded = [encode_history(cfg, h, cfg.history_len) for h in histories]
    cand_posts = np.zeros((b, width), dtype=np.int64)
    cand_authors = np.zeros((b, width), dtype=np.int64)
    cand_mask = np.zeros((b, width), dtype=bool)
    for i, cands in enumerate(candidates):
        if cands:
            pairs = np.asarray(cands, dtype=np.int64).reshape(-1, 2)
            cand_posts[i, : len(pairs)] = pairs[:, 0]
            cand_authors[i, : len(pairs)] = pairs[:, 1]
            cand_mask[i, : len(pairs)] = True
    history = stack_histories([e.history for e in encoded])
    candidate_content = candidate_semantic_ids = None
    if cfg.has_content:
        history_content, history_semantic_ids = content_inputs(cfg, content, np.stack([e.post_ids for e in encoded]))
        history = history._replace(content=history_content, semantic_ids=history_semantic_ids)
        candidate_content, candidate_semantic_ids = content_inputs(cfg, content, cand_posts)
    return RankingBatch(
        user_hashes=hash_ids(np.asarray(user_ids, dtype=np.int64), "user", cfg),
        history=history,
        candidate_post_hashes=hash_ids(cand_posts, "post", cfg),
        candidate_author_hashes=hash_ids(cand_authors, "author", cfg),
        candidate_surfaces=np.where(cand_mask, candidate_surface, 0).astype(np.int32),
        candidate_mask=cand_mask,
        candidate_ages=_candidate_age_buckets(cfg, candidate_ages_ms, candidates, width),
        candidate_content=candidate_content,
        candidate_semantic_ids=candidate_semantic_ids,
        candidate_affinity=content_affinity(
            cfg,
            history.content,
            history.actions,
            history.mask,
            candidate_content,
            *(served_inputs(cfg, content, served) if cfg.served_affinity and served is not None else ()),
        )
        if cfg.affinity_buckets
        else None,
    )


def served_posts(history: Sequence[ActionEntry], served_ids: Iterable[int]) -> list[tuple[int, int]]:
    """(post_id, action mask) of every post served to the user: the served ids (mask 0 unless the history
    holds an action on the post) and the history's entries (posts engaged with elsewhere were seen too)."""
    masks = {entry.post_id: entry.action_mask for entry in history}
    return [(post_id, masks.get(post_id, 0)) for post_id in served_ids if post_id not in masks] + list(masks.items())


def served_inputs(
    cfg: PhoenixConfig, content: ContentTable | None, served: Sequence[Sequence[tuple[int, int]]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Served vectors [B, M, E], actions [B, M, 19] and mask [B, M] (M = the longest served list)."""
    width = max((len(rows) for rows in served), default=0)
    post_ids = np.zeros((len(served), width), np.int64)
    masks = np.zeros((len(served), width), np.int64)
    for i, rows in enumerate(served):
        if rows:
            post_ids[i, : len(rows)], masks[i, : len(rows)] = np.asarray(rows, np.int64).T
    vectors, _ = content_inputs(cfg, content, post_ids)
    return vectors, actions_multi_hot(masks), post_ids > 0


def content_inputs(
    cfg: PhoenixConfig, content: ContentTable | None, post_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Content vectors [..., E] and semantic ids [..., L] of post ids [...] (0 = padding or unknown)."""
    if content is None:
        return (
            np.zeros((*post_ids.shape, cfg.content_dim), np.float32),
            np.zeros((*post_ids.shape, cfg.semantic_id_levels), np.int32),
        )
    if content.dim != cfg.content_dim:
        raise ValueError(f"content vectors have {content.dim} dims, the model expects {cfg.content_dim}")
    return content.lookup(post_ids, cfg.semantic_id_levels)


def _candidate_age_buckets(
    cfg: PhoenixConfig,
    ages_ms: Sequence[Sequence[float]] | None,
    candidates: Sequence[Sequence[tuple[int, int]]],
    width: int,
) -> np.ndarray | None:
    if cfg.age_buckets == 0:
        return None
    ages = np.full((len(candidates), width), np.nan)
    if ages_ms is not None:
        if len(ages_ms) != len(candidates):
            raise ValueError("candidate_ages_ms must have one entry per request")
        for i, (row, cands) in enumerate(zip(ages_ms, candidates, strict=True)):
            if len(row) != len(cands):
                raise ValueError(f"request {i} has {len(cands)} candidates but {len(row)} ages")
            ages[i, : len(row)] = row
    return age_buckets(ages, cfg.age_buckets)
