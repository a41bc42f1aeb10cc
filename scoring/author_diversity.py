"""AuthorDiversityScorer: lowers repeated authors. Candidates are ranked by weighted score; the n-th post
(0-based) of the same author has its score multiplied by (1 - floor) * decay^n + floor (above the offset,
see scoring.offset), so an author's best post is untouched and later ones decay towards `floor`."""

from collections import defaultdict
from collections.abc import Sequence

from scoring.offset import ScoreOffset
from streams.candidate import Candidate, Updates
from streams.query import FeedQuery
from streams.stages import Scorer


def diversity_multiplier(position: int, decay: float, floor: float) -> float:
    return (1.0 - floor) * decay**position + floor


class AuthorDiversityScorer(Scorer):
    name = "AuthorDiversityScorer"
    fields = frozenset({"diversity_multiplier", "score"})

    def __init__(self, decay: float, floor: float, offset: ScoreOffset) -> None:
        self._decay = decay
        self._floor = floor
        self._offset = offset

    async def score(self, query: FeedQuery, candidates: Sequence[Candidate]) -> Updates:
        ranked = sorted(
            (i for i, c in enumerate(candidates) if c.weighted_score is not None),
            key=lambda i: -(candidates[i].weighted_score or 0.0),
        )
        seen_per_author: defaultdict[int, int] = defaultdict(int)
        multipliers: list[float | None] = [None] * len(candidates)
        scores = [c.score for c in candidates]
        for i in ranked:
            author = candidates[i].author_id
            multiplier = diversity_multiplier(seen_per_author[author], self._decay, self._floor)
            seen_per_author[author] += 1
            score = scores[i]
            if score is not None:
                multipliers[i] = multiplier
                scores[i] = self._offset.scale(score, multiplier)
        return {"diversity_multiplier": multipliers, "score": scores}
