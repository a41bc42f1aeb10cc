"""PreviouslySeen: drops posts the user has seen: those the client reports (seen_ids) and those the user
acted on (in their action sequence). A candidate counts as seen when the post, the original it reposts or
the post it replies to was seen, as in home-mixer (a reply is shown under its parent)."""

from collections.abc import Sequence

from streams.candidate import Candidate
from streams.query import FeedQuery
from streams.stages import Filter, FilterResult, partition


def seen_post_ids(query: FeedQuery) -> frozenset[int]:
    return query.seen_ids | {entry.post_id for entry in query.action_sequence}


class PreviouslySeenFilter(Filter):
    name = "PreviouslySeen"

    def filter(self, query: FeedQuery, candidates: Sequence[Candidate]) -> FilterResult:
        seen = seen_post_ids(query)

        def reason(candidate: Candidate) -> str | None:
            return None if seen.isdisjoint(candidate.related_post_ids()) else "previously_seen"

        return partition(candidates, reason)
