"""Content affinity: how close a candidate's content is to the content of what the user engaged with.

Why: a transformer can learn "this user engages with posts like these" from history and candidate content
tokens, but it learns that product slowly (a cold-start check where only content separates liked from
ignored posts stayed at chance after 400 steps). Two cosines give it directly, as inputs of the candidate
alone (so candidate isolation holds):
- to the user's *signed* content profile: the mean of the history's content vectors, each entry weighted
  +1 when it holds a positive action and -1 when it holds a negative one (not interested, block, mute,
  report: "less of this"; a negative wins over a positive on the same entry);
- the largest cosine between the candidate and any one positively engaged history entry.

Vectors are centred first: the config's `content_center` (the mean content vector of the posts training saw,
fitted by `foryou train`) is subtracted before the cosines. Raw sentence vectors share a large common
direction (every text is "some text"), so raw cosines between unrelated posts are well above zero and the
profile's mean is dominated by that direction. Measured on the demo world's held-out requests (pairwise
accuracy of the first cosine alone against the ground truth): raw vectors, every history entry +1: 0.568;
centred: 0.620; centred and signed: 0.661 (docs/phoenix-training.md). A config without a centre (older
checkpoints) reads raw vectors.

Each cosine is bucketed into `num_buckets` - 1 equal-width bins over [-1, 1] plus bucket 0 = unknown (no
content for the candidate, or no positively engaged history entry with content); `phoenix.model` adds one
row of a [2, A, D] table per cosine to the candidate token, as it does for the post age.
"""

import numpy as np

from phoenix.config import PhoenixConfig
from topics.actions import NEGATIVE_ACTIONS, PHOENIX_ACTIONS

UNKNOWN_AFFINITY_BUCKET = 0
NUM_AFFINITY_INPUTS = 2  # signed-profile cosine, max positive-entry cosine
_NEGATIVE_HEADS = np.array([name in NEGATIVE_ACTIONS for name in PHOENIX_ACTIONS])


def _unit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12), norms[..., 0] > 1e-6


def history_signs(history_actions: np.ndarray) -> np.ndarray:
    """[..., S] +1 (a positive action), -1 (a negative action, which wins) or 0 from multi-hots [..., S, 19]."""
    actions = np.asarray(history_actions) > 0
    negative = actions[..., _NEGATIVE_HEADS].any(-1)
    positive = actions[..., ~_NEGATIVE_HEADS].any(-1)
    return np.where(negative, -1.0, np.where(positive, 1.0, 0.0)).astype(np.float32)


def content_affinity(
    cfg: PhoenixConfig,
    history_content: np.ndarray,
    history_actions: np.ndarray,
    history_mask: np.ndarray,
    candidate_content: np.ndarray,
) -> np.ndarray:
    """[B, C, 2] int32 buckets from history vectors [B, S, E], actions [B, S, 19] and mask [B, S], and
    candidate vectors [B, C, E], for a config with `affinity_buckets`."""
    if cfg.affinity_buckets < 2:
        raise ValueError("affinity needs the unknown bucket plus at least one bin")
    center = np.asarray(cfg.content_center, np.float32) if cfg.content_center else np.float32(0.0)
    history_raw = np.asarray(history_content, np.float32)
    candidate_raw = np.asarray(candidate_content, np.float32)
    # Unknown content (all zeros) stays unknown: it is not centred into a vector.
    history_known = np.abs(history_raw).sum(-1) > 0
    candidate_known = np.abs(candidate_raw).sum(-1) > 0
    history, history_unit = _unit(history_raw - center)
    candidates, candidate_unit = _unit(candidate_raw - center)
    signs = history_signs(history_actions) * (history_known & history_unit & np.asarray(history_mask, bool))
    profile, profile_known = _unit((history * signs[..., None]).sum(1))  # [B, E]
    profile_cos = np.einsum("bce,be->bc", candidates, profile)
    entry_cos = np.einsum("bce,bse->bcs", candidates, history)
    liked = signs > 0
    max_cos = np.where(liked[:, None, :], entry_cos, -np.inf).max(-1, initial=-np.inf)
    known = (candidate_known & candidate_unit) & (profile_known & liked.any(-1))[:, None]
    cosines = np.stack([profile_cos, np.where(known, max_cos, 0.0)], -1)
    bins = 1 + np.clip(np.floor((cosines + 1.0) / 2.0 * (cfg.affinity_buckets - 1)), 0, cfg.affinity_buckets - 2)
    return np.where(known[..., None], bins, UNKNOWN_AFFINITY_BUCKET).astype(np.int32)
