"""What the candidate pipeline needs from the rest of the system, as structural types.

The pipeline depends on these Protocols only; the real stores (RocksDB-backed Faust tables), the Phoenix
`Ranker` and the Faust sink are written elsewhere and satisfy them structurally, and the tests use
in-memory fakes. Store reads are synchronous local reads, called inline from the async stages except
Thunder's query, which runs in a thread so that it overlaps retrieval (see `streams.sources`); so a post
store must allow reads from several threads. The ranker is CPU-bound and is always called off the event
loop (see `scoring.phoenix_scorer`). `make test` runs mypy, which checks the post store, the engagement
counts, the user state, the sink and the Ranker against these Protocols where agents/feeds.py and
agents/runtime.py hand them to the pipeline.
"""

from collections.abc import Awaitable, Collection, Iterable, Iterator, Sequence
from typing import Protocol

import numpy as np

from stores.records import ActionEntry, Post, PostCounts, UserFeatures
from topics.schemas import Impression


class PostStore(Protocol):
    def get(self, post_id: int) -> Post | None: ...

    def get_many(self, post_ids: Iterable[int]) -> dict[int, Post]: ...

    def is_deleted(self, post_id: int) -> bool: ...

    def recent_posts(
        self,
        author_ids: Collection[int],
        limit: int,
        exclude: Collection[int] = (),
        now_ms: int | None = None,
        max_age_ms: int | None = None,
        *,
        viewer_id: int | None = None,
    ) -> list[Post]:
        """Live posts of these authors, newest first (without reposts of `viewer_id`'s own posts)."""
        ...

    def follower_counts(self, author_ids: Iterable[int]) -> dict[int, int]:
        """Every given author's follower count (0 when unknown)."""
        ...

    def content_vectors(self, post_ids: Sequence[int]) -> list[np.ndarray | None]:
        """Each post's content vector, None for a post without one."""
        ...

    def authors_following(self, user_id: int, author_ids: Iterable[int]) -> set[int]:
        """The authors among `author_ids` who follow `user_id`."""
        ...

    def iter_recent(self, since_ms: int) -> Iterator[Post]:
        """Live posts created at or after `since_ms`, oldest first."""
        ...


class EngagementCountsStore(Protocol):
    def counts(self, post_ids: Iterable[int]) -> dict[int, PostCounts]:
        """Every given post's counts (zeros when never counted)."""
        ...


class UserStateStore(Protocol):
    def action_sequence(self, user_id: int) -> list[ActionEntry]:
        """The user's engagement history, oldest to newest."""
        ...

    def user_features(self, user_id: int) -> UserFeatures: ...

    def served_ids(self, user_id: int) -> set[int]: ...


class RankerPort(Protocol):
    """The part of `phoenix.ranker.Ranker` the pipeline uses."""

    @property
    def version(self) -> str: ...

    def score(
        self,
        user_id: int,
        history: Sequence[ActionEntry],
        candidates: Sequence[tuple[int, int]],
        surface: int,
        created_at_ms: Sequence[int | None] | None = None,
        now_ms: int | None = None,
        content: np.ndarray | None = None,
        served_ids: Collection[int] = (),
    ) -> np.ndarray:
        """[len(candidates), k] action probabilities for the model's k heads (the first k of
        topics.actions.ACTIONS, k >= 19), in candidate order; `created_at_ms` (aligned with the candidates,
        None = unknown) and the request time `now_ms` give the posts' ages; `content` [C, E] the candidates'
        content vectors (zero rows = unknown; None: the ranker reads them itself); `served_ids` the posts
        served to the user before (the served history)."""
        ...

    def retrieve(
        self,
        user_id: int,
        history: Sequence[ActionEntry],
        k: int,
        exclude_authors: Collection[int] = (),
        exclude_posts: Collection[int] = (),
    ) -> list[tuple[int, int, float]]:
        """(post_id, author_id, similarity) best first."""
        ...


class FeedSink(Protocol):
    """Where the pipeline's side effects go. Methods may be plain or async; the pipeline awaits results
    that are awaitable."""

    def record_served(self, user_id: int, post_ids: Sequence[int], ts_ms: int) -> Awaitable[None] | None: ...

    def publish_impressions(self, impressions: list[Impression]) -> Awaitable[None] | None: ...
