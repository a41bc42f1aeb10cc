"""Side effects of a served feed, run by the caller after the answer is sent."""

import inspect
from collections.abc import Sequence

from streams.candidate import Candidate
from streams.ports import FeedSink
from streams.query import FeedQuery
from streams.stages import SideEffect
from topics.schemas import Impression


async def _settle(result: object) -> None:
    if inspect.isawaitable(result):
        await result


def impression_record(query: FeedQuery, candidate: Candidate, rank: int) -> Impression:
    """The `impressions` record of one served post (rank 1 = top)."""
    return Impression(
        request_id=query.request_id,
        user_id=query.user_id,
        post_id=candidate.post_id,
        author_id=candidate.author_id,
        rank=rank,
        score=float(candidate.score if candidate.score is not None else 0.0),
        served_at_ms=query.now_ms,
    )


class RecordServed(SideEffect):
    """Adds the served post ids to the user's served history, which the next bottom request filters out."""

    name = "RecordServed"

    def __init__(self, sink: FeedSink) -> None:
        self._sink = sink

    async def run(self, query: FeedQuery, served: Sequence[Candidate]) -> None:
        if served:
            await _settle(self._sink.record_served(query.user_id, [c.post_id for c in served], query.now_ms))


class PublishImpressions(SideEffect):
    """One impression record per served post, in rank order."""

    name = "PublishImpressions"

    def __init__(self, sink: FeedSink) -> None:
        self._sink = sink

    async def run(self, query: FeedQuery, served: Sequence[Candidate]) -> None:
        if served:
            records = [impression_record(query, c, rank) for rank, c in enumerate(served, start=1)]
            await _settle(self._sink.publish_impressions(records))
