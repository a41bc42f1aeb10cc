"""The pipeline's answer and its `ranked-feeds` wire form."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from streams.candidate import Candidate
from topics.actions import ACTIONS

StageKind = Literal[
    "query_hydrator",
    "source",
    "hydrator",
    "dependent_hydrator",
    "filter",
    "scorer",
    "selector",
    "post_selection_hydrator",
    "post_selection_filter",
]
StageStatus = Literal["ok", "disabled", "failed"]


@dataclass(slots=True)
class StageReport:
    """One component's part in one request: candidates in and out, removals by reason, wall time."""

    kind: StageKind
    name: str
    status: StageStatus
    candidates_in: int
    candidates_out: int
    ms: float
    removed: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "status": self.status,
            "in": self.candidates_in,
            "out": self.candidates_out,
            "removed": dict(self.removed),
            "ms": round(self.ms, 3),
            "error": self.error,
        }


def _by_action(row: np.ndarray | None) -> dict[str, float] | None:
    if row is None:
        return None
    values = np.asarray(row, dtype=np.float64).tolist()
    return dict(zip(ACTIONS[: len(values)], values, strict=True))  # the heads the model has


@dataclass(frozen=True, slots=True)
class PostExplain:
    probabilities: dict[str, float] | None  # by action name; None when Phoenix did not score the post
    raw_probabilities: dict[str, float] | None  # the model's own, when a calibration changed them; else None
    weighted_score: float | None
    diversity_multiplier: float | None
    oon_multiplier: float | None
    source: str
    retrieval_score: float | None
    author_follower_count: int | None  # from the author hydrator; None when it did not run or failed
    view_count: int | None  # engagement counts: served impressions of the post
    engagement_count: int | None
    mutual_follow: bool | None  # viewer and author follow each other (reply boost)
    cold_start_lifted: bool | None  # the author cold-start scorer lifted the post
    dpp: str | None  # the DPP re-ranker's verdict: selected, dropped, or why it fell back to plain scores

    @classmethod
    def of(cls, candidate: Candidate) -> "PostExplain":
        return cls(
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

    def to_wire(self) -> dict[str, Any]:
        return {
            "probabilities": self.probabilities,
            "raw_probabilities": self.raw_probabilities,
            "weighted_score": self.weighted_score,
            "diversity_multiplier": self.diversity_multiplier,
            "oon_multiplier": self.oon_multiplier,
            "source": self.source,
            "retrieval_score": self.retrieval_score,
            "author_follower_count": self.author_follower_count,
            "view_count": self.view_count,
            "engagement_count": self.engagement_count,
            "mutual_follow": self.mutual_follow,
            "cold_start_lifted": self.cold_start_lifted,
            "dpp": self.dpp,
        }


@dataclass(frozen=True, slots=True)
class RankedPost:
    post_id: int
    author_id: int
    rank: int  # 1 = top of the feed
    score: float
    in_network: bool
    explain: PostExplain | None = None

    def to_wire(self) -> dict[str, Any]:
        value: dict[str, Any] = {
            "post_id": self.post_id,
            "author_id": self.author_id,
            "rank": self.rank,
            "score": self.score,
            "in_network": self.in_network,
        }
        if self.explain is not None:
            value["explain"] = self.explain.to_wire()
        return value


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

    @property
    def explained(self) -> bool:
        return self.stages is not None

    def to_wire(self, request_id: str, user_id: int, latency_ms: float) -> dict[str, Any]:
        """The `ranked-feeds` value. The "explain" keys (per post, and the top-level stages and
        degradations) are present only when the request asked to explain."""
        value: dict[str, Any] = {
            "v": 1,
            "request_id": request_id,
            "user_id": user_id,
            "status": "ok",
            "error": None,
            "posts": [post.to_wire() for post in self.posts],
            "model": self.model,
            "latency_ms": latency_ms,
        }
        if self.stages is not None:
            value["explain"] = {
                "degraded": list(self.degraded),
                "stages": [stage.to_wire() for stage in self.stages],
            }
        return value
