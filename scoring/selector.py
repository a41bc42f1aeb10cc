"""TopKSelector: candidates by final score, best first; the top max(`size`, max_results) are selected (the
2026-10 publication selects 50 and serves 35: the post-selection stages judge the 50 and the pipeline
cuts to the requested size) and the rest kept, in order, as the reserve the post-selection stage
backfills from. Ties go to the newer post, then to
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
    order: list[int] = np.lexsort((-post_ids, -created, -scores)).tolist()  # the last key is the primary one
    return order


class TopKSelector(Selector):
    name = "TopK"

    def __init__(self, size: int = 0) -> None:
        self._size = size

    def select(self, query: FeedQuery, candidates: Sequence[Candidate]) -> Selection:
        ranked = [candidates[i] for i in ranking_order(candidates)]
        k = max(self._size, query.max_results)
        return Selection(selected=ranked[:k], reserve=ranked[k:])
