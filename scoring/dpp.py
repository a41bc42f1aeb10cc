"""DppReranker (2026-10 publication's "VMRanker"): diversity by a determinantal point process over the posts'
content embeddings.

Take the top `window` (150) candidates by score; quality q_i = s_i / max s; kernel
L_ij = e^(a q_i) e^(a q_j) cos(e_i, e_j) with a = theta / (2 (1 - theta)) (theta = 0.65 weighs quality
against similarity); select greedily the post that most increases log det L of the selected set, up to
`max_selected` (50), stopping when the best residual is <= `min_residual` (the rest are near-duplicates of
what is selected). Selected posts keep their score, every other candidate gets 0 (it stays in the reserve,
after them).

The greedy MAP uses the incremental Cholesky update of Chen, Zhang & Zhou ("Fast Greedy MAP Inference for
Determinantal Point Process", NeurIPS 2018): each step costs O(k n), no determinant is ever computed.

Fallback: when a candidate of the window has no content embedding (or the embeddings are unusable: mixed
sizes, non-finite), the scores stay as they are and every candidate's `dpp_outcome` says why.
"""

import math
from collections.abc import Sequence

import numpy as np

from scoring.selector import ranking_order
from streams.candidate import Candidate, Updates
from streams.config import DppConfig
from streams.query import FeedQuery
from streams.stages import Scorer

SELECTED = "selected"
DROPPED = "dropped"
NO_EMBEDDINGS = "fallback: no content embeddings"


def greedy_map(
    kernel_weights: np.ndarray, unit_embeddings: np.ndarray, max_selected: int, min_residual: float
) -> list[int]:
    """Positions selected greedily for max log det of L = diag(w) E E^T diag(w), in selection order.

    kernel_weights [n] = e^(a q); unit_embeddings [n, d] rows of norm 1 (or 0)."""
    n = kernel_weights.shape[0]
    if n == 0:
        return []
    scaled = unit_embeddings * kernel_weights[:, None]  # L = scaled @ scaled.T, never formed whole
    residual = np.einsum("ij,ij->i", scaled, scaled)  # d_i^2 = L_ii
    factors = np.zeros((max_selected, n))  # row k: the k-th Cholesky column over all items
    selected: list[int] = []
    best = int(residual.argmax())
    while residual[best] > min_residual:
        selected.append(best)
        if len(selected) >= max_selected:
            break
        k = len(selected) - 1
        row = scaled @ scaled[best]  # L[best, :]
        update = (row - factors[:k, best] @ factors[:k]) / math.sqrt(residual[best])
        factors[k] = update
        residual = residual - update**2
        residual[best] = -np.inf  # the earlier picks are already -inf
        best = int(residual.argmax())
    return selected


def _fallback_reason(window: Sequence[Candidate]) -> str | None:
    embeddings = [c.content_embedding for c in window if c.content_embedding is not None]
    if len(embeddings) < len(window):
        return NO_EMBEDDINGS
    if len({np.shape(e) for e in embeddings}) != 1 or np.ndim(embeddings[0]) != 1:
        return "fallback: content embeddings of different shapes"
    return None


class DppReranker(Scorer):
    name = "DppReranker"
    fields = frozenset({"dpp_outcome", "score"})

    def __init__(self, config: DppConfig) -> None:
        self._config = config
        self._alpha = config.theta / (2.0 * (1.0 - config.theta))

    def enable(self, query: FeedQuery) -> bool:
        return self._config.enabled

    async def score(self, query: FeedQuery, candidates: Sequence[Candidate]) -> Updates:
        cfg = self._config
        order = [i for i in ranking_order(candidates) if candidates[i].score is not None][: cfg.window]
        window = [candidates[i] for i in order]
        reason = _fallback_reason(window)
        if reason is None:
            embeddings = np.stack([np.asarray(c.content_embedding, dtype=np.float64) for c in window])
            scores = np.array([c.score for c in window], dtype=np.float64)
            if not (np.isfinite(embeddings).all() and np.isfinite(scores).all() and scores.max() > 0):
                reason = "fallback: non-finite embeddings or no positive score"
        if reason is not None:
            return {"dpp_outcome": [reason] * len(candidates), "score": [c.score for c in candidates]}
        norms = np.sqrt(np.einsum("ij,ij->i", embeddings, embeddings))[:, None]
        unit = np.divide(embeddings, norms, out=np.zeros_like(embeddings), where=norms > 0)
        weights = np.exp(self._alpha * scores / scores.max())
        chosen = {order[j] for j in greedy_map(weights, unit, min(cfg.max_selected, len(order)), cfg.min_residual)}
        return {
            "dpp_outcome": [SELECTED if i in chosen else DROPPED for i in range(len(candidates))],
            "score": [c.score if i in chosen else 0.0 for i, c in enumerate(candidates)],
        }
