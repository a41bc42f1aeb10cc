"""TopKSelector: candidates by final score, best first; the top `max_results` are selected and the rest
kept, in order, as the reserve the post-selection stage backfills from. Ties go to the newer post, then to
the higher post id, so the order is deterministic."""

from collections.abc import Sequence

from streams.candidate import Candidate
from streams.query import FeedQuery
from streams.stages import Selection, Selector


def ranking_key(candidate: Candidate) -> tuple[float, int, int]:
    score = candidate.score if candidate.score is not None else float("-inf")
    return (-score, -(candidate.created_at_ms or 0), -candidate.post_id)


class TopKSelector(Selector):
    name = "TopK"

    def select(self, query: FeedQuery, candidates: Sequence[Candidate]) -> Selection:
        ranked = sorted(candidates, key=ranking_key)
        return Selection(selected=ranked[: query.max_results], reserve=ranked[query.max_results :])
