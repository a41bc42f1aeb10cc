"""Candidate hydrators. Each returns values for the Candidate fields it declares, one per candidate.

Store reads run on the default thread pool (`run_blocking`), as Thunder's query does: RocksDB's multi-get
releases the GIL (two threads reading do 1.85x the work of one), so a request's concurrent hydrators read
side by side, and the event loop neither spends the read's time nor waits to take the GIL back from other
threads after it (in a profile of 24 concurrent requests, the loop's multi-gets were 14% of its samples).
"""

from collections.abc import Sequence

from stores.records import Post
from streams.candidate import Candidate, Updates
from streams.offload import run_blocking
from streams.ports import PostStore
from streams.query import FeedQuery
from streams.stages import CandidateHydrator


class InNetworkHydrator(CandidateHydrator):
    """in_network: the author is followed by the user (for a repost, the reposter)."""

    name = "InNetwork"
    fields = frozenset({"in_network"})

    async def hydrate(self, query: FeedQuery, candidates: Sequence[Candidate]) -> Updates:
        following = query.user_features.following if query.user_features is not None else frozenset()
        return {"in_network": [c.author_id in following for c in candidates]}


class CoreDataHydrator(CandidateHydrator):
    """The post itself (text, media, video duration, reply and repost ancestry, conversation id, safety
    label), and the live reposted original and quoted post, in batched reads. A post the store does not
    return stays without core data and is removed by the CoreDataHydration filter."""

    name = "CoreData"
    fields = frozenset({"core", "original", "quoted"})

    def __init__(self, post_store: PostStore) -> None:
        self._post_store = post_store

    async def hydrate(self, query: FeedQuery, candidates: Sequence[Candidate]) -> Updates:
        posts, lookup = await run_blocking(None, self._read, [c.post_id for c in candidates])
        cores = [posts.get(c.post_id) for c in candidates]
        return {
            "core": cores,
            "original": [
                lookup.get(core.repost_of_post_id) if core is not None and core.repost_of_post_id is not None else None
                for core in cores
            ],
            "quoted": [
                lookup.get(core.quote_of_post_id) if core is not None and core.quote_of_post_id is not None else None
                for core in cores
            ],
        }

    def _read(self, post_ids: Sequence[int]) -> tuple[dict[int, Post], dict[int, Post]]:
        """The posts, and those plus the posts they repost or quote."""
        posts = self._post_store.get_many(post_ids)
        referenced: set[int] = set()
        for post in posts.values():
            if post.repost_of_post_id is not None:
                referenced.add(post.repost_of_post_id)
            if post.quote_of_post_id is not None:
                referenced.add(post.quote_of_post_id)
        missing = referenced - posts.keys()
        return posts, {**posts, **self._post_store.get_many(missing)} if missing else posts


class AuthorHydrator(CandidateHydrator):
    """The author's follower count (shown in explain output). No stream carries screen names (posts and
    social-graph events name accounts by id only), so authors are identified by id everywhere."""

    name = "Author"
    fields = frozenset({"author_follower_count"})

    def __init__(self, post_store: PostStore) -> None:
        self._post_store = post_store

    async def hydrate(self, query: FeedQuery, candidates: Sequence[Candidate]) -> Updates:
        counts = await run_blocking(None, self._post_store.follower_counts, [c.author_id for c in candidates])
        return {"author_follower_count": [counts[c.author_id] for c in candidates]}


class SubscriptionHydrator(CandidateHydrator):
    """subscription_author_id: whose subscription the shown content requires, or None. Runs after core data
    (a dependent hydrator). For a repost the original's flag and author count: reposting does not unlock
    subscriber-only content. A repost whose original is no longer live is judged by its own flag."""

    name = "Subscription"
    fields = frozenset({"subscription_author_id"})

    async def hydrate(self, query: FeedQuery, candidates: Sequence[Candidate]) -> Updates:
        return {"subscription_author_id": [_subscription_author(c) for c in candidates]}


def _subscription_author(candidate: Candidate) -> int | None:
    post = candidate.content
    if post is None or not post.subscriber_only:
        return None
    return post.author_id


class VisibilityHydrator(CandidateHydrator):
    """deleted (the post or the original it reposts was deleted since it was fetched) and safety_label (the
    shown content's label, else the post's). Runs post-selection: only on the posts about to be served, as
    late as possible."""

    name = "Visibility"
    fields = frozenset({"deleted", "safety_label"})

    def __init__(self, post_store: PostStore) -> None:
        self._post_store = post_store

    async def hydrate(self, query: FeedQuery, candidates: Sequence[Candidate]) -> Updates:
        deleted, labels = [], []
        for c in candidates:
            ids = [c.post_id]
            if c.core is not None and c.core.repost_of_post_id is not None:
                ids.append(c.core.repost_of_post_id)
            deleted.append(any(self._post_store.is_deleted(i) for i in ids))
            shown = [p.safety_label for p in (c.content, c.core) if p is not None and p.safety_label]
            labels.append(shown[0] if shown else None)
        return {"deleted": deleted, "safety_label": labels}


class ContentEmbeddingHydrator(CandidateHydrator):
    """content_embedding: the vector the post store computed when the post was ingested (a repost's is its
    original's), for the ranker and for diversity re-ranking; None when the store has none."""

    name = "ContentEmbedding"
    fields = frozenset({"content_embedding"})

    def __init__(self, post_store: PostStore) -> None:
        self._post_store = post_store

    async def hydrate(self, query: FeedQuery, candidates: Sequence[Candidate]) -> Updates:
        vectors = await run_blocking(None, self._post_store.content_vectors, [c.post_id for c in candidates])
        return {"content_embedding": vectors}
