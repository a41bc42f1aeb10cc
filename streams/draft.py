"""A draft post as a candidate: built the way an ingested post is built, then run through the real pipeline.

A draft becomes a `tweet-events` create record, checked by the worker's own decoder
(`topics.validation.decode_tweet_event`, so what the worker would dead-letter is refused here too), and is
applied to a scratch post store with `PostStore.apply`, the code every ingested post goes through (so any
per-post feature computed at ingest, such as content features, is computed for the draft the same way). The
pipeline then reads it through `DraftPostStore`, which answers for the draft from the scratch store and for
everything else from the live replica, and `DraftSource` puts it among the user's candidates.

`draft_pipeline` is the For You pipeline with that store and source, without side effects (a simulation
must not record served posts nor publish impressions), and with a `CapturingSelector` that keeps every
scored candidate, so the draft's rank is known even when it would not be served.
"""

import hashlib
import shutil
import tempfile
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from stores.post_store import PostStore as LivePostStore
from stores.records import Post
from streams.candidate import Candidate, new_candidates
from streams.config import ForYouConfig
from streams.engagement_counts import NoEngagementCounts
from streams.for_you import for_you_pipeline
from streams.pipeline import CandidatePipeline
from streams.ports import EngagementCountsStore, PostStore, RankerPort, UserStateStore
from streams.query import FeedQuery
from streams.stages import Selection, Selector, Source
from topics.limits import MAX_ID
from topics.schemas import Impression, TweetCreate, encode
from topics.validation import decode_tweet_event

MEDIA_KINDS = ("none", "photo", "video")


@dataclass(frozen=True, slots=True)
class Draft:
    """What an author is about to post. `post_id` defaults to an id derived from the content, so the same
    draft is always the same candidate (Phoenix hashes post ids); give one to simulate a post that will be
    published with that id."""

    author_id: int
    text: str = ""
    media: str = "none"
    video_duration_ms: int | None = None
    in_reply_to_post_id: int | None = None
    quote_of_post_id: int | None = None
    post_id: int | None = None

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> "Draft":
        """From a request body; ValueError naming the field on bad input."""
        if not isinstance(value, Mapping):
            raise ValueError("a draft is a JSON object")
        unknown = set(value) - {f for f in cls.__slots__}
        if unknown:
            raise ValueError(f"draft: unknown fields {sorted(unknown)}")
        if "author_id" not in value:
            raise ValueError("draft: author_id is required")
        draft = cls(**{k: v for k, v in value.items()})
        draft.check()
        return draft

    def check(self) -> None:
        for name in ("author_id", "video_duration_ms", "in_reply_to_post_id", "quote_of_post_id", "post_id"):
            v = getattr(self, name)
            if v is None and name != "author_id":
                continue
            if isinstance(v, bool) or not isinstance(v, int) or not 0 < v <= MAX_ID:
                raise ValueError(f"draft: {name} must be a positive 64-bit integer, got {v!r}")
        if not isinstance(self.text, str):
            raise ValueError("draft: text must be a string")
        if self.media not in MEDIA_KINDS:
            raise ValueError(f"draft: media must be one of {', '.join(MEDIA_KINDS)}, got {self.media!r}")
        if self.video_duration_ms is not None and self.media != "video":
            raise ValueError("draft: video_duration_ms is for media 'video' only")

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def effective_post_id(self) -> int:
        if self.post_id is not None:
            return self.post_id
        digest = hashlib.blake2b(orjson.dumps(self.to_json(), option=orjson.OPT_SORT_KEYS), digest_size=8)
        # Top of the id space, where no real post lives in practice: (MAX_ID - 2^40, MAX_ID].
        return MAX_ID - int.from_bytes(digest.digest()[:5], "big")

    def tweet_event(self, created_at_ms: int, post_store: PostStore) -> dict[str, Any]:
        """The `tweet-events` create record of this draft, through the worker's decoder (InvalidRecord if it
        would be dead-lettered). A reply names its parent's author and conversation, as a client would."""
        parent = post_store.get(self.in_reply_to_post_id) if self.in_reply_to_post_id is not None else None
        record = TweetCreate(
            post_id=self.effective_post_id(),
            author_id=self.author_id,
            created_at_ms=created_at_ms,
            text=self.text,
            in_reply_to_post_id=self.in_reply_to_post_id,
            in_reply_to_user_id=None if parent is None else parent.author_id,
            quote_of_post_id=self.quote_of_post_id,
            conversation_id=None if parent is None else parent.conversation_id or parent.post_id,
            media=self.media,
            video_duration_ms=self.video_duration_ms,
        )
        return decode_tweet_event(encode(record)).to_dict()


class DraftPostStore:
    """The live post store plus one draft, ingested into a scratch RocksDB store by `PostStore.apply`.
    Close it (or use it as a context manager) to remove the scratch store."""

    def __init__(self, live: PostStore, draft: Draft, now_ms: int, scratch_dir: Path | None = None) -> None:
        self.live = live
        self.event = draft.tweet_event(now_ms, live)
        self._dir = Path(tempfile.mkdtemp(prefix="draft-", dir=scratch_dir))
        # The live store's content encoder (if any) embeds the draft exactly as ingest embeds a post.
        encoder = getattr(live, "content_encoder", None)
        self._scratch = LivePostStore(str(self._dir / "post-store"), content_encoder=encoder)
        self._scratch.apply([self.event], now_ms=now_ms)
        post = self._scratch.get(self.event["post_id"])
        if post is None:
            raise ValueError("the draft was not stored: its creation time is outside the post retention")
        self.post: Post = post

    @property
    def post_id(self) -> int:
        return self.post.post_id

    def get(self, post_id: int) -> Post | None:
        return self.post if post_id == self.post.post_id else self.live.get(post_id)

    def get_many(self, post_ids: Iterable[int]) -> dict[int, Post]:
        ids = set(post_ids)
        found = self.live.get_many(ids - {self.post.post_id})
        if self.post.post_id in ids:
            found[self.post.post_id] = self.post
        return found

    def is_deleted(self, post_id: int) -> bool:
        return False if post_id == self.post.post_id else self.live.is_deleted(post_id)

    def content_vectors(self, post_ids: Sequence[int]) -> list[np.ndarray | None]:
        draft = self.post.post_id
        live = iter(self.live.content_vectors([i for i in post_ids if i != draft]))
        own = self._scratch.content_vectors([draft])[0]
        return [own if post_id == draft else next(live) for post_id in post_ids]

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
        # The draft enters through DraftSource, not Thunder: the user's other candidates are unchanged.
        return self.live.recent_posts(author_ids, limit, exclude, now_ms, max_age_ms, viewer_id=viewer_id)

    def follower_counts(self, author_ids: Iterable[int]) -> dict[int, int]:
        return self.live.follower_counts(author_ids)

    def authors_following(self, user_id: int, author_ids: Iterable[int]) -> set[int]:
        return self.live.authors_following(user_id, author_ids)

    def iter_recent(self, since_ms: int) -> Iterator[Post]:
        # The draft enters through DraftSource only, as for Thunder: PopularPosts sees the live posts.
        return self.live.iter_recent(since_ms)

    def close(self) -> None:
        self._scratch.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "DraftPostStore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class DraftSource(Source):
    """The draft as one more candidate: in-network (Thunder's) for a follower of its author, else
    retrieval's with the user's similarity to it (given by `retrieval_score(query)`)."""

    name = "Draft"

    def __init__(self, post: Post, retrieval_score: Any) -> None:
        self._post = post
        self._retrieval_score = retrieval_score

    async def fetch(self, query: FeedQuery) -> list[Candidate]:
        following = query.user_features.following if query.user_features is not None else frozenset()
        if self._post.author_id in following:
            return new_candidates("thunder", [self._post.post_id], [self._post.author_id])
        score = float(self._retrieval_score(query))
        return new_candidates("phoenix_retrieval", [self._post.post_id], [self._post.author_id], [score])


class CapturingSelector(Selector):
    """The pipeline's selector, keeping what it was given: the hydrated query and every scored candidate."""

    def __init__(self, inner: Selector) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]  # reported as the selector it wraps
        self.query: FeedQuery | None = None
        self.candidates: list[Candidate] = []
        self.ranked: list[Candidate] = []

    def select(self, query: FeedQuery, candidates: Sequence[Candidate]) -> Selection:
        selection = self.inner.select(query, candidates)
        self.query = query
        self.candidates = list(candidates)
        self.ranked = selection.selected + selection.reserve
        return selection


class CapturingSource(Source):
    """A source whose output (candidates and retrieval scores) is kept: retrieval's k-th score is the bar a
    draft must clear to be retrieved."""

    def __init__(self, inner: Source) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]
        self.fetched: list[Candidate] | None = None

    def enable(self, query: FeedQuery) -> bool:
        return self.inner.enable(query)

    async def fetch(self, query: FeedQuery) -> list[Candidate]:
        self.fetched = await self.inner.fetch(query)
        return self.fetched


@dataclass(slots=True)
class Capture:
    """One pipeline built to be observed: its selector's and retrieval source's captures."""

    pipeline: CandidatePipeline
    selector: CapturingSelector
    retrieval: CapturingSource | None


class _NoSink:
    def record_served(self, user_id: int, post_ids: Sequence[int], ts_ms: int) -> None:
        raise AssertionError("a simulation has no side effects")

    def publish_impressions(self, impressions: list[Impression]) -> None:
        raise AssertionError("a simulation has no side effects")


def observed_pipeline(
    *,
    config: ForYouConfig,
    post_store: PostStore,
    user_state: UserStateStore,
    ranker: RankerPort,
    extra_sources: Sequence[Source] = (),
    counts: EngagementCountsStore | None = None,
) -> Capture:
    """The production For You pipeline (streams.for_you) over these stores, with its selector and retrieval
    source captured, `extra_sources` after its own, and no side effects. Without `counts` (offline), every
    post counts zero views and engagements."""
    base = for_you_pipeline(
        config=config, post_store=post_store, user_state=user_state, ranker=ranker, sink=_NoSink(),
        counts=counts if counts is not None else NoEngagementCounts(),
    )
    selector = CapturingSelector(base.selector)
    sources: list[Source] = []
    retrieval = None
    for source in base.sources:
        if source.name == "PhoenixRetrieval":
            retrieval = CapturingSource(source)
            source = retrieval
        sources.append(source)
    pipeline = replace(base, sources=[*sources, *extra_sources], selector=selector, side_effects=[])
    return Capture(pipeline, selector, retrieval)


def retrieval_bar(fetched: Sequence[Candidate] | None, k: int) -> float:
    """The similarity a post needs to enter retrieval's top k: the k-th retrieved score, or -inf when
    retrieval returned fewer than k (anything similar at all gets in), or +inf when it did not run."""
    if fetched is None:
        return float("inf")
    if len(fetched) < k:
        return float("-inf")
    return float(np.min([c.retrieval_score for c in fetched if c.retrieval_score is not None]))
