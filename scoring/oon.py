"""OONScorer: out-of-network posts (not from an account the user follows) have their score multiplied by a
configured factor (above the offset, see scoring.offset), so in-network posts win ties of relevance. With
`in_network_replies_reposts` (the 2026-10 publication's default) in-network replies and reposts get the
factor too: only in-network originals escape it."""

from collections.abc import Sequence

from scoring.offset import ScoreOffset
from streams.candidate import Candidate, Updates
from streams.query import FeedQuery
from streams.stages import Scorer


class OONScorer(Scorer):
    name = "OONScorer"
    fields = frozenset({"oon_multiplier", "score"})

    def __init__(self, factor: float, offset: ScoreOffset, in_network_replies_reposts: bool = False) -> None:
        self._factor = factor
        self._offset = offset
        self._in_network_replies_reposts = in_network_replies_reposts

    async def score(self, query: FeedQuery, candidates: Sequence[Candidate]) -> Updates:
        multipliers: list[float | None] = []
        scores: list[float | None] = []
        scale = self._offset.scale
        for c in candidates:
            if c.score is None:
                multipliers.append(None)
                scores.append(None)
                continue
            # in_network None (its hydrator failed) is not penalised: only known out-of-network posts are.
            secondary = c.core is not None and c.core.kind != "original"
            penalised = c.in_network is False or (self._in_network_replies_reposts and bool(c.in_network) and secondary)
            multiplier = self._factor if penalised else 1.0
            multipliers.append(multiplier)
            scores.append(scale(c.score, multiplier))
        return {"oon_multiplier": multipliers, "score": scores}
