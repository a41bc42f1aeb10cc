"""Encoding of every record kind: round trips through the decoders, field order, keys."""

from collections.abc import Callable

import orjson
import pytest

from stores.records import Post
from topics.limits import MAX_ID
from topics.schemas import (
    Engagement,
    FeedExplain,
    FeedRequest,
    Impression,
    PostExplain,
    RankedFeed,
    RankedPost,
    Record,
    SocialGraphEvent,
    StageReport,
    TweetCreate,
    TweetDelete,
    encode,
    key_bytes,
    record_key,
)
from topics.validation import (
    decode_engagement,
    decode_feed_request,
    decode_impression,
    decode_ranked_feed,
    decode_social_graph_event,
    decode_tweet_event,
)

FULL_TWEET = TweetCreate(
    post_id=MAX_ID,
    author_id=7,
    created_at_ms=1_700_000_000_000,
    text='quotes " backslashes \\ newlines \n and 😀',
    in_reply_to_post_id=900,
    in_reply_to_user_id=8,
    repost_of_post_id=None,
    repost_of_user_id=None,
    quote_of_post_id=901,
    conversation_id=899,
    media="video",
    video_duration_ms=15_000,
    subscriber_only=True,
    safety_label="sensitive",
)
FULL_FEED = RankedFeed(
    request_id="req-1",
    user_id=42,
    status="ok",
    error=None,
    posts=(
        RankedPost(1001, 7, 1, 0.875, True, explain=PostExplain(weighted_score=0.9, probabilities={"favorite": 0.25})),
        RankedPost(1002, 8, 2, -0.5, False),
    ),
    model="phoenix-v1",
    latency_ms=12.5,
)
EXPLAINED_FEED = RankedFeed(
    request_id="req-5",
    user_id=42,
    posts=(RankedPost(1001, 7, 1, 0.5, False, explain=PostExplain(source="retrieval", dpp="selected", view_count=3)),),
    model="phoenix-v1",
    explain=FeedExplain(
        degraded=("hydrator:Counts",),
        stages=(
            StageReport("filter", "AgeFilter", "ok", 40, 31, 0.25, {"too_old": 9}),
            StageReport("hydrator", "Counts", "failed", 31, 31, 1.5, error="RuntimeError: down"),
        ),
    ),
)

# (record, its decoder, its wire field order)
CASES: list[tuple[Record, Callable[[bytes | None], object], list[str]]] = [
    (
        FULL_TWEET,
        decode_tweet_event,
        [
            "v",
            "type",
            "post_id",
            "author_id",
            "created_at_ms",
            "text",
            "in_reply_to_post_id",
            "in_reply_to_user_id",
            "repost_of_post_id",
            "repost_of_user_id",
            "quote_of_post_id",
            "conversation_id",
            "media",
            "video_duration_ms",
            "subscriber_only",
            "safety_label",
        ],
    ),
    (
        TweetCreate(post_id=5, author_id=6, created_at_ms=0, repost_of_post_id=4, repost_of_user_id=3),
        decode_tweet_event,
        [
            "v",
            "type",
            "post_id",
            "author_id",
            "created_at_ms",
            "text",
            "in_reply_to_post_id",
            "in_reply_to_user_id",
            "repost_of_post_id",
            "repost_of_user_id",
            "quote_of_post_id",
            "conversation_id",
            "media",
            "video_duration_ms",
            "subscriber_only",
            "safety_label",
        ],
    ),
    (TweetDelete(5, 6, 1_700_000_000_000), decode_tweet_event, ["v", "type", "post_id", "author_id", "deleted_at_ms"]),
    (
        Engagement(42, 1001, 7, "dwell_time", "home_for_you", 1_700_000_000_000, 2_500),
        decode_engagement,
        ["v", "user_id", "post_id", "author_id", "action", "surface", "ts_ms", "dwell_ms"],
    ),
    (
        Engagement(42, 1001, 7, "favorite", "", 1, None),
        decode_engagement,
        ["v", "user_id", "post_id", "author_id", "action", "surface", "ts_ms", "dwell_ms"],
    ),
    (
        SocialGraphEvent("block", 42, 1_700_000_000_000, target_id=7),
        decode_social_graph_event,
        ["v", "type", "user_id", "target_id", "keyword", "ts_ms"],
    ),
    (
        SocialGraphEvent("unmute_keyword", 42, 1_700_000_000_000, keyword="crypto"),
        decode_social_graph_event,
        ["v", "type", "user_id", "target_id", "keyword", "ts_ms"],
    ),
    (
        FeedRequest("req-1", 42),
        decode_feed_request,
        [
            "v",
            "request_id",
            "user_id",
            "max_results",
            "seen_ids",
            "served_ids",
            "in_network_only",
            "is_bottom_request",
            "country",
            "language",
            "explain",
        ],
    ),
    (
        FeedRequest("req-2", 42, 500, (1, 2), (MAX_ID,), True, True, "GB", "en-GB", True),
        decode_feed_request,
        [
            "v",
            "request_id",
            "user_id",
            "max_results",
            "seen_ids",
            "served_ids",
            "in_network_only",
            "is_bottom_request",
            "country",
            "language",
            "explain",
        ],
    ),
    (FULL_FEED, decode_ranked_feed, ["v", "request_id", "user_id", "status", "error", "posts", "model", "latency_ms"]),
    (
        RankedFeed("req-3", 42, status="error", error="no candidates", latency_ms=1.0),
        decode_ranked_feed,
        ["v", "request_id", "user_id", "status", "error", "posts", "model", "latency_ms"],
    ),
    (
        # An error answer to a request whose user_id could not be read.
        RankedFeed("req-4", None, status="error", error="invalid request: user_id is required"),
        decode_ranked_feed,
        ["v", "request_id", "user_id", "status", "error", "posts", "model", "latency_ms"],
    ),
    (
        EXPLAINED_FEED,
        decode_ranked_feed,
        ["v", "request_id", "user_id", "status", "error", "posts", "model", "latency_ms", "explain"],
    ),
    (
        Impression("req-1", 42, 1001, 7, 1, 0.875, 1_700_000_000_000),
        decode_impression,
        ["v", "request_id", "user_id", "post_id", "author_id", "rank", "score", "served_at_ms"],
    ),
]
CASE_IDS = [f"{type(record).__name__}-{i}" for i, (record, _, _) in enumerate(CASES)]


@pytest.mark.parametrize(("record", "decoder", "fields"), CASES, ids=CASE_IDS)
def test_decoding_an_encoded_record_gives_it_back(record: Record, decoder: Callable, fields: list[str]) -> None:
    assert decoder(encode(record)) == record


@pytest.mark.parametrize(("record", "decoder", "fields"), CASES, ids=CASE_IDS)
def test_the_wire_object_is_the_dict_view_in_contract_order(
    record: Record, decoder: Callable, fields: list[str]
) -> None:
    value = encode(record)
    assert value.startswith(b'{"v":1,')
    assert orjson.loads(value) == record.to_dict()
    assert list(record.to_dict()) == fields


@pytest.mark.parametrize(("record", "decoder", "fields"), CASES, ids=CASE_IDS)
def test_the_dict_view_is_plain_json_data(record: Record, decoder: Callable, fields: list[str]) -> None:
    def plain(value: object) -> bool:
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        if isinstance(value, list):
            return all(plain(v) for v in value)
        return value is None or isinstance(value, str | int | float | bool)

    assert plain(record.to_dict())


def test_ranked_posts_write_explain_only_when_present() -> None:
    first, second = FULL_FEED.to_dict()["posts"]
    assert list(first) == ["post_id", "author_id", "rank", "score", "in_network", "explain"]
    assert list(second) == ["post_id", "author_id", "rank", "score", "in_network"]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_floats_are_refused_at_construction(bad: float) -> None:
    # orjson would silently write them as null and every reader would reject the record.
    with pytest.raises(ValueError, match="finite"):
        RankedPost(1, 2, 1, bad, True)
    with pytest.raises(ValueError, match="finite"):
        Impression("r", 1, 2, 3, 1, bad, 0)
    with pytest.raises(ValueError, match="finite"):
        RankedFeed("r", 1, latency_ms=bad)


@pytest.mark.parametrize(("entity_id", "key"), [(1, b"1"), (42, b"42"), (MAX_ID, b"9223372036854775807")])
def test_keys_are_decimal_utf8(entity_id: int, key: bytes) -> None:
    assert key_bytes(entity_id) == key


@pytest.mark.parametrize("bad", [0, -1, MAX_ID + 1, True, 1.0, "1", None])
def test_keys_are_only_made_of_valid_ids(bad: object) -> None:
    with pytest.raises(ValueError):
        key_bytes(bad)  # type: ignore[arg-type]


def test_tweets_are_keyed_by_post_and_everything_else_by_user() -> None:
    assert record_key(TweetCreate(post_id=5, author_id=6, created_at_ms=0)) == b"5"
    assert record_key(TweetDelete(5, 6, 0)) == b"5"
    assert record_key(Engagement(42, 1001, 7, "favorite", "search", 0)) == b"42"
    assert record_key(SocialGraphEvent("follow", 42, 0, target_id=7)) == b"42"
    assert record_key(FeedRequest("r", 42)) == b"42"
    assert record_key(FULL_FEED) == b"42"
    assert record_key(Impression("r", 42, 1001, 7, 1, 0.5, 0)) == b"42"


def test_the_stores_post_holds_exactly_a_creates_fields() -> None:
    post = Post(**{k: v for k, v in FULL_TWEET.to_dict().items() if k not in ("v", "type")})
    assert isinstance(post, Post)
    assert post.kind == "reply" and post.is_video
