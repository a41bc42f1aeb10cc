"""DropDuplicates: one candidate per post id; the first wins (sources are concatenated in declaration order,
so an in-network copy beats the same post found by retrieval)."""

from collections.abc import Sequence

from streams.candidate import Candidate
from streams.query import FeedQuery
from streams.stages import Filter, FilterResult


class DropDuplicatesFilter(Filter):
    name = "DropDuplicates"

    def filter(self, query: FeedQuery, candidates: Sequence[Candidate]) -> FilterResult:
        result = FilterResult(kept=[], removed=[])
        seen: set[int] = set()
        for candidate in candidates:
            if candidate.post_id in seen:
                result.removed.append(candidate)
                result.reasons["duplicate"] += 1
            else:
                seen.add(candidate.post_id)
                result.kept.append(candidate)
        return result
