"""PopularPosts source (2026-10 publication): the most viewed recent originals, whoever the user follows.

The list is built from the post store and the engagement counts at most every `refresh_ms` (request time,
so a replay of simulated time refreshes on its own clock) and shared by every request until the next
build: originals of the last `max_age_ms` by authors who posted within `author_active_ms`, scored

    views * (1 - e^(-l * 24 h)) / (1 - e^(-l * max(age, 0.5 h))),   l = ln 2 / half_life

so a post's views are scaled up the younger it is (a post of 30 minutes with 100 views outranks one of a
day with 1,000); at most `per_author` posts per author, `limit` in all, best first (ties: the author with
more followers, then the newer post). Each request takes the list minus its own, seen and (when the served
filter applies) served posts; the filters judge the rest as for any source.
"""

import asyncio
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from stores.records import Post, PostCounts
from streams.candidate import Candidate, new_candidates
from streams.config import PopularConfig
from streams.offload import run_blocking
from streams.ports import EngagementCountsStore, PostStore
from streams.query import FeedQuery
from streams.sources import excluded_post_ids
from streams.stages import Source

HOUR_MS = 3_600_000
MIN_AGE_MS = HOUR_MS // 2


def popularity(views: int, age_ms: int, half_life_ms: int, horizon_ms: int) -> float:
    """The published views-based score with exponential decay (module docstring)."""
    rate = math.log(2.0) / half_life_ms
    return views * -math.expm1(-rate * horizon_ms) / -math.expm1(-rate * max(age_ms, MIN_AGE_MS))


@dataclass(frozen=True, slots=True)
class PopularPost:
    post_id: int
    author_id: int
    score: float


def rank_popular(
    posts: Iterable[Post],
    counts: Mapping[int, PostCounts],
    followers: Mapping[int, int],
    now_ms: int,
    config: PopularConfig,
    limit: int,
) -> list[PopularPost]:
    """The popular list from the recent posts (module docstring)."""
    active_since = now_ms - config.author_active_ms
    fresh_since = now_ms - config.max_age_ms
    active: set[int] = set()
    fresh: list[Post] = []
    for post in posts:
        if post.created_at_ms >= active_since:
            active.add(post.author_id)
        if post.kind == "original" and fresh_since <= post.created_at_ms <= now_ms:
            fresh.append(post)
    scored = [
        (popularity(counts.get(p.post_id, PostCounts()).views, now_ms - p.created_at_ms, config.half_life_ms,
                    config.max_age_ms), p)
        for p in fresh
        if p.author_id in active
    ]
    scored.sort(key=lambda item: (-item[0], -followers.get(item[1].author_id, 0), -item[1].created_at_ms))
    per_author: defaultdict[int, int] = defaultdict(int)
    ranked: list[PopularPost] = []
    for score, post in scored:
        if per_author[post.author_id] >= config.per_author:
            continue
        per_author[post.author_id] += 1
        ranked.append(PopularPost(post.post_id, post.author_id, score))
        if len(ranked) >= limit:
            break
    return ranked


class PopularPostsSource(Source):
    name = "PopularPosts"

    def __init__(
        self,
        post_store: PostStore,
        counts: EngagementCountsStore,
        limit: int,
        config: PopularConfig,
        served_filter_all_requests: bool,
    ) -> None:
        self._post_store = post_store
        self._counts = counts
        self._limit = limit
        self._config = config
        self._served_filter_all_requests = served_filter_all_requests
        self._built_at_ms: int | None = None
        self._ranked: list[PopularPost] = []
        self._lock = asyncio.Lock()

    def enable(self, query: FeedQuery) -> bool:
        return self._limit > 0 and not query.in_network_only

    def _build(self, now_ms: int) -> list[PopularPost]:
        # Only the fresh window is read: an author with a fresh original is active whenever the activity
        # window is the longer one (7 d vs 24 h), and when it is shorter it lies within the fresh window.
        posts = list(self._post_store.iter_recent(now_ms - self._config.max_age_ms))
        counts = self._counts.counts(p.post_id for p in posts if p.kind == "original")
        followers = self._post_store.follower_counts({p.author_id for p in posts})
        return rank_popular(posts, counts, followers, now_ms, self._config, self._limit)

    def _stale(self, now_ms: int) -> bool:
        built = self._built_at_ms
        return built is None or not 0 <= now_ms - built < self._config.refresh_ms

    async def popular(self, now_ms: int) -> list[PopularPost]:
        """The shared list, rebuilt off the event loop when older than refresh_ms (one build at a time)."""
        if self._stale(now_ms):
            async with self._lock:
                if self._stale(now_ms):
                    self._ranked = await run_blocking(None, self._build, now_ms)
                    self._built_at_ms = now_ms
        return self._ranked

    async def fetch(self, query: FeedQuery) -> list[Candidate]:
        excluded = excluded_post_ids(query, self._served_filter_all_requests)
        popular = await self.popular(query.now_ms)
        chosen = [p for p in popular if p.post_id not in excluded and p.author_id != query.user_id]
        return new_candidates(
            "popular", [p.post_id for p in chosen], [p.author_id for p in chosen], [p.score for p in chosen]
        )
