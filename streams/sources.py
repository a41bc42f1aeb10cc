"""Candidate sources: Thunder (in-network, recent posts of followed accounts) and Phoenix retrieval
(out-of-network, nearest posts to the user's embedding)."""

from concurrent.futures import Executor

from streams.candidate import Candidate, new_candidates
from streams.filters.previously_seen import seen_post_ids
from streams.filters.previously_served import served_filter_applies
from streams.offload import run_blocking
from streams.ports import PostStore, RankerPort
from streams.query import FeedQuery
from streams.stages import Source


def excluded_post_ids(query: FeedQuery, served_filter_all_requests: bool) -> frozenset[int]:
    """Posts no source needs to return: seen ones, and served ones when the served filter applies."""
    excluded = seen_post_ids(query)
    if served_filter_applies(query, served_filter_all_requests):
        excluded |= query.served_ids
    return excluded


class ThunderSource(Source):
    """Recent posts (originals, replies, reposts) of the accounts the user follows, newest first, at most
    `limit`, without reposts of the user's own posts (as Thunder). Needs the user's features; without them
    there is no in-network."""

    name = "Thunder"

    def __init__(self, post_store: PostStore, limit: int, max_age_ms: int, served_filter_all_requests: bool) -> None:
        self._post_store = post_store
        self._limit = limit
        self._max_age_ms = max_age_ms
        self._served_filter_all_requests = served_filter_all_requests

    def enable(self, query: FeedQuery) -> bool:
        return query.user_features is not None and self._limit > 0

    async def fetch(self, query: FeedQuery) -> list[Candidate]:
        assert query.user_features is not None  # enable() guarantees it
        following = query.user_features.following
        if not following:
            return []
        # Off the event loop, on the default pool (never the model's executor, which may be a single thread):
        # the sources start together, so this store query runs while retrieval computes.
        posts = await run_blocking(
            None,
            self._post_store.recent_posts,
            following,
            limit=self._limit,
            exclude=excluded_post_ids(query, self._served_filter_all_requests),
            now_ms=query.now_ms,
            max_age_ms=self._max_age_ms,
            viewer_id=query.user_id,
        )
        posts = posts[: self._limit]
        return new_candidates("thunder", [p.post_id for p in posts], [p.author_id for p in posts])


class PhoenixRetrievalSource(Source):
    """The ranker's top-k posts for the user's embedding, excluding the user's own posts and those of
    accounts they follow (Thunder covers them), block or mute. Skipped for in-network-only requests."""

    name = "PhoenixRetrieval"

    def __init__(
        self, ranker: RankerPort, k: int, served_filter_all_requests: bool, executor: Executor | None = None
    ) -> None:
        self._ranker = ranker
        self._k = k
        self._served_filter_all_requests = served_filter_all_requests
        self._executor = executor

    def enable(self, query: FeedQuery) -> bool:
        return not query.in_network_only and query.user_features is not None and self._k > 0

    async def fetch(self, query: FeedQuery) -> list[Candidate]:
        features = query.user_features
        assert features is not None  # enable() guarantees it
        exclude_authors = features.following | features.blocked | features.muted | {query.user_id}
        found = await run_blocking(
            self._executor,
            self._ranker.retrieve,
            query.user_id,
            query.action_sequence,
            self._k,
            exclude_authors=exclude_authors,
            exclude_posts=excluded_post_ids(query, self._served_filter_all_requests),
        )
        found = found[: self._k]
        return new_candidates(
            "phoenix_retrieval",
            [post_id for post_id, _, _ in found],
            [author_id for _, author_id, _ in found],
            [float(score) for _, _, score in found],
        )
