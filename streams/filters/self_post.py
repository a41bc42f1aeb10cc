"""SelfPost: the user's own posts are not recommended to them."""

from streams.candidate import Candidate
from streams.query import FeedQuery
from streams.stages import CandidateFilter


class SelfPostFilter(CandidateFilter):
    name = "SelfPost"

    def removal_reason(self, query: FeedQuery, candidate: Candidate) -> str | None:
        return "self_post" if candidate.author_id == query.user_id else None
