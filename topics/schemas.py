"""The record kinds of foryou's public topics, their wire encoding and their keys.

Each record is a frozen dataclass whose `to_dict()` is exactly the JSON object on the wire ("v" first, then
the fields in contract order, nullable fields written as null); `encode` serializes that object with orjson.
Decoding and validation live in `topics.validation`. Constructors do not validate (the decoders do, and
`decode(encode(r)) == r` holds for every valid record) with one exception: float fields must be finite,
because orjson would silently write NaN and infinities as null.
"""

import math
from dataclasses import dataclass
from typing import Any, Final, Literal

import orjson

from stores.records import Post
from topics.limits import DEFAULT_MAX_RESULTS, MAX_ID, SCHEMA_VERSION

MediaKind = Literal["none", "photo", "video"]
MEDIA_KINDS: Final[tuple[str, ...]] = ("none", "photo", "video")

SocialGraphType = Literal["follow", "unfollow", "block", "unblock", "mute", "unmute", "mute_keyword", "unmute_keyword"]
# Types about another user: they require target_id and forbid keyword.
TARGET_TYPES: Final[tuple[str, ...]] = ("follow", "unfollow", "block", "unblock", "mute", "unmute")
# Types about a muted keyword: they require keyword and forbid target_id.
KEYWORD_TYPES: Final[tuple[str, ...]] = ("mute_keyword", "unmute_keyword")
SOCIAL_GRAPH_TYPES: Final[tuple[str, ...]] = TARGET_TYPES + KEYWORD_TYPES

FeedStatus = Literal["ok", "error"]
FEED_STATUSES: Final[tuple[str, ...]] = ("ok", "error")


def _require_finite(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")


@dataclass(frozen=True, slots=True)
class TweetCreate:
    """A new post (`tweet-events`, type "create", key post_id). Fields as in `stores.records.Post`."""

    post_id: int
    author_id: int
    created_at_ms: int
    text: str = ""
    in_reply_to_post_id: int | None = None
    in_reply_to_user_id: int | None = None
    repost_of_post_id: int | None = None
    repost_of_user_id: int | None = None
    quote_of_post_id: int | None = None
    conversation_id: int | None = None
    media: str = "none"
    video_duration_ms: int | None = None
    subscriber_only: bool = False
    safety_label: str | None = None

    @property
    def key_id(self) -> int:
        return self.post_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": SCHEMA_VERSION,
            "type": "create",
            "post_id": self.post_id,
            "author_id": self.author_id,
            "created_at_ms": self.created_at_ms,
            "text": self.text,
            "in_reply_to_post_id": self.in_reply_to_post_id,
            "in_reply_to_user_id": self.in_reply_to_user_id,
            "repost_of_post_id": self.repost_of_post_id,
            "repost_of_user_id": self.repost_of_user_id,
            "quote_of_post_id": self.quote_of_post_id,
            "conversation_id": self.conversation_id,
            "media": self.media,
            "video_duration_ms": self.video_duration_ms,
            "subscriber_only": self.subscriber_only,
            "safety_label": self.safety_label,
        }

    def to_post(self) -> Post:
        """The post as the post store holds it."""
        return Post(
            post_id=self.post_id,
            author_id=self.author_id,
            created_at_ms=self.created_at_ms,
            text=self.text,
            in_reply_to_post_id=self.in_reply_to_post_id,
            in_reply_to_user_id=self.in_reply_to_user_id,
            repost_of_post_id=self.repost_of_post_id,
            repost_of_user_id=self.repost_of_user_id,
            quote_of_post_id=self.quote_of_post_id,
            conversation_id=self.conversation_id,
            media=self.media,
            video_duration_ms=self.video_duration_ms,
            subscriber_only=self.subscriber_only,
            safety_label=self.safety_label,
        )


@dataclass(frozen=True, slots=True)
class TweetDelete:
    """A deleted post (`tweet-events`, type "delete", key post_id)."""

    post_id: int
    author_id: int
    deleted_at_ms: int

    @property
    def key_id(self) -> int:
        return self.post_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": SCHEMA_VERSION,
            "type": "delete",
            "post_id": self.post_id,
            "author_id": self.author_id,
            "deleted_at_ms": self.deleted_at_ms,
        }


@dataclass(frozen=True, slots=True)
class Engagement:
    """One action of a user on a post (`engagement-events`, key user_id); action is one of topics.actions.ACTIONS."""

    user_id: int
    post_id: int
    author_id: int
    action: str
    surface: str
    ts_ms: int
    dwell_ms: int | None = None

    @property
    def key_id(self) -> int:
        return self.user_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": SCHEMA_VERSION,
            "user_id": self.user_id,
            "post_id": self.post_id,
            "author_id": self.author_id,
            "action": self.action,
            "surface": self.surface,
            "ts_ms": self.ts_ms,
            "dwell_ms": self.dwell_ms,
        }


@dataclass(frozen=True, slots=True)
class SocialGraphEvent:
    """A change to a user's graph (`social-graph-events`, key user_id).

    target_id is set exactly for the TARGET_TYPES, keyword exactly for the KEYWORD_TYPES.
    """

    type: str
    user_id: int
    ts_ms: int
    target_id: int | None = None
    keyword: str | None = None

    @property
    def key_id(self) -> int:
        return self.user_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": SCHEMA_VERSION,
            "type": self.type,
            "user_id": self.user_id,
            "target_id": self.target_id,
            "keyword": self.keyword,
            "ts_ms": self.ts_ms,
        }


@dataclass(frozen=True, slots=True)
class FeedRequest:
    """A request for a user's ranked feed (`feed-requests`, key user_id); the answer is a RankedFeed."""

    request_id: str
    user_id: int
    max_results: int = DEFAULT_MAX_RESULTS
    seen_ids: tuple[int, ...] = ()
    served_ids: tuple[int, ...] = ()
    in_network_only: bool = False
    is_bottom_request: bool = False
    country: str | None = None
    language: str | None = None
    explain: bool = False

    @property
    def key_id(self) -> int:
        return self.user_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": SCHEMA_VERSION,
            "request_id": self.request_id,
            "user_id": self.user_id,
            "max_results": self.max_results,
            "seen_ids": list(self.seen_ids),
            "served_ids": list(self.served_ids),
            "in_network_only": self.in_network_only,
            "is_bottom_request": self.is_bottom_request,
            "country": self.country,
            "language": self.language,
            "explain": self.explain,
        }


@dataclass(frozen=True, slots=True)
class RankedPost:
    """One post of a ranked feed; rank 1 is the top. `explain` is only written when not None."""

    post_id: int
    author_id: int
    rank: int
    score: float
    in_network: bool
    explain: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        _require_finite("score", self.score)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "post_id": self.post_id,
            "author_id": self.author_id,
            "rank": self.rank,
            "score": self.score,
            "in_network": self.in_network,
        }
        if self.explain is not None:
            out["explain"] = self.explain
        return out


@dataclass(frozen=True, slots=True)
class RankedFeed:
    """The answer to a FeedRequest (`ranked-feeds`, key user_id); `error` is set iff status is "error"."""

    request_id: str
    user_id: int
    status: str = "ok"
    error: str | None = None
    posts: tuple[RankedPost, ...] = ()
    model: str = ""
    latency_ms: float = 0.0

    def __post_init__(self) -> None:
        _require_finite("latency_ms", self.latency_ms)

    @property
    def key_id(self) -> int:
        return self.user_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": SCHEMA_VERSION,
            "request_id": self.request_id,
            "user_id": self.user_id,
            "status": self.status,
            "error": self.error,
            "posts": [post.to_dict() for post in self.posts],
            "model": self.model,
            "latency_ms": self.latency_ms,
        }


@dataclass(frozen=True, slots=True)
class Impression:
    """One post served to a user in a ranked feed (`impressions`, key user_id); training data."""

    request_id: str
    user_id: int
    post_id: int
    author_id: int
    rank: int
    score: float
    served_at_ms: int

    def __post_init__(self) -> None:
        _require_finite("score", self.score)

    @property
    def key_id(self) -> int:
        return self.user_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": SCHEMA_VERSION,
            "request_id": self.request_id,
            "user_id": self.user_id,
            "post_id": self.post_id,
            "author_id": self.author_id,
            "rank": self.rank,
            "score": self.score,
            "served_at_ms": self.served_at_ms,
        }


TweetEvent = TweetCreate | TweetDelete
Record = TweetCreate | TweetDelete | Engagement | SocialGraphEvent | FeedRequest | RankedFeed | Impression


def encode(record: Record) -> bytes:
    """The record's wire value: compact JSON, "v" first."""
    return orjson.dumps(record.to_dict())


def key_bytes(entity_id: int) -> bytes:
    """The wire key of an id: its decimal digits as UTF-8 (b"42")."""
    if type(entity_id) is not int or not 0 < entity_id <= MAX_ID:
        raise ValueError(f"ids are positive signed 64-bit integers, got {entity_id!r}")
    return str(entity_id).encode()


def record_key(record: Record) -> bytes:
    """The wire key of a record: post_id for tweet events, user_id for everything else."""
    return key_bytes(record.key_id)
