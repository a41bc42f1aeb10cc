"""The record kinds of foryou's public topics, their wire encoding and their keys.

Each record is a frozen dataclass whose `to_dict()` is exactly the JSON object on the wire ("v" first, then
the fields in contract order, nullable fields written as null); `encode` serializes that object with orjson.
Every producer builds its records from these types and every consumer decodes with `topics.validation`, so
this module is the one wire contract; `topics.json_schema` derives the published JSON Schema files from the
same fields (their bounds are the `Annotated` metadata below). Constructors do not validate (the decoders do,
and `decode(encode(r)) == r` holds for every valid record) with one exception: float fields must be finite,
because orjson would silently write NaN and infinities as null.
"""

import math
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Final, Literal, get_args

import orjson

from topics.actions import ACTIONS
from topics.limits import (
    MAX_COUNTRY_CHARS,
    MAX_ERROR_CHARS,
    MAX_ID,
    MAX_KEYWORD_CHARS,
    MAX_LANGUAGE_CHARS,
    MAX_MODEL_CHARS,
    MAX_MS,
    MAX_REQUEST_ID_CHARS,
    MAX_RESULTS,
    MAX_SAFETY_LABEL_CHARS,
    MAX_SEEN_IDS,
    MAX_SERVED_IDS,
    MAX_SURFACE_CHARS,
    MAX_TEXT_CHARS,
    SCHEMA_VERSION,
)

MEDIA_KINDS: Final[tuple[str, ...]] = ("none", "photo", "video")

# Types about another user: they require target_id and forbid keyword.
TARGET_TYPES: Final[tuple[str, ...]] = ("follow", "unfollow", "block", "unblock", "mute", "unmute")
# Types about a muted keyword: they require keyword and forbid target_id.
KEYWORD_TYPES: Final[tuple[str, ...]] = ("mute_keyword", "unmute_keyword")
SOCIAL_GRAPH_TYPES: Final[tuple[str, ...]] = TARGET_TYPES + KEYWORD_TYPES

FEED_STATUSES: Final[tuple[str, ...]] = ("ok", "error")


@dataclass(frozen=True, slots=True)
class Bounds:
    """What the decoders accept for a field beyond its type, as `Annotated` metadata: numbers in
    [minimum, maximum], strings and lists of at most max_length, strings among choices."""

    minimum: int | None = None
    maximum: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class WireDefault:
    """`Annotated` metadata of a field that producers may omit: the decoders fill its default."""


@dataclass(frozen=True, slots=True)
class WireName:
    """`Annotated` metadata of a field whose wire key differs from its Python name."""

    key: str


Id = Annotated[int, Bounds(minimum=1, maximum=MAX_ID)]
Ms = Annotated[int, Bounds(minimum=0, maximum=MAX_MS)]
Rank = Annotated[int, Bounds(minimum=1, maximum=MAX_RESULTS)]
RequestId = Annotated[str, Bounds(min_length=1, max_length=MAX_REQUEST_ID_CHARS)]


def _require_finite(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")


@dataclass(frozen=True, slots=True)
class TweetCreate:
    """A new post (`tweet-events`, type "create", key post_id). The post store keeps these fields (its `Post`)."""

    wire_type: ClassVar[str] = "create"

    post_id: Id
    author_id: Id
    created_at_ms: Ms
    text: Annotated[str, Bounds(max_length=MAX_TEXT_CHARS)] = ""
    in_reply_to_post_id: Id | None = None
    in_reply_to_user_id: Id | None = None
    repost_of_post_id: Id | None = None
    repost_of_user_id: Id | None = None
    quote_of_post_id: Id | None = None
    conversation_id: Id | None = None
    media: Annotated[str, Bounds(choices=MEDIA_KINDS)] = "none"
    video_duration_ms: Ms | None = None
    subscriber_only: bool = False
    safety_label: Annotated[str, Bounds(max_length=MAX_SAFETY_LABEL_CHARS)] | None = None

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


@dataclass(frozen=True, slots=True)
class TweetDelete:
    """A deleted post (`tweet-events`, type "delete", key post_id)."""

    wire_type: ClassVar[str] = "delete"

    post_id: Id
    author_id: Id
    deleted_at_ms: Ms

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

    user_id: Id
    post_id: Id
    author_id: Id
    action: Annotated[str, Bounds(choices=ACTIONS)]
    # Any surface string is accepted: unknown surfaces count as "other" (topics.actions.surface_id).
    surface: Annotated[str, Bounds(max_length=MAX_SURFACE_CHARS)]
    ts_ms: Ms
    dwell_ms: Ms | None = None

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

    type: Annotated[str, Bounds(choices=SOCIAL_GRAPH_TYPES)]
    user_id: Id
    ts_ms: Ms
    target_id: Id | None = None
    keyword: Annotated[str, Bounds(min_length=1, max_length=MAX_KEYWORD_CHARS)] | None = None

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

    request_id: RequestId
    user_id: Id
    # None (null or absent on the wire): the feed size of the worker's preset (topics.limits.MAX_RESULTS).
    max_results: Annotated[int, Bounds(minimum=1, maximum=MAX_RESULTS)] | None = None
    seen_ids: Annotated[tuple[Id, ...], Bounds(max_length=MAX_SEEN_IDS), WireDefault()] = ()
    served_ids: Annotated[tuple[Id, ...], Bounds(max_length=MAX_SERVED_IDS), WireDefault()] = ()
    in_network_only: Annotated[bool, WireDefault()] = False
    is_bottom_request: Annotated[bool, WireDefault()] = False
    country: Annotated[str, Bounds(max_length=MAX_COUNTRY_CHARS)] | None = None
    language: Annotated[str, Bounds(max_length=MAX_LANGUAGE_CHARS)] | None = None
    explain: Annotated[bool, WireDefault()] = False

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


Probability = Annotated[float, Bounds(minimum=0, maximum=1)]


@dataclass(frozen=True, slots=True)
class PostExplain:
    """Why a post ranked where it did (a RankedPost's `explain`, written only when the request asked).

    Every field is null when the stage that sets it did not run or failed; readers ignore unknown fields
    and read missing ones as null, so this debugging view can grow without a new version.
    """

    probabilities: dict[str, Probability] | None = None  # Phoenix's, by action name (topics.actions.ACTIONS)
    raw_probabilities: dict[str, Probability] | None = None  # the model's own, when a calibration changed them
    weighted_score: float | None = None
    diversity_multiplier: float | None = None
    oon_multiplier: float | None = None
    source: str | None = None  # the candidate source that found the post
    retrieval_score: float | None = None
    author_follower_count: Annotated[int, Bounds(minimum=0)] | None = None
    view_count: Annotated[int, Bounds(minimum=0)] | None = None  # served impressions of the post
    engagement_count: Annotated[int, Bounds(minimum=0)] | None = None
    mutual_follow: bool | None = None  # viewer and author follow each other (reply boost)
    cold_start_lifted: bool | None = None  # the author cold-start scorer lifted the post
    dpp: str | None = None  # the DPP re-ranker's verdict: selected, dropped, or why it fell back to plain scores

    def to_dict(self) -> dict[str, Any]:
        return {
            "probabilities": self.probabilities,
            "raw_probabilities": self.raw_probabilities,
            "weighted_score": self.weighted_score,
            "diversity_multiplier": self.diversity_multiplier,
            "oon_multiplier": self.oon_multiplier,
            "source": self.source,
            "retrieval_score": self.retrieval_score,
            "author_follower_count": self.author_follower_count,
            "view_count": self.view_count,
            "engagement_count": self.engagement_count,
            "mutual_follow": self.mutual_follow,
            "cold_start_lifted": self.cold_start_lifted,
            "dpp": self.dpp,
        }


StageKind = Literal[
    "query_hydrator",
    "source",
    "hydrator",
    "dependent_hydrator",
    "filter",
    "scorer",
    "selector",
    "post_selection_hydrator",
    "post_selection_filter",
]
STAGE_KINDS: Final[tuple[str, ...]] = get_args(StageKind)
StageStatus = Literal["ok", "disabled", "failed"]
STAGE_STATUSES: Final[tuple[str, ...]] = get_args(StageStatus)
Count = Annotated[int, Bounds(minimum=0)]


@dataclass(frozen=True, slots=True)
class StageReport:
    """One pipeline component's part in one request: candidates in and out, removals by reason, wall time."""

    kind: Annotated[StageKind, Bounds(choices=STAGE_KINDS)]
    name: str
    status: Annotated[StageStatus, Bounds(choices=STAGE_STATUSES)]
    candidates_in: Annotated[int, Bounds(minimum=0), WireName("in")]
    candidates_out: Annotated[int, Bounds(minimum=0), WireName("out")]
    ms: Annotated[float, Bounds(minimum=0)]
    removed: dict[str, Count] = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "status": self.status,
            "in": self.candidates_in,
            "out": self.candidates_out,
            "removed": dict(self.removed),
            "ms": self.ms,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class FeedExplain:
    """How the pipeline served a request (a RankedFeed's `explain`, written only when the request asked)."""

    degraded: tuple[str, ...]  # "<kind>:<name>" of every component that failed
    stages: tuple[StageReport, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"degraded": list(self.degraded), "stages": [stage.to_dict() for stage in self.stages]}


@dataclass(frozen=True, slots=True)
class RankedPost:
    """One post of a ranked feed; rank 1 is the top. `explain` is only written when not None."""

    post_id: Id
    author_id: Id
    rank: Rank
    score: float
    in_network: bool
    explain: PostExplain | None = None

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
            out["explain"] = self.explain.to_dict()
        return out


@dataclass(frozen=True, slots=True)
class RankedFeed:
    """The answer to a FeedRequest (`ranked-feeds`, key user_id); `error` is set iff status is "error".

    `explain` is only written when not None (the request asked to explain).
    """

    request_id: RequestId
    user_id: Id | None  # null only in an error answer to a request whose user_id could not be read
    status: Annotated[str, Bounds(choices=FEED_STATUSES)] = "ok"
    error: Annotated[str, Bounds(max_length=MAX_ERROR_CHARS)] | None = None
    posts: Annotated[tuple[RankedPost, ...], Bounds(max_length=MAX_RESULTS)] = ()
    model: Annotated[str, Bounds(max_length=MAX_MODEL_CHARS)] = ""
    latency_ms: Annotated[float, Bounds(minimum=0)] = 0.0
    explain: FeedExplain | None = None

    def __post_init__(self) -> None:
        _require_finite("latency_ms", self.latency_ms)

    @property
    def key_id(self) -> int:
        if self.user_id is None:
            raise ValueError("an answer without a user_id has no key of its own: send it with the request's key")
        return self.user_id

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "v": SCHEMA_VERSION,
            "request_id": self.request_id,
            "user_id": self.user_id,
            "status": self.status,
            "error": self.error,
            "posts": [post.to_dict() for post in self.posts],
            "model": self.model,
            "latency_ms": self.latency_ms,
        }
        if self.explain is not None:
            out["explain"] = self.explain.to_dict()
        return out


@dataclass(frozen=True, slots=True)
class Impression:
    """One post served to a user in a ranked feed (`impressions`, key user_id); training data."""

    request_id: RequestId
    user_id: Id
    post_id: Id
    author_id: Id
    rank: Rank
    score: float
    served_at_ms: Ms

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
