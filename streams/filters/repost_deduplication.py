"""RepostDeduplication: one candidate per original content. Several reposts of one post, or a post and a
repost of it, keep only the first in candidate order (home-mixer's first-wins rule)."""

from collections.abc import Sequence

from streams.candidate import Candidate
from streams.query import FeedQuery
from streams.stages import Filter, FilterResult


def content_id(candidate: Candidate) -> int:
    if candidate.core is not None and candidate.core.repost_of_post_id is not None:
        return candidate.core.repost_of_post_id
    return candidate.post_id


class RepostDeduplicationFilter(Filter):
    name = "RepostDeduplication"

    def filter(self, query: FeedQuery, candidates: Sequence[Candidate]) -> FilterResult:
        result = FilterResult(kept=[], removed=[])
        seen: set[int] = set()
        for candidate in candidates:
            key = content_id(candidate)
            if key in seen:
                result.removed.append(candidate)
                result.reasons["duplicate_repost"] += 1
            else:
                seen.add(key)
                result.kept.append(candidate)
        return result
