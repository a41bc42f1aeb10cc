"""The internal topics' records are checked as strictly as public ones: anything else raises InvalidRecord."""

import orjson
import pytest

from agents.envelope import decode_post_log_record, decode_user_event, encode_follower_delta, encode_user_event
from topics.schemas import FeedRequest
from topics.validation import InvalidRecord

ENGAGEMENT = {
    "v": 1, "user_id": 3, "post_id": 9, "author_id": 7, "action": "favorite", "surface": "home", "ts_ms": 5,
    "dwell_ms": None,
}
SOCIAL = {"v": 1, "type": "follow", "user_id": 3, "target_id": 7, "keyword": None, "ts_ms": 5}
REQUEST = {"v": 1, "request_id": "r1", "user_id": 3}
CREATE = {
    "v": 1, "type": "create", "post_id": 9, "author_id": 7, "created_at_ms": 5, "text": "hi", "media": "none",
    "subscriber_only": False,
}
DELETE = {"v": 1, "type": "delete", "post_id": 9, "author_id": 7, "deleted_at_ms": 0}


@pytest.mark.parametrize(
    ("kind", "event"), [("engagement", ENGAGEMENT), ("social", SOCIAL), ("request", REQUEST)]
)
def test_what_the_ingest_agents_write_decodes(kind: str, event: dict) -> None:
    decoded = decode_user_event(encode_user_event(kind, event, 12.5))
    assert (decoded.kind, decoded.event, decoded.received_at_ms) == (kind, event, 12.5)
    assert decoded.record is not None and decoded.record.to_dict() | event == decoded.record.to_dict()


def test_a_request_is_handed_on_as_the_record_its_decoder_made() -> None:
    # The feed service builds the pipeline's query from this record: the request is parsed once.
    decoded = decode_user_event(encode_user_event("request", {**REQUEST, "max_results": 12}, 0.0))
    assert decoded.record == FeedRequest(request_id="r1", user_id=3, max_results=12)
    assert decode_user_event(encode_user_event("request", REQUEST, 0.0)).record == FeedRequest("r1", 3)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty"),
        (b"", "empty"),
        (b"\xff\xfe", "not_json"),
        (b"[]", "not_object"),
        (b"42", "not_object"),
        (b'{"kind": "engagement"}', "wrong_type"),
        (b'{"kind": ["engagement"], "event": {}}', "bad_value"),
        (b'{"kind": "gossip", "event": {}}', "bad_value"),
        (orjson.dumps({"kind": "engagement", "event": [], "received_at_ms": 1}), "wrong_type"),
        (orjson.dumps({"kind": "engagement", "event": ENGAGEMENT, "received_at_ms": []}), "wrong_type"),
        (orjson.dumps({"kind": "engagement", "event": ENGAGEMENT, "received_at_ms": -1}), "wrong_type"),
        (orjson.dumps({"kind": "engagement", "event": {**ENGAGEMENT, "v": 2}}), "unknown_version"),
        (orjson.dumps({"kind": "engagement", "event": {**ENGAGEMENT, "user_id": "3"}}), "wrong_type"),
        (orjson.dumps({"kind": "engagement", "event": {**ENGAGEMENT, "post_id": 2**64 - 1}}), "out_of_range"),
        (orjson.dumps({"kind": "engagement", "event": {**ENGAGEMENT, "action": "hug"}}), "bad_value"),
        (orjson.dumps({"kind": "social", "event": {k: v for k, v in SOCIAL.items() if k != "type"}}), "missing_field"),
        (orjson.dumps({"kind": "social", "event": ENGAGEMENT}), "missing_field"),
        (orjson.dumps({"kind": "request", "event": {"v": 1, "user_id": 3}}), "missing_field"),
        (orjson.dumps({"kind": "request", "event": {**REQUEST, "seen_ids": [1.5]}}), "wrong_type"),
        (b"{" * 2000, "not_json"),
        (b" " * (600 * 1024), "too_large"),
    ],
)
def test_anything_else_on_user_events_raises_invalid_record_with_its_reason(value: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidRecord) as raised:
        decode_user_event(value)
    assert raised.value.reason == reason


def test_post_log_records_decode_to_exactly_the_fields_the_store_reads() -> None:
    assert decode_post_log_record(orjson.dumps({**CREATE, "extra": [1]}))["in_reply_to_post_id"] is None
    assert "extra" not in decode_post_log_record(orjson.dumps({**CREATE, "extra": [1]}))
    assert decode_post_log_record(orjson.dumps(DELETE)) == DELETE
    delta = {"type": "follower_delta", "author_id": 7, "delta": -1}
    assert decode_post_log_record(encode_follower_delta(7, -1)) == delta


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"[]", "not_object"),
        (b"null", "not_object"),
        (b"not json", "not_json"),
        (orjson.dumps({**CREATE, "post_id": "9"}), "wrong_type"),
        (orjson.dumps({**CREATE, "created_at_ms": -1}), "out_of_range"),
        (orjson.dumps({k: v for k, v in CREATE.items() if k != "author_id"}), "missing_field"),
        (orjson.dumps({**DELETE, "v": 7}), "unknown_version"),
        (orjson.dumps({"type": "follower_delta", "author_id": 7, "delta": 1000}), "bad_value"),
        (orjson.dumps({"type": "follower_delta", "author_id": [], "delta": 1}), "wrong_type"),
        (orjson.dumps({"type": "follower_delta", "delta": 1}), "wrong_type"),
        (orjson.dumps({"v": 1, "type": "purge", "post_id": 9}), "bad_value"),
    ],
)
def test_anything_else_on_the_post_log_raises_invalid_record(value: bytes, reason: str) -> None:
    with pytest.raises(InvalidRecord) as raised:
        decode_post_log_record(value)
    assert raised.value.reason == reason
