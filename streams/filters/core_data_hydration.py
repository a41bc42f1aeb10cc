"""CoreDataHydration: drops candidates whose post could not be read (deleted or unknown to the post store, or
the core hydrator failed): nothing can be shown or judged without the post."""

from streams.candidate import Candidate
from streams.query import FeedQuery
from streams.stages import CandidateFilter


class CoreDataHydrationFilter(CandidateFilter):
    name = "CoreDataHydration"

    def removal_reason(self, query: FeedQuery, candidate: Candidate) -> str | None:
        return "missing_core_data" if candidate.core is None else None
