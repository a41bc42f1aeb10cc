"""WeightedScorer: sum over the predicted actions of weight x probability, then the negative-score offset
(scoring.offset). Negative actions have negative weights. The vqv (video quality view) term counts only for a
video (the shown content: a repost's original) at least `vqv_min_duration_ms` long. An action head the model
lacks (the optional ones after the 19) is predicted 0, so its weight has no effect.

Reply boost (2026-10 publication): when the viewer and the author follow each other (BidirectionalFollow
hydrator) and the post is an original, the reply weight grows by `mutual_follow_reply_boost`.

A candidate without Phoenix probabilities (the Phoenix scorer failed) gets no score here; the pipeline's
fallback then orders the request.
"""

from collections.abc import Mapping, Sequence

import numpy as np

from scoring.offset import ScoreOffset
from streams.candidate import Candidate, Updates
from streams.query import FeedQuery
from streams.stages import Scorer
from topics.actions import ACTION_INDEX, ACTIONS

VQV = ACTION_INDEX["vqv"]
REPLY = ACTION_INDEX["reply"]


def reply_boosted(candidate: Candidate) -> bool:
    """The viewer and the author follow each other and the post is an original (not a reply or repost)."""
    return bool(candidate.mutual_follow) and candidate.core is not None and candidate.core.kind == "original"


def vqv_eligible(candidate: Candidate, min_duration_ms: int) -> bool:
    post = candidate.content
    return (
        post is not None
        and post.is_video
        and post.video_duration_ms is not None
        and post.video_duration_ms >= min_duration_ms
    )


def weight_vector(weights: Mapping[str, float]) -> np.ndarray:
    """The weights as float64 in topics.actions.ACTIONS order: the array the scorer multiplies the
    probabilities by (its first heads, as many as the model has)."""
    return np.array([weights[name] for name in ACTIONS], dtype=np.float64)


class WeightedScorer(Scorer):
    name = "WeightedScorer"
    fields = frozenset({"weighted_score", "score"})

    def __init__(
        self,
        weights: Mapping[str, float],
        vqv_min_duration_ms: int,
        offset: ScoreOffset,
        mutual_follow_reply_boost: float = 0.0,
    ) -> None:
        self._weights = weight_vector(weights)
        self._vqv_min_duration_ms = vqv_min_duration_ms
        self._offset = offset
        self._reply_boost = mutual_follow_reply_boost

    def combined(
        self, probabilities: np.ndarray, vqv_counts: np.ndarray, boosted: np.ndarray | None = None
    ) -> np.ndarray:
        """sum(weight x probability) before the offset, for rows of probabilities [N, k] (the model's k heads,
        the first k actions), a [N] mask of the rows whose vqv term counts and a [N] mask of the rows whose
        reply weight is boosted."""
        totals: np.ndarray = probabilities @ self._weights[: probabilities.shape[1]]
        totals -= np.where(vqv_counts, 0.0, probabilities[:, VQV] * self._weights[VQV])
        if boosted is not None and self._reply_boost:
            totals += np.where(boosted, probabilities[:, REPLY] * self._reply_boost, 0.0)
        return totals

    async def score(self, query: FeedQuery, candidates: Sequence[Candidate]) -> Updates:
        scorable = [i for i, c in enumerate(candidates) if c.phoenix_scores is not None]
        weighted: list[float | None] = [None] * len(candidates)
        if scorable:
            probabilities = np.array([candidates[i].phoenix_scores for i in scorable], dtype=np.float64)
            vqv_counts = np.array([vqv_eligible(candidates[i], self._vqv_min_duration_ms) for i in scorable])
            boosted = np.array([reply_boosted(candidates[i]) for i in scorable])
            scores = self._offset.apply_all(self.combined(probabilities, vqv_counts, boosted)).tolist()
            for i, value in zip(scorable, scores, strict=True):
                weighted[i] = value
        return {"weighted_score": weighted, "score": weighted}
