"""The pipeline's answer, built from the wire contract's types (`topics.schemas`): the ranked posts with
their explain objects, the stage reports, and the `ranked-feeds` record they make."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

import numpy as np

from streams.candidate import Candidate
from topics.actions import ACTIONS
from topics.schemas import FeedExplain, PostExplain, RankedFeed, RankedPost, StageReport


def _by_action(row: np.ndarray | None) -> dict[str, float] | None:
    if row is None:
        return None
    values = np.asarray(row, dtype=np.float64).tolist()
    return dict(zip(ACTIONS[: len(values)], values, strict=True))  # the heads the model has


def post_explain(candidate: Candidate) -> PostExplain:
    """Why `candidate` ranked where it did, as its stages left it."""
    return PostExplain(
        probabilities=_by_action(candidate.phoenix_scores),
        raw_probabilities=_by_action(candidate.raw_phoenix_scores),
        weighted_score=candidate.weighted_score,
        diversity_multiplier=candidate.diversity_multiplier,
        oon_multiplier=candidate.oon_multiplier,
        source=candidate.source,
        retrieval_score=candidate.retrieval_score,
        author_follower_count=candidate.author_follower_count,
        view_count=candidate.view_count,
        engagement_count=candidate.engagement_count,
        mutual_follow=candidate.mutual_follow,
        cold_start_lifted=candidate.cold_start_lifted,
        dpp=candidate.dpp_outcome,
    )


async def _no_side_effects() -> None:
    return None


@dataclass(slots=True)
class FeedResult:
    posts: list[RankedPost]
    model: str  # the ranker's version, or "reverse-chron" when posts are ordered by recency
    degraded: list[str] = field(default_factory=list)  # "<kind>:<name>" of every component that failed
    stages: list[StageReport] | None = None  # per-stage report, when the request asked to explain
    # Side effects of this request (served ids, impressions): the caller awaits or schedules this after
    # sending the answer, so they never delay it. It never raises.
    side_effects: Callable[[], Awaitable[None]] = _no_side_effects

    def to_record(self, request_id: str, user_id: int, latency_ms: float) -> RankedFeed:
        """The `ranked-feeds` record. Its explain objects (per post, and the stages and degradations) are
        present only when the request asked to explain."""
        explain = None
        if self.stages is not None:
            stages = tuple(replace(stage, ms=round(stage.ms, 3)) for stage in self.stages)
            explain = FeedExplain(degraded=tuple(self.degraded), stages=stages)
        return RankedFeed(
            request_id=request_id,
            user_id=user_id,
            posts=tuple(self.posts),
            model=self.model,
            latency_ms=latency_ms,
            explain=explain,
        )
