"""PreviouslyServed: drops posts already served to the user (request's served_ids merged with the served
history), so that scrolling down continues the feed without repeats.

As in home-mixer it applies to bottom (scroll-down) requests only, unless `served_filter_all_requests`: a
refresh at the top may show again a post that was served but never seen. A candidate counts as served when
the post, the original it reposts or the post it replies to was served.
"""

from collections.abc import Sequence

from streams.candidate import Candidate
from streams.query import FeedQuery
from streams.stages import Filter, FilterResult, partition


def served_filter_applies(query: FeedQuery, all_requests: bool) -> bool:
    return all_requests or query.is_bottom_request


class PreviouslyServedFilter(Filter):
    name = "PreviouslyServed"

    def __init__(self, all_requests: bool) -> None:
        self._all_requests = all_requests

    def enable(self, query: FeedQuery) -> bool:
        return served_filter_applies(query, self._all_requests)

    def filter(self, query: FeedQuery, candidates: Sequence[Candidate]) -> FilterResult:
        served = query.served_ids

        def reason(candidate: Candidate) -> str | None:
            return None if served.isdisjoint(candidate.related_post_ids()) else "previously_served"

        return partition(candidates, reason)
