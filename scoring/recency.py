"""The recency score: the order of the reverse-chron policy and the For You fallback when scoring fails.

1 / (1 + age in hours): newest first, in (0, 1], so it reads as a score on the wire.
"""

from streams.candidate import Candidate
from streams.query import FeedQuery

HOUR_MS = 3_600_000


def recency_score(query: FeedQuery, candidate: Candidate) -> float:
    created = candidate.created_at_ms
    if created is None:
        return 0.0
    age_ms = max(0, query.now_ms - created)
    return 1.0 / (1.0 + age_ms / HOUR_MS)
