"""Content affinity: how close a candidate's content is to the content of the user's history.

Why: a transformer can learn "this user engages with posts like these" from history and candidate content
tokens, but it learns that product slowly (a cold-start check where only content separates liked from
ignored posts stayed at chance after 400 steps). Two cosines give it directly, as inputs of the candidate
alone (so candidate isolation holds): the cosine between the candidate's content vector and the mean of
the history's content vectors, and the largest cosine between the candidate and any one history entry.

Each is bucketed into `num_buckets` - 1 equal-width bins over [-1, 1] plus bucket 0 = unknown (no content
for the candidate or for any history entry); `phoenix.model` adds one row of a [B, D] table per cosine to
the candidate token, as it does for the post age.
"""

import numpy as np

UNKNOWN_AFFINITY_BUCKET = 0
NUM_AFFINITY_INPUTS = 2  # mean-history cosine, max-entry cosine


def _unit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12), norms[..., 0] > 0


def affinity_buckets(
    history_content: np.ndarray, history_mask: np.ndarray, candidate_content: np.ndarray, num_buckets: int
) -> np.ndarray:
    """[B, C, 2] int32 buckets from history vectors [B, S, E] (mask [B, S]) and candidate vectors [B, C, E]."""
    if num_buckets < 2:
        raise ValueError("affinity needs the unknown bucket plus at least one bin")
    history, history_known = _unit(np.asarray(history_content, np.float32))
    history_known &= np.asarray(history_mask, bool)
    candidates, candidate_known = _unit(np.asarray(candidate_content, np.float32))
    weights = history_known[..., None].astype(np.float32)
    mean, mean_known = _unit((history * weights).sum(1))  # [B, E]
    mean_cos = np.einsum("bce,be->bc", candidates, mean)
    entry_cos = np.einsum("bce,bse->bcs", candidates, history)
    max_cos = np.where(history_known[:, None, :], entry_cos, -np.inf).max(-1, initial=-np.inf)
    known = candidate_known & mean_known[:, None]
    cosines = np.stack([mean_cos, np.where(known, max_cos, 0.0)], -1)
    bins = 1 + np.clip(np.floor((cosines + 1.0) / 2.0 * (num_buckets - 1)), 0, num_buckets - 2)
    return np.where(known[..., None], bins, UNKNOWN_AFFINITY_BUCKET).astype(np.int32)
