"""Age: drops posts created more than `max_age_ms` before the request (a repost's age is the repost's)."""

from streams.candidate import Candidate
from streams.query import FeedQuery
from streams.stages import CandidateFilter


class AgeFilter(CandidateFilter):
    name = "Age"

    def __init__(self, max_age_ms: int) -> None:
        self._max_age_ms = max_age_ms

    def removal_reason(self, query: FeedQuery, candidate: Candidate) -> str | None:
        created = candidate.created_at_ms
        if created is None:
            return "unknown_age"
        return "too_old" if query.now_ms - created > self._max_age_ms else None
