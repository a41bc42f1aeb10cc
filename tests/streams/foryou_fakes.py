"""In-memory fakes of the pipeline's ports, and builders for posts, candidates and queries."""

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from stores.records import ActionEntry, Post, PostCounts, UserFeatures
from streams.candidate import Candidate, SourceName
from streams.query import FeedQuery
from topics.actions import ACTION_INDEX, NUM_ACTIONS, NUM_PHOENIX_ACTIONS
from topics.schemas import Impression

NOW_MS = 1_700_000_000_000
HOUR_MS = 3_600_000
USER = 1
NO_FEATURES = UserFeatures()


def post(post_id: int, author_id: int, age_ms: int = HOUR_MS, **fields: Any) -> Post:
    return Post(post_id=post_id, author_id=author_id, created_at_ms=NOW_MS - age_ms, **fields)


def candidate(
    post_id: int,
    author_id: int,
    source: SourceName = "thunder",
    core: Post | None = None,
    hydrate_core: bool = True,
    **fields: Any,
) -> Candidate:
    """A candidate with core data (a default post of that id and author) unless hydrate_core is False."""
    if core is None and hydrate_core:
        core = post(post_id, author_id)
    return Candidate(post_id=post_id, author_id=author_id, source=source, core=core, **fields)


def query(
    user_id: int = USER,
    max_results: int = 10,
    features: UserFeatures | None = NO_FEATURES,
    **fields: Any,
) -> FeedQuery:
    return FeedQuery(
        user_id=user_id, request_id="req-1", max_results=max_results, now_ms=NOW_MS, user_features=features, **fields
    )


def probabilities(base: float = 0.0, **by_action: float) -> np.ndarray:
    # A model's row: the 19 heads, widened to every action (a checkpoint with the optional heads) when an
    # optional head is given.
    optional = any(ACTION_INDEX[name] >= NUM_PHOENIX_ACTIONS for name in by_action)
    row = np.full(NUM_ACTIONS if optional else NUM_PHOENIX_ACTIONS, base, dtype=np.float64)
    for name, value in by_action.items():
        row[ACTION_INDEX[name]] = value
    return row


class FakePostStore:
    def __init__(
        self,
        posts: Iterable[Post] = (),
        deleted: Collection[int] = (),
        followers: Mapping[int, int] | None = None,
        failing: Collection[str] = (),
        content: Mapping[int, np.ndarray] | None = None,
        follow_edges: Collection[tuple[int, int]] = (),
    ) -> None:
        self.posts = {p.post_id: p for p in posts}
        self.content = dict(content or {})
        self.follow_edges = set(follow_edges)  # (follower, followed)
        self.deleted = set(deleted)
        self.followers = dict(followers or {})
        self.failing = set(failing)
        self.calls: list[tuple[str, Any]] = []

    def _call(self, method: str, arg: Any) -> None:
        self.calls.append((method, arg))
        if method in self.failing:
            raise RuntimeError(f"post store {method} is down")

    def get(self, post_id: int) -> Post | None:
        self._call("get", post_id)
        return self.posts.get(post_id)

    def get_many(self, post_ids: Iterable[int]) -> dict[int, Post]:
        ids = list(post_ids)
        self._call("get_many", ids)
        return {i: self.posts[i] for i in ids if i in self.posts}

    def is_deleted(self, post_id: int) -> bool:
        self._call("is_deleted", post_id)
        return post_id in self.deleted

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
        self._call("recent_posts", (set(author_ids), limit, set(exclude)))
        found = [
            p
            for p in self.posts.values()
            if p.author_id in author_ids
            and p.post_id not in exclude
            and (max_age_ms is None or now_ms is None or now_ms - p.created_at_ms <= max_age_ms)
        ]
        return sorted(found, key=lambda p: -p.created_at_ms)[:limit]

    def follower_counts(self, author_ids: Iterable[int]) -> dict[int, int]:
        ids = list(author_ids)
        self._call("follower_counts", ids)
        return {i: self.followers.get(i, 0) for i in ids}

    def content_vectors(self, post_ids: Sequence[int]) -> list[np.ndarray | None]:
        self._call("content_vectors", list(post_ids))
        return [self.content.get(i) for i in post_ids]

    def authors_following(self, user_id: int, author_ids: Iterable[int]) -> set[int]:
        ids = list(author_ids)
        self._call("authors_following", (user_id, ids))
        return {a for a in ids if (a, user_id) in self.follow_edges}

    def iter_recent(self, since_ms: int) -> Iterator[Post]:
        self._call("iter_recent", since_ms)
        return iter(sorted((p for p in self.posts.values() if p.created_at_ms >= since_ms),
                           key=lambda p: (p.created_at_ms, p.post_id)))


class FakeEngagementCounts:
    def __init__(self, counts: Mapping[int, PostCounts] | None = None, failing: bool = False) -> None:
        self.values = dict(counts or {})
        self.failing = failing
        self.calls = 0

    def counts(self, post_ids: Iterable[int]) -> dict[int, PostCounts]:
        self.calls += 1
        if self.failing:
            raise RuntimeError("engagement counts are down")
        return {i: self.values.get(i, PostCounts()) for i in post_ids}


class FakeUserState:
    def __init__(
        self,
        features: Mapping[int, UserFeatures] | None = None,
        sequences: Mapping[int, list[ActionEntry]] | None = None,
        served: Mapping[int, set[int]] | None = None,
        failing: Collection[str] = (),
    ) -> None:
        self.features = dict(features or {})
        self.sequences = dict(sequences or {})
        self.served = {user: set(ids) for user, ids in (served or {}).items()}
        self.failing = set(failing)

    def _check(self, method: str) -> None:
        if method in self.failing:
            raise RuntimeError(f"user state {method} is down")

    def action_sequence(self, user_id: int) -> list[ActionEntry]:
        self._check("action_sequence")
        return list(self.sequences.get(user_id, []))

    def user_features(self, user_id: int) -> UserFeatures:
        self._check("user_features")
        return self.features.get(user_id, UserFeatures())

    def served_ids(self, user_id: int) -> set[int]:
        self._check("served_ids")
        return set(self.served.get(user_id, set()))


class FakeRanker:
    """Scores by a function of (post_id, author_id); retrieves from a fixed list, honouring exclusions."""

    def __init__(
        self,
        score_fn: Callable[[int, int], np.ndarray] | None = None,
        corpus: Sequence[tuple[int, int, float]] = (),
        version: str = "phoenix-test-1",
        fail_score: bool = False,
        fail_retrieve: bool = False,
    ) -> None:
        self.score_fn = score_fn or (lambda post_id, author_id: probabilities(0.1))
        self.corpus = list(corpus)
        self.version = version
        self.fail_score = fail_score
        self.fail_retrieve = fail_retrieve
        self.score_calls: list[list[tuple[int, int]]] = []
        self.content_calls: list[np.ndarray | None] = []
        self.retrieve_calls: list[dict[str, Any]] = []

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
    ):
        self.score_calls.append(list(candidates))
        self.content_calls.append(content)
        if self.fail_score:
            raise RuntimeError("ranker crashed")
        if not candidates:
            return np.zeros((0, NUM_PHOENIX_ACTIONS))
        return np.stack([self.score_fn(p, a) for p, a in candidates])

    def retrieve(
        self,
        user_id: int,
        history: Sequence[ActionEntry],
        k: int,
        exclude_authors: Collection[int] = (),
        exclude_posts: Collection[int] = (),
    ) -> list[tuple[int, int, float]]:
        self.retrieve_calls.append(
            {"k": k, "exclude_authors": set(exclude_authors), "exclude_posts": set(exclude_posts)}
        )
        if self.fail_retrieve:
            raise RuntimeError("retrieval index unavailable")
        found = [(p, a, s) for p, a, s in self.corpus if a not in exclude_authors and p not in exclude_posts]
        return found[:k]


class FakeSink:
    def __init__(self, fail: bool = False) -> None:
        self.served: list[tuple[int, list[int], int]] = []
        self.impressions: list[Mapping[str, Any]] = []
        self.fail = fail

    async def record_served(self, user_id: int, post_ids: Sequence[int], ts_ms: int) -> None:
        if self.fail:
            raise RuntimeError("sink down")
        self.served.append((user_id, list(post_ids), ts_ms))

    def publish_impressions(self, impressions: list[Impression]) -> None:
        self.impressions.extend(impression.to_dict() for impression in impressions)  # as on the wire


def ids(candidates: Iterable[Candidate]) -> list[int]:
    return [c.post_id for c in candidates]
