"""Strict, cheap decoding of the public topics' values into records.

One size check, one `orjson.loads`, then direct checks on the dict: exact types (JSON true is not an
integer, 1.0 is not an id), ids in [1, 2^63-1], bounded strings and lists. Unknown extra fields are ignored
so producers can add fields before consumers know them. Nullable fields may be omitted (meaning null);
other fields are required unless the contract gives them a default (the feed-request options). Record keys
are not checked: producers may key records however they like, the app re-keys by id.

Every failure raises InvalidRecord with a `reason` from the fixed REASONS set (usable as a Prometheus
label) and a short `detail` for people; details never echo more than a short preview of the input.
"""

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final, cast

import orjson

from topics.actions import ACTION_INDEX
from topics.limits import (
    MAX_COUNTRY_CHARS,
    MAX_ERROR_CHARS,
    MAX_ID,
    MAX_KEYWORD_CHARS,
    MAX_LANGUAGE_CHARS,
    MAX_MODEL_CHARS,
    MAX_MS,
    MAX_PAYLOAD_BYTES,
    MAX_RANKED_FEED_BYTES,
    MAX_REQUEST_ID_CHARS,
    MAX_RESULTS,
    MAX_SAFETY_LABEL_CHARS,
    MAX_SEEN_IDS,
    MAX_SERVED_IDS,
    MAX_SURFACE_CHARS,
    MAX_TEXT_CHARS,
    SCHEMA_VERSION,
)
from topics.schemas import (
    FEED_STATUSES,
    KEYWORD_TYPES,
    MEDIA_KINDS,
    STAGE_KINDS,
    STAGE_STATUSES,
    TARGET_TYPES,
    Engagement,
    FeedExplain,
    FeedRequest,
    Impression,
    PostExplain,
    RankedFeed,
    RankedPost,
    SocialGraphEvent,
    StageKind,
    StageReport,
    StageStatus,
    TweetCreate,
    TweetDelete,
    TweetEvent,
)
from topics.specs import (
    ENGAGEMENT_EVENTS,
    FEED_REQUESTS,
    IMPRESSIONS,
    RANKED_FEEDS,
    SOCIAL_GRAPH_EVENTS,
    TWEET_EVENTS,
)

REASONS: Final[tuple[str, ...]] = (
    "empty",  # no value at all: null (a tombstone) or zero bytes
    "too_large",  # more bytes than the topic's bound; rejected before parsing
    "not_utf8",
    "not_json",  # includes NaN/Infinity, trailing garbage and nesting deeper than orjson's limit
    "not_object",  # valid JSON but not an object (array, string, number, ...)
    "unknown_version",  # "v" is an integer other than 1
    "missing_field",
    "wrong_type",
    "out_of_range",  # a number or a length outside its bounds
    "bad_value",  # a value outside its enumeration or inconsistent with another field
)
_REASON_SET: Final = frozenset(REASONS)


class InvalidRecord(ValueError):
    """A value that breaks the wire contract.

    For feed requests, `request_id` and `user_id` are set whenever the record held valid ones, so the
    worker can still answer the requester with an error.
    """

    def __init__(self, reason: str, detail: str, request_id: str | None = None, user_id: int | None = None) -> None:
        if reason not in _REASON_SET:
            raise ValueError(f"unknown InvalidRecord reason {reason!r}; use one of {REASONS}")
        super().__init__(reason, detail, request_id, user_id)
        self.reason = reason
        self.detail = detail
        self.request_id = request_id
        self.user_id = user_id

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


_MISSING: Final = object()
_JSON_TYPE_NAMES: Final[dict[type, str]] = {
    dict: "object",
    list: "array",
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
}
_PREVIEW_CHARS: Final = 32

_MEDIA_SET: Final = frozenset(MEDIA_KINDS)
_TARGET_TYPE_SET: Final = frozenset(TARGET_TYPES)
_KEYWORD_TYPE_SET: Final = frozenset(KEYWORD_TYPES)
_STATUS_SET: Final = frozenset(FEED_STATUSES)
_STAGE_KIND_SET: Final = frozenset(STAGE_KINDS)
_STAGE_STATUS_SET: Final = frozenset(STAGE_STATUSES)


def _json_type(value: object) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _preview(text: str) -> str:
    if len(text) <= _PREVIEW_CHARS:
        return repr(text)
    return repr(text[:_PREVIEW_CHARS]) + "..."


def _absent_or_wrong(name: str, value: object, expected: str) -> InvalidRecord:
    if value is _MISSING:
        return InvalidRecord("missing_field", f"{name} is required")
    return InvalidRecord("wrong_type", f"{name}: expected {expected}, got {_json_type(value)}")


# ---- parsing --------------------------------------------------------------------------------------------


def _parse_object(value: bytes | None, max_bytes: int) -> dict[str, Any]:
    if not value:
        raise InvalidRecord("empty", "the value is null or empty")
    if len(value) > max_bytes:
        raise InvalidRecord("too_large", f"{len(value)} bytes, more than the bound of {max_bytes}")
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise _parse_failure(value, exc) from None
    if type(obj) is not dict:
        raise InvalidRecord("not_object", f"expected a JSON object, got {_json_type(obj)}")
    return obj


def _parse_failure(value: bytes, exc: orjson.JSONDecodeError) -> InvalidRecord:
    # orjson reports bad UTF-8 as a JSON error; tell the two apart only on this (rare) path.
    try:
        bytes(value).decode("utf-8")
    except UnicodeDecodeError as utf8_error:
        return InvalidRecord("not_utf8", f"invalid UTF-8 at byte {utf8_error.start}")
    return InvalidRecord("not_json", str(exc)[:200])


def _check_version(obj: dict[str, Any]) -> None:
    version = obj.get("v", _MISSING)
    if type(version) is int:
        if version == SCHEMA_VERSION:
            return
        raise InvalidRecord("unknown_version", f"v is {version}, this reader knows v {SCHEMA_VERSION}")
    raise _absent_or_wrong("v", version, "integer")


def _load(value: bytes | None, max_bytes: int = MAX_PAYLOAD_BYTES) -> dict[str, Any]:
    return _versioned(_parse_object(value, max_bytes))


def _versioned(obj: object) -> dict[str, Any]:
    """`obj` as a contract object: a dict with the known "v"."""
    if type(obj) is not dict:
        raise InvalidRecord("not_object", f"expected a JSON object, got {_json_type(obj)}")
    _check_version(obj)
    return obj


# ---- field checks ---------------------------------------------------------------------------------------


def _id_value(name: str, value: object) -> int:
    if type(value) is int:
        if 0 < value <= MAX_ID:
            return value
        raise InvalidRecord("out_of_range", f"{name}: {value} is not an id in [1, 2^63-1]")
    raise _absent_or_wrong(name, value, "integer")


def _id(obj: dict[str, Any], name: str) -> int:
    return _id_value(name, obj.get(name, _MISSING))


def _optional_id(obj: dict[str, Any], name: str) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    return _id_value(name, value)


def _int_in(name: str, value: object, low: int, high: int) -> int:
    if type(value) is int:
        if low <= value <= high:
            return value
        raise InvalidRecord("out_of_range", f"{name}: {value} is not in [{low}, {high}]")
    raise _absent_or_wrong(name, value, "integer")


def _optional_int_in(obj: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    return _int_in(name, value, low, high)


def _ms(obj: dict[str, Any], name: str) -> int:
    return _int_in(name, obj.get(name, _MISSING), 0, MAX_MS)


def _optional_ms(obj: dict[str, Any], name: str) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    return _int_in(name, value, 0, MAX_MS)


def _rank(name: str, value: object) -> int:
    return _int_in(name, value, 1, MAX_RESULTS)


def _float(name: str, value: object) -> float:
    # JSON has one number type: integers are accepted where a float is expected. orjson never yields a
    # non-finite float (NaN, Infinity and overflowing literals are parse errors).
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    raise _absent_or_wrong(name, value, "number")


def _bool_value(name: str, value: object) -> bool:
    if type(value) is bool:
        return value
    raise _absent_or_wrong(name, value, "boolean")


def _bool(obj: dict[str, Any], name: str, default: object = _MISSING) -> bool:
    return _bool_value(name, obj.get(name, default))


def _str_value(name: str, value: object, max_chars: int, *, allow_empty: bool) -> str:
    if type(value) is str:
        if len(value) > max_chars:
            raise InvalidRecord("out_of_range", f"{name}: {len(value)} characters, more than {max_chars}")
        if not allow_empty and not value:
            raise InvalidRecord("bad_value", f"{name} must not be empty")
        return value
    raise _absent_or_wrong(name, value, "string")


def _str(obj: dict[str, Any], name: str, max_chars: int, *, allow_empty: bool) -> str:
    return _str_value(name, obj.get(name, _MISSING), max_chars, allow_empty=allow_empty)


def _optional_str(obj: dict[str, Any], name: str, max_chars: int) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    return _str_value(name, value, max_chars, allow_empty=True)


def _choice(obj: dict[str, Any], name: str, choices: frozenset[str] | Mapping[str, int]) -> str:
    value = obj.get(name, _MISSING)
    if type(value) is str:
        if value in choices:
            return value
        raise InvalidRecord("bad_value", f"{name}: unknown value {_preview(value)}")
    raise _absent_or_wrong(name, value, "string")


def _id_list(obj: dict[str, Any], name: str, max_items: int) -> tuple[int, ...]:
    items = obj.get(name, _MISSING)
    if type(items) is not list:
        if items is _MISSING:
            return ()
        raise InvalidRecord("wrong_type", f"{name}: expected array, got {_json_type(items)}")
    if len(items) > max_items:
        raise InvalidRecord("out_of_range", f"{name}: {len(items)} items, more than {max_items}")
    for item in items:
        if type(item) is not int or not 0 < item <= MAX_ID:
            raise _bad_list_item(name, items)
    return tuple(items)


def _bad_list_item(name: str, items: list[Any]) -> InvalidRecord:
    for index, item in enumerate(items):
        try:
            _id_value(f"{name}[{index}]", item)
        except InvalidRecord as error:
            return error
    raise AssertionError("called without a bad item")


# ---- decoders -------------------------------------------------------------------------------------------


def decode_tweet_event(value: bytes | None) -> TweetEvent:
    """A `tweet-events` value: a TweetCreate or a TweetDelete, by its "type"."""
    return tweet_event_from_object(_load(value))


def tweet_event_from_object(parsed: object) -> TweetEvent:
    """`decode_tweet_event` of an already parsed value (the worker's internal topics carry these objects)."""
    obj = _versioned(parsed)
    kind = obj.get("type", _MISSING)
    if kind == "create":
        return _tweet_create(obj)
    if kind == "delete":
        return TweetDelete(
            post_id=_id(obj, "post_id"),
            author_id=_id(obj, "author_id"),
            deleted_at_ms=_ms(obj, "deleted_at_ms"),
        )
    if type(kind) is str:
        raise InvalidRecord("bad_value", f"type: unknown value {_preview(kind)}, expected create or delete")
    raise _absent_or_wrong("type", kind, "string")


def _tweet_create(obj: dict[str, Any]) -> TweetCreate:
    return TweetCreate(
        post_id=_id(obj, "post_id"),
        author_id=_id(obj, "author_id"),
        created_at_ms=_ms(obj, "created_at_ms"),
        text=_str(obj, "text", MAX_TEXT_CHARS, allow_empty=True),
        in_reply_to_post_id=_optional_id(obj, "in_reply_to_post_id"),
        in_reply_to_user_id=_optional_id(obj, "in_reply_to_user_id"),
        repost_of_post_id=_optional_id(obj, "repost_of_post_id"),
        repost_of_user_id=_optional_id(obj, "repost_of_user_id"),
        quote_of_post_id=_optional_id(obj, "quote_of_post_id"),
        conversation_id=_optional_id(obj, "conversation_id"),
        media=_choice(obj, "media", _MEDIA_SET),
        video_duration_ms=_optional_ms(obj, "video_duration_ms"),
        subscriber_only=_bool(obj, "subscriber_only"),
        safety_label=_optional_str(obj, "safety_label", MAX_SAFETY_LABEL_CHARS),
    )


def decode_engagement(value: bytes | None) -> Engagement:
    """An `engagement-events` value."""
    return engagement_from_object(_load(value))


def engagement_from_object(parsed: object) -> Engagement:
    obj = _versioned(parsed)
    return Engagement(
        user_id=_id(obj, "user_id"),
        post_id=_id(obj, "post_id"),
        author_id=_id(obj, "author_id"),
        action=_choice(obj, "action", ACTION_INDEX),
        # Any surface string is accepted: unknown surfaces map to "other" (topics.actions.surface_id).
        surface=_str(obj, "surface", MAX_SURFACE_CHARS, allow_empty=True),
        ts_ms=_ms(obj, "ts_ms"),
        dwell_ms=_optional_ms(obj, "dwell_ms"),
    )


def decode_social_graph_event(value: bytes | None) -> SocialGraphEvent:
    """A `social-graph-events` value; target_id is required for user types, keyword for keyword types."""
    return social_graph_event_from_object(_load(value))


def social_graph_event_from_object(parsed: object) -> SocialGraphEvent:
    obj = _versioned(parsed)
    kind = _choice(obj, "type", _TARGET_TYPE_SET | _KEYWORD_TYPE_SET)
    user_id = _id(obj, "user_id")
    ts_ms = _ms(obj, "ts_ms")
    if kind in _TARGET_TYPE_SET:
        target_id = _optional_id(obj, "target_id")
        if target_id is None:
            raise InvalidRecord("missing_field", f"target_id is required for type {kind}")
        if target_id == user_id:
            raise InvalidRecord("bad_value", f"target_id: a user cannot {kind} themselves")
        if obj.get("keyword") is not None:
            raise InvalidRecord("bad_value", f"keyword must be null for type {kind}")
        return SocialGraphEvent(type=kind, user_id=user_id, ts_ms=ts_ms, target_id=target_id)
    keyword = _optional_str(obj, "keyword", MAX_KEYWORD_CHARS)
    if keyword is None:
        raise InvalidRecord("missing_field", f"keyword is required for type {kind}")
    if not keyword.strip():
        raise InvalidRecord("bad_value", "keyword must not be empty or blank")
    if obj.get("target_id") is not None:
        raise InvalidRecord("bad_value", f"target_id must be null for type {kind}")
    return SocialGraphEvent(type=kind, user_id=user_id, ts_ms=ts_ms, keyword=keyword)


def decode_feed_request(value: bytes | None) -> FeedRequest:
    """A `feed-requests` value; only v, request_id and user_id are required.

    When the record is an object holding a valid request_id (and user_id), the InvalidRecord carries them
    even if other fields, or "v", are wrong.
    """
    return feed_request_from_object(_parse_object(value, MAX_PAYLOAD_BYTES))


def feed_request_from_object(obj: object) -> FeedRequest:
    """`decode_feed_request` of an already parsed value."""
    if type(obj) is not dict:
        raise InvalidRecord("not_object", f"expected a JSON object, got {_json_type(obj)}")
    try:
        _check_version(obj)
        return _feed_request(obj)
    except InvalidRecord as error:
        raise InvalidRecord(
            error.reason, error.detail, _recoverable_request_id(obj), _recoverable_user_id(obj)
        ) from None


def _feed_request(obj: dict[str, Any]) -> FeedRequest:
    return FeedRequest(
        request_id=_str(obj, "request_id", MAX_REQUEST_ID_CHARS, allow_empty=False),
        user_id=_id(obj, "user_id"),
        max_results=_optional_int_in(obj, "max_results", 1, MAX_RESULTS),
        seen_ids=_id_list(obj, "seen_ids", MAX_SEEN_IDS),
        served_ids=_id_list(obj, "served_ids", MAX_SERVED_IDS),
        in_network_only=_bool(obj, "in_network_only", False),
        is_bottom_request=_bool(obj, "is_bottom_request", False),
        country=_optional_str(obj, "country", MAX_COUNTRY_CHARS),
        language=_optional_str(obj, "language", MAX_LANGUAGE_CHARS),
        explain=_bool(obj, "explain", False),
    )


def _recoverable_request_id(obj: dict[str, Any]) -> str | None:
    value = obj.get("request_id")
    if type(value) is str and 0 < len(value) <= MAX_REQUEST_ID_CHARS:
        return value
    return None


def _recoverable_user_id(obj: dict[str, Any]) -> int | None:
    value = obj.get("user_id")
    if type(value) is int and 0 < value <= MAX_ID:
        return value
    return None


def decode_ranked_feed(value: bytes | None) -> RankedFeed:
    """A `ranked-feeds` value (bound MAX_RANKED_FEED_BYTES, since posts may carry explain objects)."""
    obj = _load(value, MAX_RANKED_FEED_BYTES)
    status = _choice(obj, "status", _STATUS_SET)
    error = _optional_str(obj, "error", MAX_ERROR_CHARS)
    if status == "error" and not error:
        raise InvalidRecord("bad_value", "error: a non-empty message is required when status is error")
    if status == "ok" and error is not None:
        raise InvalidRecord("bad_value", "error must be null when status is ok")
    # An error answer to a request whose user_id could not be read has none.
    user_id = _id(obj, "user_id") if status == "ok" else _optional_id(obj, "user_id")
    posts = obj.get("posts", _MISSING)
    if type(posts) is not list:
        raise _absent_or_wrong("posts", posts, "array")
    if len(posts) > MAX_RESULTS:
        raise InvalidRecord("out_of_range", f"posts: {len(posts)} items, more than {MAX_RESULTS}")
    explain = obj.get("explain")
    return RankedFeed(
        request_id=_str(obj, "request_id", MAX_REQUEST_ID_CHARS, allow_empty=False),
        user_id=user_id,
        status=status,
        error=error,
        posts=tuple(_ranked_post(f"posts[{index}]", post) for index, post in enumerate(posts)),
        model=_str(obj, "model", MAX_MODEL_CHARS, allow_empty=True),
        latency_ms=_non_negative_float("latency_ms", obj.get("latency_ms", _MISSING)),
        explain=None if explain is None else _feed_explain("explain", explain),
    )


def _ranked_post(name: str, post: object) -> RankedPost:
    if type(post) is not dict:
        raise InvalidRecord("wrong_type", f"{name}: expected object, got {_json_type(post)}")
    explain = post.get("explain")
    return RankedPost(
        post_id=_id_value(f"{name}.post_id", post.get("post_id", _MISSING)),
        author_id=_id_value(f"{name}.author_id", post.get("author_id", _MISSING)),
        rank=_rank(f"{name}.rank", post.get("rank", _MISSING)),
        score=_float(f"{name}.score", post.get("score", _MISSING)),
        in_network=_bool_value(f"{name}.in_network", post.get("in_network", _MISSING)),
        explain=None if explain is None else _post_explain(f"{name}.explain", explain),
    )


# ---- explain objects: debugging views, read leniently (a missing field is null) but typed -----------------


def _object(name: str, value: object) -> dict[str, Any]:
    if type(value) is not dict:
        raise InvalidRecord("wrong_type", f"{name}: expected object, got {_json_type(value)}")
    return value


def _nullable(name: str, value: object, read: Callable[[str, object], Any]) -> Any:
    return None if value is None else read(name, value)


def _probabilities(name: str, value: object) -> dict[str, float]:
    by_action = _object(name, value)
    out = {}
    for action, probability in by_action.items():
        number = _float(f"{name}.{action}", probability)
        if not 0.0 <= number <= 1.0:
            raise InvalidRecord("out_of_range", f"{name}.{action}: {number} is not a probability")
        out[action] = number
    return out


def _count(name: str, value: object) -> int:
    return _int_in(name, value, 0, MAX_ID)


def _text(name: str, value: object) -> str:
    return _str_value(name, value, MAX_ERROR_CHARS, allow_empty=True)


# How each field of a post's explain object is read (every one may be null).
_POST_EXPLAIN_READERS: Final[Mapping[str, Callable[[str, object], Any]]] = MappingProxyType(
    {
        "probabilities": _probabilities,
        "raw_probabilities": _probabilities,
        "weighted_score": _float,
        "diversity_multiplier": _float,
        "oon_multiplier": _float,
        "source": _text,
        "retrieval_score": _float,
        "author_follower_count": _count,
        "view_count": _count,
        "engagement_count": _count,
        "mutual_follow": _bool_value,
        "cold_start_lifted": _bool_value,
        "dpp": _text,
    }
)


def _post_explain(name: str, value: object) -> PostExplain:
    obj = _object(name, value)
    return PostExplain(
        **{key: _nullable(f"{name}.{key}", obj.get(key), read) for key, read in _POST_EXPLAIN_READERS.items()}
    )


def _feed_explain(name: str, value: object) -> FeedExplain:
    obj = _object(name, value)
    degraded = obj.get("degraded", [])
    stages = obj.get("stages", [])
    if type(degraded) is not list:
        raise InvalidRecord("wrong_type", f"{name}.degraded: expected array, got {_json_type(degraded)}")
    if type(stages) is not list:
        raise InvalidRecord("wrong_type", f"{name}.stages: expected array, got {_json_type(stages)}")
    return FeedExplain(
        degraded=tuple(_text(f"{name}.degraded[{i}]", label) for i, label in enumerate(degraded)),
        stages=tuple(_stage_report(f"{name}.stages[{i}]", stage) for i, stage in enumerate(stages)),
    )


def _stage_report(name: str, value: object) -> StageReport:
    obj = _object(name, value)
    kind = _str_value(f"{name}.kind", obj.get("kind", _MISSING), MAX_ERROR_CHARS, allow_empty=False)
    status = _str_value(f"{name}.status", obj.get("status", _MISSING), MAX_ERROR_CHARS, allow_empty=False)
    if kind not in _STAGE_KIND_SET:
        raise InvalidRecord("bad_value", f"{name}.kind: unknown value {_preview(kind)}")
    if status not in _STAGE_STATUS_SET:
        raise InvalidRecord("bad_value", f"{name}.status: unknown value {_preview(status)}")
    removed = _object(f"{name}.removed", obj.get("removed", {}))
    return StageReport(
        kind=cast(StageKind, kind),
        name=_str_value(f"{name}.name", obj.get("name", _MISSING), MAX_ERROR_CHARS, allow_empty=False),
        status=cast(StageStatus, status),
        candidates_in=_count(f"{name}.in", obj.get("in", _MISSING)),
        candidates_out=_count(f"{name}.out", obj.get("out", _MISSING)),
        ms=_non_negative_float(f"{name}.ms", obj.get("ms", _MISSING)),
        removed={reason: _count(f"{name}.removed.{reason}", count) for reason, count in removed.items()},
        error=_nullable(f"{name}.error", obj.get("error"), _text),
    )


def _non_negative_float(name: str, value: object) -> float:
    number = _float(name, value)
    if number < 0:
        raise InvalidRecord("out_of_range", f"{name}: {number} is negative")
    return number


def decode_impression(value: bytes | None) -> Impression:
    """An `impressions` value."""
    obj = _load(value)
    return Impression(
        request_id=_str(obj, "request_id", MAX_REQUEST_ID_CHARS, allow_empty=False),
        user_id=_id(obj, "user_id"),
        post_id=_id(obj, "post_id"),
        author_id=_id(obj, "author_id"),
        rank=_rank("rank", obj.get("rank", _MISSING)),
        score=_float("score", obj.get("score", _MISSING)),
        served_at_ms=_ms(obj, "served_at_ms"),
    )


Decoder = Callable[[bytes | None], object]

# The decoder of every public topic that carries JSON values (dead-letters carry the original bytes).
DECODER_BY_TOPIC: Final[Mapping[str, Decoder]] = MappingProxyType(
    {
        TWEET_EVENTS: decode_tweet_event,
        ENGAGEMENT_EVENTS: decode_engagement,
        SOCIAL_GRAPH_EVENTS: decode_social_graph_event,
        FEED_REQUESTS: decode_feed_request,
        RANKED_FEEDS: decode_ranked_feed,
        IMPRESSIONS: decode_impression,
    }
)
