"""EngagementCounts hydrator (2026-10 publication): each candidate's views (times served) and positive
engagements, from the worker's engagement-count store (stores.engagement_counts, fed by the impressions
and engagement-events topics). The author cold-start scorer reads them. A repost is counted as itself: an
impression names the post that was served."""

from collections.abc import Iterable, Sequence

from stores.records import PostCounts
from streams.candidate import Candidate, Updates
from streams.offload import run_blocking
from streams.ports import EngagementCountsStore
from streams.query import FeedQuery
from streams.stages import CandidateHydrator


class NoEngagementCounts:
    """The count store of a pipeline built without one (offline simulations): every post counts zero."""

    def counts(self, post_ids: Iterable[int]) -> dict[int, PostCounts]:
        return dict.fromkeys(post_ids, PostCounts())


class EngagementCountsHydrator(CandidateHydrator):
    name = "EngagementCounts"
    fields = frozenset({"view_count", "engagement_count", "favorite_count"})

    def __init__(self, counts: EngagementCountsStore) -> None:
        self._counts = counts

    async def hydrate(self, query: FeedQuery, candidates: Sequence[Candidate]) -> Updates:
        # Off the event loop, as the post store's reads (streams.hydrators says why).
        counts = await run_blocking(None, self._counts.counts, [c.post_id for c in candidates])
        rows = [counts[c.post_id] for c in candidates]
        return {
            "view_count": [r.views for r in rows],
            "engagement_count": [r.engagements for r in rows],
            "favorite_count": [r.favorites for r in rows],
        }
