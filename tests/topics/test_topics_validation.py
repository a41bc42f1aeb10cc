"""Edge cases of the strict decoders in topics.validation."""

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from topics.actions import ACTIONS
from topics.limits import (
    MAX_ID,
    MAX_PAYLOAD_BYTES,
    MAX_REQUEST_ID_CHARS,
    MAX_RESULTS,
    MAX_SEEN_IDS,
    MAX_SERVED_IDS,
    MAX_TEXT_CHARS,
)
from topics.schemas import (
    KEYWORD_TYPES,
    TARGET_TYPES,
    Engagement,
    FeedRequest,
    PostExplain,
    RankedFeed,
    SocialGraphEvent,
    TweetCreate,
    TweetDelete,
)
from topics.validation import (
    REASONS,
    InvalidRecord,
    decode_engagement,
    decode_feed_request,
    decode_impression,
    decode_ranked_feed,
    decode_social_graph_event,
    decode_tweet_event,
)

Decoder = Callable[[bytes | None], object]

TWEET_CREATE: dict[str, Any] = {
    "v": 1,
    "type": "create",
    "post_id": 1001,
    "author_id": 7,
    "created_at_ms": 1_700_000_000_000,
    "text": "hello",
    "in_reply_to_post_id": None,
    "in_reply_to_user_id": None,
    "repost_of_post_id": None,
    "repost_of_user_id": None,
    "quote_of_post_id": None,
    "conversation_id": None,
    "media": "none",
    "video_duration_ms": None,
    "subscriber_only": False,
}
TWEET_DELETE: dict[str, Any] = {
    "v": 1,
    "type": "delete",
    "post_id": 1001,
    "author_id": 7,
    "deleted_at_ms": 1_700_000_500_000,
}
ENGAGEMENT: dict[str, Any] = {
    "v": 1,
    "user_id": 42,
    "post_id": 1001,
    "author_id": 7,
    "action": "favorite",
    "surface": "home_for_you",
    "ts_ms": 1_700_000_100_000,
    "dwell_ms": None,
}
FOLLOW: dict[str, Any] = {
    "v": 1,
    "type": "follow",
    "user_id": 42,
    "target_id": 7,
    "keyword": None,
    "ts_ms": 1_700_000_000_000,
}
MUTE_KEYWORD: dict[str, Any] = {
    "v": 1,
    "type": "mute_keyword",
    "user_id": 42,
    "target_id": None,
    "keyword": "spoilers",
    "ts_ms": 1_700_000_000_000,
}
FEED_REQUEST: dict[str, Any] = {"v": 1, "request_id": "req-1", "user_id": 42}
RANKED_POST: dict[str, Any] = {"post_id": 1001, "author_id": 7, "rank": 1, "score": 0.5, "in_network": True}
RANKED_FEED: dict[str, Any] = {
    "v": 1,
    "request_id": "req-1",
    "user_id": 42,
    "status": "ok",
    "error": None,
    "posts": [RANKED_POST],
    "model": "phoenix-v1",
    "latency_ms": 12.5,
}
IMPRESSION: dict[str, Any] = {
    "v": 1,
    "request_id": "req-1",
    "user_id": 42,
    "post_id": 1001,
    "author_id": 7,
    "rank": 1,
    "score": 0.5,
    "served_at_ms": 1_700_000_200_000,
}

# (decoder, a valid value, its non-nullable fields without defaults, its id fields)
KINDS: dict[str, tuple[Decoder, dict[str, Any], tuple[str, ...], tuple[str, ...]]] = {
    "tweet_create": (
        decode_tweet_event,
        TWEET_CREATE,
        ("type", "post_id", "author_id", "created_at_ms", "text", "media", "subscriber_only"),
        ("post_id", "author_id"),
    ),
    "tweet_delete": (
        decode_tweet_event,
        TWEET_DELETE,
        ("type", "post_id", "author_id", "deleted_at_ms"),
        ("post_id", "author_id"),
    ),
    "engagement": (
        decode_engagement,
        ENGAGEMENT,
        ("user_id", "post_id", "author_id", "action", "surface", "ts_ms"),
        ("user_id", "post_id", "author_id"),
    ),
    "follow": (decode_social_graph_event, FOLLOW, ("type", "user_id", "ts_ms"), ("user_id", "target_id")),
    "mute_keyword": (decode_social_graph_event, MUTE_KEYWORD, ("type", "user_id", "ts_ms"), ("user_id",)),
    "feed_request": (decode_feed_request, FEED_REQUEST, ("request_id", "user_id"), ("user_id",)),
    "ranked_feed": (
        decode_ranked_feed,
        RANKED_FEED,
        ("request_id", "user_id", "status", "posts", "model", "latency_ms"),
        ("user_id",),
    ),
    "impression": (
        decode_impression,
        IMPRESSION,
        ("request_id", "user_id", "post_id", "author_id", "rank", "score", "served_at_ms"),
        ("user_id", "post_id", "author_id"),
    ),
}
KIND_NAMES = sorted(KINDS)


def dumps(obj: object) -> bytes:
    return orjson.dumps(obj)


def changed(base: dict[str, Any], **changes: Any) -> bytes:
    return dumps({**base, **changes})


def without(base: dict[str, Any], *names: str) -> bytes:
    return dumps({k: v for k, v in base.items() if k not in names})


def rejects(decoder: Decoder, value: bytes | None, reason: str) -> InvalidRecord:
    with pytest.raises(InvalidRecord) as info:
        decoder(value)
    assert info.value.reason == reason, str(info.value)
    return info.value


# ---- every kind -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_the_valid_base_records_decode(kind: str) -> None:
    decoder, base, _, _ = KINDS[kind]
    decoder(dumps(base))


@pytest.mark.parametrize("kind", KIND_NAMES)
@pytest.mark.parametrize(
    ("version", "reason"),
    [
        (2, "unknown_version"),
        (0, "unknown_version"),
        (-1, "unknown_version"),
        ("1", "wrong_type"),
        (True, "wrong_type"),
        (1.0, "wrong_type"),
        (None, "wrong_type"),
    ],
)
def test_v_must_be_the_integer_1(kind: str, version: object, reason: str) -> None:
    decoder, base, _, _ = KINDS[kind]
    rejects(decoder, changed(base, v=version), reason)


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_a_missing_v_is_a_missing_field(kind: str) -> None:
    decoder, base, _, _ = KINDS[kind]
    error = rejects(decoder, without(base, "v"), "missing_field")
    assert "v" in error.detail


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_unknown_extra_fields_are_ignored(kind: str) -> None:
    decoder, base, _, _ = KINDS[kind]
    extended = changed(base, future_field={"nested": [1, 2]}, another="x")
    assert decoder(extended) == decoder(dumps(base))


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_every_required_field_is_required(kind: str) -> None:
    decoder, base, required, _ = KINDS[kind]
    for name in required:
        error = rejects(decoder, without(base, name), "missing_field")
        assert name in error.detail


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_required_fields_reject_null(kind: str) -> None:
    decoder, base, required, _ = KINDS[kind]
    for name in required:
        rejects(decoder, changed(base, **{name: None}), "wrong_type")


@pytest.mark.parametrize("kind", KIND_NAMES)
@pytest.mark.parametrize(
    ("bad_id", "reason"),
    [
        (True, "wrong_type"),  # JSON true is not an integer
        (False, "wrong_type"),
        (1.0, "wrong_type"),  # an id is never a float, even an integral one
        (7.5, "wrong_type"),
        ("7", "wrong_type"),
        ([7], "wrong_type"),
        ({"id": 7}, "wrong_type"),
        (0, "out_of_range"),
        (-1, "out_of_range"),
        (-(2**63), "out_of_range"),
        (2**63, "out_of_range"),  # still a JSON integer orjson can hold, but beyond signed 64-bit
        (2**64 - 1, "out_of_range"),
    ],
)
def test_ids_are_positive_signed_64_bit_integers(kind: str, bad_id: object, reason: str) -> None:
    decoder, base, _, ids = KINDS[kind]
    for name in ids:
        rejects(decoder, changed(base, **{name: bad_id}), reason)


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_the_largest_id_is_accepted(kind: str) -> None:
    decoder, base, _, ids = KINDS[kind]
    for name in ids:
        record = decoder(changed(base, **{name: MAX_ID}))
        assert getattr(record, name) == MAX_ID


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_integers_beyond_64_bits_are_rejected(kind: str) -> None:
    # orjson reads integer literals beyond 64 bits as floats, so they fail as wrong_type.
    decoder, base, _, _ = KINDS[kind]
    literal = dumps(base).replace(b'"user_id":42', b'"user_id":123456789012345678901234567890')
    literal = literal.replace(b'"post_id":1001', b'"post_id":123456789012345678901234567890')
    assert literal != dumps(base)
    rejects(decoder, literal, "wrong_type")


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_timestamps_must_be_non_negative_integers(kind: str) -> None:
    decoder, base, _, _ = KINDS[kind]
    names = [name for name in base if name.endswith("_ms") and base[name] is not None and name != "latency_ms"]
    for name in names:
        rejects(decoder, changed(base, **{name: -1}), "out_of_range")
        rejects(decoder, changed(base, **{name: 1.7e12}), "wrong_type")
        rejects(decoder, changed(base, **{name: "1700000000000"}), "wrong_type")
        assert getattr(decoder(changed(base, **{name: 0})), name) == 0


# ---- tweet-events ---------------------------------------------------------------------------------------


def test_a_full_tweet_create_decodes_into_every_field() -> None:
    full = {
        **TWEET_CREATE,
        "text": "a reply with a 😀",
        "in_reply_to_post_id": 900,
        "in_reply_to_user_id": 8,
        "repost_of_post_id": None,
        "repost_of_user_id": None,
        "quote_of_post_id": 901,
        "conversation_id": 899,
        "media": "video",
        "video_duration_ms": 15_000,
        "subscriber_only": True,
        "safety_label": "sensitive",
    }
    assert decode_tweet_event(dumps(full)) == TweetCreate(
        post_id=1001,
        author_id=7,
        created_at_ms=1_700_000_000_000,
        text="a reply with a 😀",
        in_reply_to_post_id=900,
        in_reply_to_user_id=8,
        quote_of_post_id=901,
        conversation_id=899,
        media="video",
        video_duration_ms=15_000,
        subscriber_only=True,
        safety_label="sensitive",
    )


def test_nullable_tweet_fields_may_be_omitted() -> None:
    minimal = without(
        TWEET_CREATE,
        "in_reply_to_post_id",
        "in_reply_to_user_id",
        "repost_of_post_id",
        "repost_of_user_id",
        "quote_of_post_id",
        "conversation_id",
        "video_duration_ms",
    )
    assert decode_tweet_event(minimal) == TweetCreate(
        post_id=1001, author_id=7, created_at_ms=1_700_000_000_000, text="hello"
    )


def test_a_tweet_delete_decodes() -> None:
    assert decode_tweet_event(dumps(TWEET_DELETE)) == TweetDelete(1001, 7, 1_700_000_500_000)


@pytest.mark.parametrize(("kind", "reason"), [("edit", "bad_value"), ("Create", "bad_value"), (1, "wrong_type")])
def test_the_tweet_type_is_create_or_delete(kind: object, reason: str) -> None:
    rejects(decode_tweet_event, changed(TWEET_CREATE, type=kind), reason)


@pytest.mark.parametrize("media", ["gif", "", "PHOTO", "audio"])
def test_media_is_none_photo_or_video(media: str) -> None:
    rejects(decode_tweet_event, changed(TWEET_CREATE, media=media), "bad_value")
    rejects(decode_tweet_event, changed(TWEET_CREATE, media=None), "wrong_type")


@pytest.mark.parametrize("media", ["none", "photo", "video"])
def test_every_media_kind_is_accepted(media: str) -> None:
    record = decode_tweet_event(changed(TWEET_CREATE, media=media))
    assert isinstance(record, TweetCreate) and record.media == media


def test_text_is_bounded_in_code_points() -> None:
    at_bound = "😀" * MAX_TEXT_CHARS  # four UTF-8 bytes each: the bound counts characters
    record = decode_tweet_event(changed(TWEET_CREATE, text=at_bound))
    assert isinstance(record, TweetCreate) and record.text == at_bound
    rejects(decode_tweet_event, changed(TWEET_CREATE, text="x" * (MAX_TEXT_CHARS + 1)), "out_of_range")
    record = decode_tweet_event(changed(TWEET_CREATE, text=""))
    assert isinstance(record, TweetCreate) and record.text == ""


@pytest.mark.parametrize("flag", [0, 1, "false", None])
def test_subscriber_only_is_a_boolean(flag: object) -> None:
    rejects(decode_tweet_event, changed(TWEET_CREATE, subscriber_only=flag), "wrong_type")


def test_optional_tweet_fields_are_still_typed() -> None:
    rejects(decode_tweet_event, changed(TWEET_CREATE, in_reply_to_post_id=True), "wrong_type")
    rejects(decode_tweet_event, changed(TWEET_CREATE, conversation_id=0), "out_of_range")
    rejects(decode_tweet_event, changed(TWEET_CREATE, video_duration_ms=-5), "out_of_range")
    rejects(decode_tweet_event, changed(TWEET_CREATE, safety_label=3), "wrong_type")
    rejects(decode_tweet_event, changed(TWEET_CREATE, safety_label="x" * 65), "out_of_range")


# ---- engagement-events ----------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ACTIONS)
def test_each_of_the_19_actions_is_accepted(action: str) -> None:
    assert decode_engagement(changed(ENGAGEMENT, action=action)).action == action


@pytest.mark.parametrize("action", ["like", "Favorite", "", "favorite ", "retweet"])
def test_unknown_actions_are_bad_values(action: str) -> None:
    rejects(decode_engagement, changed(ENGAGEMENT, action=action), "bad_value")


def test_an_action_must_be_a_string() -> None:
    rejects(decode_engagement, changed(ENGAGEMENT, action=0), "wrong_type")


def test_a_full_engagement_decodes() -> None:
    value = changed(ENGAGEMENT, action="dwell_time", surface="search", dwell_ms=3_500)
    assert decode_engagement(value) == Engagement(42, 1001, 7, "dwell_time", "search", 1_700_000_100_000, 3_500)


def test_dwell_ms_is_an_optional_non_negative_integer() -> None:
    assert decode_engagement(without(ENGAGEMENT, "dwell_ms")).dwell_ms is None
    rejects(decode_engagement, changed(ENGAGEMENT, dwell_ms=-1), "out_of_range")
    rejects(decode_engagement, changed(ENGAGEMENT, dwell_ms=1.5), "wrong_type")


def test_any_bounded_surface_string_is_accepted() -> None:
    assert decode_engagement(changed(ENGAGEMENT, surface="a_surface_from_the_future")).surface == (
        "a_surface_from_the_future"
    )
    rejects(decode_engagement, changed(ENGAGEMENT, surface="s" * 65), "out_of_range")


# ---- social-graph-events --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", TARGET_TYPES)
def test_user_types_require_a_target(kind: str) -> None:
    assert decode_social_graph_event(changed(FOLLOW, type=kind)) == SocialGraphEvent(
        type=kind, user_id=42, ts_ms=1_700_000_000_000, target_id=7
    )
    error = rejects(decode_social_graph_event, changed(FOLLOW, type=kind, target_id=None), "missing_field")
    assert "target_id" in error.detail
    rejects(decode_social_graph_event, without({**FOLLOW, "type": kind}, "target_id"), "missing_field")


@pytest.mark.parametrize("kind", TARGET_TYPES)
def test_user_types_reject_a_keyword_and_a_self_target(kind: str) -> None:
    rejects(decode_social_graph_event, changed(FOLLOW, type=kind, keyword="x"), "bad_value")
    rejects(decode_social_graph_event, changed(FOLLOW, type=kind, target_id=42), "bad_value")


@pytest.mark.parametrize("kind", KEYWORD_TYPES)
def test_keyword_types_require_a_non_blank_bounded_keyword(kind: str) -> None:
    assert decode_social_graph_event(changed(MUTE_KEYWORD, type=kind)) == SocialGraphEvent(
        type=kind, user_id=42, ts_ms=1_700_000_000_000, keyword="spoilers"
    )
    rejects(decode_social_graph_event, changed(MUTE_KEYWORD, type=kind, keyword=None), "missing_field")
    rejects(decode_social_graph_event, without({**MUTE_KEYWORD, "type": kind}, "keyword"), "missing_field")
    rejects(decode_social_graph_event, changed(MUTE_KEYWORD, type=kind, keyword=""), "bad_value")
    rejects(decode_social_graph_event, changed(MUTE_KEYWORD, type=kind, keyword=" \t"), "bad_value")
    rejects(decode_social_graph_event, changed(MUTE_KEYWORD, type=kind, keyword="k" * 101), "out_of_range")
    rejects(decode_social_graph_event, changed(MUTE_KEYWORD, type=kind, keyword=["a"]), "wrong_type")
    rejects(decode_social_graph_event, changed(MUTE_KEYWORD, type=kind, target_id=7), "bad_value")


@pytest.mark.parametrize(("kind", "reason"), [("friend", "bad_value"), ("FOLLOW", "bad_value"), (3, "wrong_type")])
def test_the_social_graph_type_is_one_of_eight(kind: object, reason: str) -> None:
    rejects(decode_social_graph_event, changed(FOLLOW, type=kind), reason)


# ---- feed-requests --------------------------------------------------------------------------------------


def test_feed_request_defaults() -> None:
    assert decode_feed_request(dumps(FEED_REQUEST)) == FeedRequest(
        request_id="req-1",
        user_id=42,
        max_results=None,  # the worker's preset feed size
        seen_ids=(),
        served_ids=(),
        in_network_only=False,
        is_bottom_request=False,
        country=None,
        language=None,
        explain=False,
    )


def test_a_full_feed_request_decodes() -> None:
    value = changed(
        FEED_REQUEST,
        max_results=20,
        seen_ids=[1, 2, 3],
        served_ids=[4],
        in_network_only=True,
        is_bottom_request=True,
        country="US",
        language="en",
        explain=True,
    )
    assert decode_feed_request(value) == FeedRequest("req-1", 42, 20, (1, 2, 3), (4,), True, True, "US", "en", True)


@pytest.mark.parametrize(
    ("max_results", "reason"),
    [
        (0, "out_of_range"),
        (-1, "out_of_range"),
        (MAX_RESULTS + 1, "out_of_range"),
        (True, "wrong_type"),
        (10.0, "wrong_type"),
        ("10", "wrong_type"),
    ],
)
def test_max_results_is_bounded(max_results: object, reason: str) -> None:
    rejects(decode_feed_request, changed(FEED_REQUEST, max_results=max_results), reason)


@pytest.mark.parametrize("max_results", [1, MAX_RESULTS])
def test_max_results_bounds_are_inclusive(max_results: int) -> None:
    assert decode_feed_request(changed(FEED_REQUEST, max_results=max_results)).max_results == max_results


@pytest.mark.parametrize(("name", "bound"), [("seen_ids", MAX_SEEN_IDS), ("served_ids", MAX_SERVED_IDS)])
def test_id_lists_are_bounded(name: str, bound: int) -> None:
    at_bound = list(range(1, bound + 1))
    assert getattr(decode_feed_request(changed(FEED_REQUEST, **{name: at_bound})), name) == tuple(at_bound)
    rejects(decode_feed_request, changed(FEED_REQUEST, **{name: [*at_bound, bound + 1]}), "out_of_range")


@pytest.mark.parametrize("name", ["seen_ids", "served_ids"])
@pytest.mark.parametrize(
    ("bad_item", "reason"),
    [
        (True, "wrong_type"),
        (2.0, "wrong_type"),
        ("2", "wrong_type"),
        (None, "wrong_type"),
        ([2], "wrong_type"),
        (0, "out_of_range"),
        (-2, "out_of_range"),
        (2**63, "out_of_range"),
    ],
)
def test_id_list_items_are_ids_and_the_detail_names_the_index(name: str, bad_item: object, reason: str) -> None:
    error = rejects(decode_feed_request, changed(FEED_REQUEST, **{name: [5, 6, bad_item, 7]}), reason)
    assert f"{name}[2]" in error.detail


@pytest.mark.parametrize("name", ["seen_ids", "served_ids"])
@pytest.mark.parametrize("not_a_list", [None, 5, "1,2", {"0": 1}])
def test_id_lists_must_be_arrays(name: str, not_a_list: object) -> None:
    rejects(decode_feed_request, changed(FEED_REQUEST, **{name: not_a_list}), "wrong_type")


@pytest.mark.parametrize("name", ["in_network_only", "is_bottom_request", "explain"])
@pytest.mark.parametrize("flag", [0, 1, "true", None])
def test_feed_request_flags_are_booleans(name: str, flag: object) -> None:
    rejects(decode_feed_request, changed(FEED_REQUEST, **{name: flag}), "wrong_type")


@pytest.mark.parametrize(
    ("request_id", "reason"),
    [("", "bad_value"), ("r" * (MAX_REQUEST_ID_CHARS + 1), "out_of_range"), (5, "wrong_type"), (None, "wrong_type")],
)
def test_request_id_is_a_bounded_non_empty_string(request_id: object, reason: str) -> None:
    error = rejects(decode_feed_request, changed(FEED_REQUEST, request_id=request_id), reason)
    assert error.request_id is None
    assert error.user_id == 42


def test_country_and_language_are_bounded_strings() -> None:
    rejects(decode_feed_request, changed(FEED_REQUEST, country="C" * 9), "out_of_range")
    rejects(decode_feed_request, changed(FEED_REQUEST, language="l" * 36), "out_of_range")
    rejects(decode_feed_request, changed(FEED_REQUEST, country=1), "wrong_type")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"max_results": 0}, "out_of_range"),
        ({"seen_ids": [1, True]}, "wrong_type"),
        ({"explain": "yes"}, "wrong_type"),
        ({"v": 2}, "unknown_version"),
        ({"v": None}, "wrong_type"),
        ({"country": 44}, "wrong_type"),
    ],
)
def test_an_invalid_feed_request_reports_its_readable_request_id(changes: dict[str, Any], reason: str) -> None:
    error = rejects(decode_feed_request, changed(FEED_REQUEST, **changes), reason)
    assert error.request_id == "req-1"
    assert error.user_id == 42


def test_request_id_is_reported_even_when_the_user_id_is_bad() -> None:
    error = rejects(decode_feed_request, changed(FEED_REQUEST, user_id="42"), "wrong_type")
    assert (error.request_id, error.user_id) == ("req-1", None)
    error = rejects(decode_feed_request, without(FEED_REQUEST, "user_id"), "missing_field")
    assert (error.request_id, error.user_id) == ("req-1", None)


def test_unreadable_feed_requests_carry_no_request_id() -> None:
    for value in (b'["req-1"]', b'{"request_id": "req-1"', None):
        with pytest.raises(InvalidRecord) as info:
            decode_feed_request(value)
        assert info.value.request_id is None


def test_the_largest_legitimate_feed_request_fits_the_payload_bound() -> None:
    request = FeedRequest(
        request_id="r" * MAX_REQUEST_ID_CHARS,
        user_id=MAX_ID,
        max_results=MAX_RESULTS,
        seen_ids=tuple(range(MAX_ID - MAX_SEEN_IDS + 1, MAX_ID + 1)),
        served_ids=tuple(range(MAX_ID - MAX_SERVED_IDS + 1, MAX_ID + 1)),
        country="C" * 8,
        language="l" * 35,
    )
    value = orjson.dumps(request.to_dict())
    assert len(value) <= MAX_PAYLOAD_BYTES
    assert decode_feed_request(value) == request


# ---- ranked-feeds and impressions -----------------------------------------------------------------------


def test_scores_accept_json_integers_as_floats() -> None:
    feed = decode_ranked_feed(changed(RANKED_FEED, posts=[{**RANKED_POST, "score": 2}], latency_ms=3))
    assert isinstance(feed.posts[0].score, float) and feed.posts[0].score == 2.0
    assert isinstance(feed.latency_ms, float)
    impression = decode_impression(changed(IMPRESSION, score=-1))
    assert impression.score == -1.0 and isinstance(impression.score, float)


@pytest.mark.parametrize(
    ("post_changes", "reason", "where"),
    [
        ({"score": None}, "wrong_type", "posts[0].score"),
        ({"score": "0.5"}, "wrong_type", "posts[0].score"),
        ({"score": True}, "wrong_type", "posts[0].score"),
        ({"rank": 0}, "out_of_range", "posts[0].rank"),
        ({"rank": MAX_RESULTS + 1}, "out_of_range", "posts[0].rank"),
        ({"rank": 1.0}, "wrong_type", "posts[0].rank"),
        ({"in_network": 1}, "wrong_type", "posts[0].in_network"),
        ({"post_id": 0}, "out_of_range", "posts[0].post_id"),
        ({"explain": [1]}, "wrong_type", "posts[0].explain"),
        ({"explain": "why"}, "wrong_type", "posts[0].explain"),
    ],
)
def test_ranked_posts_are_checked(post_changes: dict[str, Any], reason: str, where: str) -> None:
    error = rejects(decode_ranked_feed, changed(RANKED_FEED, posts=[{**RANKED_POST, **post_changes}]), reason)
    assert where in error.detail


@pytest.mark.parametrize("field", ["post_id", "author_id", "rank", "score", "in_network"])
def test_ranked_post_fields_are_required(field: str) -> None:
    post = {k: v for k, v in RANKED_POST.items() if k != field}
    error = rejects(decode_ranked_feed, changed(RANKED_FEED, posts=[RANKED_POST, post]), "missing_field")
    assert f"posts[1].{field}" in error.detail


def test_explain_objects_are_kept_typed() -> None:
    # Missing fields read as null, unknown ones ("sources") are ignored: the debugging view may grow.
    explain = {"weighted_score": 0.9, "probabilities": {"favorite": 0.2}, "sources": ["thunder"]}
    feed = decode_ranked_feed(changed(RANKED_FEED, posts=[{**RANKED_POST, "explain": explain}]))
    assert feed.posts[0].explain == PostExplain(weighted_score=0.9, probabilities={"favorite": 0.2})
    assert decode_ranked_feed(dumps(RANKED_FEED)).posts[0].explain is None


def test_posts_must_be_an_array_of_objects_within_max_results() -> None:
    rejects(decode_ranked_feed, changed(RANKED_FEED, posts=None), "wrong_type")
    rejects(decode_ranked_feed, changed(RANKED_FEED, posts={"0": RANKED_POST}), "wrong_type")
    error = rejects(decode_ranked_feed, changed(RANKED_FEED, posts=[RANKED_POST, 5]), "wrong_type")
    assert "posts[1]" in error.detail
    rejects(decode_ranked_feed, changed(RANKED_FEED, posts=[RANKED_POST] * (MAX_RESULTS + 1)), "out_of_range")
    assert len(decode_ranked_feed(changed(RANKED_FEED, posts=[RANKED_POST] * MAX_RESULTS)).posts) == MAX_RESULTS


def test_error_is_set_exactly_when_status_is_error() -> None:
    failed = decode_ranked_feed(changed(RANKED_FEED, status="error", error="timeout", posts=[]))
    assert failed == RankedFeed("req-1", 42, "error", "timeout", (), "phoenix-v1", 12.5)
    rejects(decode_ranked_feed, changed(RANKED_FEED, status="error", error=None), "bad_value")
    rejects(decode_ranked_feed, changed(RANKED_FEED, status="error", error=""), "bad_value")
    rejects(decode_ranked_feed, changed(RANKED_FEED, status="ok", error="timeout"), "bad_value")
    rejects(decode_ranked_feed, changed(RANKED_FEED, status="done"), "bad_value")
    assert decode_ranked_feed(without(RANKED_FEED, "error")).error is None


def test_latency_is_a_non_negative_number() -> None:
    rejects(decode_ranked_feed, changed(RANKED_FEED, latency_ms=-0.1), "out_of_range")
    rejects(decode_ranked_feed, changed(RANKED_FEED, latency_ms="1"), "wrong_type")


def test_ranked_feeds_have_a_larger_bound_for_explain_objects() -> None:
    explain = {"note": "e" * 600}
    posts = [{**RANKED_POST, "rank": i + 1, "explain": explain} for i in range(MAX_RESULTS)]
    value = changed(RANKED_FEED, posts=posts)
    assert len(value) > MAX_PAYLOAD_BYTES
    assert len(decode_ranked_feed(value).posts) == MAX_RESULTS
    padded_impression = changed(IMPRESSION, padding="p" * MAX_PAYLOAD_BYTES)
    rejects(decode_impression, padded_impression, "too_large")


def test_impression_rank_and_score_are_checked() -> None:
    rejects(decode_impression, changed(IMPRESSION, rank=0), "out_of_range")
    rejects(decode_impression, changed(IMPRESSION, score=None), "wrong_type")
    rejects(decode_impression, changed(IMPRESSION, request_id=""), "bad_value")


# ---- payload-level failures -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_nan_and_infinity_are_not_json(kind: str) -> None:
    decoder, base, _, _ = KINDS[kind]
    for literal in (b"NaN", b"Infinity", b"-Infinity", b"1e400"):
        value = dumps(base)[:-1] + b',"x":' + literal + b"}"
        rejects(decoder, value, "not_json")


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_non_utf8_is_told_apart_from_non_json(kind: str) -> None:
    decoder, base, _, _ = KINDS[kind]
    rejects(decoder, dumps(base).replace(b"1,", b"1,\xff", 1), "not_utf8")
    rejects(decoder, dumps(base)[:-1], "not_json")


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_a_payload_over_the_bound_is_rejected_before_parsing(kind: str) -> None:
    decoder, _, _, _ = KINDS[kind]
    bound = 1_000_000 if kind == "ranked_feed" else MAX_PAYLOAD_BYTES
    error = rejects(decoder, b"{" * (bound + 1), "too_large")  # would be not_json if parsed
    assert str(bound) in error.detail


def test_invalid_record_carries_a_reason_from_the_fixed_set() -> None:
    error = InvalidRecord("bad_value", "action: unknown value 'like'")
    assert isinstance(error, ValueError)
    assert str(error) == "bad_value: action: unknown value 'like'"
    assert (error.request_id, error.user_id) == (None, None)
    with pytest.raises(ValueError, match="unknown InvalidRecord reason"):
        InvalidRecord("weird", "x")
    assert len(REASONS) == len(set(REASONS)) == 10


def test_details_preview_long_input_instead_of_echoing_it() -> None:
    error = rejects(decode_engagement, changed(ENGAGEMENT, action="z" * 10_000), "bad_value")
    assert len(error.detail) < 100
