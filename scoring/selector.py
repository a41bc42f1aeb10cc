"""TopKSelector: candidates by final score, best first; the top `max_results` are selected and the rest
kept, in order, as the reserve the post-selection stage backfills from. Ties go to the newer post, then to
the higher post id, so the order is deterministic."""

from collections.abc import Sequence

import numpy as np

from streams.candidate import Candidate
from streams.query import FeedQuery
from streams.stages import Selection, Selector


def ranking_order(candidates: Sequence[Candidate]) -> list[int]:
    """Positions of the candidates, best first: by score (none: last), then newer, then higher post id."""
    scores = np.array([c.score if c.score is not None else -np.inf for c in candidates], dtype=np.float64)
    created = np.array([c.created_at_ms or 0 for c in candidates], dtype=np.int64)
    post_ids = np.array([c.post_id for c in candidates], dtype=np.int64)
    return np.lexsort((-post_ids, -created, -scores)).tolist()  # the last key is the primary one


class TopKSelector(Selector):
    name = "TopK"

    def select(self, query: FeedQuery, candidates: Sequence[Candidate]) -> Selection:
        ranked = [candidates[i] for i in ranking_order(candidates)]
        return Selection(selected=ranked[: query.max_results], reserve=ranked[query.max_results :])
