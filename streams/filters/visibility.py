"""Visibility (post-selection): drops posts deleted since they were fetched (the post or the original it
reposts) and posts carrying a safety label that is not explicitly allowed.

A candidate whose visibility hydration failed (`deleted` unknown) is kept: core hydration found the post
live moments earlier, and its safety label came with the core data.
"""

from streams.candidate import Candidate
from streams.query import FeedQuery
from streams.stages import CandidateFilter


class VisibilityFilter(CandidateFilter):
    name = "Visibility"

    def __init__(self, allowed_safety_labels: tuple[str, ...]) -> None:
        self._allowed = frozenset(allowed_safety_labels)

    def removal_reason(self, query: FeedQuery, candidate: Candidate) -> str | None:
        if candidate.deleted:
            return "deleted"
        if candidate.safety_label is not None and candidate.safety_label not in self._allowed:
            return "safety_label"
        return None
