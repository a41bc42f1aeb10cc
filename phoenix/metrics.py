"""Ranking and retrieval metrics as pure numpy functions.

Ties are handled exactly rather than by an arbitrary order, because the baselines (popularity counts,
many zeros) tie a lot and an order-dependent metric would reward whichever item happened to come first:
- AUC and pairwise accuracy count a tied (positive, negative) pair as half right;
- NDCG@k and recall@k are the expected values under a uniformly random order within tied scores.
"""

from collections.abc import Sequence

import numpy as np


def _midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given the average of the ranks they span."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)  # rank of the last member of each distinct value
    return (ends - (counts - 1) / 2.0)[inverse]


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney); NaN when labels are all positive or all negative."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    positive = np.asarray(labels, dtype=bool).ravel()
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    rank_sum = float(_midranks(scores)[positive].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def _tie_blocks(scores: np.ndarray) -> list[np.ndarray]:
    """Indices grouped by equal score, blocks ordered by descending score."""
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    return np.split(order, starts[1:])


def dcg_at_k(scores: np.ndarray, gains: np.ndarray, k: int) -> float:
    """Expected DCG@k (gain / log2(rank + 1)) with random order inside tied scores."""
    scores = np.asarray(scores, dtype=np.float64)
    gains = np.asarray(gains, dtype=np.float64)
    discounts = 1.0 / np.log2(np.arange(2, min(k, scores.size) + 2))
    total, position = 0.0, 0
    for block in _tie_blocks(scores):
        if position >= k:
            break
        slots = discounts[position : min(position + block.size, k)]
        total += float(gains[block].mean()) * float(slots.sum())
        position += block.size
    return total


def ndcg_at_k(scores: np.ndarray, gains: np.ndarray, k: int) -> float:
    """DCG@k over the ideal DCG@k; NaN when no item has a positive gain."""
    gains = np.asarray(gains, dtype=np.float64)
    ideal = dcg_at_k(gains, gains, k)  # sorting by the gains themselves gives the ideal order
    if ideal <= 0.0:
        return float("nan")
    return dcg_at_k(scores, gains, k) / ideal


def mean_ndcg_at_k(scores: Sequence[np.ndarray], labels: Sequence[np.ndarray], k: int) -> float:
    """Mean NDCG@k (binary gains) over groups having both a positive and a negative item; NaN if none."""
    values = [
        ndcg_at_k(s, np.asarray(y, dtype=np.float64), k)
        for s, y in zip(scores, labels, strict=True)
        if 0 < int(np.sum(y)) < len(y)
    ]
    return float(np.mean(values)) if values else float("nan")


def pairwise_accuracy(scores: Sequence[np.ndarray], labels: Sequence[np.ndarray]) -> float:
    """Share of (positive, negative) pairs within the same group ranked the right way round (ties = 1/2),
    pooled over all pairs of all groups; NaN when no group has both kinds."""
    right, pairs = 0.0, 0
    for group_scores, group_labels in zip(scores, labels, strict=True):
        positive = np.asarray(group_labels, dtype=bool)
        s = np.asarray(group_scores, dtype=np.float64)
        pos, neg = s[positive], s[~positive]
        if pos.size == 0 or neg.size == 0:
            continue
        diff = pos[:, None] - neg[None, :]
        right += float((diff > 0).sum()) + 0.5 * float((diff == 0).sum())
        pairs += diff.size
    return right / pairs if pairs else float("nan")


def recall_at_k(scores: np.ndarray, relevant: np.ndarray, k: int) -> float:
    """Expected share of the relevant items found in the top k (random order inside tied scores); NaN
    when nothing is relevant."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    relevant = np.asarray(relevant, dtype=bool).ravel()
    n_relevant = int(relevant.sum())
    if n_relevant == 0:
        return float("nan")
    if k >= scores.size:
        return 1.0
    threshold = np.partition(scores, scores.size - k)[scores.size - k]  # the k-th largest score
    above = scores > threshold
    tied = scores == threshold
    free_slots = k - int(above.sum())
    found = float(relevant[above].sum()) + float(relevant[tied].sum()) * free_slots / int(tied.sum())
    return found / n_relevant
