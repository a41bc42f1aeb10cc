"""AuthorColdStartScorer (2026-10 publication): gives one fresh post of a small author a place in the feed.

Eligible: originals at most `max_age_ms` old, whose author has at most `max_author_followers` followers and
which were served fewer than `max_views` times (EngagementCounts hydrator; unknown counts are not
eligible). One eligible post scoring below the post at rank `target_rank` is lifted to that score:
- mode "thompson": each eligible post draws p ~ Beta(prior_alpha + favorites, prior_beta + views -
  favorites), a favorite rate believed with the weight of 50 prior views; the `shortlist` best draws are
  kept and the one the model scores highest (weighted score) is lifted. The generator is seeded by the
  request id, so a request's feed is reproducible and different requests explore differently.
- mode "model": the eligible post the model scores highest is lifted.
With fewer candidates than `target_rank`, the target is the lowest score.
"""

import zlib
from collections.abc import Sequence

import numpy as np

from streams.candidate import Candidate, Updates
from streams.config import ColdStartConfig
from streams.query import FeedQuery
from streams.stages import Scorer


def request_rng(request_id: str) -> np.random.Generator:
    """A generator seeded by the request id: the same request draws the same, whatever the process."""
    return np.random.default_rng(zlib.crc32(request_id.encode()))


class AuthorColdStartScorer(Scorer):
    name = "AuthorColdStart"
    fields = frozenset({"cold_start_lifted", "score"})

    def __init__(self, config: ColdStartConfig) -> None:
        self._config = config

    def enable(self, query: FeedQuery) -> bool:
        return self._config.enabled

    def eligible(self, query: FeedQuery, candidate: Candidate) -> bool:
        cfg, core = self._config, candidate.core
        return (
            core is not None
            and core.kind == "original"
            and candidate.score is not None
            and 0 <= query.now_ms - core.created_at_ms <= cfg.max_age_ms
            and candidate.author_follower_count is not None
            and candidate.author_follower_count <= cfg.max_author_followers
            and candidate.view_count is not None
            and candidate.view_count < cfg.max_views
        )

    def choose(self, query: FeedQuery, candidates: Sequence[Candidate], eligible: list[int]) -> int:
        """The position of the post to lift among `eligible` positions."""
        def model_score(i: int) -> float:
            return candidates[i].weighted_score or 0.0

        if self._config.mode == "model":
            return max(eligible, key=model_score)
        cfg = self._config
        views = np.array([candidates[i].view_count or 0 for i in eligible], dtype=np.float64)
        favorites = np.minimum([candidates[i].favorite_count or 0 for i in eligible], views)
        draws = request_rng(query.request_id).beta(cfg.prior_alpha + favorites, cfg.prior_beta + views - favorites)
        shortlist: list[int] = [eligible[j] for j in np.argsort(-draws, kind="stable")[: cfg.shortlist].tolist()]
        return max(shortlist, key=model_score)

    async def score(self, query: FeedQuery, candidates: Sequence[Candidate]) -> Updates:
        scores = [c.score for c in candidates]
        lifted: list[bool | None] = [False if c.score is not None else None for c in candidates]
        ranked = sorted((s for s in scores if s is not None), reverse=True)
        if not ranked:
            return {"cold_start_lifted": lifted, "score": scores}
        target = ranked[min(self._config.target_rank, len(ranked)) - 1]
        eligible = [i for i, c in enumerate(candidates) if self.eligible(query, c) and (c.score or 0.0) < target]
        if eligible:
            chosen = self.choose(query, candidates, eligible)
            scores[chosen] = target
            lifted[chosen] = True
        return {"cold_start_lifted": lifted, "score": scores}
